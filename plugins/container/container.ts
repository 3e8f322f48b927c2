/**
 * container: Docker's `--network container:<target>`. The joiner gets no interface of its own;
 * it shares the target container's network namespace, which the runtime passes as CNI_NETNS.
 * ADD proves that this is so, then reports the target's live interfaces and addresses.
 * It creates nothing, so DEL removes nothing: the target's network belongs to the target.
 *
 * Where the target's network lives comes from libcni's result cache (see cache.ts): every
 * cached attachment of the target names its netns path; CNI_NETNS must be the same namespace
 * (same nsfs inode, so different paths to one namespace are fine).
 *   - no cached attachment of the target        → code 104
 *   - its netns path(s) no longer exist         → code 104 (the target is not running)
 *   - they exist but are another namespace      → code 103
 */
import { join } from 'node:path';
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import type { Result } from '../../lib/types/result';
import { mergeView, netnsIdentity, readNetnsView, requireNetns } from '../../lib/iproute/netns-view';
import { cachedAttachments } from './cache';
import type { ContainerConf } from './config';

/** Throws unless CNI_NETNS is the namespace the target's cached attachments live in. */
export function verifyTargetNetns(conf: ContainerConf, netns: string): void {
  const joiner = requireNetns(netns);
  const atts = cachedAttachments(conf.cacheDir, conf.target);
  const where = join(conf.cacheDir, 'results');
  if (atts.length === 0) {
    throw new CniError(
      ErrCode.TargetNotFound,
      `target container "${conf.target}" (from ${conf.targetSource}) has no network attachment`,
      `no cniCacheV1 entry for it in ${where}; attach the target before the joiner`,
    );
  }
  const paths = [...new Set(atts.flatMap((a) => a.netnsPaths))];
  const live = paths.filter((p) => netnsIdentity(p) !== undefined);
  if (live.length === 0) {
    throw new CniError(
      ErrCode.TargetNotFound,
      `target container "${conf.target}" has no live network namespace`,
      paths.length ? `cached netns ${paths.map((p) => `"${p}"`).join(', ')} no longer exist` : `its cache entries in ${where} name no netns`,
    );
  }
  if (!live.some((p) => netnsIdentity(p) === joiner)) {
    throw new CniError(
      ErrCode.NetnsMismatch,
      `CNI_NETNS "${netns}" is not the network namespace of target container "${conf.target}"`,
      `the target's attachments (${atts.map((a) => `${a.networkName}/${a.ifName}`).join(', ')}) live in ${live.map((p) => `"${p}"`).join(', ')}`,
    );
  }
}

/** ADD: verify, then one `ip -json addr show` in CNI_NETNS for the result. Creates nothing. */
export async function cmdAdd(args: CmdArgs, conf: ContainerConf): Promise<Result> {
  verifyTargetNetns(conf, args.netns);
  const view = await readNetnsView(args.netns);
  return mergeView(args.prevResult, view, conf.cniVersion);
}

/** CHECK: the target is still attached and CNI_NETNS is still its namespace. */
export async function cmdCheck(args: CmdArgs, conf: ContainerConf): Promise<void> {
  verifyTargetNetns(conf, args.netns);
}
