/**
 * Reading a network namespace that a plugin joins rather than builds (the `host` and
 * `container` plugins): namespace identity by inode, and the live interfaces and addresses
 * as a CNI result.
 */
import { statSync } from 'node:fs';
import { CniError, ErrCode } from '../skel/errors';
import type { IPConfig, Interface, Result } from '../types/result';
import { ipJson } from './ip';
import type { IpAddr } from './json-types';

/**
 * The identity of the netns at `path` ("dev:ino" of the nsfs inode), or undefined when the path
 * does not exist. Two paths name the same namespace exactly when their identities are equal
 * (/run/netns/x, /proc/<pid>/ns/net and /var/run/netns/x bind mounts all compare equal).
 */
export function netnsIdentity(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** The identity of the namespace this process runs in (the plugin runs in the runtime's netns). */
export function ownNetnsIdentity(): string {
  const id = netnsIdentity('/proc/self/ns/net');
  if (!id) throw new CniError(ErrCode.Internal, 'cannot stat /proc/self/ns/net');
  return id;
}

/** Throws code 8 unless `path` names an existing namespace; returns its identity. */
export function requireNetns(path: string): string {
  const id = netnsIdentity(path);
  if (!id) throw new CniError(ErrCode.InvalidNetNS, `failed to open netns "${path}": no such file`);
  return id;
}

const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

export interface NetnsView {
  interfaces: Interface[];
  ips: IPConfig[];
}

/**
 * Turns `ip -json addr show` into result interfaces and ips. Every link is listed (lo too: it is
 * part of the stack the container sees), with `sandbox` = the netns path because the container's
 * processes do live in it. Only global-scope addresses are reported: 127.0.0.1/::1 (scope host)
 * and fe80::/64 (scope link) exist in every netns and would only mislead a runtime that picks
 * "the container's IP" from the result; addresses that failed DAD are skipped too.
 */
export function viewFromAddrs(links: IpAddr[], sandbox: string): NetnsView {
  const interfaces: Interface[] = [];
  const ips: IPConfig[] = [];
  for (const l of links) {
    const iface: Interface = { name: l.ifname, sandbox };
    if (l.address && MAC_RE.test(l.address)) iface.mac = l.address.toLowerCase();
    if (typeof l.mtu === 'number') iface.mtu = l.mtu;
    const index = interfaces.push(iface) - 1;
    for (const a of l.addr_info ?? []) {
      if (a.scope !== 'global') continue;
      if ((a as { dadfailed?: boolean }).dadfailed) continue;
      ips.push({ address: `${a.local}/${a.prefixlen}`, interface: index });
    }
  }
  return { interfaces, ips };
}

/** The live interfaces and addresses in `netns`: one `ip -json addr show` through nsenter. */
export async function readNetnsView(netns: string): Promise<NetnsView> {
  const links = await ipJson<IpAddr>(['addr', 'show'], { netns });
  return viewFromAddrs(links, netns);
}

/**
 * Adds `view` to a chained prevResult (SPEC: pass it through or modify it): the previous
 * interfaces and ips stay first and unchanged; an interface already listed with the same name
 * and sandbox is not repeated, and the view's ips are re-indexed to match.
 */
export function mergeView(prev: Result | undefined, view: NetnsView, cniVersion: string): Result {
  // An empty ips list is left out, as Go's omitempty does in the reference's results.
  if (!prev) return { cniVersion, interfaces: view.interfaces, ...(view.ips.length ? { ips: view.ips } : {}) };
  const interfaces = [...(prev.interfaces ?? [])];
  const ips = [...(prev.ips ?? [])];
  const indexOf = view.interfaces.map((i) => {
    const hit = interfaces.findIndex((p) => p.name === i.name && (p.sandbox ?? '') === (i.sandbox ?? ''));
    return hit >= 0 ? hit : interfaces.push(i) - 1;
  });
  for (const ip of view.ips) {
    const interfaceIdx = indexOf[ip.interface ?? -1];
    if (ips.some((p) => p.address === ip.address && p.interface === interfaceIdx)) continue;
    ips.push({ ...ip, interface: interfaceIdx });
  }
  return { ...prev, cniVersion, interfaces, ips };
}
