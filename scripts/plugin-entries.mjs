// The plugins this repository builds, found the same way by build.mjs (one bundle each) and
// scripts/package.mjs (one multi-call binary): every plugins/<name>/main.ts and
// ipam/<name>/main.ts. A main.ts only exports its definition (`export const plugin`); the
// executable's entry, written here, is what runs it, so a table of plugins can import
// definitions without running any.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** [{ name, path: './plugins/<name>/main.ts' }], sorted by name. */
export function pluginEntries(root) {
  const out = [];
  for (const parent of ['plugins', 'ipam']) {
    const dir = join(root, parent);
    if (!existsSync(dir)) continue;
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      if (d.isDirectory() && existsSync(join(dir, d.name, 'main.ts'))) out.push({ name: d.name, path: `./${parent}/${d.name}/main.ts` });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The source of one plugin's executable (resolved from the repository root). */
export function bundleEntrySource(entry) {
  return `import { pluginMain } from './lib/skel/dispatch';\nimport { plugin } from ${JSON.stringify(entry.path)};\npluginMain(plugin);\n`;
}
