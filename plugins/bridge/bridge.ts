/**
 * bridge: the container gets one end of a veth pair, the other end joins a Linux bridge on the
 * host (created on first use), with an address from the delegated IPAM, a gateway address on
 * the bridge and optional outbound NAT. Docker's `bridge` network, the CNI way.
 *
 * The attachment itself (veth, bridge, gateway, NAT) is lib/bridge/attach.ts, shared with overlay.
 * Processes per ADD: the IPAM (in-process when it is our host-local), one `ip -batch` on the
 * host, one in the container, one netfilter transaction when ipMasq is on.
 *
 * Limits: vlan, vlanTrunk, macspoofchk and disableContainerInterface are refused (code 2).
 * The bridge is never deleted, as in the reference (deleting it races with concurrent ADDs).
 */
import type { CmdArgs } from '../../lib/skel/dispatch';
import type { Result } from '../../lib/types/result';
import { ipamAdd, ipamExec } from '../../lib/ipam/exec';
import { runSteps } from '../../lib/rollback';
import { attachAdd, attachCheck, attachDel, type AttachIpam } from '../../lib/bridge/attach';
import { gcAll } from '../../lib/netfilter/select';
import { validAttachments } from '../../lib/skel/gc';
import type { BridgeConf } from './config';

/** The delegated IPAM (`ipam.type`, in-process when it is our host-local), or none for L2 only. */
function delegatedIpam(conf: BridgeConf, args: CmdArgs): AttachIpam | undefined {
  if (!conf.hasIpam) return undefined;
  return { add: () => ipamAdd(args), del: () => ipamExec('DEL', args), check: () => ipamExec('CHECK', args) };
}

export async function cmdAdd(args: CmdArgs, conf: BridgeConf): Promise<Result> {
  return attachAdd(conf, args, delegatedIpam(conf, args));
}

/** DEL: IPAM release, container link, NAT rules by owner (lib/bridge/attach.ts). */
export async function cmdDel(args: CmdArgs, conf: BridgeConf): Promise<void> {
  await attachDel('bridge', conf, args, delegatedIpam(conf, args));
}

/** CHECK: the interface, its addresses and routes, the host veth on the bridge, lease, NAT rules. */
export async function cmdCheck(args: CmdArgs, conf: BridgeConf): Promise<void> {
  await attachCheck(conf, args, delegatedIpam(conf, args));
}

/**
 * GC: forwarded to the IPAM, and with ipMasq the masquerade rules of this network whose
 * attachment is not in cni.dev/valid-attachments go, on every installed backend. Both steps
 * run; their failures are reported together.
 */
export async function cmdGc(args: CmdArgs, conf: BridgeConf): Promise<void> {
  const valid = validAttachments(args.conf);
  await runSteps({ mode: 'all', label: 'bridge GC' }, [
    conf.hasIpam && ['IPAM GC', () => ipamExec('GC', args)],
    conf.ipMasq && ['masquerade GC', () => gcAll(conf.name, valid, ['masq'])],
  ]);
}

/** STATUS concerns the addresses: forwarded to the IPAM. */
export async function cmdStatus(args: CmdArgs, conf: BridgeConf): Promise<void> {
  if (conf.hasIpam) await ipamExec('STATUS', args);
}
