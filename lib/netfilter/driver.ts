/**
 * The one contract of the netfilter drivers (iptables/driver.ts, nftables/driver.ts, none.ts),
 * after netavark's FirewallDriver: an operation names what it wants (masquerade, port maps,
 * firewall) and the driver reads the state once, renders the rules from its layouts, diffs them
 * by owner tag and applies one transaction. select.ts is the one place that picks a driver.
 */
import type { Attachment } from '../skel/gc';

export type BackendName = 'nftables' | 'iptables';
/** `none` is the null driver: every operation succeeds and touches nothing. */
export type DriverName = BackendName | 'none';
export type Concern = 'masq' | 'ports' | 'firewall';
/** The order in which a driver renders the concerns of one operation. */
export const CONCERNS: readonly Concern[] = ['masq', 'ports', 'firewall'];
/** How errors name a concern. */
export const LABEL: Record<Concern, string> = { masq: 'masquerade', ports: 'port mappings', firewall: 'firewall rules' };

/** What identifies the rules of one attachment. */
export interface Owner {
  /** The network's name (conf.name). */
  network: string;
  containerID: string;
  ifName: string;
}

/**
 * An owner to tear down. The addresses may be missing or empty (DEL with no netns and no
 * prevResult): the owner alone finds the rules. When known, iptables masquerade searches only
 * their families, and the firewall also removes the reference's uncommented accepts for them.
 */
export interface OwnerHint extends Owner {
  addresses?: readonly string[];
}

export interface MasqSpec extends Owner {
  /** The container's addresses in CIDR notation with the subnet's prefix, e.g. "10.22.0.5/16". */
  addresses: string[];
}

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

/**
 * open: no isolation. same-bridge: traffic entering from one bridge may not leave through
 * another (Docker's inter-network isolation). isolated: not even back out of the same bridge
 * (Docker's enable_icc=false).
 */
export type IngressPolicy = 'open' | 'same-bridge' | 'isolated';

export interface FirewallSpec extends Owner {
  /** The container's addresses ("10.1.0.5/24"); each gets its forward accepts. */
  addresses: string[];
  policy: IngressPolicy;
  /** The bridge the policy applies to (prevResult.interfaces[0]); required unless open. */
  bridge?: string;
  /** iptables: the chain the admin fills, jumped to first from CNI-FORWARD (default CNI-ADMIN). */
  adminChain: string;
}

/** What one setup or check operation wants in place; every part present is one concern. */
export interface Want {
  masq?: MasqSpec;
  ports?: PortMapSpec;
  firewall?: FirewallSpec;
}

export interface NetfilterDriver {
  readonly name: DriverName;
  /** Installs what `want` names (replacing what its owners had there): one transaction. */
  setup(want: Want): Promise<void>;
  /** Throws a CniError naming what setup would have made and is not there. Reads only. */
  check(want: Want): Promise<void>;
  /**
   * Removes the owner's rules of these concerns; succeeds when nothing is there. Shared chains
   * and per-bridge isolation rules stay, as in the reference: other containers may use them.
   */
  teardown(owner: OwnerHint, concerns: readonly Concern[]): Promise<void>;
  /** GC: removes this network's rules whose owner has no attachment in `valid` (see gc.ts). */
  gc(network: string, valid: readonly Attachment[], concerns: readonly Concern[]): Promise<void>;
}

/** The concerns an operation carries, in render order. */
export function concernsOf(want: Want): Concern[] {
  return CONCERNS.filter((c) => want[c] !== undefined);
}

/** "masquerade", "port mappings and firewall rules": the concerns as an error names them. */
export function labelOf(concerns: readonly Concern[]): string {
  return concerns.map((c) => LABEL[c]).join(' and ');
}
