// The esbuild options every executable of ours is bundled with: the per-plugin bundles
// (build.mjs) and the multi-call binary's script (scripts/package.mjs).
export const BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
};
