/**
 * firewall: a chained meta plugin that lets the container's addresses through the host's
 * FORWARD path and, with ingressPolicy, isolates bridges the way Docker does: `same-bridge`
 * (containers on different bridges cannot reach each other) or `isolated` (enable_icc=false:
 * not even on the same bridge). The result is prevResult, unchanged.
 *
 * Processes per verb (nftables backend): ADD = 1 read + 1 write; CHECK = 1 read; DEL = one
 * read per installed backend and family (nft list, iptables-save, ip6tables-save) plus a write
 * where the container had rules. iptables backend: ADD = 1 read + 1 write per address family.
 */
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import type { Result } from '../../lib/types/result';
import { gcAll, selectDriver, teardownAll } from '../../lib/netfilter/select';
import type { FirewallSpec } from '../../lib/netfilter/driver';
import { validAttachments } from '../../lib/skel/gc';
import type { FirewallConf } from './config';
import { requirePrevResult } from '../../lib/skel/inputs';

function spec(conf: FirewallConf, args: CmdArgs): FirewallSpec {
  const prev = args.prevResult;
  return {
    network: conf.name,
    containerID: args.containerID,
    ifName: args.ifName,
    addresses: (prev?.ips ?? []).map((ip) => ip.address),
    policy: conf.policy,
    // The reference takes the first interface of the result: the bridge, for bridge.
    bridge: prev?.interfaces?.[0]?.name || undefined,
    adminChain: conf.adminChain,
  };
}

/**
 * ADD and CHECK: the spec of a chained call. Both need prevResult and, for a
 * policy other than open, the bridge it names (the reference's message).
 */
function chainedSpec(args: CmdArgs, conf: FirewallConf): { s: FirewallSpec; prev: Result } {
  const prev = requirePrevResult(args);
  const s = spec(conf, args);
  if (conf.policy !== 'open' && !s.bridge) {
    throw new CniError(
      ErrCode.InvalidConfig,
      `interface needs to be set for ingress policy "${conf.policy}", make sure to chain "firewall" plugin with "bridge"`,
    );
  }
  return { s, prev };
}

export async function cmdAdd(args: CmdArgs, conf: FirewallConf): Promise<Result> {
  const { s, prev } = chainedSpec(args, conf);
  // One transaction (iptables: both families, or the first one undone): nothing to roll back here.
  await selectDriver(conf.backend).setup({ firewall: s });
  return prev;
}

export async function cmdDel(args: CmdArgs, conf: FirewallConf): Promise<void> {
  // Keyed on the container ID: works with an empty CNI_NETNS and without prevResult; the
  // prevResult's addresses, when given, also catch the reference's uncommented rules.
  await teardownAll(spec(conf, args), ['firewall']);
}

export async function cmdCheck(args: CmdArgs, conf: FirewallConf): Promise<void> {
  const { s } = chainedSpec(args, conf);
  await selectDriver(conf.backend).check({ firewall: s });
}

/** GC: removes, on every installed backend, the per-container rules of this network's attachments not in cni.dev/valid-attachments. */
export async function cmdGc(args: CmdArgs, conf: FirewallConf): Promise<void> {
  await gcAll(conf.name, validAttachments(args.conf), ['firewall']);
}
