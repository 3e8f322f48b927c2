// The esbuild options every executable of ours is bundled with: the per-plugin bundles
// (build.mjs) and the multi-call binary's script (scripts/package.mjs). These make release
// builds: failpoints (lib/rollback.ts FAILPOINTS) are compiled out.
export const BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  define: { __CNI_TS_FAILPOINTS__: 'false' },
};

/** The test build's difference (build.mjs, dist/test-bin): failpoints compiled in. */
export const TEST_DEFINE = { __CNI_TS_FAILPOINTS__: 'true' };
