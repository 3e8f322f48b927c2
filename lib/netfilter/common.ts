/**
 * Pieces both drivers share: the container addresses and port mappings in the form the rules
 * need, string checks, and the PATH lookup behind the drivers' availability. Pure except for
 * onPath's stat calls. (A failed nft/iptables run is a CommandError; lib/skel/errors.ts
 * asCniError gives it its code, 11 when the lock was held.)
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CniError, ErrCode } from '../skel/errors';
import { type Family, formatIP, networkOf, parseCidr, formatCidr, parseIP } from '../ip/cidr';
import type { Owner, PortMapping } from './driver';

/** One container address as the rules use it. */
export interface ContainerAddr {
  family: Family;
  /** The container's address, canonical text ("10.22.0.5", "fd00::5"). */
  ip: string;
  /** "ip/prefix" as the result gave it. */
  cidr: string;
  /** Its subnet with host bits cleared ("10.22.0.0/16"). */
  subnet: string;
}

/** Traffic to multicast is never masqueraded (the reference's rule; pods talk multicast locally). */
export const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };

/** Parses "10.22.0.5/16" style addresses; a malformed one is a config error (code 7). */
export function containerAddrs(addresses: readonly string[]): ContainerAddr[] {
  return addresses.map((a) => {
    const c = parseCidr(a);
    if (!c) throw new CniError(ErrCode.InvalidConfig, `invalid container address ${JSON.stringify(a)} (want ip/prefix)`);
    return { family: c.ip.family, ip: formatIP(c.ip), cidr: a, subnet: formatCidr(networkOf(c)) };
  });
}

/** The container's addresses for masquerade, each (ip, subnet) once. */
export function masqAddrs(addresses: readonly string[]): ContainerAddr[] {
  const seen = new Set<string>();
  return containerAddrs(addresses).filter((a) => !seen.has(`${a.ip}/${a.subnet}`) && seen.add(`${a.ip}/${a.subnet}`));
}

/** The families of these addresses in order, or both when there are none. */
export function familiesOf(addrs: readonly { family: Family }[]): Family[] {
  return addrs.length === 0 ? [4, 6] : presentFamilies(addrs);
}

/** The families these addresses have, IPv4 first. */
export function presentFamilies(addrs: readonly { family: Family }[]): Family[] {
  return ([4, 6] as const).filter((f) => addrs.some((a) => a.family === f));
}

/**
 * The mappings that apply to a container address of this family: a hostIP of the other family
 * is skipped (as the reference does); returns each with `dst`, the host address to match, or
 * undefined for "any local address" (no hostIP, or 0.0.0.0 / ::).
 */
export function mappingsFor(mappings: readonly PortMapping[], family: Family): (PortMapping & { dst?: string })[] {
  const out: (PortMapping & { dst?: string })[] = [];
  for (const m of mappings) {
    if (!m.hostIP) {
      out.push({ ...m });
      continue;
    }
    const ip = parseIP(m.hostIP);
    if (!ip || ip.family !== family) continue;
    const unspecified = ip.family === 4 ? m.hostIP === '0.0.0.0' : /^[0:]+$/.test(m.hostIP);
    out.push(unspecified ? { ...m } : { ...m, dst: formatIP(ip) });
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

/** The owner's strings, which every layout writes into comments or chain names. */
export function assertOwner(owner: Owner): void {
  assertPrintable('network name', owner.network);
  assertPrintable('container ID', owner.containerID);
  assertPrintable('interface name', owner.ifName);
}

/** Options every driver takes. */
export interface DriverOptions {
  /**
   * Run the tools inside this network namespace (a path such as /run/netns/x) through
   * nsenter. Unset means the current namespace, which is what a plugin on the host wants.
   */
  netns?: string;
  /**
   * iptables teardown and GC first ask which tables the netns has (iptables/driver.ts
   * tablesPresent) and read only those; false reads every one (unit tests of the read/apply
   * mechanics, whose fake spawner answers by position).
   */
  probeTables?: boolean;
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
