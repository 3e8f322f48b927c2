/**
 * The nftables driver's firewall layout, in a table of ours (the reference has no nftables
 * firewall backend) with the iptables layout's semantics:
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
 * override foreign policy. Per-bridge isolation rules stay on DEL, as in the reference. Pure.
 */
import { CniError, ErrCode } from '../../skel/errors';
import type { Attachment } from '../../skel/gc';
import type { FirewallSpec, Owner } from '../driver';
import { assertOwner, containerAddrs } from '../common';
import { nftComment, nftInstanceHash } from '../names';
import { staleNftInstance } from '../gc';
import { deleteRuleLine, type NftRule, type NftRuleset, ruleJump, rulesOf } from './json';
import type { NftLayout } from './driver';

export const NFT_FIREWALL_TABLE = 'cni_ts_firewall';
const T = `inet ${NFT_FIREWALL_TABLE}`;
const TABLE_COMMENT = 'cni-ts firewall plugin: per-container forward accepts and bridge isolation';

const stage1Comment = (br: string): string => `isolation ${br}: leaving for another interface`;
const dropComment = (br: string): string => `isolated ${br}: same bridge`;
const stage2Comment = (br: string): string => `isolation ${br}: entering`;

function validate(spec: FirewallSpec): void {
  containerAddrs(spec.addresses);
  assertOwner(spec);
  if (spec.bridge !== undefined && !/^[^\s"\\/:]{1,15}$/.test(spec.bridge)) {
    throw new CniError(ErrCode.InvalidConfig, `invalid bridge name ${JSON.stringify(spec.bridge)} in prevResult`);
  }
}

/** The owner's rules in the containers chain (by comment prefix). */
export function ownerRules(rs: NftRuleset, owner: Owner): NftRule[] {
  const prefix = nftInstanceHash(owner.network, owner.ifName, owner.containerID);
  return rulesOf(rs, T, 'containers').filter((r) => r.comment?.startsWith(prefix));
}

const hasComment = (rs: NftRuleset, chain: string, comment: string): boolean => rulesOf(rs, T, chain).some((r) => r.comment === comment);

/** The setup lines. */
export function firewallSetupLines(spec: FirewallSpec, rs: NftRuleset): string[] {
  validate(spec);
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
    ...ownerRules(rs, spec).map(deleteRuleLine),
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
  return lines;
}

/** What setup would have made that is missing. */
export function firewallMissing(spec: FirewallSpec, rs: NftRuleset): string[] {
  if (!rs.tables.has(T)) return [`table ${T} does not exist`];
  const out: string[] = [];
  const jumps = rulesOf(rs, T, 'forward').map(ruleJump);
  for (const c of ['isolation_stage_1', 'admin', 'containers']) if (!jumps.includes(c)) out.push(`${T} forward: no jump to ${c}`);
  const mine = ownerRules(rs, spec);
  const text = (r: NftRule): string => JSON.stringify(r.expr);
  for (const a of containerAddrs(spec.addresses)) {
    const field = (f: string): ((r: NftRule) => boolean) => (r) => text(r).includes(`"field":"${f}"}},"right":"${a.ip}"`) && text(r).includes('"accept"');
    if (!mine.some(field('daddr'))) out.push(`${T} containers: no established accept to ${a.ip}`);
    if (!mine.some(field('saddr'))) out.push(`${T} containers: no accept from ${a.ip}`);
  }
  if (spec.policy !== 'open' && spec.bridge) {
    const br = spec.bridge;
    if (!hasComment(rs, 'isolation_stage_1', stage1Comment(br))) out.push(`${T} isolation_stage_1: no rule for ${br}`);
    if (spec.policy === 'isolated' && !hasComment(rs, 'isolation_stage_1', dropComment(br))) out.push(`${T} isolation_stage_1: no same-bridge drop for ${br}`);
    if (!hasComment(rs, 'isolation_stage_2', stage2Comment(br))) out.push(`${T} isolation_stage_2: no drop for ${br}`);
  }
  return out;
}

export const nftFirewall: NftLayout<FirewallSpec> = {
  tables: [T],
  validate,
  setup: firewallSetupLines,
  missing: firewallMissing,
  owned: (owner, rs) => ownerRules(rs, owner),
  /** This network's rules in the containers chain whose attachment is not valid; isolation rules stay, as on DEL. */
  stale: (network: string, valid: readonly Attachment[], rs) => {
    const stale = staleNftInstance(network, valid);
    return rulesOf(rs, T, 'containers').filter((r) => stale(r.comment));
  },
};
