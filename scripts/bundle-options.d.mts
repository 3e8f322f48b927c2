// Types of bundle-options.mjs, for the TypeScript tests that bundle as build.mjs does.
import type { BuildOptions } from 'esbuild';
export declare const BUNDLE_OPTIONS: BuildOptions & { define: Record<string, string> };
export declare const TEST_DEFINE: Record<string, string>;
