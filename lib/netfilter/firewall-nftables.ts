/**
 * Firewall rules with nftables, in a table of ours (the reference has no nftables firewall
 * backend) with the iptables layout's semantics:
 *
 *   table inet cni_ts_firewall
 *     chain forward (filter, hook forward, priority filter, policy accept), rewritten on setup:
 *         jump isolation_stage_1 ; jump admin ; jump containers
 *     chain admin                 left to the administrator (never written after creation)
 *     chain containers            per container address, comment "<instance hash>, net: …, id: …":
 *         ip daddr <ip> ct state established,related accept
 *         ip saddr <ip> accept
 *     chain isolation_stage_1     per bridge (same-bridge / isolated):
 *         iifname "<br>" oifname != "<br>" jump isolation_stage_2
 *         iifname "<br>" oifname "<br>" drop                        (isolated)
 *     chain isolation_stage_2     oifname "<br>" drop
 *
 * An accept here ends only this table's chain: another table's drop (say iptables-nft's
 * FORWARD policy DROP) still applies, so with nftables the accepts document intent rather than
 * override foreign policy. Per-bridge isolation rules stay on DEL, as in the reference.
 *
 * Processes: setup = 1 read (`nft -j list table inet cni_ts_firewall`) + 1 `nft -f -`;
 * teardown = 1 read + 1 write when the owner has rules; check = 1 read.
 */
import { run, CommandError } from '../exec/run';
import { CniError, ErrCode } from '../skel/errors';
import { assertPrintable, type BackendOptions, netfilterError } from './common';
import { nftComment, nftInstanceHash } from './names';
import { emptyRuleset, type NftRuleset, nftReadThenApply, parseNftJson, ruleJump } from './nft-json';
import { containerAddrs } from './portmap';
import type { FirewallBackend, FirewallSpec } from './firewall';
import type { Attachment } from '../skel/gc';
import { staleNftInstance } from './gc';

export const NFT_FIREWALL_TABLE = 'cni_ts_firewall';
const T = `inet ${NFT_FIREWALL_TABLE}`;
const TABLE_COMMENT = 'cni-ts firewall plugin: per-container forward accepts and bridge isolation';

const stage1Comment = (br: string): string => `isolation ${br}: leaving for another interface`;
const dropComment = (br: string): string => `isolated ${br}: same bridge`;
const stage2Comment = (br: string): string => `isolation ${br}: entering`;

function assertSpec(spec: FirewallSpec): void {
  for (const [what, s] of [['network name', spec.network], ['container ID', spec.containerID], ['interface name', spec.ifName]] as const) assertPrintable(what, s);
  if (spec.bridge !== undefined && !/^[^\s"\\/:]{1,15}$/.test(spec.bridge)) {
    throw new CniError(ErrCode.InvalidConfig, `invalid bridge name ${JSON.stringify(spec.bridge)} in prevResult`);
  }
}

/** The owner's rules in the containers chain (by comment prefix). */
export function ownerRules(rs: NftRuleset, spec: Pick<FirewallSpec, 'network' | 'ifName' | 'containerID'>): NftRuleset['rules'] {
  const prefix = nftInstanceHash(spec.network, spec.ifName, spec.containerID);
  return rs.rules.filter((r) => r.chain === 'containers' && r.comment?.startsWith(prefix));
}

const hasComment = (rs: NftRuleset, chain: string, comment: string): boolean => rs.rules.some((r) => r.chain === chain && r.comment === comment);

/** The setup transaction (pure). */
export function nftFirewallSetupScript(spec: FirewallSpec, rs: NftRuleset): string {
  assertSpec(spec);
  const comment = nftComment(spec.network, spec.ifName, spec.containerID);
  const lines = [
    `add table ${T} { comment "${TABLE_COMMENT}" ; }`,
    `add chain ${T} admin`,
    `add chain ${T} containers`,
    `add chain ${T} isolation_stage_1`,
    `add chain ${T} isolation_stage_2`,
    `add chain ${T} forward { type filter hook forward priority filter ; policy accept ; }`,
    `flush chain ${T} forward`,
    `add rule ${T} forward jump isolation_stage_1`,
    `add rule ${T} forward jump admin`,
    `add rule ${T} forward jump containers`,
    ...ownerRules(rs, spec).map((r) => `delete rule ${T} containers handle ${r.handle}`),
  ];
  for (const a of containerAddrs(spec.addresses)) {
    const p = a.family === 4 ? 'ip' : 'ip6';
    lines.push(`add rule ${T} containers ${p} daddr ${a.ip} ct state established,related accept comment "${comment}"`);
    lines.push(`add rule ${T} containers ${p} saddr ${a.ip} accept comment "${comment}"`);
  }
  if (spec.policy !== 'open' && spec.bridge) {
    const br = spec.bridge;
    if (!hasComment(rs, 'isolation_stage_1', stage1Comment(br))) {
      lines.push(`add rule ${T} isolation_stage_1 iifname "${br}" oifname != "${br}" jump isolation_stage_2 comment "${stage1Comment(br)}"`);
    }
    if (spec.policy === 'isolated' && !hasComment(rs, 'isolation_stage_1', dropComment(br))) {
      lines.push(`add rule ${T} isolation_stage_1 iifname "${br}" oifname "${br}" drop comment "${dropComment(br)}"`);
    }
    if (!hasComment(rs, 'isolation_stage_2', stage2Comment(br))) {
      lines.push(`add rule ${T} isolation_stage_2 oifname "${br}" drop comment "${stage2Comment(br)}"`);
    }
  }
  return lines.join('\n') + '\n';
}

const deleteContainerRules = (rules: NftRuleset['rules']): string | undefined =>
  rules.length ? rules.map((r) => `delete rule ${T} containers handle ${r.handle}`).join('\n') + '\n' : undefined;

/** The teardown transaction; undefined when the owner has no rules (pure). */
export function nftFirewallTeardownScript(spec: FirewallSpec, rs: NftRuleset): string | undefined {
  return deleteContainerRules(ownerRules(rs, spec));
}

/**
 * The GC transaction (pure): this network's rules in the containers chain whose attachment
 * (instance hash in the comment) is not valid. Isolation rules are per bridge and stay, as on DEL.
 */
export function nftFirewallGcScript(rs: NftRuleset, network: string, valid: readonly Attachment[]): string | undefined {
  const stale = staleNftInstance(network, valid);
  return deleteContainerRules(rs.rules.filter((r) => r.chain === 'containers' && stale(r.comment)));
}

/** What setup would have made that is missing (pure). */
export function nftFirewallMissing(spec: FirewallSpec, rs: NftRuleset): string[] {
  if (!rs.tables.has(T)) return [`table ${T} does not exist`];
  const missing: string[] = [];
  const jumps = rs.rules.filter((r) => r.chain === 'forward').map(ruleJump);
  for (const c of ['isolation_stage_1', 'admin', 'containers']) if (!jumps.includes(c)) missing.push(`${T} forward: no jump to ${c}`);
  const mine = ownerRules(rs, spec);
  const text = (r: NftRuleset['rules'][number]): string => JSON.stringify(r.expr);
  for (const a of containerAddrs(spec.addresses)) {
    const field = (f: string): ((r: NftRuleset['rules'][number]) => boolean) => (r) => text(r).includes(`"field":"${f}"}},"right":"${a.ip}"`) && text(r).includes('"accept"');
    if (!mine.some(field('daddr'))) missing.push(`${T} containers: no established accept to ${a.ip}`);
    if (!mine.some(field('saddr'))) missing.push(`${T} containers: no accept from ${a.ip}`);
  }
  if (spec.policy !== 'open' && spec.bridge) {
    const br = spec.bridge;
    if (!hasComment(rs, 'isolation_stage_1', stage1Comment(br))) missing.push(`${T} isolation_stage_1: no rule for ${br}`);
    if (spec.policy === 'isolated' && !hasComment(rs, 'isolation_stage_1', dropComment(br))) missing.push(`${T} isolation_stage_1: no same-bridge drop for ${br}`);
    if (!hasComment(rs, 'isolation_stage_2', stage2Comment(br))) missing.push(`${T} isolation_stage_2: no drop for ${br}`);
  }
  return missing;
}

export class NftablesFirewall implements FirewallBackend {
  readonly name = 'nftables' as const;
  constructor(private readonly opts: BackendOptions = {}) {}

  async read(): Promise<NftRuleset> {
    const argv = ['nft', '-j', 'list', 'table', 'inet', NFT_FIREWALL_TABLE];
    const r = await run(argv, { netns: this.opts.netns, nothrow: true });
    if (r.exitCode !== 0) {
      if (/No such file or directory/i.test(r.stderr)) return emptyRuleset();
      throw new CommandError(argv, r.exitCode, r.stderr, this.opts.netns);
    }
    return parseNftJson(r.stdout);
  }

  private readThenApply(build: (rs: NftRuleset) => string | undefined): Promise<void> {
    return nftReadThenApply(this.opts.netns, () => this.read(), build);
  }

  async setupFirewall(spec: FirewallSpec): Promise<void> {
    try {
      await this.readThenApply((rs) => nftFirewallSetupScript(spec, rs));
    } catch (e) {
      throw netfilterError(`failed to set up firewall rules (nftables) for ${spec.containerID}`, e);
    }
  }

  async checkFirewall(spec: FirewallSpec): Promise<void> {
    let rs: NftRuleset;
    try {
      rs = await this.read();
    } catch (e) {
      throw netfilterError('failed to read nftables firewall rules', e);
    }
    const missing = nftFirewallMissing(spec, rs);
    if (missing.length) throw new CniError(ErrCode.Internal, `firewall rules (nftables) for ${spec.containerID} are incomplete: ${missing.join('; ')}`);
  }

  async teardownFirewall(spec: FirewallSpec): Promise<void> {
    try {
      assertSpec(spec);
      await this.readThenApply((rs) => nftFirewallTeardownScript(spec, rs));
    } catch (e) {
      throw netfilterError(`failed to remove firewall rules (nftables) for ${spec.containerID}`, e);
    }
  }

  async gcFirewall(network: string, valid: readonly Attachment[]): Promise<void> {
    try {
      assertPrintable('network name', network);
      await this.readThenApply((rs) => nftFirewallGcScript(rs, network, valid));
    } catch (e) {
      throw netfilterError(`failed to garbage-collect firewall rules (nftables) of network ${network}`, e);
    }
  }
}
