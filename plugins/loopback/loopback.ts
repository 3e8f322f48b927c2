/**
 * loopback: brings `lo` up in the container's netns (ADD) and down again (DEL), as the reference
 * plugin does. CNI_IFNAME is ignored: the loopback device is always `lo`.
 */
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import type { Result } from '../../lib/types/result';
import { ipBatch } from '../../lib/iproute/ip';
import type { IpAddr } from '../../lib/iproute/json-types';
import { netnsExists } from '../../lib/iproute/netns';
import { validateConf } from '../../lib/schema/validate';
import { loopback as validateLoopback, type LoopbackNetConf } from '../../lib/generated/validators';

/** Checks the config; loopback has no keys of its own, only the common ones. */
export function loadNetConf(args: Pick<CmdArgs, 'conf'>): NetConf & LoopbackNetConf {
  const c = args.conf;
  validateConf(validateLoopback, c, 'loopback');
  return c;
}

/** ADD: one process in the container netns sets lo up and reads its addresses back. */
export async function cmdAdd(args: CmdArgs): Promise<Result> {
  const { shows } = await ipBatch(['link set dev lo up', 'addr show dev lo'], { netns: args.netns });
  // A chained loopback passes the previous result through unchanged.
  if (args.prevResult) return args.prevResult;
  const lo = (shows[0] as IpAddr[])[0];
  const ips = (lo?.addr_info ?? []).map((a) => ({ interface: 0, address: `${a.local}/${a.prefixlen}` }));
  return {
    cniVersion: args.conf.cniVersion,
    interfaces: [{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: args.netns }],
    ips,
  };
}

/** DEL: lo down; a netns that is gone (or none given) means there is nothing to do. */
export async function cmdDel(args: CmdArgs): Promise<void> {
  if (!args.netns || !netnsExists(args.netns)) return;
  await ipBatch(['link set dev lo down'], { netns: args.netns });
}

/** CHECK: lo must be up. */
export async function cmdCheck(args: CmdArgs): Promise<void> {
  const { shows } = await ipBatch(['link show dev lo'], { netns: args.netns });
  const lo = (shows[0] as IpAddr[])[0];
  if (!lo || !lo.flags.includes('UP')) {
    throw new CniError(ErrCode.Internal, 'loopback interface is down');
  }
}
