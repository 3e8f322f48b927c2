// Unit tests: pure logic, no root, no kernel. They live beside the code as *.test.ts.
module.exports = {
  testEnvironment: 'node',
  // Only the directories that exist: jest refuses a missing root, and a fresh clone may not have all yet.
  roots: ['lib', 'plugins', 'ipam'].filter((d) => require('node:fs').existsSync(`${__dirname}/${d}`)).map((d) => `<rootDir>/${d}`),
  testMatch: ['**/*.test.ts'],
  transform: { '\\.[cm]?[jt]s$': '<rootDir>/scripts/jest-esbuild-transform.cjs' },
  transformIgnorePatterns: [],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
};
