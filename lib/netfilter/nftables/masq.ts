/**
 * The nftables driver's masquerade layout, the reference's (plugins:pkg/ip/
 * ipmasq_nftables_linux.go), so either implementation can remove what the other made:
 *
 *   table inet cni_plugins_masquerade
 *     chain postrouting  (nat, hook postrouting, priority srcnat), rewritten on every setup:
 *         ip daddr == 224.0.0.0/4 return; ip6 daddr == ff00::/8 return; goto masq_checks
 *     chain masq_checks, one rule per container address:
 *         ip saddr == <ip> ip daddr != <subnet> masquerade comment "<instance hash>, net: …, if: …, id: …"
 *
 * The comment starts with a hash of (network, ifName, containerID), so a rule is found by its
 * owner alone: teardown needs no addresses (the plugins#810 fix) and never touches another
 * container's rule even when both had the same IP. Pure.
 */
import { canonicalIP, parseCidr, formatCidr, networkOf } from '../../ip/cidr';
import type { Attachment } from '../../skel/gc';
import type { MasqSpec, Owner } from '../driver';
import { assertOwner, type ContainerAddr, masqAddrs, MULTICAST } from '../common';
import { nftComment, nftInstanceHash } from '../names';
import { staleNftInstance } from '../gc';
import { deleteRuleLine, type NftRule, type NftRuleset, ruleJump, rulesOf } from './json';
import type { NftLayout } from './driver';

export const NFT_TABLE = 'cni_plugins_masquerade';
export const NFT_MASQ_CHAIN = 'masq_checks';
export const NFT_POSTROUTING_CHAIN = 'postrouting';
// The reference sets these comments; `add` of an existing table or chain must not differ from it.
const TABLE_COMMENT = 'Masquerading for plugins from github.com/containernetworking/plugins';
const MASQ_CHAIN_COMMENT = 'Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet';

const T = `inet ${NFT_TABLE}`;

/** The masq_checks rule body for one address, in the reference's words. */
export function nftMasqRule(a: ContainerAddr): string {
  const p = a.family === 4 ? 'ip' : 'ip6';
  return `${p} saddr == ${a.ip} ${p} daddr != ${a.subnet} masquerade`;
}

/** The attachment's rules in masq_checks: their comment starts with its instance hash. */
export function findOwnerRules(rs: NftRuleset, owner: Owner): NftRule[] {
  const prefix = nftInstanceHash(owner.network, owner.ifName, owner.containerID);
  return rulesOf(rs, T, NFT_MASQ_CHAIN).filter((r) => r.comment?.startsWith(prefix));
}

/**
 * The setup lines: ensure table and chains, rewrite postrouting, delete the attachment's old
 * rules (by handle) and add one rule per address.
 */
function setup(spec: MasqSpec, rs: NftRuleset): string[] {
  validate(spec);
  const comment = nftComment(spec.network, spec.ifName, spec.containerID);
  return [
    `add table ${T} { comment "${TABLE_COMMENT}" ; }`,
    `add chain ${T} ${NFT_MASQ_CHAIN} { comment "${MASQ_CHAIN_COMMENT}" ; }`,
    // postrouting jumps to masq_checks, so it comes after it.
    `add chain ${T} ${NFT_POSTROUTING_CHAIN} { type nat hook postrouting priority srcnat ; }`,
    `flush chain ${T} ${NFT_POSTROUTING_CHAIN}`,
    `add rule ${T} ${NFT_POSTROUTING_CHAIN} ip daddr == ${MULTICAST[4]} return`,
    `add rule ${T} ${NFT_POSTROUTING_CHAIN} ip6 daddr == ${MULTICAST[6]} return`,
    `add rule ${T} ${NFT_POSTROUTING_CHAIN} goto ${NFT_MASQ_CHAIN}`,
    ...findOwnerRules(rs, spec).map(deleteRuleLine),
    ...masqAddrs(spec.addresses).map((a) => `add rule ${T} ${NFT_MASQ_CHAIN} ${nftMasqRule(a)} comment "${comment}"`),
  ];
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

/** Everything setup would have made for these addresses that is not in the ruleset. */
function missing(spec: MasqSpec, rs: NftRuleset): string[] {
  if (!rs.tables.has(T)) return [`table ${T} does not exist`];
  const out: string[] = [];
  if (!rulesOf(rs, T, NFT_POSTROUTING_CHAIN).some((r) => ruleJump(r) === NFT_MASQ_CHAIN)) {
    out.push(`chain ${T} ${NFT_POSTROUTING_CHAIN} does not go to ${NFT_MASQ_CHAIN}`);
  }
  const have = findOwnerRules(rs, spec)
    .map(describeMasqRule)
    .filter((d): d is { ip: string; subnet: string } => d !== undefined);
  for (const a of masqAddrs(spec.addresses)) {
    if (!have.some((d) => d.ip === a.ip && d.subnet === a.subnet)) {
      out.push(`no masquerade rule for ${a.ip} (subnet ${a.subnet}) in ${T} ${NFT_MASQ_CHAIN}`);
    }
  }
  return out;
}

function validate(spec: MasqSpec): void {
  masqAddrs(spec.addresses);
  assertOwner(spec);
}

export const nftMasq: NftLayout<MasqSpec> = {
  tables: [T],
  validate,
  setup,
  missing,
  owned: (owner, rs) => findOwnerRules(rs, owner),
  /** This network's masq_checks rules whose attachment (the comment's instance hash) is not valid. */
  stale: (network: string, valid: readonly Attachment[], rs) => {
    const stale = staleNftInstance(network, valid);
    return rulesOf(rs, T, NFT_MASQ_CHAIN).filter((r) => stale(r.comment));
  },
};
