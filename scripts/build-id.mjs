// The build id that served mode's stubs and service compare (lib/serve/protocol.ts): a digest of
// the sources every executable is built from, so two builds of the same tree agree and any
// change to the code gives a new id.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

function files(dir, out = []) {
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) {
      if (d.name !== 'node_modules' && d.name !== 'generated') files(p, out);
    } else if (/\.(ts|json|mjs)$/.test(d.name) && !/\.test\.ts$/.test(d.name)) out.push(p);
  }
  return out;
}

export function buildId(root) {
  const h = createHash('sha256');
  const all = [...files(join(root, 'lib')), ...files(join(root, 'plugins')), ...files(join(root, 'ipam')), join(root, 'scripts/stub.mjs'), join(root, 'package.json')].sort();
  for (const f of all) h.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex').slice(0, 16);
}
