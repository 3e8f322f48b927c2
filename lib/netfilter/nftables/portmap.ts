/**
 * The nftables driver's port-forwarding layout, the reference's (plugins:plugins/meta/portmap/
 * portmap_nftables.go): one table per family, `ip cni_hostport` and `ip6 cni_hostport`:
 *
 *   chain prerouting   (nat, hook prerouting, priority dstnat), rewritten on every ADD:
 *       [conditions] jump hostip_hostports
 *       [conditions] fib daddr type local jump hostports
 *   chain output       (nat, hook output, priority -100), rewritten on every ADD:
 *       [conditions] jump hostip_hostports
 *       [conditions] fib daddr type local jump hostports
 *   chain hostports         tcp dport 8080 dnat to 10.1.0.5:80 comment "<containerID>"
 *   chain hostip_hostports  ip daddr 192.0.2.1 tcp dport 8080 dnat to 10.1.0.5:80 comment "<containerID>"
 *   chain masquerading (nat, hook postrouting, priority srcnat):
 *       ip saddr 10.1.0.5 ip daddr 10.1.0.5 masquerade comment "<containerID>"   (hairpin)
 *       ip saddr 127.0.0.1 ip daddr 10.1.0.5 masquerade comment "<containerID>"  (localhost, v4)
 *
 *   chain cni_ts_owners (ours; no hook, never jumped to, so its rules never run):
 *       return comment "<network hash>-<container ID hash>, net: <net>, id: <cid>"
 *
 * DNAT hooks prerouting and output, never input (plugins#1115). The comment is the container
 * ID alone, exactly as the reference writes it, so either implementation finds the other's
 * rules; the price is the reference's: one container ID attached to two networks with portmap
 * shares its rules. That comment names no network, so ADD also writes an owner marker in
 * cni_ts_owners, and GC of a network removes only containers its markers name (with no valid
 * attachment on any interface) and whose ID no other network's marker names: rules the
 * reference made (no marker) are never garbage-collected, and a container ID mapped by two
 * networks keeps its shared rules until the last network lets go. DEL removes the network's
 * marker. Unlike the reference, prerouting's `hostports` jump also requires a local
 * destination, so forwarded traffic to some other host's port 8080 is never captured. Pure.
 */
import { CniError, ErrCode } from '../../skel/errors';
import type { Family } from '../../ip/cidr';
import type { Attachment } from '../../skel/gc';
import type { OwnerHint, PortMapSpec } from '../driver';
import { assertPrintable, type ContainerAddr, containerAddrs, mappingsFor } from '../common';
import { nftNetworkHash, nftOwnerMarker, nftOwnerMarkerKey } from '../names';
import { deleteRuleLine, type NftRule, type NftRuleset, ruleDnat, ruleDport, ruleJump } from './json';
import type { NftLayout } from './driver';

export const NFT_HOSTPORT_TABLE = 'cni_hostport';
const TABLE_COMMENT = 'CNI portmap plugin';
const OWNED_CHAINS = ['hostports', 'hostip_hostports', 'masquerading'];
/** Our chain of owner markers (see the header); the reference never looks at it. */
export const OWNER_CHAIN = 'cni_ts_owners';
/** Characters of nftOwnerMarkerKey: network hash (16), `-`, container hash (16). */
const MARKER_KEY_LENGTH = 33;
const fam = (f: Family): 'ip' | 'ip6' => (f === 4 ? 'ip' : 'ip6');

const inHostportTable = (r: NftRule): boolean => r.table === NFT_HOSTPORT_TABLE && (r.family === 'ip' || r.family === 'ip6');

/** The owner's rules, found by their comment (the container ID), in both families. */
export function ownedRules(rs: NftRuleset, containerID: string): NftRule[] {
  return rs.rules.filter((r) => inHostportTable(r) && OWNED_CHAINS.includes(r.chain) && r.comment === containerID);
}

const markers = (rs: NftRuleset): (NftRule & { comment: string })[] =>
  rs.rules.filter((r): r is NftRule & { comment: string } => inHostportTable(r) && r.chain === OWNER_CHAIN && r.comment !== undefined);

/** The owner markers of (network, containerID), in both families. */
export function ownerMarkers(rs: NftRuleset, network: string, containerID: string): NftRule[] {
  const key = nftOwnerMarkerKey(network, containerID);
  return markers(rs).filter((r) => r.comment.startsWith(key));
}

function validate(spec: PortMapSpec): void {
  containerAddrs(spec.addresses);
  assertPrintable('network name', spec.network);
  assertPrintable('container ID', spec.containerID);
  if (spec.containerID.includes('"')) throw new CniError(ErrCode.InvalidConfig, `container ID ${JSON.stringify(spec.containerID)} contains a double quote`);
  for (const c of [...(spec.conditionsV4 ?? []), ...(spec.conditionsV6 ?? [])]) assertPrintable('condition', c);
}

/** The lines that install the mappings: structure, stale rules out, new rules in. */
export function forwardLines(spec: PortMapSpec, addrs: readonly ContainerAddr[], rs: NftRuleset): string[] {
  validate(spec);
  const lines: string[] = [];
  for (const a of addrs) {
    const maps = mappingsFor(spec.mappings, a.family);
    if (maps.length === 0) continue;
    const f = fam(a.family);
    const T = `${f} ${NFT_HOSTPORT_TABLE}`;
    const conds = (a.family === 4 ? spec.conditionsV4 : spec.conditionsV6) ?? [];
    const pre = conds.length ? conds.join(' ') + ' ' : '';
    lines.push(
      `add table ${T} { comment "${TABLE_COMMENT}" ; }`,
      `add chain ${T} hostports`,
      `add chain ${T} hostip_hostports`,
      `add chain ${T} prerouting { type nat hook prerouting priority dstnat ; }`,
      `flush chain ${T} prerouting`,
      `add rule ${T} prerouting ${pre}jump hostip_hostports`,
      `add rule ${T} prerouting ${pre}fib daddr type local jump hostports`,
      `add chain ${T} output { type nat hook output priority -100 ; }`,
      `flush chain ${T} output`,
      `add rule ${T} output ${pre}jump hostip_hostports`,
      `add rule ${T} output ${pre}fib daddr type local jump hostports`,
      `add chain ${T} ${OWNER_CHAIN}`,
    );
    if (spec.snat) lines.push(`add chain ${T} masquerading { type nat hook postrouting priority srcnat ; }`);
    lines.push(...ownedRules(rs, spec.containerID).filter((r) => r.family === f).map(deleteRuleLine));
    lines.push(...ownerMarkers(rs, spec.network, spec.containerID).filter((r) => r.family === f).map(deleteRuleLine));
    lines.push(`add rule ${T} ${OWNER_CHAIN} return comment "${nftOwnerMarker(spec.network, spec.containerID)}"`);
    const to = (port: number): string => (a.family === 6 ? `[${a.ip}]:${port}` : `${a.ip}:${port}`);
    const comment = `comment "${spec.containerID}"`;
    for (const m of maps) {
      const chain = m.dst ? 'hostip_hostports' : 'hostports';
      const dst = m.dst ? `${f} daddr ${m.dst} ` : '';
      lines.push(`add rule ${T} ${chain} ${dst}${m.protocol} dport ${m.hostPort} dnat to ${to(m.containerPort)} ${comment}`);
    }
    if (spec.snat) {
      lines.push(`add rule ${T} masquerading ${f} saddr ${a.ip} ${f} daddr ${a.ip} masquerade ${comment}`);
      if (a.family === 4) lines.push(`add rule ${T} masquerading ip saddr 127.0.0.1 ip daddr ${a.ip} masquerade ${comment}`);
    }
  }
  return lines;
}

/** The owner's rules, and the network's owner markers of the container. */
export function unforwardRules(owner: Pick<OwnerHint, 'network' | 'containerID'>, rs: NftRuleset): NftRule[] {
  return [...ownedRules(rs, owner.containerID), ...ownerMarkers(rs, owner.network, owner.containerID)];
}

/**
 * GC: this network's markers of containers with no valid attachment on any interface, and those
 * containers' rules unless another network's marker names the same container ID (the rules are
 * shared then).
 */
export function portsStale(network: string, valid: readonly Attachment[], rs: NftRuleset): NftRule[] {
  const ours = nftNetworkHash(network) + '-';
  const key = (comment: string): string => comment.slice(0, MARKER_KEY_LENGTH);
  const keep = new Set(valid.map((a) => nftOwnerMarkerKey(network, a.containerID)));
  const all = markers(rs);
  const stale = all.filter((m) => m.comment.startsWith(ours) && !keep.has(key(m.comment)));
  const staleKeys = new Set(stale.map((m) => key(m.comment)));
  // Container hashes other networks still mark: their shared rules stay.
  const elsewhere = new Set(all.filter((m) => !m.comment.startsWith(ours)).map((m) => key(m.comment).slice(ours.length)));
  const rules = rs.rules.filter(
    (r) =>
      inHostportTable(r) &&
      OWNED_CHAINS.includes(r.chain) &&
      r.comment !== undefined &&
      staleKeys.has(nftOwnerMarkerKey(network, r.comment)) &&
      !elsewhere.has(nftOwnerMarkerKey(network, r.comment).slice(ours.length)),
  );
  return [...stale, ...rules];
}

/** What forward would have made that is missing. */
export function portsMissing(spec: PortMapSpec, rs: NftRuleset): string[] {
  const out: string[] = [];
  for (const a of containerAddrs(spec.addresses)) {
    const maps = mappingsFor(spec.mappings, a.family);
    if (maps.length === 0) continue;
    const f = fam(a.family);
    const T = `${f} ${NFT_HOSTPORT_TABLE}`;
    if (!rs.tables.has(T)) {
      out.push(`table ${T} does not exist`);
      continue;
    }
    for (const hook of ['prerouting', 'output']) {
      const jumps = rs.rules.filter((r) => r.family === f && r.table === NFT_HOSTPORT_TABLE && r.chain === hook).map(ruleJump);
      for (const c of ['hostports', 'hostip_hostports']) if (!jumps.includes(c)) out.push(`${T} ${hook}: no jump to ${c}`);
    }
    const mine = ownedRules(rs, spec.containerID).filter((r) => r.family === f);
    for (const m of maps) {
      const chain = m.dst ? 'hostip_hostports' : 'hostports';
      const ok = mine.some((r) => {
        const d = ruleDnat(r);
        return r.chain === chain && ruleDport(r) === m.hostPort && d?.addr === a.ip && d.port === m.containerPort;
      });
      if (!ok) out.push(`${T} ${chain}: no dnat ${m.protocol}/${m.hostPort} → ${a.ip}:${m.containerPort}`);
    }
    if (spec.snat) {
      const want = a.family === 4 ? 2 : 1;
      if (mine.filter((r) => r.chain === 'masquerading').length < want) out.push(`${T} masquerading: hairpin/localhost rules missing`);
    }
  }
  return out;
}

export const nftPorts: NftLayout<PortMapSpec> = {
  tables: [`ip ${NFT_HOSTPORT_TABLE}`, `ip6 ${NFT_HOSTPORT_TABLE}`],
  validate,
  setup: (spec, rs) => forwardLines(spec, containerAddrs(spec.addresses), rs),
  missing: portsMissing,
  owned: unforwardRules,
  stale: portsStale,
};
