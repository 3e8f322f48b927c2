/**
 * Outbound masquerade with iptables, in the reference's layout (plugins:pkg/ip/
 * ipmasq_iptables_linux.go), in the nat table of iptables (IPv4) and ip6tables (IPv6):
 *
 *   :CNI-<hash>                      hash = sha512(network + containerID), 28 chars in all
 *   -A CNI-<hash> -d <subnet> -m comment --comment "name: \"<net>\" id: \"<cid>\"" -j ACCEPT
 *   -A CNI-<hash> ! -d 224.0.0.0/4 (ff00::/8) -m comment --comment "…" -j MASQUERADE
 *   -A POSTROUTING -s <ip>/32 (/128) -m comment --comment "…" -j CNI-<hash>
 *
 * Like the reference this layout ignores ifName: one chain per (network, container).
 * Teardown therefore finds everything from the owner alone: every rule jumping to the
 * container's chain, then the chain (the plugins#810 fix; no addresses needed).
 *
 * Processes per operation and per address family: setup = 1 read (`iptables-save -t nat`)
 * + 1 write (`iptables-restore --noflush -w`, skipped when all is in place); teardown = 1 read
 * + 1 write (none when nothing is there), over both families when the addresses are unknown;
 * check = 1 read.
 */
import { CniError, ErrCode } from '../skel/errors';
import { type Family, formatCidr, networkOf, parseCidr } from '../ip/cidr';
import type { MasqSpec, NetfilterBackend, Owner } from './backend';
import { assertPrintable, type BackendOptions, type MasqAddr, MULTICAST, netfilterError, onPath, parseMasqAddresses } from './common';
import { chainName, iptablesComment } from './names';
import { IPT_TOOLS, forEachInstalledFamily, readThenApply, saveTable, splitSaveLine } from './ipt-save';
import type { Attachment } from '../skel/gc';
import { staleContainers } from './gc';

/** One `-A` line of iptables-save, with the parts we look at. */
export interface SaveRule {
  chain: string;
  /** The line as iptables-save printed it. */
  line: string;
  source?: string;
  dest?: string;
  destNegated: boolean;
  comment?: string;
  target?: string;
}

export interface NatTable {
  chains: Set<string>;
  rules: SaveRule[];
}

// ---------------------------------------------------------------------------------------------
// Pure builders and parsers


/** Quotes a word for iptables-restore the way iptables-save does. */
export function quoteRestoreWord(s: string): string {
  return /^[^\s"\\']+$/.test(s) ? s : `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Canonical "ip/prefix" (host bits cleared) or undefined. A bare address gets /32 or /128. */
function canonNet(s: string): string | undefined {
  const c = parseCidr(s.includes('/') ? s : `${s}/${s.includes(':') ? 128 : 32}`);
  return c ? formatCidr(networkOf(c)) : undefined;
}

/** Parses the nat table out of `iptables-save -t nat` (or a whole iptables-save). */
export function parseIptablesSave(text: string): NatTable {
  const out: NatTable = { chains: new Set(), rules: [] };
  let inNat = false;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.startsWith('*')) inNat = line === '*nat';
    if (!inNat) continue;
    if (line.startsWith(':')) {
      out.chains.add(line.slice(1).split(' ')[0]!);
      continue;
    }
    if (!line.startsWith('-A ')) continue;
    const w = splitSaveLine(line);
    const rule: SaveRule = { chain: w[1]!, line, destNegated: false };
    for (let i = 2; i < w.length; i++) {
      const neg = w[i - 1] === '!';
      switch (w[i]) {
        case '-s':
        case '--source':
          rule.source = canonNet(w[++i] ?? '');
          break;
        case '-d':
        case '--destination':
          rule.dest = canonNet(w[++i] ?? '');
          rule.destNegated = neg;
          break;
        case '--comment':
          rule.comment = w[++i];
          break;
        case '-j':
        case '--jump':
        case '-g':
        case '--goto':
          rule.target = w[++i];
          break;
      }
    }
    out.rules.push(rule);
  }
  return out;
}

const hostNet = (a: MasqAddr): string => `${a.ip}/${a.family === 4 ? 32 : 128}`;

/** The chain's own rules setup wants, in order: ACCEPT per subnet, then MASQUERADE. */
function chainRuleLines(chain: string, comment: string, family: Family, subnets: readonly string[]): string[] {
  const c = quoteRestoreWord(comment);
  return [
    ...subnets.map((s) => `-A ${chain} -d ${s} -m comment --comment ${c} -j ACCEPT`),
    `-A ${chain} ! -d ${MULTICAST[family]} -m comment --comment ${c} -j MASQUERADE`,
  ];
}

function isMasqRule(r: SaveRule, chain: string, family: Family): boolean {
  return r.chain === chain && r.target === 'MASQUERADE' && r.destNegated && r.dest === MULTICAST[family];
}

function isAcceptRule(r: SaveRule, chain: string, subnet: string): boolean {
  return r.chain === chain && r.target === 'ACCEPT' && !r.destNegated && r.dest === subnet;
}

/** A POSTROUTING jump for this address into the chain (any comment: older versions count). */
function isJumpRule(r: SaveRule, chain: string, a: MasqAddr): boolean {
  return r.chain === 'POSTROUTING' && r.target === chain && (r.source === hostNet(a) || r.source === a.subnet);
}

/**
 * The iptables-restore input that brings one family's nat table to what setup wants, given
 * what is there; undefined when everything is in place. Additive like the reference: rules of
 * the same chain for other addresses (another interface of the container) are kept.
 */
export function iptSetupScript(owner: Owner, family: Family, addrs: readonly MasqAddr[], nat: NatTable): string | undefined {
  assertPrintable('network name', owner.network);
  assertPrintable('container ID', owner.containerID);
  const chain = chainName(owner.network, owner.containerID);
  const comment = iptablesComment(owner.network, owner.containerID);
  const mine = addrs.filter((a) => a.family === family);
  const subnets = [...new Set(mine.map((a) => a.subnet))];
  const lines: string[] = [];

  const existing = nat.rules.filter((r) => r.chain === chain);
  const chainOk =
    nat.chains.has(chain) &&
    subnets.every((s) => existing.some((r) => isAcceptRule(r, chain, s))) &&
    existing.some((r) => isMasqRule(r, chain, family)) &&
    // ACCEPTs must come before the MASQUERADE or they do nothing.
    existing.findIndex((r) => isMasqRule(r, chain, family)) >
      Math.max(-1, ...subnets.map((s) => existing.findIndex((r) => isAcceptRule(r, chain, s))));
  if (!chainOk) {
    // Declaring an existing chain under --noflush empties it; write it back whole: the ACCEPTs
    // already there (other interfaces, older setups), the new ones, then one MASQUERADE.
    const keptAccepts = existing
      .filter((r) => r.target === 'ACCEPT' && !r.destNegated && r.dest !== undefined && !subnets.includes(r.dest))
      .map((r) => r.dest!);
    const others = existing.filter((r) => r.target !== 'ACCEPT' && !isMasqRule(r, chain, family));
    lines.push(`:${chain} - [0:0]`);
    lines.push(...chainRuleLines(chain, comment, family, [...keptAccepts, ...subnets]).slice(0, -1));
    lines.push(...others.map((r) => r.line));
    lines.push(chainRuleLines(chain, comment, family, [])[0]!);
  }
  for (const a of mine) {
    if (nat.rules.some((r) => isJumpRule(r, chain, a))) continue;
    lines.push(`-A POSTROUTING -s ${hostNet(a)} -m comment --comment ${quoteRestoreWord(comment)} -j ${chain}`);
  }
  if (lines.length === 0) return undefined;
  return ['*nat', ...lines, 'COMMIT', ''].join('\n');
}

/**
 * The iptables-restore input that removes the owner's chain and every rule jumping to it;
 * undefined when there is nothing. The deletes reuse iptables-save's own words for the rule.
 */
export function iptTeardownScript(owner: Owner, nat: NatTable): string | undefined {
  return natScript(iptTeardownLines(owner.network, owner.containerID, nat));
}

/** The restore lines that remove one container's chain and every rule jumping to it. */
function iptTeardownLines(network: string, containerID: string, nat: NatTable): string[] {
  const chain = chainName(network, containerID);
  const lines = nat.rules.filter((r) => r.target === chain && r.chain !== chain).map((r) => r.line.replace(/^-A /, '-D '));
  if (nat.chains.has(chain)) lines.push(`-F ${chain}`, `-X ${chain}`);
  return lines;
}

const natScript = (lines: string[]): string | undefined => (lines.length ? ['*nat', ...lines, 'COMMIT', ''].join('\n') : undefined);

/**
 * The GC input for one family: the teardown of every container this network's comments name
 * that has no valid attachment on any interface (the layout has no interface: one chain per
 * network and container). Undefined when there is nothing.
 */
export function iptMasqGcScript(nat: NatTable, network: string, valid: readonly Attachment[]): string | undefined {
  const stale = staleContainers(nat.rules.map((r) => r.comment), network, valid);
  return natScript(stale.flatMap((cid) => iptTeardownLines(network, cid, nat)));
}

/** What setup would have made for this family's addresses that is not in the table. */
export function iptMissing(owner: Owner, family: Family, addrs: readonly MasqAddr[], nat: NatTable): string[] {
  const chain = chainName(owner.network, owner.containerID);
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const mine = addrs.filter((a) => a.family === family);
  if (mine.length === 0) return [];
  if (!nat.chains.has(chain)) return [`${tool} nat chain ${chain} does not exist`];
  const missing: string[] = [];
  for (const s of new Set(mine.map((a) => a.subnet))) {
    if (!nat.rules.some((r) => isAcceptRule(r, chain, s))) missing.push(`${tool} ${chain}: no ACCEPT for ${s}`);
  }
  if (!nat.rules.some((r) => isMasqRule(r, chain, family))) missing.push(`${tool} ${chain}: no MASQUERADE rule`);
  for (const a of mine) {
    if (!nat.rules.some((r) => isJumpRule(r, chain, a))) missing.push(`${tool} POSTROUTING: no jump from ${a.ip} to ${chain}`);
  }
  return missing;
}

// ---------------------------------------------------------------------------------------------
// The backend

/** The families to work on: those of the addresses, or both when none are known. */
function familiesOf(addrs: readonly MasqAddr[]): Family[] {
  if (addrs.length === 0) return [4, 6];
  return ([4, 6] as const).filter((f) => addrs.some((a) => a.family === f));
}

export class IptablesBackend implements NetfilterBackend {
  readonly name = 'iptables' as const;

  constructor(private readonly opts: BackendOptions = {}) {}

  /** One read of a family's nat table; a table the kernel does not have reads as empty. */
  async readNat(family: Family): Promise<NatTable> {
    return parseIptablesSave(await saveTable(family, 'nat', this.opts.netns));
  }

  /**
   * Reads, builds the restore input from what it read and applies it. If the restore fails
   * (a rule it meant to delete vanished in a concurrent DEL), it reads and tries once more.
   */
  private readThenApply(family: Family, build: (nat: NatTable) => string | undefined): Promise<void> {
    return readThenApply(family, this.opts.netns, () => this.readNat(family), build);
  }

  async setupMasq(spec: MasqSpec): Promise<void> {
    const addrs = parseMasqAddresses(spec.addresses);
    try {
      for (const f of ([4, 6] as const).filter((f) => addrs.some((a) => a.family === f))) {
        await this.readThenApply(f, (nat) => iptSetupScript(spec, f, addrs, nat));
      }
    } catch (e) {
      throw netfilterError(`failed to set up masquerade (iptables) for ${spec.containerID}`, e);
    }
  }

  async teardownMasq(spec: MasqSpec): Promise<void> {
    const addrs = parseMasqAddresses(spec.addresses);
    // Every family is tried, at once, even if one fails, so one failure leaves no other rules
    // behind. With no addresses both are searched; a family whose tools are not installed has none.
    const families = familiesOf(addrs).filter((f) => addrs.length > 0 || onPath(IPT_TOOLS[f].save));
    const settled = await Promise.allSettled(families.map((f) => this.readThenApply(f, (nat) => iptTeardownScript(spec, nat))));
    const errors = settled.flatMap((r, i) =>
      r.status === 'rejected' ? [netfilterError(`failed to tear down masquerade (${families[i] === 4 ? 'iptables' : 'ip6tables'}) for ${spec.containerID}`, r.reason).message] : [],
    );
    if (errors.length > 0) throw new CniError(ErrCode.Internal, errors.join('; '));
  }

  async gcMasq(network: string, valid: readonly Attachment[]): Promise<void> {
    assertPrintable('network name', network);
    await forEachInstalledFamily(
      (tool) => `failed to garbage-collect masquerade rules (${tool}) of network ${network}`,
      (f) => this.readThenApply(f, (nat) => iptMasqGcScript(nat, network, valid)),
    );
  }

  async checkMasq(spec: MasqSpec): Promise<void> {
    const addrs = parseMasqAddresses(spec.addresses);
    const missing: string[] = [];
    for (const f of familiesOf(addrs)) {
      if (!addrs.some((a) => a.family === f)) continue;
      let nat: NatTable;
      try {
        nat = await this.readNat(f);
      } catch (e) {
        throw netfilterError('failed to read iptables masquerade rules', e);
      }
      missing.push(...iptMissing(spec, f, addrs, nat));
    }
    if (missing.length > 0) {
      throw new CniError(ErrCode.Internal, `masquerade (iptables) for ${spec.containerID} is incomplete: ${missing.join('; ')}`);
    }
  }
}
