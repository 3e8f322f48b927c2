/**
 * Firewall rules with iptables, in the reference's layout (plugins:plugins/meta/firewall/
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
 *
 * Processes per family: setup = 1 read (iptables-save -t filter) + 1 restore (none when all is
 * there); teardown = 1 read + 1 write when something is there; check = 1 read.
 */
import { CniError, ErrCode } from '../skel/errors';
import type { Family } from '../ip/cidr';
import { assertPrintable, type BackendOptions, netfilterError } from './common';
import { quoteRestoreWord } from './iptables';
import { iptablesComment } from './names';
import { addrOpt, commentOf, deleteLine, forEachInstalledFamily, negated, opt, parseSaveTable, readThenApply, saveTable, type SavedRule, type SavedTable, targetOf } from './ipt-save';
import type { Attachment } from '../skel/gc';
import { staleContainers } from './gc';
import { containerAddrs, type ContainerAddr } from './portmap';
import type { FirewallBackend, FirewallSpec } from './firewall';

export const FORWARD_CHAIN = 'CNI-FORWARD';
export const STAGE1 = 'CNI-ISOLATION-STAGE-1';
export const STAGE2 = 'CNI-ISOLATION-STAGE-2';
const FORWARD_COMMENT = 'CNI firewall plugin rules';
const ADMIN_COMMENT = 'CNI firewall plugin admin overrides';
const policyComment = (p: string): string => `CNI firewall plugin rules (ingressPolicy: ${p})`;
const q = quoteRestoreWord;
const hostNet = (a: ContainerAddr): string => `${a.ip}/${a.family === 4 ? 32 : 128}`;

const isInAccept = (r: SavedRule, a: ContainerAddr): boolean =>
  r.chain === FORWARD_CHAIN && targetOf(r) === 'ACCEPT' && addrOpt(r, '-d') === hostNet(a) && r.words.includes('RELATED,ESTABLISHED');
const isOutAccept = (r: SavedRule, a: ContainerAddr): boolean =>
  r.chain === FORWARD_CHAIN && targetOf(r) === 'ACCEPT' && addrOpt(r, '-s') === hostNet(a) && addrOpt(r, '-d') === undefined;

const isStage1Jump = (r: SavedRule, br: string): boolean =>
  r.chain === STAGE1 && targetOf(r) === STAGE2 && opt(r.words, '-i') === br && opt(r.words, '-o') === br && negated(r.words, '-o') && !negated(r.words, '-i');
const isStage1Drop = (r: SavedRule, br: string): boolean =>
  r.chain === STAGE1 && targetOf(r) === 'DROP' && opt(r.words, '-i') === br && opt(r.words, '-o') === br && !negated(r.words, '-o');
const isStage2Drop = (r: SavedRule, br: string): boolean =>
  r.chain === STAGE2 && targetOf(r) === 'DROP' && opt(r.words, '-o') === br && opt(r.words, '-i') === undefined && !negated(r.words, '-o');
const isReturn = (r: SavedRule, chain: string): boolean => r.chain === chain && targetOf(r) === 'RETURN' && r.words.length <= 6;

function assertSpec(spec: FirewallSpec): void {
  assertPrintable('network name', spec.network);
  assertPrintable('container ID', spec.containerID);
  assertPrintable('admin chain name', spec.adminChain);
  if (spec.bridge !== undefined) assertPrintable('bridge name', spec.bridge);
}

/** The restore input that brings one family's filter table to what setup wants (pure). */
export function iptFirewallSetupScript(spec: FirewallSpec, family: Family, filter: SavedTable): string | undefined {
  assertSpec(spec);
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
    if (!has((r) => r.chain === 'FORWARD' && targetOf(r) === FORWARD_CHAIN)) lines.push(`-I FORWARD 1 -m comment --comment ${q(FORWARD_COMMENT)} -j ${FORWARD_CHAIN}`);
    if (!has((r) => r.chain === FORWARD_CHAIN && targetOf(r) === spec.adminChain)) {
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
    if (!has((r) => r.chain === 'FORWARD' && targetOf(r) === STAGE1)) lines.push(`-I FORWARD 1 -m comment --comment ${pc} -j ${STAGE1}`);
    if (!has((r) => isStage1Jump(r, br))) lines.push(`-I ${STAGE1} 1 -i ${br} ! -o ${br} -m comment --comment ${pc} -j ${STAGE2}`);
    if (spec.policy === 'isolated' && !has((r) => isStage1Drop(r, br))) lines.push(`-I ${STAGE1} 1 -i ${br} -o ${br} -m comment --comment ${pc} -j DROP`);
    if (!has((r) => isReturn(r, STAGE1))) lines.push(`-A ${STAGE1} -m comment --comment ${pc} -j RETURN`);
    if (!has((r) => isStage2Drop(r, br))) lines.push(`-I ${STAGE2} 1 -o ${br} -m comment --comment ${pc} -j DROP`);
    if (!has((r) => isReturn(r, STAGE2))) lines.push(`-A ${STAGE2} -m comment --comment ${pc} -j RETURN`);
  }
  if (lines.length === 0) return undefined;
  return ['*filter', ...lines, 'COMMIT', ''].join('\n');
}

/**
 * The restore input that removes the owner's accepts (by comment) and the reference's
 * uncommented accepts for the given addresses (pure); undefined when there is nothing.
 */
export function iptFirewallTeardownScript(spec: FirewallSpec, family: Family, filter: SavedTable): string | undefined {
  return filterScript(ownerAccepts(spec, family, filter));
}

function ownerAccepts(spec: Pick<FirewallSpec, 'network' | 'containerID' | 'addresses'>, family: Family, filter: SavedTable): SavedRule[] {
  const owner = iptablesComment(spec.network, spec.containerID);
  const addrs = containerAddrs(spec.addresses).filter((a) => a.family === family);
  return filter.rules.filter(
    (r) => r.chain === FORWARD_CHAIN && (commentOf(r) === owner || (commentOf(r) === undefined && addrs.some((a) => isInAccept(r, a) || isOutAccept(r, a)))),
  );
}

const filterScript = (rules: SavedRule[]): string | undefined => (rules.length ? ['*filter', ...rules.map(deleteLine), 'COMMIT', ''].join('\n') : undefined);

/**
 * The GC input for one family (pure): the accepts of every container this network's comments
 * name in CNI-FORWARD that has no valid attachment on any interface (the comment has no
 * interface). The reference's uncommented accepts name no owner and stay; so do the shared
 * chains and the per-bridge isolation rules, as on DEL.
 */
export function iptFirewallGcScript(family: Family, filter: SavedTable, network: string, valid: readonly Attachment[]): string | undefined {
  const comments = filter.rules.filter((r) => r.chain === FORWARD_CHAIN).map(commentOf);
  return filterScript(staleContainers(comments, network, valid).flatMap((cid) => ownerAccepts({ network, containerID: cid, addresses: [] }, family, filter)));
}

/** What setup would have made that is missing (pure). */
export function iptFirewallMissing(spec: FirewallSpec, family: Family, filter: SavedTable): string[] {
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const addrs = containerAddrs(spec.addresses).filter((a) => a.family === family);
  const missing: string[] = [];
  const has = (pred: (r: SavedRule) => boolean): boolean => filter.rules.some(pred);
  if (addrs.length > 0) {
    if (!has((r) => r.chain === 'FORWARD' && targetOf(r) === FORWARD_CHAIN)) missing.push(`${tool} FORWARD: no jump to ${FORWARD_CHAIN}`);
    if (!has((r) => r.chain === FORWARD_CHAIN && targetOf(r) === spec.adminChain)) missing.push(`${tool} ${FORWARD_CHAIN}: no jump to ${spec.adminChain}`);
    for (const a of addrs) {
      if (!has((r) => isInAccept(r, a))) missing.push(`${tool} ${FORWARD_CHAIN}: no RELATED,ESTABLISHED accept to ${a.ip}`);
      if (!has((r) => isOutAccept(r, a))) missing.push(`${tool} ${FORWARD_CHAIN}: no accept from ${a.ip}`);
    }
  }
  if (spec.policy !== 'open' && spec.bridge) {
    const br = spec.bridge;
    if (!has((r) => r.chain === 'FORWARD' && targetOf(r) === STAGE1)) missing.push(`${tool} FORWARD: no jump to ${STAGE1}`);
    if (!has((r) => isStage1Jump(r, br))) missing.push(`${tool} ${STAGE1}: no rule for bridge ${br}`);
    if (spec.policy === 'isolated' && !has((r) => isStage1Drop(r, br))) missing.push(`${tool} ${STAGE1}: no same-bridge DROP for ${br}`);
    if (!has((r) => isStage2Drop(r, br))) missing.push(`${tool} ${STAGE2}: no DROP for bridge ${br}`);
  }
  return missing;
}

export class IptablesFirewall implements FirewallBackend {
  readonly name = 'iptables' as const;
  constructor(private readonly opts: BackendOptions = {}) {}

  async readFilter(family: Family): Promise<SavedTable> {
    return parseSaveTable(await saveTable(family, 'filter', this.opts.netns), 'filter');
  }

  private readThenApply(family: Family, build: (t: SavedTable) => string | undefined): Promise<void> {
    return readThenApply(family, this.opts.netns, () => this.readFilter(family), build);
  }

  /** Families to touch: those of the addresses, and IPv4 for isolation without addresses. */
  private families(spec: FirewallSpec): Family[] {
    const fs = new Set(containerAddrs(spec.addresses).map((a) => a.family));
    if (fs.size === 0 && spec.policy !== 'open') fs.add(4);
    return [...fs].sort();
  }

  async setupFirewall(spec: FirewallSpec): Promise<void> {
    try {
      for (const f of this.families(spec)) await this.readThenApply(f, (t) => iptFirewallSetupScript(spec, f, t));
    } catch (e) {
      throw netfilterError(`failed to set up firewall rules (iptables) for ${spec.containerID}`, e);
    }
  }

  async checkFirewall(spec: FirewallSpec): Promise<void> {
    const missing: string[] = [];
    for (const f of this.families(spec)) {
      let t: SavedTable;
      try {
        t = await this.readFilter(f);
      } catch (e) {
        throw netfilterError('failed to read iptables firewall rules', e);
      }
      missing.push(...iptFirewallMissing(spec, f, t));
    }
    if (missing.length) throw new CniError(ErrCode.Internal, `firewall rules (iptables) for ${spec.containerID} are incomplete: ${missing.join('; ')}`);
  }

  async teardownFirewall(spec: FirewallSpec): Promise<void> {
    await forEachInstalledFamily(
      (tool) => `failed to remove firewall rules (${tool}) for ${spec.containerID}`,
      (f) => this.readThenApply(f, (t) => iptFirewallTeardownScript(spec, f, t)),
    );
  }

  async gcFirewall(network: string, valid: readonly Attachment[]): Promise<void> {
    assertPrintable('network name', network);
    await forEachInstalledFamily(
      (tool) => `failed to garbage-collect firewall rules (${tool}) of network ${network}`,
      (f) => this.readThenApply(f, (t) => iptFirewallGcScript(f, t, network, valid)),
    );
  }
}
