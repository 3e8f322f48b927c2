/**
 * One interface for the netfilter backends (nftables.ts, iptables.ts). A plugin asks
 * selectBackend() for one and makes one transaction per operation through it.
 */

import type { Attachment } from '../skel/gc';

/** What identifies the rules of one attachment. */
export interface Owner {
  /** The network's name (conf.name). */
  network: string;
  containerID: string;
  ifName: string;
}

export interface MasqSpec extends Owner {
  /** The container's addresses in CIDR notation with the subnet's prefix, e.g. "10.22.0.5/16". */
  addresses: string[];
}

export interface NetfilterBackend {
  readonly name: 'nftables' | 'iptables';
  /** Outbound NAT for the container's addresses: traffic leaving their subnets is masqueraded. */
  setupMasq(spec: MasqSpec): Promise<void>;
  /**
   * Removes the attachment's masquerade rules. `addresses` may be empty when nothing is known of
   * them (DEL with no netns and no prevResult): the owner alone must find the rules. Succeeds
   * when nothing is there.
   */
  teardownMasq(spec: MasqSpec): Promise<void>;
  /**
   * GC: removes, in one transaction per table, the masquerade rules of this network whose
   * owner has no attachment in `valid` (see gc.ts for how each layout tells the owner).
   */
  gcMasq(network: string, valid: readonly Attachment[]): Promise<void>;
  /** Throws a CniError naming what is missing when the rules setupMasq made are not all there. */
  checkMasq(spec: MasqSpec): Promise<void>;
}

export type BackendName = 'nftables' | 'iptables';
