/**
 * Pure builders of the `ip -batch` lines macvlan runs: one batch where the master lives (host
 * netns, or the container's with linkInContainer) that reads the master and creates the link,
 * one in the container that names, addresses and raises it and reads it back.
 */
import { addressLines, CHECK_LINES, type AddressPlan } from '../../lib/iproute/iface';
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

export interface ContainerPlan extends AddressPlan {
  tmpName: string;
}

/** Rename, then addresses, up, routes (lib/iproute/iface.ts), then `link show` (the last line) for the MAC. */
export function containerBatch(p: ContainerPlan): string[] {
  return [`link set dev ${p.tmpName} name ${p.ifName}`, ...addressLines(p), `link show dev ${p.ifName}`];
}

/**
 * Reads for CHECK in the container: the link with its macvlan details and addresses (`addr show`
 * gives both; after a `link show`, iproute2 6.1 batches print `addr show` without addr_info),
 * every route of both families, and the master when it lives there.
 */
export function checkBatch(ifName: string, master?: string): string[] {
  return [...CHECK_LINES(ifName), ...(master ? [`link show dev ${master}`] : [])];
}
