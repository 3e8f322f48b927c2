/**
 * The iptables driver's masquerade layout, the reference's (plugins:pkg/ip/
 * ipmasq_iptables_linux.go), nat table of iptables (IPv4) and ip6tables (IPv6):
 *
 *   :CNI-<hash>                      hash = sha512(network + containerID), 28 chars in all
 *   -A CNI-<hash> -d <subnet> -m comment --comment "name: \"<net>\" id: \"<cid>\"" -j ACCEPT
 *   -A CNI-<hash> ! -d 224.0.0.0/4 (ff00::/8) -m comment --comment "…" -j MASQUERADE
 *   -A POSTROUTING -s <ip>/32 (/128) -m comment --comment "…" -j CNI-<hash>
 *
 * Like the reference this layout ignores ifName: one chain per (network, container). Teardown
 * therefore finds everything from the owner alone: every rule jumping to the container's chain,
 * then the chain (the plugins#810 fix; no addresses needed). Pure.
 */
import type { Family } from '../../ip/cidr';
import type { Attachment } from '../../skel/gc';
import type { MasqSpec, OwnerHint } from '../driver';
import { assertOwner, type ContainerAddr, containerAddrs, familiesOf, masqAddrs, MULTICAST, presentFamilies } from '../common';
import { chainName, iptablesComment } from '../names';
import { staleContainers } from '../gc';
import { deleteLine, quoteRestoreWord, type SavedRule, type SavedTable } from './save';
import type { IptLayout } from './driver';

const hostNet = (a: ContainerAddr): string => `${a.ip}/${a.family === 4 ? 32 : 128}`;

/** The chain's own rules setup wants, in order: ACCEPT per subnet, then MASQUERADE. */
function chainRuleLines(chain: string, comment: string, family: Family, subnets: readonly string[]): string[] {
  const c = quoteRestoreWord(comment);
  return [
    ...subnets.map((s) => `-A ${chain} -d ${s} -m comment --comment ${c} -j ACCEPT`),
    `-A ${chain} ! -d ${MULTICAST[family]} -m comment --comment ${c} -j MASQUERADE`,
  ];
}

const isMasqRule = (r: SavedRule, chain: string, family: Family): boolean =>
  r.chain === chain && r.target === 'MASQUERADE' && r.destNegated && r.dest === MULTICAST[family];
const isAcceptRule = (r: SavedRule, chain: string, subnet: string): boolean =>
  r.chain === chain && r.target === 'ACCEPT' && !r.destNegated && r.dest === subnet;
/** A POSTROUTING jump for this address into the chain (any comment: older versions count). */
const isJumpRule = (r: SavedRule, chain: string, a: ContainerAddr): boolean =>
  r.chain === 'POSTROUTING' && r.target === chain && (r.source === hostNet(a) || r.source === a.subnet);

/**
 * The lines that bring one family's nat table to what setup wants, given what is there; none
 * when everything is in place. Additive like the reference: rules of the same chain for other
 * addresses (another interface of the container) are kept.
 */
function setup(spec: MasqSpec, family: Family, nat: SavedTable): string[] {
  validate(spec);
  const chain = chainName(spec.network, spec.containerID);
  const comment = iptablesComment(spec.network, spec.containerID);
  const mine = masqAddrs(spec.addresses).filter((a) => a.family === family);
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
  return lines;
}

/** The lines that remove one container's chain and every rule jumping to it. */
function teardownLines(network: string, containerID: string, nat: SavedTable): string[] {
  const chain = chainName(network, containerID);
  const lines = nat.rules.filter((r) => r.target === chain && r.chain !== chain).map(deleteLine);
  if (nat.chains.has(chain)) lines.push(`-F ${chain}`, `-X ${chain}`);
  return lines;
}

/** What setup would have made for this family's addresses that is not in the table. */
function missing(spec: MasqSpec, family: Family, nat: SavedTable): string[] {
  const chain = chainName(spec.network, spec.containerID);
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const mine = masqAddrs(spec.addresses).filter((a) => a.family === family);
  if (mine.length === 0) return [];
  if (!nat.chains.has(chain)) return [`${tool} nat chain ${chain} does not exist`];
  const out: string[] = [];
  for (const s of new Set(mine.map((a) => a.subnet))) {
    if (!nat.rules.some((r) => isAcceptRule(r, chain, s))) out.push(`${tool} ${chain}: no ACCEPT for ${s}`);
  }
  if (!nat.rules.some((r) => isMasqRule(r, chain, family))) out.push(`${tool} ${chain}: no MASQUERADE rule`);
  for (const a of mine) {
    if (!nat.rules.some((r) => isJumpRule(r, chain, a))) out.push(`${tool} POSTROUTING: no jump from ${a.ip} to ${chain}`);
  }
  return out;
}

function validate(spec: MasqSpec): void {
  masqAddrs(spec.addresses);
  assertOwner(spec);
}

export const iptMasq: IptLayout<MasqSpec> = {
  table: 'nat',
  validate,
  families: (spec) => presentFamilies(masqAddrs(spec.addresses)),
  setup,
  missing,
  /** Only the families of the addresses when they are known, else both. */
  teardownFamilies: (owner: OwnerHint) => familiesOf(containerAddrs(owner.addresses ?? [])),
  teardown: (owner, _family, nat) => teardownLines(owner.network, owner.containerID, nat),
  /**
   * The teardown of every container this network's comments name that has no valid attachment
   * on any interface (the layout has no interface: one chain per network and container).
   */
  gc: (network: string, valid: readonly Attachment[], _family, nat) =>
    staleContainers(nat.rules.map((r) => r.comment), network, valid).flatMap((cid) => teardownLines(network, cid, nat)),
};
