/**
 * Port forwarding (the portmap plugin's DNAT) behind one interface, implemented by
 * portmap-iptables.ts and portmap-nftables.ts in the reference's layouts, so a mapping made by
 * either implementation is removed by the other. Teardown runs on every installed backend.
 */
import { CniError, ErrCode } from '../skel/errors';
import { type Family, parseCidr, parseIP, formatIP } from '../ip/cidr';
import type { BackendName, Owner } from './backend';
import type { Attachment } from '../skel/gc';
import { type BackendOptions } from './common';
import { availableBackends, onEveryBackend } from './select';
import { IptablesPortForwarder } from './portmap-iptables';
import { NftablesPortForwarder } from './portmap-nftables';

export type Protocol = 'tcp' | 'udp' | 'sctp';

/** One entry of runtimeConfig.portMappings (CNI CONVENTIONS.md), validated. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
  /** Empty for "every local address". */
  hostIP: string;
}

export interface PortMapSpec extends Owner {
  mappings: PortMapping[];
  /** The container's addresses with their prefix ("10.22.0.5/16"), at most one per family. */
  addresses: string[];
  /** Masquerade hairpin and localhost traffic (default true). */
  snat: boolean;
  /** Masquerade every DNATed connection, not only hairpin/localhost ones (iptables layout). */
  masqAll: boolean;
  /** iptables only: bit of the packet mark that asks CNI-HOSTPORT-MASQ to masquerade. */
  markMasqBit: number;
  /** iptables only: a chain of the admin's that marks packets instead of CNI-HOSTPORT-SETMARK. */
  externalSetMarkChain?: string;
  /** Extra match words for the entry rules, per family (iptables args or nft expressions). */
  conditionsV4?: string[];
  conditionsV6?: string[];
}

/** What an implementation needs of the container address of one family. */
export interface ContainerAddr {
  family: Family;
  ip: string;
  /** "ip/prefix" as the result gave it. */
  cidr: string;
}

export interface PortForwarder {
  readonly name: BackendName;
  /** Installs the mappings of spec (replacing any this owner had). One transaction per table. */
  forwardPorts(spec: PortMapSpec): Promise<void>;
  /** Throws a CniError naming what is missing. Looks only at the families of spec.addresses. */
  checkPorts(spec: PortMapSpec): Promise<void>;
  /** Removes everything the owner has, in every family; succeeds when nothing is there. */
  unforwardPorts(owner: Owner): Promise<void>;
  /** GC: removes the mappings of this network's containers that have no attachment in `valid`. */
  gcPorts(network: string, valid: readonly Attachment[]): Promise<void>;
}

/** Parses spec.addresses; malformed is a config error. */
export function containerAddrs(addresses: readonly string[]): ContainerAddr[] {
  return addresses.map((a) => {
    const c = parseCidr(a);
    if (!c) throw new CniError(ErrCode.InvalidConfig, `invalid container address ${JSON.stringify(a)}`);
    return { family: c.ip.family, ip: formatIP(c.ip), cidr: a };
  });
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

export function makePortForwarder(name: BackendName, opts: BackendOptions = {}): PortForwarder {
  return name === 'nftables' ? new NftablesPortForwarder(opts) : new IptablesPortForwarder(opts);
}

/**
 * Removes the owner's mappings on every installed backend (the container may have been mapped
 * by the other one, another version, or the reference plugin). All backends run; failures are
 * joined afterwards.
 */
export async function unforwardPortsAll(owner: Owner, available = availableBackends(), opts: BackendOptions = {}): Promise<void> {
  await onEveryBackend('port mapping teardown', available, (n) => makePortForwarder(n, opts).unforwardPorts(owner));
}

/** Port-mapping GC of one network on every installed backend. */
export async function gcPortsAll(network: string, valid: readonly Attachment[], available = availableBackends(), opts: BackendOptions = {}): Promise<void> {
  await onEveryBackend('port mapping GC', available, (n) => makePortForwarder(n, opts).gcPorts(network, valid));
}
