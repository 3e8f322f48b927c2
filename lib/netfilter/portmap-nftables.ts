/**
 * Port forwarding with nftables, in the reference's layout (plugins:plugins/meta/portmap/
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
 * networks keeps its shared rules until the last network lets go. DEL removes the network's marker. Unlike the reference, prerouting's `hostports` jump also requires a local
 * destination, so forwarded traffic to some other host's port 8080 is never captured.
 *
 * Processes: forward = 1 read (`nft -j list ruleset`) + 1 `nft -f -` for all families;
 * unforward = 1 read + 1 write (none when nothing is there); check = 1 read.
 */
import { run, CommandError } from '../exec/run';
import { CniError, ErrCode } from '../skel/errors';
import type { Family } from '../ip/cidr';
import type { Owner } from './backend';
import { assertPrintable, type BackendOptions, netfilterError } from './common';
import { type NftRuleset, nftReadThenApply, parseNftJson, ruleDnat, ruleDport, ruleJump } from './nft-json';
import { nftNetworkHash, nftOwnerMarker, nftOwnerMarkerKey } from './names';
import type { Attachment } from '../skel/gc';
import { type ContainerAddr, containerAddrs, mappingsFor, type PortForwarder, type PortMapSpec } from './portmap';

export const NFT_HOSTPORT_TABLE = 'cni_hostport';
const TABLE_COMMENT = 'CNI portmap plugin';
const OWNED_CHAINS = ['hostports', 'hostip_hostports', 'masquerading'];
/** Our chain of owner markers (see the header); the reference never looks at it. */
export const OWNER_CHAIN = 'cni_ts_owners';
/** Characters of nftOwnerMarkerKey: network hash (16), `-`, container hash (16). */
const MARKER_KEY_LENGTH = 33;
const fam = (f: Family): 'ip' | 'ip6' => (f === 4 ? 'ip' : 'ip6');

/** The owner's rules, found by their comment (the container ID), in both families. */
export function ownedRules(rs: NftRuleset, containerID: string): NftRuleset['rules'] {
  return rs.rules.filter((r) => r.table === NFT_HOSTPORT_TABLE && (r.family === 'ip' || r.family === 'ip6') && OWNED_CHAINS.includes(r.chain) && r.comment === containerID);
}

type Rule = NftRuleset['rules'][number];
const inHostportTable = (r: Rule): boolean => r.table === NFT_HOSTPORT_TABLE && (r.family === 'ip' || r.family === 'ip6');
const markers = (rs: NftRuleset): (Rule & { comment: string })[] =>
  rs.rules.filter((r): r is Rule & { comment: string } => inHostportTable(r) && r.chain === OWNER_CHAIN && r.comment !== undefined);

/** The owner markers of (network, containerID), in both families. */
export function ownerMarkers(rs: NftRuleset, network: string, containerID: string): Rule[] {
  const key = nftOwnerMarkerKey(network, containerID);
  return markers(rs).filter((r) => r.comment.startsWith(key));
}

function assertId(containerID: string): void {
  assertPrintable('container ID', containerID);
  if (containerID.includes('"')) throw new CniError(ErrCode.InvalidConfig, `container ID ${JSON.stringify(containerID)} contains a double quote`);
}

const deleteRule = (r: NftRuleset['rules'][number]): string => `delete rule ${r.family} ${NFT_HOSTPORT_TABLE} ${r.chain} handle ${r.handle}`;

/** The transaction that installs the mappings (pure): structure, stale rules out, new rules in. */
export function nftForwardScript(spec: PortMapSpec, addrs: readonly ContainerAddr[], rs: NftRuleset): string | undefined {
  assertId(spec.containerID);
  const lines: string[] = [];
  for (const a of addrs) {
    const maps = mappingsFor(spec.mappings, a.family);
    if (maps.length === 0) continue;
    const f = fam(a.family);
    const T = `${f} ${NFT_HOSTPORT_TABLE}`;
    const conds = (a.family === 4 ? spec.conditionsV4 : spec.conditionsV6) ?? [];
    for (const c of conds) assertPrintable('condition', c);
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
    lines.push(...ownedRules(rs, spec.containerID).filter((r) => r.family === f).map(deleteRule));
    lines.push(...ownerMarkers(rs, spec.network, spec.containerID).filter((r) => r.family === f).map(deleteRule));
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
  return lines.length ? lines.join('\n') + '\n' : undefined;
}

const deleteScript = (rules: readonly Rule[]): string | undefined => (rules.length ? rules.map(deleteRule).join('\n') + '\n' : undefined);

/**
 * The transaction that removes the owner's rules, and with `network` that network's owner
 * markers of the container; undefined when there are none (pure).
 */
export function nftUnforwardScript(containerID: string, rs: NftRuleset, network?: string): string | undefined {
  return deleteScript([...ownedRules(rs, containerID), ...(network === undefined ? [] : ownerMarkers(rs, network, containerID))]);
}

/**
 * The GC transaction (pure): this network's markers of containers with no valid attachment on
 * any interface, and those containers' rules unless another network's marker names the same
 * container ID (the rules are shared then). Undefined when there is nothing.
 */
export function nftPortsGcScript(rs: NftRuleset, network: string, valid: readonly Attachment[]): string | undefined {
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
  return deleteScript([...stale, ...rules]);
}

/** What forward would have made that is missing (pure). */
export function nftPortsMissing(spec: PortMapSpec, addrs: readonly ContainerAddr[], rs: NftRuleset): string[] {
  const missing: string[] = [];
  for (const a of addrs) {
    const maps = mappingsFor(spec.mappings, a.family);
    if (maps.length === 0) continue;
    const f = fam(a.family);
    const T = `${f} ${NFT_HOSTPORT_TABLE}`;
    if (!rs.tables.has(T)) {
      missing.push(`table ${T} does not exist`);
      continue;
    }
    for (const hook of ['prerouting', 'output']) {
      const jumps = rs.rules.filter((r) => r.family === f && r.table === NFT_HOSTPORT_TABLE && r.chain === hook).map(ruleJump);
      for (const c of ['hostports', 'hostip_hostports']) if (!jumps.includes(c)) missing.push(`${T} ${hook}: no jump to ${c}`);
    }
    const mine = ownedRules(rs, spec.containerID).filter((r) => r.family === f);
    for (const m of maps) {
      const chain = m.dst ? 'hostip_hostports' : 'hostports';
      const ok = mine.some((r) => {
        const d = ruleDnat(r);
        return r.chain === chain && ruleDport(r) === m.hostPort && d?.addr === a.ip && d.port === m.containerPort;
      });
      if (!ok) missing.push(`${T} ${chain}: no dnat ${m.protocol}/${m.hostPort} → ${a.ip}:${m.containerPort}`);
    }
    if (spec.snat) {
      const want = a.family === 4 ? 2 : 1;
      if (mine.filter((r) => r.chain === 'masquerading').length < want) missing.push(`${T} masquerading: hairpin/localhost rules missing`);
    }
  }
  return missing;
}

export class NftablesPortForwarder implements PortForwarder {
  readonly name = 'nftables' as const;
  constructor(private readonly opts: BackendOptions = {}) {}

  /** One read of the whole ruleset: both families' tables in one process. */
  async read(): Promise<NftRuleset> {
    const argv = ['nft', '-j', 'list', 'ruleset'];
    const r = await run(argv, { netns: this.opts.netns, nothrow: true });
    if (r.exitCode !== 0) throw new CommandError(argv, r.exitCode, r.stderr, this.opts.netns);
    return parseNftJson(r.stdout || '{"nftables":[]}');
  }

  private readThenApply(build: (rs: NftRuleset) => string | undefined): Promise<void> {
    return nftReadThenApply(this.opts.netns, () => this.read(), build);
  }

  async forwardPorts(spec: PortMapSpec): Promise<void> {
    try {
      const addrs = containerAddrs(spec.addresses);
      await this.readThenApply((rs) => nftForwardScript(spec, addrs, rs));
    } catch (e) {
      throw netfilterError(`failed to set up port mappings (nftables) for ${spec.containerID}`, e);
    }
  }

  async checkPorts(spec: PortMapSpec): Promise<void> {
    let rs: NftRuleset;
    try {
      rs = await this.read();
    } catch (e) {
      throw netfilterError('failed to read nftables port mappings', e);
    }
    const missing = nftPortsMissing(spec, containerAddrs(spec.addresses), rs);
    if (missing.length) throw new CniError(ErrCode.Internal, `port mappings (nftables) for ${spec.containerID} are incomplete: ${missing.join('; ')}`);
  }

  async unforwardPorts(owner: Owner): Promise<void> {
    try {
      assertId(owner.containerID);
      await this.readThenApply((rs) => nftUnforwardScript(owner.containerID, rs, owner.network));
    } catch (e) {
      throw netfilterError(`failed to remove port mappings (nftables) for ${owner.containerID}`, e);
    }
  }

  async gcPorts(network: string, valid: readonly Attachment[]): Promise<void> {
    try {
      assertPrintable('network name', network);
      await this.readThenApply((rs) => nftPortsGcScript(rs, network, valid));
    } catch (e) {
      throw netfilterError(`failed to garbage-collect port mappings (nftables) of network ${network}`, e);
    }
  }
}
