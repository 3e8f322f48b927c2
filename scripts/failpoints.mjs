// Proof that release builds carry no failpoint: their names are taken from the sources (every
// failpoint call) and looked for in the built files. A test build must carry each
// name somewhere, or the search would prove nothing.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    if (d.isDirectory()) return d.name === 'node_modules' || d.name === 'generated' ? [] : sources(p);
    return d.name.endsWith('.ts') && !d.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** The failpoint names the sources use. */
export function failpointNames(root) {
  const names = new Set();
  for (const f of ['lib', 'plugins', 'ipam'].flatMap((d) => sources(join(root, d)))) {
    // Calls only (a statement of their own), not the examples in comments.
    for (const m of readFileSync(f, 'utf8').matchAll(/^\s*(?:if \(FAILPOINTS\) )?failpoint\('([^']+)'\);/gm)) names.add(m[1]);
  }
  return [...names].sort();
}

/**
 * Throws unless no `release` file holds the failpoint variable or any failpoint name, and (when
 * `test` files are given) every name is in one of them.
 */
export function checkFailpoints(root, release, test = []) {
  const names = failpointNames(root);
  if (names.length === 0) throw new Error('no failpoint names found in the sources: the check would prove nothing');
  const needles = ['CNI_TS_FAILPOINT', ...names];
  const leaks = release.flatMap((f) => {
    const text = readFileSync(f, 'utf8');
    return needles.filter((n) => text.includes(n)).map((n) => `${f}: ${n}`);
  });
  if (leaks.length) throw new Error(`failpoint code in a release build:\n  ${leaks.join('\n  ')}`);
  if (test.length) {
    const all = test.map((f) => readFileSync(f, 'utf8')).join('\n');
    const missing = needles.filter((n) => !all.includes(n));
    if (missing.length) throw new Error(`the test build lacks failpoints: ${missing.join(', ')}`);
  }
  return names;
}
