// Unit tests: pure logic, no root, no kernel. They live beside the code as *.test.ts.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/lib', '<rootDir>/plugins', '<rootDir>/ipam'],
  testMatch: ['**/*.test.ts'],
  transform: { '\\.[cm]?[jt]s$': '<rootDir>/scripts/jest-esbuild-transform.cjs' },
  transformIgnorePatterns: [],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
};
