/**
 * Pure builders of the `ip -batch` lines bridge runs. One batch in the host netns, one in the
 * container netns; each ends with the `show` lines whose JSON the plugin reads back.
 */
import type { Route } from '../../lib/types/result';

export interface HostPlan {
  bridge: string;
  /** MAC given to the bridge if this call creates it: pins it so it does not follow its ports. */
  bridgeMac: string;
  mtu: number;
  promisc: boolean;
  hostVeth: string;
  ifName: string;
  containerMac?: string;
  netns: string;
  hairpin: boolean;
  isolated: boolean;
  /** Gateway addresses (CIDR) to put on the bridge. */
  gateways: string[];
  enableDad: boolean;
}

/** Indexes of the lines whose failure has a meaning of its own. */
export interface HostBatch {
  lines: string[];
  /** `link add` of the bridge: "File exists" means another container made it first. */
  bridgeAdd: number;
  vethAdd: number;
  /** `addr add` of each gateway: "File exists" means it is already there. */
  gatewayAdds: number[];
  /** The trailing show lines: bridge (with its addresses), host veth. */
  shows: number;
}

export function hostAddBatch(p: HostPlan): HostBatch {
  const mtu = p.mtu ? ` mtu ${p.mtu}` : '';
  const lines: string[] = [];
  const push = (l: string): number => lines.push(l) - 1;
  const bridgeAdd = push(`link add name ${p.bridge} address ${p.bridgeMac}${mtu} type bridge`);
  if (p.promisc) push(`link set dev ${p.bridge} promisc on`);
  push(`link set dev ${p.bridge} up`);
  const peerMac = p.containerMac ? ` address ${p.containerMac}` : '';
  const vethAdd = push(`link add name ${p.hostVeth}${mtu} type veth peer name ${p.ifName}${peerMac}${mtu} netns ${p.netns}`);
  push(`link set dev ${p.hostVeth} master ${p.bridge}`);
  if (p.hairpin || p.isolated) {
    push(`link set dev ${p.hostVeth} type bridge_slave${p.hairpin ? ' hairpin on' : ''}${p.isolated ? ' isolated on' : ''}`);
  }
  push(`link set dev ${p.hostVeth} up`);
  const gatewayAdds = p.gateways.map((g) => push(`addr add ${g} dev ${p.bridge}${g.includes(':') && !p.enableDad ? ' nodad' : ''}`));
  // Reads use `addr show` only: it carries the link fields too, and in iproute2 6.1 an
  // `addr show` that follows a `link show` in the same batch prints no addresses.
  const shows = push(`addr show dev ${p.bridge}`);
  push(`addr show dev ${p.hostVeth}`);
  return { lines, bridgeAdd, vethAdd, gatewayAdds, shows };
}

export interface ContainerPlan {
  ifName: string;
  addresses: string[];
  routes: Route[];
  /** The gateway to use for a route without one, per family. */
  gateway4?: string;
  gateway6?: string;
  enableDad: boolean;
}

/** Resolves the next hop of a route as the reference does: its own gw, else its family's gateway. */
export function routeVia(r: Route, gw4?: string, gw6?: string): string | undefined {
  if (r.gw) return r.gw;
  return r.dst.includes(':') ? gw6 : gw4;
}

export function containerAddBatch(p: ContainerPlan): string[] {
  const lines: string[] = [];
  for (const a of p.addresses) lines.push(`addr add ${a} dev ${p.ifName}${a.includes(':') && !p.enableDad ? ' nodad' : ''}`);
  lines.push(`link set dev ${p.ifName} up`);
  for (const r of p.routes) {
    const via = routeVia(r, p.gateway4, p.gateway6);
    const extra = `${r.mtu ? ` mtu ${r.mtu}` : ''}${r.advmss ? ` advmss ${r.advmss}` : ''}${r.priority ? ` metric ${r.priority}` : ''}${r.table ? ` table ${r.table}` : ''}`;
    lines.push(`route add ${r.dst}${via ? ` via ${via}` : ''} dev ${p.ifName}${extra}`);
  }
  lines.push(`link show dev ${p.ifName}`);
  return lines;
}
