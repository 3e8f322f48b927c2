/**
 * Pure builders of the `ip -batch` lines ptp runs: one batch in the host netns, one in the
 * container netns, each ending with the `show` line the plugin reads back.
 *
 * The container keeps each address with its subnet's prefix but gets no on-link route for the
 * subnet (`noprefixroute`): everything, its neighbours included, goes via the gateway, which is
 * reachable through a /32 (/128) link route. The host veth carries the gateway as /32 (/128)
 * and a host route to each container address. This is the reference's layout; it deletes the
 * kernel's prefix route after the fact, we never let the kernel add it (so a link flap inside
 * the container cannot bring it back either).
 */
import type { Route } from '../../lib/types/result';
import { routeLine } from '../../lib/iproute/iface';
import { formatIP, networkAddr, parseCidr } from '../../lib/ip/cidr';

/** One address from the IPAM: CIDR with the subnet's prefix, and its gateway (required by ptp). */
export interface PtpAddr {
  address: string;
  gateway: string;
}

const isV6 = (ip: string): boolean => ip.includes(':');
const host = (ip: string): string => `${ip}/${isV6(ip) ? 128 : 32}`;
const bare = (cidr: string): string => cidr.split('/')[0]!;
/** v6 addresses are usable at once: no duplicate address detection on a point-to-point pair. */
const nodad = (ip: string): string => (isV6(ip) ? ' nodad' : '');
const uniq = (xs: string[]): string[] => [...new Set(xs)];

function subnetOf(cidr: string): string {
  const c = parseCidr(cidr);
  if (!c) throw new Error(`invalid address ${cidr}`);
  return `${formatIP(networkAddr(c))}/${c.prefix}`;
}

export interface HostPlan {
  hostVeth: string;
  ifName: string;
  netns: string;
  mtu: number;
  ips: PtpAddr[];
}

export interface HostBatch {
  lines: string[];
  /** The `link add` of the pair: "File exists" there means ifName is taken in the container. */
  vethAdd: number;
}

/**
 * The veth pair with its peer born in the container netns, the host end up with each gateway
 * as /32 (/128), a route to each container address through it, then a read of the host end.
 * `route replace`: a stale route to a reused address (a veth that was never cleaned up) moves
 * to the new veth instead of failing the ADD or, as in the reference, staying on the old one.
 */
export function hostAddBatch(p: HostPlan): HostBatch {
  const mtu = p.mtu ? ` mtu ${p.mtu}` : '';
  const lines = [`link add name ${p.hostVeth}${mtu} type veth peer name ${p.ifName}${mtu} netns ${p.netns}`, `link set dev ${p.hostVeth} up`];
  for (const gw of uniq(p.ips.map((i) => i.gateway))) lines.push(`addr add ${host(gw)} dev ${p.hostVeth}${nodad(gw)}`);
  for (const a of uniq(p.ips.map((i) => bare(i.address)))) lines.push(`route replace ${host(a)} dev ${p.hostVeth} scope host`);
  lines.push(`link show dev ${p.hostVeth}`);
  return { lines, vethAdd: 0 };
}

export interface ContainerPlan {
  ifName: string;
  ips: PtpAddr[];
  /** The IPAM's routes; those without gw go via their family's first gateway. */
  routes: Route[];
}

/**
 * Addresses (no prefix route), up, a link route to each gateway, the IPAM's routes, a route to
 * each subnet via its gateway (unless the IPAM routes it already), then a read of the link.
 */
export function containerAddBatch(p: ContainerPlan): string[] {
  const lines = p.ips.map((i) => `addr add ${i.address} dev ${p.ifName} noprefixroute${nodad(i.address)}`);
  lines.push(`link set dev ${p.ifName} up`);
  const seenGw = new Set<string>();
  for (const i of p.ips) {
    if (seenGw.has(i.gateway)) continue;
    seenGw.add(i.gateway);
    lines.push(`route add ${host(i.gateway)} dev ${p.ifName} scope link src ${bare(i.address)}`);
  }
  const gw4 = p.ips.find((i) => !isV6(i.address))?.gateway;
  const gw6 = p.ips.find((i) => isV6(i.address))?.gateway;
  for (const r of p.routes) lines.push(routeLine(r, p.ifName, gw4, gw6));
  const routed = new Set(p.routes.map((r) => (parseCidr(r.dst) ? subnetOf(r.dst) : r.dst)));
  for (const i of p.ips) {
    const net = subnetOf(i.address);
    if (routed.has(net)) continue;
    routed.add(net);
    lines.push(`route add ${net} via ${i.gateway} dev ${p.ifName} src ${bare(i.address)}`);
  }
  lines.push(`link show dev ${p.ifName}`);
  return lines;
}


/** Reads for CHECK on the host: the host veth with its addresses, and the routes (both families) through it. */
export const HOST_CHECK_LINES = (hostVeth: string): string[] => [`addr show dev ${hostVeth}`, `route show table all dev ${hostVeth}`];
