/**
 * Pieces both netfilter backends share: the container addresses in the form the rules need,
 * and the mapping of a failed nft/iptables run to a CniError. Pure except for the types.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CommandError } from '../exec/run';
import { CniError, ErrCode } from '../skel/errors';
import { type Family, formatIP, networkOf, parseCidr, formatCidr } from '../ip/cidr';

/** One container address as the masquerade rules use it. */
export interface MasqAddr {
  family: Family;
  /** The container's address, canonical text ("10.22.0.5", "fd00::5"). */
  ip: string;
  /** Its subnet with host bits cleared ("10.22.0.0/16"). */
  subnet: string;
}

/** Traffic to multicast is never masqueraded (the reference's rule; pods talk multicast locally). */
export const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };

/** Parses "10.22.0.5/16" style addresses; a malformed one is a config error (code 7). */
export function parseMasqAddresses(addresses: readonly string[]): MasqAddr[] {
  const out: MasqAddr[] = [];
  const seen = new Set<string>();
  for (const a of addresses) {
    const c = parseCidr(a);
    if (!c) throw new CniError(ErrCode.InvalidConfig, `invalid address for masquerade: ${JSON.stringify(a)} (want ip/prefix)`);
    const m: MasqAddr = { family: c.ip.family, ip: formatIP(c.ip), subnet: formatCidr(networkOf(c)) };
    const key = `${m.ip}/${m.subnet}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(m);
  }
  return out;
}

/** Strings in the rules come from config and CNI_CONTAINERID: refuse anything that could break a line. */
export function assertPrintable(what: string, s: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(s)) {
    throw new CniError(ErrCode.InvalidConfig, `${what} ${JSON.stringify(s)} contains control characters`);
  }
}

const BUSY = /resource busy|resource temporarily unavailable|holding the xtables lock|EAGAIN|EBUSY/i;

/** `failed to <context>: <cause>`; lock or busy failures become code 11 (try again later). */
export function netfilterError(context: string, e: unknown): CniError {
  if (e instanceof CniError) return new CniError(e.code, `${context}: ${e.message}`, e.details);
  if (e instanceof CommandError) {
    const code = BUSY.test(e.stderr) ? ErrCode.TryAgainLater : ErrCode.Internal;
    return new CniError(code, `${context}: ${e.message}`);
  }
  return new CniError(ErrCode.Internal, `${context}: ${e instanceof Error ? e.message : String(e)}`);
}

/** Options every backend takes. */
export interface BackendOptions {
  /**
   * Run the tools inside this network namespace (a path such as /run/netns/x) through
   * nsenter. Unset means the current namespace, which is what a plugin on the host wants.
   */
  netns?: string;
}

/**
 * Whether an executable of this name is on PATH, the PATH run() will search. A stat per
 * directory and no process: cheap enough to call on every DEL.
 */
export function onPath(name: string, path: string | undefined = process.env.PATH): boolean {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}
