/**
 * What main plugins (bridge, macvlan) do alike to the container's interface: the `ip -batch`
 * lines that address it, raise it and route through it (as the reference's
 * ipam.ConfigureIface), CHECK of those against the kernel, and DEL of the link.
 */
import type { IPConfig, Result, Route } from '../types/result';
import { CniError, ErrCode } from '../skel/errors';
import { canonicalIP, formatIP, networkAddr, parseCidr } from '../ip/cidr';
import { ipBatch, lineError } from './ip';
import type { IpAddr, IpRoute } from './json-types';
import { netnsExists } from './netns';

/** The first gateway of each family among the addresses. */
export function gatewaysOf(ips: IPConfig[]): { gw4?: string; gw6?: string } {
  const v4 = ips.find((i) => i.gateway && !i.address.includes(':'));
  const v6 = ips.find((i) => i.gateway && i.address.includes(':'));
  return { gw4: v4?.gateway, gw6: v6?.gateway };
}

/** The next hop of a route as the reference picks it: its own gw, else its family's gateway. */
export function routeVia(r: Route, gw4?: string, gw6?: string): string | undefined {
  if (r.gw) return r.gw;
  return r.dst.includes(':') ? gw6 : gw4;
}

export interface AddressPlan {
  ifName: string;
  addresses: string[];
  routes: Route[];
  gw4?: string;
  gw6?: string;
  /** Without DAD (the default) an IPv6 address is usable at once (`nodad`). */
  enableDad?: boolean;
}

/** `addr add` of each address, `link set up`, `route append` of each route: run in the container. */
export function addressLines(p: AddressPlan): string[] {
  const lines: string[] = [];
  for (const a of p.addresses) lines.push(`addr add ${a} dev ${p.ifName}${a.includes(':') && !p.enableDad ? ' nodad' : ''}`);
  lines.push(`link set dev ${p.ifName} up`);
  for (const r of p.routes) lines.push(routeLine(r, p.ifName, p.gw4, p.gw6));
  return lines;
}

/** The `route append` line of one result route on `ifName`, via its gw or its family's gateway. */
export function routeLine(r: Route, ifName: string, gw4?: string, gw6?: string): string {
  const via = routeVia(r, gw4, gw6);
  const extra = `${r.mtu ? ` mtu ${r.mtu}` : ''}${r.advmss ? ` advmss ${r.advmss}` : ''}${r.priority ? ` metric ${r.priority}` : ''}${r.table ? ` table ${r.table}` : ''}`;
  // append, not add: a container on a second network already has a default route, and the
  // reference adds this one beside it (netlink RouteAddEcmp, i.e. NLM_F_APPEND).
  return `route append ${r.dst}${via ? ` via ${via}` : ''} dev ${ifName}${extra}`;
}

/** Reads for CHECK in the container: the link with its addresses, and the routes of both families. */
export const CHECK_LINES = (ifName: string): string[] => [`addr show dev ${ifName}`, 'route show table all'];

/** A route's destination as CIDR; `ip -json` says "default" for both families and marks v6 with "pref". */
export function routeDst(r: IpRoute): string {
  if (r.dst !== 'default') return r.dst.includes('/') ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`;
  return (r.gateway ?? '').includes(':') || 'pref' in r ? '::/0' : '0.0.0.0/0';
}

function fail(msg: string): never {
  throw new CniError(ErrCode.Internal, msg);
}

/**
 * CHECK of the container interface at index `idx` of prev: its MAC, every address prev gives it
 * and every route of prev, against what `CHECK_LINES` read.
 */
export function verifyInterface(prev: Result, idx: number, ifName: string, link: IpAddr | undefined, routes: IpRoute[]): void {
  if (!link) fail(`interface ${ifName} not found in the container`);
  const want = prev.interfaces?.[idx];
  if (want?.mac && link.address?.toLowerCase() !== want.mac.toLowerCase()) {
    fail(`interface ${ifName} has MAC ${link.address}, expected ${want.mac}`);
  }
  const have = new Set((link.addr_info ?? []).map((a) => `${canonicalIP(a.local)}/${a.prefixlen}`));
  const ips = (prev.ips ?? []).filter((i) => i.interface === undefined || i.interface === idx);
  for (const ip of ips) {
    const c = parseCidr(ip.address);
    if (!c || !have.has(`${formatIP(c.ip)}/${c.prefix}`)) fail(`address ${ip.address} not found on ${ifName}`);
  }
  const { gw4, gw6 } = gatewaysOf(ips);
  for (const r of prev.routes ?? []) {
    const via = routeVia(r, gw4, gw6);
    const dst = parseCidr(r.dst);
    const dstText = dst ? `${formatIP(networkAddr(dst))}/${dst.prefix}` : r.dst;
    const found = routes.some((k) => k.dev === ifName && routeDst(k) === dstText && (!via || canonicalIP(k.gateway ?? '') === canonicalIP(via)));
    if (!found) fail(`route to ${r.dst}${via ? ` via ${via}` : ''} not found on ${ifName}`);
  }
}

/**
 * Deletes `ifName` in `netns` for a DEL: a netns that is gone (or none given) or a link that is
 * already gone is success. Deleting one end of a veth removes its peer too.
 */
export async function delLinkInNetns(netns: string, ifName: string): Promise<void> {
  if (!netns || !netnsExists(netns)) return;
  const out = await ipBatch([`link del dev ${ifName}`], { netns, force: true });
  const real = out.errors.filter((e) => !/Cannot find device|does not exist|No such device/.test(e.message));
  if (real.length) throw lineError(out, real[0]!, `delete ${ifName}: ${real[0]!.message}`);
}
