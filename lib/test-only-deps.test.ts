// Test-only devDependencies (the CRI suite's gRPC client) must never reach a plugin bundle:
// nothing under lib/, plugins/ or ipam/ may import them.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');
const TEST_ONLY = ['@grpc/grpc-js', '@grpc/proto-loader'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) return e === 'node_modules' ? [] : sources(p);
    return /\.(ts|js|mjs|cjs)$/.test(e) && !e.endsWith('.test.ts') ? [p] : [];
  });
}

test('no plugin code imports a test-only dependency', () => {
  const offenders = ['lib', 'plugins', 'ipam'].flatMap((d) =>
    sources(join(ROOT, d)).filter((f) => {
      const text = readFileSync(f, 'utf8');
      return TEST_ONLY.some((m) => text.includes(`'${m}'`) || text.includes(`"${m}"`));
    }),
  );
  expect(offenders).toEqual([]);
});
