/**
 * Outbound masquerade with nftables, in the reference's layout (plugins:pkg/ip/
 * ipmasq_nftables_linux.go) so either implementation can remove what the other made:
 *
 *   table inet cni_plugins_masquerade
 *     chain postrouting  (nat, hook postrouting, priority srcnat), rewritten on every setup:
 *         ip daddr == 224.0.0.0/4 return; ip6 daddr == ff00::/8 return; goto masq_checks
 *     chain masq_checks, one rule per container address:
 *         ip saddr == <ip> ip daddr != <subnet> masquerade comment "<instance hash>, net: …, if: …, id: …"
 *
 * The comment starts with a hash of (network, ifName, containerID), so a rule is found by its
 * owner alone: teardown needs no addresses (the plugins#810 fix) and never touches another
 * container's rule even when both had the same IP.
 *
 * Processes per operation: setup = 1 read (`nft -j list table`) + 1 write (`nft -f -`);
 * teardown = 1 read + 1 write (none when nothing is there); check = 1 read.
 */
import { run, CommandError } from '../exec/run';
import { CniError, ErrCode } from '../skel/errors';
import { canonicalIP, parseCidr, formatCidr, networkOf } from '../ip/cidr';
import type { MasqSpec, NetfilterBackend, Owner } from './backend';
import { assertPrintable, type BackendOptions, type MasqAddr, MULTICAST, netfilterError, parseMasqAddresses } from './common';
import { nftComment, nftInstanceHash } from './names';
import type { Attachment } from '../skel/gc';
import { staleNftInstance } from './gc';
import { nftReadThenApply } from './nft-json';

export const NFT_TABLE = 'cni_plugins_masquerade';
export const NFT_MASQ_CHAIN = 'masq_checks';
export const NFT_POSTROUTING_CHAIN = 'postrouting';
// The reference sets these comments; `add` of an existing table or chain must not differ from it.
const TABLE_COMMENT = 'Masquerading for plugins from github.com/containernetworking/plugins';
const MASQ_CHAIN_COMMENT = 'Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet';

const T = `inet ${NFT_TABLE}`;

/** A rule of our table as `nft -j list` shows it. */
export interface NftRule {
  chain: string;
  handle: number;
  comment?: string;
  expr: unknown[];
}

export interface NftListing {
  /** False when the table does not exist. */
  tableExists: boolean;
  chains: Set<string>;
  rules: NftRule[];
}

export const EMPTY_LISTING: NftListing = { tableExists: false, chains: new Set(), rules: [] };

// ---------------------------------------------------------------------------------------------
// Pure builders and parsers

/** The masq_checks rule body for one address, in the reference's words. */
export function nftMasqRule(a: MasqAddr): string {
  const p = a.family === 4 ? 'ip' : 'ip6';
  return `${p} saddr == ${a.ip} ${p} daddr != ${a.subnet} masquerade`;
}

/**
 * The setup transaction: ensure table and chains, rewrite postrouting, delete the
 * attachment's old rules (by handle) and add one rule per address.
 */
export function nftSetupScript(owner: Owner, addrs: readonly MasqAddr[], staleHandles: readonly number[]): string {
  assertOwner(owner);
  const comment = nftComment(owner.network, owner.ifName, owner.containerID);
  const lines = [
    `add table ${T} { comment "${TABLE_COMMENT}" ; }`,
    `add chain ${T} ${NFT_MASQ_CHAIN} { comment "${MASQ_CHAIN_COMMENT}" ; }`,
    // postrouting jumps to masq_checks, so it comes after it.
    `add chain ${T} ${NFT_POSTROUTING_CHAIN} { type nat hook postrouting priority srcnat ; }`,
    `flush chain ${T} ${NFT_POSTROUTING_CHAIN}`,
    `add rule ${T} ${NFT_POSTROUTING_CHAIN} ip daddr == ${MULTICAST[4]} return`,
    `add rule ${T} ${NFT_POSTROUTING_CHAIN} ip6 daddr == ${MULTICAST[6]} return`,
    `add rule ${T} ${NFT_POSTROUTING_CHAIN} goto ${NFT_MASQ_CHAIN}`,
    ...staleHandles.map((h) => `delete rule ${T} ${NFT_MASQ_CHAIN} handle ${h}`),
    ...addrs.map((a) => `add rule ${T} ${NFT_MASQ_CHAIN} ${nftMasqRule(a)} comment "${comment}"`),
  ];
  return lines.join('\n') + '\n';
}

/** The teardown transaction; undefined when there is nothing to delete. */
export function nftTeardownScript(handles: readonly number[]): string | undefined {
  if (handles.length === 0) return undefined;
  return handles.map((h) => `delete rule ${T} ${NFT_MASQ_CHAIN} handle ${h}`).join('\n') + '\n';
}

/**
 * The GC transaction: deletes this network's masq_checks rules whose attachment is not valid
 * (the comment's instance hash says which); undefined when there are none.
 */
export function nftMasqGcScript(listing: NftListing, network: string, valid: readonly Attachment[]): string | undefined {
  const stale = staleNftInstance(network, valid);
  return nftTeardownScript(listing.rules.filter((r) => r.chain === NFT_MASQ_CHAIN && stale(r.comment)).map((r) => r.handle));
}

/** Parses `nft -j list table inet cni_plugins_masquerade`. */
export function parseNftListing(json: string): NftListing {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new CniError(ErrCode.Internal, `cannot parse nft JSON output: ${(e as Error).message}`);
  }
  const items = (doc as { nftables?: unknown[] })?.nftables;
  if (!Array.isArray(items)) throw new CniError(ErrCode.Internal, 'nft JSON output has no "nftables" array');
  const out: NftListing = { tableExists: false, chains: new Set(), rules: [] };
  for (const item of items) {
    if (!item || typeof item !== 'object') continue;
    const o = item as Record<string, Record<string, unknown> | undefined>;
    if (o.table && o.table.name === NFT_TABLE && o.table.family === 'inet') out.tableExists = true;
    if (o.chain && o.chain.table === NFT_TABLE && typeof o.chain.name === 'string') out.chains.add(o.chain.name);
    const r = o.rule;
    if (r && r.table === NFT_TABLE && typeof r.chain === 'string' && typeof r.handle === 'number') {
      out.rules.push({
        chain: r.chain,
        handle: r.handle,
        comment: typeof r.comment === 'string' ? r.comment : undefined,
        expr: Array.isArray(r.expr) ? r.expr : [],
      });
    }
  }
  return out;
}

/** The attachment's rules in masq_checks: their comment starts with its instance hash. */
export function findOwnerRules(listing: NftListing, owner: Owner): NftRule[] {
  const prefix = nftInstanceHash(owner.network, owner.ifName, owner.containerID);
  return listing.rules.filter((r) => r.chain === NFT_MASQ_CHAIN && r.comment?.startsWith(prefix));
}

/** What a masq_checks rule does, read back from its JSON expressions; undefined if it is not one. */
export function describeMasqRule(rule: NftRule): { ip: string; subnet: string } | undefined {
  let ip: string | undefined;
  let subnet: string | undefined;
  let masq = false;
  for (const e of rule.expr) {
    if (!e || typeof e !== 'object') continue;
    const x = e as Record<string, unknown>;
    if ('masquerade' in x) masq = true;
    const m = x.match as { op?: string; left?: { payload?: { field?: string } }; right?: unknown } | undefined;
    const field = m?.left?.payload?.field;
    if (!m || !field) continue;
    if (field === 'saddr' && m.op === '==' && typeof m.right === 'string') ip = canonicalIP(m.right);
    if (field === 'daddr' && m.op === '!=') {
      const right = m.right as { prefix?: { addr?: string; len?: number } } | string;
      if (typeof right === 'string') {
        const c = parseCidr(right.includes('/') ? right : `${right}/${right.includes(':') ? 128 : 32}`);
        subnet = c ? formatCidr(networkOf(c)) : undefined;
      } else if (right?.prefix?.addr !== undefined && right.prefix.len !== undefined) {
        const c = parseCidr(`${right.prefix.addr}/${right.prefix.len}`);
        subnet = c ? formatCidr(networkOf(c)) : undefined;
      }
    }
  }
  return masq && ip && subnet ? { ip, subnet } : undefined;
}

/** Everything setup would have made for these addresses that is not in the listing. */
export function nftMissing(listing: NftListing, owner: Owner, addrs: readonly MasqAddr[]): string[] {
  const missing: string[] = [];
  if (!listing.tableExists) return [`table ${T} does not exist`];
  const post = listing.rules.filter((r) => r.chain === NFT_POSTROUTING_CHAIN);
  const jumps = post.some((r) => r.expr.some((e) => (e as { goto?: { target?: string } })?.goto?.target === NFT_MASQ_CHAIN));
  if (!jumps) missing.push(`chain ${T} ${NFT_POSTROUTING_CHAIN} does not go to ${NFT_MASQ_CHAIN}`);
  const have = findOwnerRules(listing, owner)
    .map(describeMasqRule)
    .filter((d): d is { ip: string; subnet: string } => d !== undefined);
  for (const a of addrs) {
    if (!have.some((d) => d.ip === a.ip && d.subnet === a.subnet)) {
      missing.push(`no masquerade rule for ${a.ip} (subnet ${a.subnet}) in ${T} ${NFT_MASQ_CHAIN}`);
    }
  }
  return missing;
}

function assertOwner(owner: Owner): void {
  assertPrintable('network name', owner.network);
  assertPrintable('container ID', owner.containerID);
  assertPrintable('interface name', owner.ifName);
}

// ---------------------------------------------------------------------------------------------
// The backend

export class NftablesBackend implements NetfilterBackend {
  readonly name = 'nftables' as const;

  constructor(private readonly opts: BackendOptions = {}) {}

  /** One read of our table; a missing table reads as empty. */
  async list(): Promise<NftListing> {
    const r = await run(['nft', '-j', 'list', 'table', 'inet', NFT_TABLE], { netns: this.opts.netns, nothrow: true });
    if (r.exitCode !== 0) {
      if (/No such file or directory/i.test(r.stderr)) return EMPTY_LISTING;
      const argv = ['nft', '-j', 'list', 'table', 'inet', NFT_TABLE];
      throw new CommandError(argv, r.exitCode, r.stderr, this.opts.netns);
    }
    return parseNftListing(r.stdout);
  }

  /**
   * Reads, builds a transaction from what it read and applies it. If the apply fails because
   * a rule it meant to delete vanished meanwhile (a concurrent DEL), it reads and tries once more.
   */
  private readThenApply(build: (l: NftListing) => string | undefined): Promise<void> {
    return nftReadThenApply(this.opts.netns, () => this.list(), build);
  }

  async setupMasq(spec: MasqSpec): Promise<void> {
    const addrs = parseMasqAddresses(spec.addresses);
    try {
      await this.readThenApply((l) => nftSetupScript(spec, addrs, findOwnerRules(l, spec).map((r) => r.handle)));
    } catch (e) {
      throw netfilterError(`failed to set up masquerade (nftables) for ${spec.containerID}`, e);
    }
  }

  async teardownMasq(spec: MasqSpec): Promise<void> {
    // The addresses are not needed: the owner's comment prefix finds its rules.
    try {
      assertOwner(spec);
      await this.readThenApply((l) => nftTeardownScript(findOwnerRules(l, spec).map((r) => r.handle)));
    } catch (e) {
      throw netfilterError(`failed to tear down masquerade (nftables) for ${spec.containerID}`, e);
    }
  }

  async gcMasq(network: string, valid: readonly Attachment[]): Promise<void> {
    try {
      assertPrintable('network name', network);
      await this.readThenApply((l) => nftMasqGcScript(l, network, valid));
    } catch (e) {
      throw netfilterError(`failed to garbage-collect masquerade rules (nftables) of network ${network}`, e);
    }
  }

  async checkMasq(spec: MasqSpec): Promise<void> {
    const addrs = parseMasqAddresses(spec.addresses);
    let listing: NftListing;
    try {
      listing = await this.list();
    } catch (e) {
      throw netfilterError('failed to read nftables masquerade rules', e);
    }
    const missing = nftMissing(listing, spec, addrs);
    if (missing.length > 0) {
      throw new CniError(ErrCode.Internal, `masquerade (nftables) for ${spec.containerID} is incomplete: ${missing.join('; ')}`);
    }
  }
}
