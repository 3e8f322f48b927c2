/**
 * The iptables driver's firewall layout, the reference's (plugins:plugins/meta/firewall/
 * iptables.go, ingresspolicy.go), filter table of iptables / ip6tables:
 *
 *   FORWARD:               -m comment --comment "CNI firewall plugin rules (ingressPolicy: P)" -j CNI-ISOLATION-STAGE-1  (first; not for open)
 *                          -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD
 *   CNI-FORWARD:           -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN  (first)
 *                          -d <ip>/32 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "name: \"<net>\" id: \"<cid>\"" -j ACCEPT
 *                          -s <ip>/32 -m comment --comment "name: \"<net>\" id: \"<cid>\"" -j ACCEPT
 *   CNI-ISOLATION-STAGE-1: -i <br> ! -o <br> -j CNI-ISOLATION-STAGE-2
 *                          -i <br> -o <br> -j DROP          (isolated only)
 *                          -j RETURN
 *   CNI-ISOLATION-STAGE-2: -o <br> -j DROP
 *                          -j RETURN
 *
 * Difference: our per-container accepts carry the owner's comment so DEL finds them by
 * container ID (no prevResult needed; never another container's rule with the same IP). The
 * reference's uncommented rules for the prevResult's addresses are removed too, so a container
 * set up by the reference is cleaned by us; the reference's DEL cannot match our commented
 * rules, though. `isolated` relies on br_netfilter (bridge-nf-call-iptables=1), as Docker's
 * icc=false does: traffic between two ports of one bridge is otherwise never seen by FORWARD.
 * Pure.
 */
import type { Family } from '../../ip/cidr';
import type { Attachment } from '../../skel/gc';
import type { FirewallSpec, OwnerHint } from '../driver';
import { assertOwner, assertPrintable, type ContainerAddr, containerAddrs, presentFamilies } from '../common';
import { iptablesComment } from '../names';
import { staleContainers } from '../gc';
import { deleteLine, negated, opt, quoteRestoreWord, type SavedRule, type SavedTable } from './save';
import type { IptLayout } from './driver';

export const FORWARD_CHAIN = 'CNI-FORWARD';
export const STAGE1 = 'CNI-ISOLATION-STAGE-1';
export const STAGE2 = 'CNI-ISOLATION-STAGE-2';
const FORWARD_COMMENT = 'CNI firewall plugin rules';
const ADMIN_COMMENT = 'CNI firewall plugin admin overrides';
const policyComment = (p: string): string => `CNI firewall plugin rules (ingressPolicy: ${p})`;
const q = quoteRestoreWord;
const hostNet = (a: ContainerAddr): string => `${a.ip}/${a.family === 4 ? 32 : 128}`;

const isInAccept = (r: SavedRule, a: ContainerAddr): boolean =>
  r.chain === FORWARD_CHAIN && r.target === 'ACCEPT' && r.dest === hostNet(a) && r.words.includes('RELATED,ESTABLISHED');
const isOutAccept = (r: SavedRule, a: ContainerAddr): boolean =>
  r.chain === FORWARD_CHAIN && r.target === 'ACCEPT' && r.source === hostNet(a) && r.dest === undefined;

const isStage1Jump = (r: SavedRule, br: string): boolean =>
  r.chain === STAGE1 && r.target === STAGE2 && opt(r.words, '-i') === br && opt(r.words, '-o') === br && negated(r.words, '-o') && !negated(r.words, '-i');
const isStage1Drop = (r: SavedRule, br: string): boolean =>
  r.chain === STAGE1 && r.target === 'DROP' && opt(r.words, '-i') === br && opt(r.words, '-o') === br && !negated(r.words, '-o');
const isStage2Drop = (r: SavedRule, br: string): boolean =>
  r.chain === STAGE2 && r.target === 'DROP' && opt(r.words, '-o') === br && opt(r.words, '-i') === undefined && !negated(r.words, '-o');
const isReturn = (r: SavedRule, chain: string): boolean => r.chain === chain && r.target === 'RETURN' && r.words.length <= 6;

function validate(spec: FirewallSpec): void {
  containerAddrs(spec.addresses);
  assertOwner(spec);
  assertPrintable('admin chain name', spec.adminChain);
  if (spec.bridge !== undefined) assertPrintable('bridge name', spec.bridge);
}

/** The lines that bring one family's filter table to what setup wants. */
export function firewallSetupLines(spec: FirewallSpec, family: Family, filter: SavedTable): string[] {
  validate(spec);
  const addrs = containerAddrs(spec.addresses).filter((a) => a.family === family);
  const comment = q(iptablesComment(spec.network, spec.containerID));
  const lines: string[] = [];
  const declare = (c: string): void => {
    if (!filter.chains.has(c)) lines.push(`:${c} - [0:0]`);
  };
  const has = (pred: (r: SavedRule) => boolean): boolean => filter.rules.some(pred);
  if (addrs.length > 0) {
    declare(FORWARD_CHAIN);
    declare(spec.adminChain);
    if (!has((r) => r.chain === 'FORWARD' && r.target === FORWARD_CHAIN)) lines.push(`-I FORWARD 1 -m comment --comment ${q(FORWARD_COMMENT)} -j ${FORWARD_CHAIN}`);
    if (!has((r) => r.chain === FORWARD_CHAIN && r.target === spec.adminChain)) {
      lines.push(`-I ${FORWARD_CHAIN} 1 -m comment --comment ${q(ADMIN_COMMENT)} -j ${spec.adminChain}`);
    }
    for (const a of addrs) {
      if (!has((r) => isInAccept(r, a))) {
        lines.push(`-A ${FORWARD_CHAIN} -d ${hostNet(a)} -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ${comment} -j ACCEPT`);
      }
      if (!has((r) => isOutAccept(r, a))) lines.push(`-A ${FORWARD_CHAIN} -s ${hostNet(a)} -m comment --comment ${comment} -j ACCEPT`);
    }
  }
  if (spec.policy !== 'open' && spec.bridge) {
    const br = spec.bridge;
    const pc = q(policyComment(spec.policy));
    declare(STAGE1);
    declare(STAGE2);
    // Inserted after the CNI-FORWARD jump above, so it ends up first: isolation before accepts.
    if (!has((r) => r.chain === 'FORWARD' && r.target === STAGE1)) lines.push(`-I FORWARD 1 -m comment --comment ${pc} -j ${STAGE1}`);
    if (!has((r) => isStage1Jump(r, br))) lines.push(`-I ${STAGE1} 1 -i ${br} ! -o ${br} -m comment --comment ${pc} -j ${STAGE2}`);
    if (spec.policy === 'isolated' && !has((r) => isStage1Drop(r, br))) lines.push(`-I ${STAGE1} 1 -i ${br} -o ${br} -m comment --comment ${pc} -j DROP`);
    if (!has((r) => isReturn(r, STAGE1))) lines.push(`-A ${STAGE1} -m comment --comment ${pc} -j RETURN`);
    if (!has((r) => isStage2Drop(r, br))) lines.push(`-I ${STAGE2} 1 -o ${br} -m comment --comment ${pc} -j DROP`);
    if (!has((r) => isReturn(r, STAGE2))) lines.push(`-A ${STAGE2} -m comment --comment ${pc} -j RETURN`);
  }
  return lines;
}

/** The owner's accepts (by comment) and the reference's uncommented accepts for the given addresses. */
function ownerAccepts(owner: Pick<OwnerHint, 'network' | 'containerID' | 'addresses'>, family: Family, filter: SavedTable): SavedRule[] {
  const comment = iptablesComment(owner.network, owner.containerID);
  const addrs = containerAddrs(owner.addresses ?? []).filter((a) => a.family === family);
  return filter.rules.filter(
    (r) => r.chain === FORWARD_CHAIN && (r.comment === comment || (r.comment === undefined && addrs.some((a) => isInAccept(r, a) || isOutAccept(r, a)))),
  );
}

/** What setup would have made that is missing. */
export function firewallMissing(spec: FirewallSpec, family: Family, filter: SavedTable): string[] {
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const addrs = containerAddrs(spec.addresses).filter((a) => a.family === family);
  const out: string[] = [];
  const has = (pred: (r: SavedRule) => boolean): boolean => filter.rules.some(pred);
  if (addrs.length > 0) {
    if (!has((r) => r.chain === 'FORWARD' && r.target === FORWARD_CHAIN)) out.push(`${tool} FORWARD: no jump to ${FORWARD_CHAIN}`);
    if (!has((r) => r.chain === FORWARD_CHAIN && r.target === spec.adminChain)) out.push(`${tool} ${FORWARD_CHAIN}: no jump to ${spec.adminChain}`);
    for (const a of addrs) {
      if (!has((r) => isInAccept(r, a))) out.push(`${tool} ${FORWARD_CHAIN}: no RELATED,ESTABLISHED accept to ${a.ip}`);
      if (!has((r) => isOutAccept(r, a))) out.push(`${tool} ${FORWARD_CHAIN}: no accept from ${a.ip}`);
    }
  }
  if (spec.policy !== 'open' && spec.bridge) {
    const br = spec.bridge;
    if (!has((r) => r.chain === 'FORWARD' && r.target === STAGE1)) out.push(`${tool} FORWARD: no jump to ${STAGE1}`);
    if (!has((r) => isStage1Jump(r, br))) out.push(`${tool} ${STAGE1}: no rule for bridge ${br}`);
    if (spec.policy === 'isolated' && !has((r) => isStage1Drop(r, br))) out.push(`${tool} ${STAGE1}: no same-bridge DROP for ${br}`);
    if (!has((r) => isStage2Drop(r, br))) out.push(`${tool} ${STAGE2}: no DROP for bridge ${br}`);
  }
  return out;
}

export const iptFirewall: IptLayout<FirewallSpec> = {
  table: 'filter',
  validate,
  /** The families of the addresses, and IPv4 for isolation without addresses. */
  families: (spec) => {
    const fs = presentFamilies(containerAddrs(spec.addresses));
    return fs.length === 0 && spec.policy !== 'open' ? [4] : fs;
  },
  setup: firewallSetupLines,
  missing: firewallMissing,
  teardownFamilies: () => [4, 6],
  teardown: (owner, family, filter) => ownerAccepts(owner, family, filter).map(deleteLine),
  /**
   * The accepts of every container this network's comments name in CNI-FORWARD that has no
   * valid attachment on any interface (the comment has no interface). The reference's
   * uncommented accepts name no owner and stay; so do the shared chains and the per-bridge
   * isolation rules, as on DEL.
   */
  gc: (network: string, valid: readonly Attachment[], family, filter) => {
    const comments = filter.rules.filter((r) => r.chain === FORWARD_CHAIN).map((r) => r.comment);
    return staleContainers(comments, network, valid).flatMap((containerID) => ownerAccepts({ network, containerID }, family, filter).map(deleteLine));
  },
};
