// Name lookups as a container's libc does them: inside a private mount namespace of the
// container's netns, a resolv.conf (what the runtime writes from the ADD result's dns) is bound
// over /etc/resolv.conf; then getent (getaddrinfo with the search list) and ping by name.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execOk, inNetns } from './exec';

const LIBC_RESOLVE = `
const { execFileSync } = require('child_process');
const [rc, name] = process.argv.slice(1);
execFileSync('mount', ['--bind', rc, '/etc/resolv.conf']);
let addr = '';
try { addr = execFileSync('getent', ['ahostsv4', name]).toString().split(/\\s+/)[0]; } catch {}
let pinged = false;
if (addr) { try { execFileSync('ping', ['-n', '-c', '1', '-W', '2', name]); pinged = true; } catch {} }
console.log(JSON.stringify({ addr, pinged }));
`;

/** Writes a resolv.conf for an ADD result's dns into dir; returns its path. */
export function resolvConf(dir: string, dns: { nameservers?: string[]; search?: string[] }): string {
  const rc = join(dir, `resolv-${Math.random().toString(16).slice(2, 8)}.conf`);
  writeFileSync(rc, `nameserver ${(dns.nameservers ?? []).join('\nnameserver ')}\n${dns.search?.length ? `search ${dns.search.join(' ')}\n` : ''}`);
  return rc;
}

/** Resolves name with libc in nsPath using resolv.conf rc, and pings it by name when it resolved. */
export async function resolveAndPing(nsPath: string, rc: string, name: string): Promise<{ addr: string; pinged: boolean }> {
  const r = await execOk(inNetns(nsPath, ['unshare', '--mount', '--propagation', 'private', '--', process.execPath, '-e', LIBC_RESOLVE, rc, name]), { timeoutMs: 20_000 });
  return JSON.parse(r.stdout) as { addr: string; pinged: boolean };
}
