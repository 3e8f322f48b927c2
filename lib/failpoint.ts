/**
 * Failpoints: test hooks that make an ADD fail at a named point, so the conformance suites can
 * prove that rollback leaves nothing behind (`CNI_TS_FAILPOINT=<name>`).
 *
 * This module imports nothing, on purpose: esbuild then inlines FAILPOINTS into the modules
 * that test it, which is what lets a release build drop every call (a constant from a module
 * with imports was not inlined, esbuild 0.28).
 */
declare const __CNI_TS_FAILPOINTS__: boolean | undefined;

/**
 * Whether this build has failpoints. The release bundles and the binary define it false
 * (scripts/bundle-options.mjs), so esbuild drops every `if (FAILPOINTS) failpoint(…)` with its
 * name, and build.mjs checks that none is left; the test build (dist/test-bin) and the unit
 * tests (no define) have them.
 */
export const FAILPOINTS: boolean = typeof __CNI_TS_FAILPOINTS__ === 'undefined' || __CNI_TS_FAILPOINTS__;

/**
 * Test hook: throws when CNI_TS_FAILPOINT names this point, to prove rollback leaves nothing
 * behind. Call it as `if (FAILPOINTS) failpoint('name')`, so release builds carry neither.
 */
export function failpoint(name: string): void {
  if (FAILPOINTS && process.env.CNI_TS_FAILPOINT === name) throw new Error(`failpoint ${name} triggered`);
}
