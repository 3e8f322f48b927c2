// Installs Debian packages a suite needs, once: dpkg-query first (fast path when everything is
// there), then apt-get install; apt-get update only when the first install fails (stale lists).
import { exec, execOk } from './exec';

async function isInstalled(pkg: string): Promise<boolean> {
  const r = await exec(['dpkg-query', '-W', '-f=${Status}', pkg]);
  return r.code === 0 && r.stdout.includes('install ok installed');
}

/** apt-get installs whichever of pkgs is missing (no recommends); throws with apt's output on failure. */
export async function ensureDebs(pkgs: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const p of pkgs) if (!(await isInstalled(p))) missing.push(p);
  if (missing.length === 0) return [];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = ['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing];
  let r = await exec(install, { env, timeoutMs: 600_000 });
  if (r.code !== 0) {
    await execOk(['apt-get', 'update', '-qq'], { env, timeoutMs: 300_000 });
    r = await exec(install, { env, timeoutMs: 600_000 });
  }
  if (r.code !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed:\n${r.stderr}${r.stdout}`);
  return missing;
}
