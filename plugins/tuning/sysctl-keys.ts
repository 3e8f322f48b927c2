/**
 * Turning a tuning `sysctl` key into a /proc/sys path, refusing anything that is not a network
 * sysctl. Pure. The reference joins and cleans the path and checks the /proc/sys/net/ prefix;
 * we refuse `.`/`..`/empty segments outright, so no spelling can climb out of net/.
 */
import { CniError, ErrCode } from '../../lib/skel/errors';

/**
 * `net.ipv4.conf.IFNAME.arp_filter` → `/proc/sys/net/ipv4/conf/<ifName>/arp_filter`. A key
 * containing `/` is split on `/` only, so interface names with dots (eth0.100) can be spelled
 * out. The first `IFNAME` is replaced by CNI_IFNAME after splitting, as in the reference.
 */
export function sysctlPath(key: string, ifName: string): string {
  const sep = key.includes('/') ? '/' : '.';
  const joined = key.split(sep).join('/').replace('IFNAME', () => ifName);
  const parts = joined.split('/');
  const bad = parts[0] !== 'net' || parts.length < 2 || parts.some((p) => p === '' || p === '.' || p === '..' || /[\0\n]/.test(p));
  if (bad) throw new CniError(ErrCode.InvalidConfig, `invalid net sysctl key: "${key}"`, 'only keys under /proc/sys/net are allowed');
  return `/proc/sys/${parts.join('/')}`;
}

/**
 * The reference's optional allowlist (/etc/cni/tuning/allowlist.conf): one regular expression
 * per line, matched anywhere in the key (Go regexp.MatchString); no file means no restriction.
 */
export function checkAllowlist(keys: string[], allowlist: string[] | undefined): void {
  if (!allowlist) return;
  for (const k of keys) {
    const ok = allowlist.some((re) => {
      try {
        return new RegExp(re).test(k);
      } catch {
        throw new CniError(ErrCode.InvalidConfig, `invalid regular expression in the sysctl allowlist: ${re}`);
      }
    });
    if (!ok) throw new CniError(ErrCode.InvalidConfig, `Sysctl ${k} is not allowed. Only the following sysctls are allowed: [${allowlist.join(' ')}]`);
  }
}

export function parseAllowlist(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Compares a configured value with what the kernel prints (tabs for multi-value sysctls). */
export function sameSysctlValue(want: string, have: string): boolean {
  const norm = (s: string) => s.trim().split(/\s+/).join(' ');
  return norm(want) === norm(have);
}
