/**
 * host: Docker's `--network host`. The container shares the runtime's network stack, so there
 * is nothing to create: ADD only accepts a CNI_NETNS that *is* the namespace the plugin runs in
 * (runtimes run plugins in the host netns) and reports that namespace's interfaces and
 * addresses. Any other namespace is refused with code 103 and left untouched.
 *
 * Identity is the nsfs inode (dev+ino of CNI_NETNS against /proc/self/ns/net), so any path to
 * the host netns works (/proc/1/ns/net, a bind mount in /run/netns, /proc/self/ns/net).
 * DEL changes nothing and always succeeds: the host's network outlives every container.
 */
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import type { Result } from '../../lib/types/result';
import { mergeView, ownNetnsIdentity, readNetnsView, requireNetns } from '../../lib/iproute/netns-view';
import { validateConf } from '../../lib/schema/validate';
import { host as validateHost, type HostNetConf } from '../../lib/generated/validators';

/** Checks the config; `host` has no keys of its own, only the common ones. */
export function loadNetConf(args: Pick<CmdArgs, 'conf'>): NetConf & HostNetConf {
  const c = args.conf;
  validateConf(validateHost, c, 'host');
  return c;
}

/** Throws code 103 unless CNI_NETNS is the plugin's own (the host's) network namespace. */
export function verifyHostNetns(netns: string): void {
  const id = requireNetns(netns);
  if (id !== ownNetnsIdentity()) {
    throw new CniError(
      ErrCode.NetnsMismatch,
      `CNI_NETNS "${netns}" is not the host network namespace`,
      'the host plugin only joins the namespace it runs in, the runtime\'s (on a plain host: CNI_NETNS=/proc/1/ns/net)',
    );
  }
}

/** ADD: verify the namespace, then one `ip -json addr show` for the result. */
export async function cmdAdd(args: CmdArgs): Promise<Result> {
  verifyHostNetns(args.netns);
  const view = await readNetnsView(args.netns);
  return mergeView(args.prevResult, view, args.conf.cniVersion);
}

/** CHECK: CNI_NETNS must still be the host's namespace. */
export async function cmdCheck(args: CmdArgs): Promise<void> {
  verifyHostNetns(args.netns);
}
