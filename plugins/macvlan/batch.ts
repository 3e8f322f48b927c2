/**
 * Pure builders of the `ip -batch` lines macvlan runs: one batch where the master lives (host
 * netns, or the container's with linkInContainer) that reads the master and creates the link,
 * one in the container that names, addresses and raises it and reads it back.
 */
import type { Route } from '../../lib/types/result';
import type { MacvlanMode } from './config';

/** Lines that find the default-route interface, v4 first (the reference takes the first default route). */
export const DEFAULT_ROUTE_LINES = ['route show default', 'route show ::/0'];

export interface CreatePlan {
  master: string;
  tmpName: string;
  mode: MacvlanMode;
  mtu: number;
  mac?: string;
  bcqueuelen?: number;
  /** Container netns path to create the link in; undefined when this batch runs in that netns. */
  netns?: string;
}

/**
 * Line 0 reads the master (its MTU explains a refused `mtu`), line 1 creates the macvlan. Run
 * with -force, so line 0's output survives line 1's failure. The kernel itself refuses an MTU
 * above the master's (macvlan_common_newlink), so nothing is left behind on that error.
 */
export function createBatch(p: CreatePlan): string[] {
  const opts = [
    p.mtu ? ` mtu ${p.mtu}` : '',
    p.mac ? ` address ${p.mac}` : '',
    p.netns ? ` netns ${p.netns}` : '',
  ].join('');
  const bc = p.bcqueuelen !== undefined ? ` bcqueuelen ${p.bcqueuelen}` : '';
  return [`link show dev ${p.master}`, `link add link ${p.master} name ${p.tmpName}${opts} type macvlan mode ${p.mode}${bc}`];
}

export interface ContainerPlan {
  tmpName: string;
  ifName: string;
  addresses: string[];
  routes: Route[];
  gateway4?: string;
  gateway6?: string;
}

/** The next hop of a route as the reference's ipam.ConfigureIface picks it: its own gw, else its family's gateway. */
export function routeVia(r: Route, gw4?: string, gw6?: string): string | undefined {
  if (r.gw) return r.gw;
  return r.dst.includes(':') ? gw6 : gw4;
}

/** Rename, addresses, up, routes, then `link show` (the last line) for the MAC. Run without -force. */
export function containerBatch(p: ContainerPlan): string[] {
  const lines = [`link set dev ${p.tmpName} name ${p.ifName}`];
  // nodad: the address is usable at once (the reference waits for DAD to settle instead).
  for (const a of p.addresses) lines.push(`addr add ${a} dev ${p.ifName}${a.includes(':') ? ' nodad' : ''}`);
  lines.push(`link set dev ${p.ifName} up`);
  for (const r of p.routes) {
    const via = routeVia(r, p.gateway4, p.gateway6);
    const extra = `${r.mtu ? ` mtu ${r.mtu}` : ''}${r.advmss ? ` advmss ${r.advmss}` : ''}${r.priority ? ` metric ${r.priority}` : ''}${r.table ? ` table ${r.table}` : ''}`;
    lines.push(`route add ${r.dst}${via ? ` via ${via}` : ''} dev ${p.ifName}${extra}`);
  }
  lines.push(`link show dev ${p.ifName}`);
  return lines;
}

/**
 * Reads for CHECK in the container: the link with its macvlan details and addresses (`addr show`
 * gives both; after a `link show`, iproute2 6.1 batches print `addr show` without addr_info),
 * every route of both families, and the master when it lives there.
 */
export function checkBatch(ifName: string, master?: string): string[] {
  return [`addr show dev ${ifName}`, 'route show table all', ...(master ? [`link show dev ${master}`] : [])];
}
