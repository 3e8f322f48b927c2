/**
 * Pure builders of the `ip -batch` lines bridge runs. One batch in the host netns, one in the
 * container netns; each ends with the `show` lines whose JSON the plugin reads back.
 */
import { addressLines, type AddressPlan } from '../iproute/iface';

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
}

/** Indexes of the lines whose failure has a meaning of its own. */
export interface HostBatch {
  lines: string[];
  /** `link add` of the bridge: "File exists" means another container made it first. */
  bridgeAdd: number;
  vethAdd: number;
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
  // Reads use `addr show` only: it carries the link fields too, and in iproute2 6.1 an
  // `addr show` that follows a `link show` in the same batch prints no addresses.
  const shows = push(`addr show dev ${p.bridge}`);
  push(`addr show dev ${p.hostVeth}`);
  return { lines, bridgeAdd, vethAdd, shows };
}

/**
 * Puts the gateway addresses on the bridge: `addr del` of what forceAddress replaces, then
 * `addr add` of each gateway (run with -force: another container may add it first).
 */
export function gatewayBatch(bridge: string, dels: string[], gateways: string[], enableDad: boolean): string[] {
  return [...dels.map((a) => `addr del ${a} dev ${bridge}`), ...gateways.map((g) => `addr add ${g} dev ${bridge}${g.includes(':') && !enableDad ? ' nodad' : ''}`)];
}

/** The container's batch: addresses, up, routes (lib/iproute/iface.ts), then read it back. */
export function containerAddBatch(p: AddressPlan): string[] {
  return [...addressLines(p), `link show dev ${p.ifName}`];
}
