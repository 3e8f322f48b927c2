/**
 * Which rules a GC of one network may remove, for every layout (pure). How a layout tags its
 * owner decides how precise GC can be:
 *
 * - Per attachment (nft masquerade, nft firewall): the comment opens with
 *   nftInstanceHash(network, ifName, containerID). A rule is stale when it starts with this
 *   network's hash and its instance hash is not one of a valid attachment.
 * - Per container of a network (iptables masquerade, port maps and firewall): the comment is
 *   `name: "<net>" id: "<cid>"` (port maps: `dnat ` before it) and the chain is a hash of
 *   network + container, with no interface. A container is stale when this network's comments
 *   name it and no valid attachment has its ID, whatever the interface (conservative: a
 *   container still attached on another interface keeps its rules).
 * - Container ID only (nft port maps, the reference's layout): see nftables/portmap.ts, which
 *   adds an owner marker so the network is known.
 */
import type { Attachment } from '../skel/gc';
import { iptablesComment, nftInstanceHash, nftNetworkHash } from './names';

/** Characters of nftInstanceHash: 16 hex, `-`, 16 hex. */
const INSTANCE_HASH_LENGTH = 33;

/** A test for comments of per-attachment nft layouts: true when the rule is this network's and no valid attachment's. */
export function staleNftInstance(network: string, valid: readonly Attachment[]): (comment: string | undefined) => boolean {
  const ours = nftNetworkHash(network) + '-';
  const keep = new Set(valid.map((a) => nftInstanceHash(network, a.ifname, a.containerID)));
  return (c) => c !== undefined && c.startsWith(ours) && !keep.has(c.slice(0, INSTANCE_HASH_LENGTH));
}

const IPT_COMMENT = /^name: "((?:[^"\\]|\\.)*)" id: "((?:[^"\\]|\\.)*)"$/;

/**
 * The container an iptables comment names when it is this network's (`prefix` before
 * `name: …`, e.g. "dnat " for port maps), else undefined. Checked by writing the comment again,
 * so an escape we do not undo never yields a wrong owner.
 */
export function iptCommentOwner(comment: string | undefined, network: string, prefix = ''): string | undefined {
  if (!comment?.startsWith(prefix)) return undefined;
  const m = IPT_COMMENT.exec(comment.slice(prefix.length));
  if (!m) return undefined;
  const cid = m[2]!.replace(/\\(.)/g, '$1');
  return prefix + iptablesComment(network, cid) === comment ? cid : undefined;
}

/**
 * Of the containers a per-container layout names for this network, those with no valid
 * attachment on any interface; sorted, each once.
 */
export function staleContainers(comments: Iterable<string | undefined>, network: string, valid: readonly Attachment[], prefix = ''): string[] {
  const keep = new Set(valid.map((a) => a.containerID));
  const out = new Set<string>();
  for (const c of comments) {
    const cid = iptCommentOwner(c, network, prefix);
    if (cid !== undefined && !keep.has(cid)) out.add(cid);
  }
  return [...out].sort();
}
