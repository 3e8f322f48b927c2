/**
 * The registry in etcd, in flannel's layout and value format, so flannel's tooling can read it:
 *
 *   <prefix>/config                      {"Network","SubnetLen","SubnetMin","SubnetMax","Backend":{"Type":"vxlan","VNI","Port"}}
 *   <prefix>/subnets/<a.b.c.d>-<len>     {"PublicIP","BackendType":"vxlan","BackendData":{"VNI","VtepMAC"}}  (bound to the host's lease)
 *   <prefix>/names/<a.b.c.d>-<len>       ours: the names of that host's containers, for dnsname (same lease)
 *
 * Pure: keys, values and the choice of a subnet. The agent does the I/O.
 */
import { randomInt } from 'node:crypto';
import { type Cidr, formatIP, parseIP } from '../../lib/ip/cidr';
import type { OverlayConf } from './config';

export interface NetworkConfig {
  Network: string;
  SubnetLen: number;
  SubnetMin: string;
  SubnetMax: string;
  Backend: { Type: 'vxlan'; VNI: number; Port: number };
}

export interface SubnetLease {
  PublicIP: string;
  BackendType: string;
  BackendData: { VNI: number; VtepMAC: string };
}

/** A remote host as the data path needs it. */
export interface Peer {
  key: string;
  subnet: Cidr;
  publicIP: string;
  vtepMac: string;
}

export const configKey = (prefix: string): string => `${prefix}/config`;
export const subnetsPrefix = (prefix: string): string => `${prefix}/subnets/`;
export const namesPrefix = (prefix: string): string => `${prefix}/names/`;

const v4 = (n: bigint): string => formatIP({ family: 4, value: n });

/** `<prefix>/subnets/10.40.3.0-24` for a subnet. */
export function subnetKey(prefix: string, subnet: Cidr): string {
  return `${subnetsPrefix(prefix)}${formatIP(subnet.ip)}-${subnet.prefix}`;
}

/** The subnet a `…/subnets/a.b.c.d-len` (or `…/names/…`) key names, or undefined. */
export function subnetOfKey(key: string): Cidr | undefined {
  const m = /\/(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(key);
  if (!m) return undefined;
  const ip = parseIP(m[1]!);
  const prefix = Number(m[2]);
  if (!ip || ip.family !== 4 || prefix < 0 || prefix > 32) return undefined;
  return { ip, prefix };
}

export function networkConfig(c: OverlayConf): NetworkConfig {
  return {
    Network: `${formatIP(c.network.ip)}/${c.network.prefix}`,
    SubnetLen: c.subnetLen,
    SubnetMin: v4(c.subnetMin),
    SubnetMax: v4(c.subnetMax),
    Backend: { Type: 'vxlan', VNI: c.vni, Port: c.port },
  };
}

/**
 * Why the registry's config cannot serve this host (hosts of one network must agree on the
 * network, subnet length, VNI and port), or undefined when it can.
 */
export function configConflict(have: NetworkConfig, want: NetworkConfig): string | undefined {
  const diffs: string[] = [];
  if (have.Network !== want.Network) diffs.push(`Network ${have.Network} (this host: ${want.Network})`);
  if (have.SubnetLen !== want.SubnetLen) diffs.push(`SubnetLen ${have.SubnetLen} (this host: ${want.SubnetLen})`);
  if (have.Backend?.Type !== 'vxlan') diffs.push(`Backend.Type ${String(have.Backend?.Type)} (this host: vxlan)`);
  if (have.Backend?.VNI !== want.Backend.VNI) diffs.push(`Backend.VNI ${have.Backend?.VNI} (this host: ${want.Backend.VNI})`);
  if ((have.Backend?.Port ?? 0) !== want.Backend.Port) diffs.push(`Backend.Port ${have.Backend?.Port} (this host: ${want.Backend.Port})`);
  return diffs.length ? `the registry's network config differs: ${diffs.join(', ')}` : undefined;
}

export function leaseValue(publicIP: string, vni: number, vtepMac: string): string {
  const v: SubnetLease = { PublicIP: publicIP, BackendType: 'vxlan', BackendData: { VNI: vni, VtepMAC: vtepMac } };
  return JSON.stringify(v);
}

/** A registry entry as a peer; undefined (with the reason) for one the data path cannot use. */
export function parsePeer(key: string, value: string): { peer?: Peer; problem?: string } {
  const subnet = subnetOfKey(key);
  if (!subnet) return { problem: `${key}: not a subnet key` };
  let v: Partial<SubnetLease>;
  try {
    v = JSON.parse(value) as Partial<SubnetLease>;
  } catch {
    return { problem: `${key}: value is not JSON` };
  }
  if (v.BackendType !== 'vxlan') return { problem: `${key}: backend ${String(v.BackendType)}, not vxlan` };
  const mac = v.BackendData?.VtepMAC;
  if (typeof mac !== 'string' || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) return { problem: `${key}: no valid VtepMAC` };
  if (typeof v.PublicIP !== 'string' || parseIP(v.PublicIP)?.family !== 4) return { problem: `${key}: no valid PublicIP` };
  return { peer: { key, subnet, publicIP: v.PublicIP, vtepMac: mac.toLowerCase() } };
}

/**
 * The subnet to try to lease, given the subnets taken now: flannel's order is this host's own
 * lease (matched by PublicIP; the caller handles that), then the one it remembers, then a
 * random free one between subnetMin and subnetMax. Undefined when all are taken.
 */
export function pickSubnet(c: OverlayConf, taken: ReadonlySet<string>, remembered?: Cidr): Cidr | undefined {
  const key = (n: bigint): string => `${v4(n)}-${c.subnetLen}`;
  if (remembered && remembered.prefix === c.subnetLen && remembered.ip.value >= c.subnetMin && remembered.ip.value <= c.subnetMax && !taken.has(key(remembered.ip.value))) {
    return remembered;
  }
  const size = 1n << BigInt(32 - c.subnetLen);
  const count = Number((c.subnetMax - c.subnetMin) / size) + 1;
  // A random start, then the next free one: spreads hosts that start at once without
  // listing every free subnet of a large network.
  const start = randomInt(count);
  for (let i = 0; i < count; i++) {
    const n = c.subnetMin + BigInt((start + i) % count) * size;
    if (!taken.has(key(n))) return { ip: { family: 4, value: n }, prefix: c.subnetLen };
  }
  return undefined;
}

/** The key of a subnet as `pickSubnet`'s `taken` holds it ("10.40.3.0-24"). */
export function takenKey(subnet: Cidr): string {
  return `${formatIP(subnet.ip)}-${subnet.prefix}`;
}
