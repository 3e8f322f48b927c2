/**
 * none: Docker's `--network none`. The container gets its loopback device and nothing else:
 * ADD brings `lo` up in CNI_NETNS and reports it without addresses. CNI_IFNAME is ignored (the
 * only interface this plugin knows is `lo`); any other interface in the netns is left alone.
 *
 * DEL changes nothing: `lo` is shared by everything in the netns (a `container:` joiner, another
 * network's plugins, the container's own processes until they exit), and the netns dies with
 * the container anyway, so bringing it down could only break something that is still running.
 */
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode, wrapError } from '../../lib/skel/errors';
import type { Result } from '../../lib/types/result';
import { ipBatch } from '../../lib/iproute/ip';
import type { IpLink } from '../../lib/iproute/json-types';
import { requireNetns } from '../../lib/iproute/netns-view';
import { validateConf } from '../../lib/schema/validate';
import { none as validateNone, type NoneNetConf } from '../../lib/generated/validators';

/** Checks the config; `none` has no keys of its own, only the common ones. */
export function loadNetConf(args: Pick<CmdArgs, 'conf'>): NetConf & NoneNetConf {
  const c = args.conf;
  validateConf(validateNone, c, 'none');
  return c;
}

/** ADD: one process in the container netns sets lo up and reads it back. */
export async function cmdAdd(args: CmdArgs): Promise<Result> {
  requireNetns(args.netns);
  let lo: IpLink | undefined;
  try {
    const { shows } = await ipBatch(['link set dev lo up', 'link show dev lo'], { netns: args.netns });
    lo = (shows[0] as IpLink[])[0];
  } catch (e) {
    throw wrapError('failed to set up lo', e);
  }
  if (!lo) throw new CniError(ErrCode.Internal, `no loopback device in ${args.netns}`);
  // Chained after another plugin: pass its result through (SPEC: pass through or modify).
  if (args.prevResult) return args.prevResult;
  return {
    cniVersion: args.conf.cniVersion,
    // No ips at all (not even 127.0.0.1/8, which is scope host): the issue's "lo and no
    // address", and Go's omitempty drops an empty list the same way.
    interfaces: [{ name: 'lo', mac: lo.address ?? '00:00:00:00:00:00', sandbox: args.netns }],
  };
}

/** CHECK: the netns exists and lo is up in it. */
export async function cmdCheck(args: CmdArgs): Promise<void> {
  requireNetns(args.netns);
  const { shows } = await ipBatch(['link show dev lo'], { netns: args.netns });
  const lo = (shows[0] as IpLink[])[0];
  if (!lo || !lo.flags.includes('UP')) {
    throw new CniError(ErrCode.Internal, `loopback interface in ${args.netns} is down`);
  }
}
