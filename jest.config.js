// Unit tests: pure logic, no root, no kernel. They live beside the code as *.test.ts.
module.exports = {
  testEnvironment: 'node',
  // Only the directories that exist: jest refuses a missing root, and a fresh clone may not have all yet.
  roots: ['lib', 'plugins', 'ipam'].filter((d) => require('node:fs').existsSync(`${__dirname}/${d}`)).map((d) => `<rootDir>/${d}`),
  testMatch: ['**/*.test.ts'],
  transform: { '\\.[cm]?[jt]s$': '<rootDir>/scripts/jest-esbuild-transform.cjs' },
  transformIgnorePatterns: [],
  // unicorn-magic (a dependency of execa) exports only an "import" entry, which jest's require
  // resolution cannot see; point at that file, the transform turns it into CommonJS.
  moduleNameMapper: { '^unicorn-magic$': '<rootDir>/node_modules/unicorn-magic/node.js' },
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
};
