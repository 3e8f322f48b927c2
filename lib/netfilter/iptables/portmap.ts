/**
 * The iptables driver's port-forwarding layout, the reference's (plugins:plugins/meta/portmap/
 * portmap_iptables.go), nat table of iptables (IPv4) / ip6tables (IPv6):
 *
 *   PREROUTING, OUTPUT:   -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
 *   CNI-HOSTPORT-DNAT:    -p tcp -m comment --comment "dnat name: \"<net>\" id: \"<cid>\""
 *                         -m multiport --dports 8080,8081 [conditions] -j CNI-DN-<hash>   (inserted first)
 *   CNI-DN-<hash>:        -p tcp --dport 8080 [-d hostIP] -s <container cidr> -j CNI-HOSTPORT-SETMARK  (hairpin)
 *                         -p tcp --dport 8080 [-d hostIP] -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK        (localhost, v4)
 *                         -p tcp --dport 8080 [-d hostIP] -j DNAT --to-destination <ip>:80
 *   CNI-HOSTPORT-SETMARK: -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000
 *   POSTROUTING:          -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ (first)
 *   CNI-HOSTPORT-MASQ:    -m mark --mark 0x2000/0x2000 -j MASQUERADE
 *
 * CNI-DN-<hash> = "CNI-DN-" + sha512(network + containerID), 28 chars: the owner alone finds it,
 * so DEL needs no addresses and no runtimeConfig. The shared chains are never removed (as in the
 * reference). A chain CNI-SN-<hash> of old reference versions is removed too. CHECK reads only
 * the families of the container's addresses (never IPv6 without an IPv6 address, unlike the
 * reference: plugins#819). Pure.
 */
import type { Family } from '../../ip/cidr';
import type { Attachment } from '../../skel/gc';
import type { Owner, PortMapSpec } from '../driver';
import { assertOwner, assertPrintable, type ContainerAddr, containerAddrs, mappingsFor, presentFamilies } from '../common';
import { chainNameWithPrefix, iptablesComment } from '../names';
import { staleContainers } from '../gc';
import { deleteLine, opt, quoteRestoreWord, type SavedRule, type SavedTable } from './save';
import type { IptLayout } from './driver';

export const TOP_DNAT_CHAIN = 'CNI-HOSTPORT-DNAT';
export const SETMARK_CHAIN = 'CNI-HOSTPORT-SETMARK';
export const MASQ_CHAIN = 'CNI-HOSTPORT-MASQ';
const SETMARK_COMMENT = 'CNI portfwd masquerade mark';
const MASQ_COMMENT = 'CNI portfwd requiring masquerade';
/** iptables' multiport match takes at most 15 ports. */
const MULTIPORT_MAX = 15;

export const dnatChainName = (network: string, containerID: string): string => chainNameWithPrefix(network, containerID, 'DN-');
export const oldSnatChainName = (network: string, containerID: string): string => chainNameWithPrefix(network, containerID, 'SN-');
/** `dnat name: "<net>" id: "<cid>"`, as the reference writes it. */
export const dnatComment = (network: string, containerID: string): string => `dnat ${iptablesComment(network, containerID)}`;

/** "0x2000/0x2000" for bit 13, as Go's %#x prints it. */
export function markDef(bit: number): string {
  const v = (2 ** bit).toString(16);
  return `0x${v}/0x${v}`;
}

const q = quoteRestoreWord;
const hostPortOf = (ip: ContainerAddr, port: number): string => (ip.family === 6 ? `[${ip.ip}]:${port}` : `${ip.ip}:${port}`);

/** The per-container chain's rules, in order. */
export function dnatChainRules(spec: PortMapSpec, a: ContainerAddr): string[] {
  const chain = dnatChainName(spec.network, spec.containerID);
  const setMark = spec.externalSetMarkChain ?? SETMARK_CHAIN;
  const lines: string[] = [];
  for (const m of mappingsFor(spec.mappings, a.family)) {
    const base = `-A ${chain} -p ${m.protocol} -m ${m.protocol} --dport ${m.hostPort}${m.dst ? ` -d ${m.dst}` : ''}`;
    if (spec.snat) {
      const masqCidr = spec.masqAll ? (a.family === 4 ? '0.0.0.0/0' : '::/0') : a.cidr;
      lines.push(`${base} -s ${masqCidr} -j ${setMark}`);
      if (a.family === 4 && !spec.masqAll) lines.push(`${base} -s 127.0.0.1 -j ${setMark}`);
    }
    lines.push(`${base} -j DNAT --to-destination ${hostPortOf(a, m.containerPort)}`);
  }
  return lines;
}

/** The CNI-HOSTPORT-DNAT rules that send the container's ports to its chain. */
export function entryRules(spec: PortMapSpec, a: ContainerAddr): string[] {
  const chain = dnatChainName(spec.network, spec.containerID);
  const comment = q(dnatComment(spec.network, spec.containerID));
  const conds = (a.family === 4 ? spec.conditionsV4 : spec.conditionsV6) ?? [];
  const byProto = new Map<string, number[]>();
  for (const m of mappingsFor(spec.mappings, a.family)) {
    const l = byProto.get(m.protocol) ?? [];
    if (!l.includes(m.hostPort)) l.push(m.hostPort);
    byProto.set(m.protocol, l);
  }
  const lines: string[] = [];
  for (const proto of [...byProto.keys()].sort()) {
    const ports = byProto.get(proto)!;
    for (let i = 0; i < ports.length; i += MULTIPORT_MAX) {
      const list = ports.slice(i, i + MULTIPORT_MAX).join(',');
      const extra = conds.length ? ' ' + conds.map(q).join(' ') : '';
      lines.push(`-I ${TOP_DNAT_CHAIN} 1 -p ${proto} -m comment --comment ${comment} -m multiport --dports ${list}${extra} -j ${chain}`);
    }
  }
  return lines;
}

const isTopJump = (r: SavedRule, from: string): boolean => r.chain === from && r.target === TOP_DNAT_CHAIN && r.words.includes('LOCAL');

/** The lines that install one address's mappings given the nat table as read; none when it has no mapping. */
export function forwardLines(spec: PortMapSpec, a: ContainerAddr, nat: SavedTable): string[] {
  validate(spec);
  const rules = dnatChainRules(spec, a);
  if (rules.length === 0) return [];
  const chain = dnatChainName(spec.network, spec.containerID);
  const lines: string[] = [];
  const declare = (c: string): void => {
    // Under --noflush, declaring an existing chain flushes it: only for chains not there yet.
    if (!nat.chains.has(c)) lines.push(`:${c} - [0:0]`);
  };
  if (spec.snat && spec.externalSetMarkChain === undefined) {
    const mark = markDef(spec.markMasqBit);
    declare(SETMARK_CHAIN);
    if (!nat.rules.some((r) => r.chain === SETMARK_CHAIN && r.target === 'MARK' && r.words.includes(mark))) {
      lines.push(`-A ${SETMARK_CHAIN} -m comment --comment ${q(SETMARK_COMMENT)} -j MARK --set-xmark ${mark}`);
    }
    declare(MASQ_CHAIN);
    if (!nat.rules.some((r) => r.chain === MASQ_CHAIN && r.target === 'MASQUERADE' && r.words.includes(mark))) {
      lines.push(`-A ${MASQ_CHAIN} -m mark --mark ${mark} -j MASQUERADE`);
    }
    // First in POSTROUTING, or bridge/ptp masquerade rules would catch the packets before it.
    if (!nat.rules.some((r) => r.chain === 'POSTROUTING' && r.target === MASQ_CHAIN)) {
      lines.push(`-I POSTROUTING 1 -m comment --comment ${q(MASQ_COMMENT)} -j ${MASQ_CHAIN}`);
    }
  }
  declare(TOP_DNAT_CHAIN);
  for (const from of ['PREROUTING', 'OUTPUT']) {
    if (!nat.rules.some((r) => isTopJump(r, from))) lines.push(`-A ${from} -m addrtype --dst-type LOCAL -j ${TOP_DNAT_CHAIN}`);
  }
  // The container's chain is written whole (declared, so emptied if it was there), and its
  // entry rules replaced: a repeated ADD converges instead of piling up rules.
  lines.push(`:${chain} - [0:0]`);
  lines.push(...nat.rules.filter((r) => r.chain === TOP_DNAT_CHAIN && r.target === chain).map(deleteLine));
  lines.push(...rules);
  // Inserted at position 1 each, so insert in reverse to keep their order; the newest
  // container claiming a port wins, as in the reference.
  lines.push(...entryRules(spec, a).reverse());
  return lines;
}

/** The lines that remove the owner's chains and every jump to them. */
export function unforwardLines(owner: Pick<Owner, 'network' | 'containerID'>, nat: SavedTable): string[] {
  const mine = [dnatChainName(owner.network, owner.containerID), oldSnatChainName(owner.network, owner.containerID)];
  const lines = nat.rules.filter((r) => mine.includes(r.target ?? '') && !mine.includes(r.chain)).map(deleteLine);
  for (const c of mine) if (nat.chains.has(c)) lines.push(`-F ${c}`, `-X ${c}`);
  return lines;
}

/** What forward would have made for this address that is not in the table. */
export function portsMissing(spec: PortMapSpec, a: ContainerAddr, nat: SavedTable): string[] {
  const tool = a.family === 4 ? 'iptables' : 'ip6tables';
  const want = mappingsFor(spec.mappings, a.family);
  if (want.length === 0) return [];
  const chain = dnatChainName(spec.network, spec.containerID);
  if (!nat.chains.has(chain)) return [`${tool} nat chain ${chain} does not exist`];
  const out: string[] = [];
  for (const from of ['PREROUTING', 'OUTPUT']) {
    if (!nat.rules.some((r) => isTopJump(r, from))) out.push(`${tool} ${from}: no jump to ${TOP_DNAT_CHAIN}`);
  }
  const entries = nat.rules.filter((r) => r.chain === TOP_DNAT_CHAIN && r.target === chain);
  for (const m of want) {
    const ports = (r: SavedRule): string[] => (opt(r.words, '--dports', '--destination-ports') ?? '').split(',');
    if (!entries.some((r) => opt(r.words, '-p') === m.protocol && ports(r).includes(String(m.hostPort)))) {
      out.push(`${tool} ${TOP_DNAT_CHAIN}: no entry for ${m.protocol}/${m.hostPort} to ${chain}`);
    }
    const dnat = nat.rules.some(
      (r) =>
        r.chain === chain &&
        r.target === 'DNAT' &&
        opt(r.words, '-p') === m.protocol &&
        opt(r.words, '--dport') === String(m.hostPort) &&
        opt(r.words, '--to-destination') === hostPortOf(a, m.containerPort) &&
        (m.dst === undefined || r.dest?.split('/')[0] === m.dst),
    );
    if (!dnat) out.push(`${tool} ${chain}: no DNAT ${m.protocol}/${m.hostPort} → ${hostPortOf(a, m.containerPort)}`);
  }
  return out;
}

function validate(spec: PortMapSpec): void {
  containerAddrs(spec.addresses);
  assertOwner(spec);
  for (const c of [...(spec.conditionsV4 ?? []), ...(spec.conditionsV6 ?? [])]) assertPrintable('condition', c);
  if (spec.externalSetMarkChain !== undefined) assertPrintable('externalSetMarkChain', spec.externalSetMarkChain);
}

const addrsOf = (spec: PortMapSpec, family: Family): ContainerAddr[] => containerAddrs(spec.addresses).filter((a) => a.family === family);

export const iptPorts: IptLayout<PortMapSpec> = {
  table: 'nat',
  validate,
  families: (spec) => presentFamilies(containerAddrs(spec.addresses)),
  setup: (spec, family, nat) => addrsOf(spec, family).flatMap((a) => forwardLines(spec, a, nat)),
  missing: (spec, family, nat) => addrsOf(spec, family).flatMap((a) => portsMissing(spec, a, nat)),
  teardownFamilies: () => [4, 6],
  teardown: (owner, _family, nat) => unforwardLines(owner, nat),
  /**
   * The unforward of every container whose entry rules in CNI-HOSTPORT-DNAT carry this
   * network's `dnat name: … id: …` comment and that has no valid attachment on any interface
   * (the layout is per network and container). A CNI-DN chain without an entry rule names no
   * network and stays.
   */
  gc: (network: string, valid: readonly Attachment[], _family, nat) => {
    const comments = nat.rules.filter((r) => r.chain === TOP_DNAT_CHAIN).map((r) => r.comment);
    return staleContainers(comments, network, valid, 'dnat ').flatMap((containerID) => unforwardLines({ network, containerID }, nat));
  },
};
