// Conformance tests: drive the built executables in dist/bin (or CNI_PLUGIN_DIR) inside
// network namespaces the suite creates itself. Needs root; run after `node build.mjs`.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/conformance'],
  testMatch: ['**/*.conformance.test.ts'],
  transform: { '\\.[cm]?[jt]s$': '<rootDir>/scripts/jest-esbuild-transform.cjs' },
  transformIgnorePatterns: [],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  testTimeout: 60000,
};
