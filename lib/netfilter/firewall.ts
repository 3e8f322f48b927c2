/**
 * The firewall plugin's rules behind one interface: per-container forward accepts plus Docker
 * style bridge isolation, implemented by firewall-iptables.ts (the reference's layout) and
 * firewall-nftables.ts (a table of ours with the same semantics). Teardown runs on every
 * installed backend.
 */
import type { BackendName, Owner } from './backend';
import type { Attachment } from '../skel/gc';
import type { BackendOptions } from './common';
import { availableBackends, onEveryBackend } from './select';
import { IptablesFirewall } from './firewall-iptables';
import { NftablesFirewall } from './firewall-nftables';

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

export interface FirewallBackend {
  readonly name: BackendName;
  setupFirewall(spec: FirewallSpec): Promise<void>;
  /** Throws a CniError naming what is missing. */
  checkFirewall(spec: FirewallSpec): Promise<void>;
  /**
   * Removes the owner's per-container rules (addresses may be empty: the owner finds them).
   * Shared chains and per-bridge isolation rules stay, as in the reference: other containers
   * may still be on that bridge, and removing them would race a concurrent ADD.
   */
  teardownFirewall(spec: FirewallSpec): Promise<void>;
  /**
   * GC: removes the per-container rules of this network whose owner has no attachment in
   * `valid`; shared chains and isolation rules stay, as on teardown.
   */
  gcFirewall(network: string, valid: readonly Attachment[]): Promise<void>;
}

export function makeFirewall(name: BackendName, opts: BackendOptions = {}): FirewallBackend {
  return name === 'nftables' ? new NftablesFirewall(opts) : new IptablesFirewall(opts);
}

/** Tears down on every installed backend; failures are joined after all have run. */
export async function teardownFirewallAll(spec: FirewallSpec, available = availableBackends(), opts: BackendOptions = {}): Promise<void> {
  await onEveryBackend('firewall teardown', available, (n) => makeFirewall(n, opts).teardownFirewall(spec));
}

/** Firewall GC of one network on every installed backend. */
export async function gcFirewallAll(network: string, valid: readonly Attachment[], available = availableBackends(), opts: BackendOptions = {}): Promise<void> {
  await onEveryBackend('firewall GC', available, (n) => makeFirewall(n, opts).gcFirewall(network, valid));
}
