import { iptCommentOwner, staleContainers, staleNftInstance } from './gc';
import { chainName, iptablesComment, nftComment, nftOwnerMarker } from './names';
import type { Attachment } from './../skel/gc';
import type { Family } from '../ip/cidr';
import type { PortMapSpec } from './driver';
import type { ContainerAddr } from './common';
import { iptMasq } from './iptables/masq';
import { dnatChainName, dnatComment, iptPorts } from './iptables/portmap';
import { iptFirewall } from './iptables/firewall';
import { parseSaveTable, quoteRestoreWord, restoreScript, type SavedTable } from './iptables/save';
import { nftMasq } from './nftables/masq';
import { forwardLines, nftPorts, OWNER_CHAIN, unforwardRules } from './nftables/portmap';
import { nftFirewall } from './nftables/firewall';
import { deleteRuleLine, emptyRuleset, type NftRule, type NftRuleset, parseNftJson } from './nftables/json';

const parseNftListing = parseNftJson;
const parseIptablesSave = (text: string): SavedTable => parseSaveTable(text, 'nat');
const nftScript = (rules: NftRule[]): string | undefined => (rules.length ? rules.map(deleteRuleLine).join('\n') + '\n' : undefined);
const nftMasqGcScript = (rs: NftRuleset, network: string, valid: Attachment[]): string | undefined => nftScript(nftMasq.stale(network, valid, rs));
const nftPortsGcScript = (rs: NftRuleset, network: string, valid: Attachment[]): string | undefined => nftScript(nftPorts.stale(network, valid, rs));
const nftFirewallGcScript = (rs: NftRuleset, network: string, valid: Attachment[]): string | undefined => nftScript(nftFirewall.stale(network, valid, rs));
const nftUnforwardScript = (containerID: string, rs: NftRuleset, network: string): string | undefined => nftScript(unforwardRules({ network, containerID }, rs));
const nftForwardScript = (s: PortMapSpec, addrs: ContainerAddr[], rs: NftRuleset): string => forwardLines(s, addrs, rs).join('\n') + '\n';
const iptMasqGcScript = (nat: SavedTable, network: string, valid: Attachment[]): string | undefined => restoreScript('nat', iptMasq.gc(network, valid, 4, nat));
const iptPortsGcScript = (nat: SavedTable, network: string, valid: Attachment[]): string | undefined => restoreScript('nat', iptPorts.gc(network, valid, 4, nat));
const iptFirewallGcScript = (f: Family, filter: SavedTable, network: string, valid: Attachment[]): string | undefined =>
  restoreScript('filter', iptFirewall.gc(network, valid, f, filter));

const at = (containerID: string, ifname = 'eth0') => ({ containerID, ifname });
const nftRule = (family: string, table: string, chain: string, handle: number, comment?: string) => ({ rule: { family, table, chain, handle, comment, expr: [] } });
const nftDoc = (...items: unknown[]) => JSON.stringify({ nftables: items });

describe('ownership', () => {
  it('per-attachment nft comments: stale when this network\'s and not a valid attachment', () => {
    const stale = staleNftInstance('n1', [at('b'), at('a', 'net1')]);
    expect(stale(nftComment('n1', 'eth0', 'a'))).toBe(true);
    expect(stale(nftComment('n1', 'net1', 'a'))).toBe(false);
    expect(stale(nftComment('n1', 'eth0', 'b'))).toBe(false);
    expect(stale(nftComment('n2', 'eth0', 'a'))).toBe(false);
    expect(stale('someone else')).toBe(false);
    expect(stale(undefined)).toBe(false);
  });
  it('iptables comments name the owner only for this network', () => {
    expect(iptCommentOwner(iptablesComment('n1', 'c1'), 'n1')).toBe('c1');
    expect(iptCommentOwner(iptablesComment('n2', 'c1'), 'n1')).toBeUndefined();
    expect(iptCommentOwner(dnatComment('n1', 'c1'), 'n1', 'dnat ')).toBe('c1');
    expect(iptCommentOwner(dnatComment('n1', 'c1'), 'n1')).toBeUndefined();
    expect(iptCommentOwner('CNI portfwd masquerade mark', 'n1')).toBeUndefined();
  });
  it('per-container layouts: stale only when no attachment of the container is valid, on any interface', () => {
    const comments = [iptablesComment('n1', 'a'), iptablesComment('n1', 'a'), iptablesComment('n1', 'b'), iptablesComment('n1', 'c'), iptablesComment('n2', 'd')];
    expect(staleContainers(comments, 'n1', [at('b', 'net9')])).toEqual(['a', 'c']);
    expect(staleContainers(comments, 'n1', [at('a'), at('b'), at('c')])).toEqual([]);
  });
});

describe('masquerade GC', () => {
  it('nftables: deletes the stale attachments\' masq_checks rules by handle, in one transaction', () => {
    const l = parseNftListing(nftDoc(
      { table: { family: 'inet', name: 'cni_plugins_masquerade' } },
      nftRule('inet', 'cni_plugins_masquerade', 'masq_checks', 7, nftComment('n1', 'eth0', 'a')),
      nftRule('inet', 'cni_plugins_masquerade', 'masq_checks', 8, nftComment('n1', 'eth0', 'b')),
      nftRule('inet', 'cni_plugins_masquerade', 'masq_checks', 9, nftComment('n2', 'eth0', 'a')),
      nftRule('inet', 'cni_plugins_masquerade', 'postrouting', 3),
    ));
    expect(nftMasqGcScript(l, 'n1', [at('b')])).toBe('delete rule inet cni_plugins_masquerade masq_checks handle 7\n');
    expect(nftMasqGcScript(l, 'n1', [at('a'), at('b')])).toBeUndefined();
    expect(nftMasqGcScript(l, 'n2', [])).toBe('delete rule inet cni_plugins_masquerade masq_checks handle 9\n');
  });
  it('iptables: the stale containers\' jumps and chains, other networks untouched', () => {
    const rule = (net: string, cid: string, ip: string): string => {
      const c = quoteRestoreWord(iptablesComment(net, cid));
      const ch = chainName(net, cid);
      return `:${ch} - [0:0]\n-A POSTROUTING -s ${ip}/32 -m comment --comment ${c} -j ${ch}\n-A ${ch} -d 10.1.0.0/24 -m comment --comment ${c} -j ACCEPT\n-A ${ch} ! -d 224.0.0.0/4 -m comment --comment ${c} -j MASQUERADE`;
    };
    const nat = parseIptablesSave(`*nat\n:POSTROUTING ACCEPT [0:0]\n${rule('n1', 'a', '10.1.0.2')}\n${rule('n1', 'b', '10.1.0.3')}\n${rule('n2', 'c', '10.2.0.2')}\nCOMMIT\n`);
    const A = chainName('n1', 'a');
    expect(iptMasqGcScript(nat, 'n1', [at('b')])).toBe(
      `*nat\n-D POSTROUTING -s 10.1.0.2/32 -m comment --comment ${quoteRestoreWord(iptablesComment('n1', 'a'))} -j ${A}\n-F ${A}\n-X ${A}\nCOMMIT\n`,
    );
    expect(iptMasqGcScript(nat, 'n1', [at('a', 'eth1'), at('b')])).toBeUndefined();
    expect(iptMasqGcScript(nat, 'n1', [])).toContain(`-X ${chainName('n1', 'b')}`);
    expect(iptMasqGcScript(nat, 'n1', [])).not.toContain(chainName('n2', 'c'));
  });
});

describe('port mapping GC', () => {
  it('iptables: owners from the entry rules\' comments; stale chains and entries go', () => {
    const entry = (net: string, cid: string, port: number): string =>
      `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment ${quoteRestoreWord(dnatComment(net, cid))} -m multiport --dports ${port} -j ${dnatChainName(net, cid)}`;
    const nat = parseSaveTable(
      `*nat\n:CNI-HOSTPORT-DNAT - [0:0]\n:${dnatChainName('n1', 'a')} - [0:0]\n:${dnatChainName('n1', 'b')} - [0:0]\n:${dnatChainName('n2', 'c')} - [0:0]\n` +
        `${entry('n1', 'a', 8080)}\n${entry('n1', 'b', 8081)}\n${entry('n2', 'c', 8082)}\nCOMMIT\n`,
      'nat',
    );
    const s = iptPortsGcScript(nat, 'n1', [at('b')])!;
    expect(s.split('\n')).toEqual(['*nat', `-D${entry('n1', 'a', 8080).slice(2)}`, `-F ${dnatChainName('n1', 'a')}`, `-X ${dnatChainName('n1', 'a')}`, 'COMMIT', '']);
    expect(iptPortsGcScript(nat, 'n1', [at('a'), at('b')])).toBeUndefined();
  });

  const S: PortMapSpec = {
    network: 'n1', containerID: 'a', ifName: 'eth0', addresses: ['10.1.0.5/24'],
    mappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }], snat: true, masqAll: false, markMasqBit: 13,
  };
  it('nftables ADD writes an owner marker in its own unhooked chain; DEL removes the network\'s marker', () => {
    const s = nftForwardScript(S, [{ family: 4, ip: '10.1.0.5', cidr: '10.1.0.5/24', subnet: '10.1.0.0/24' }], emptyRuleset());
    expect(s).toContain(`add chain ip cni_hostport ${OWNER_CHAIN}\n`);
    expect(s).toContain(`add rule ip cni_hostport ${OWNER_CHAIN} return comment "${nftOwnerMarker('n1', 'a')}"`);
    const rs = parseNftJson(nftDoc(
      nftRule('ip', 'cni_hostport', 'hostports', 4, 'a'),
      nftRule('ip', 'cni_hostport', OWNER_CHAIN, 5, nftOwnerMarker('n1', 'a')),
      nftRule('ip', 'cni_hostport', OWNER_CHAIN, 6, nftOwnerMarker('n2', 'a')),
    ));
    expect(nftUnforwardScript('a', rs, 'n1')).toBe('delete rule ip cni_hostport hostports handle 4\ndelete rule ip cni_hostport cni_ts_owners handle 5\n');
  });
  it('nftables GC: only containers this network marks; rules shared with another network\'s marker stay', () => {
    const rs = parseNftJson(nftDoc(
      nftRule('ip', 'cni_hostport', 'hostports', 10, 'a'),
      nftRule('ip', 'cni_hostport', 'masquerading', 11, 'a'),
      nftRule('ip6', 'cni_hostport', 'hostports', 12, 'a'),
      nftRule('ip', 'cni_hostport', OWNER_CHAIN, 13, nftOwnerMarker('n1', 'a')),
      nftRule('ip', 'cni_hostport', 'hostports', 20, 'b'),
      nftRule('ip', 'cni_hostport', OWNER_CHAIN, 21, nftOwnerMarker('n1', 'b')),
      nftRule('ip', 'cni_hostport', 'hostports', 30, 'c'),
      nftRule('ip', 'cni_hostport', OWNER_CHAIN, 31, nftOwnerMarker('n2', 'c')),
      nftRule('ip', 'cni_hostport', 'hostports', 40, 'ref'), // the reference's: no marker
      nftRule('ip', 'cni_hostport', 'hostports', 50, 'shared'),
      nftRule('ip', 'cni_hostport', OWNER_CHAIN, 51, nftOwnerMarker('n1', 'shared')),
      nftRule('ip', 'cni_hostport', OWNER_CHAIN, 52, nftOwnerMarker('n2', 'shared')),
    ));
    const handles = (s: string | undefined): number[] => (s ?? '').split('\n').filter(Boolean).map((l) => Number(l.split(' ').pop())).sort((x, y) => x - y);
    expect(handles(nftPortsGcScript(rs, 'n1', [at('b')]))).toEqual([10, 11, 12, 13, 51]);
    expect(nftPortsGcScript(rs, 'n1', [at('a', 'eth1'), at('b'), at('shared')])).toBeUndefined();
    expect(handles(nftPortsGcScript(rs, 'n2', []))).toEqual([30, 31, 52]);
    expect(handles(nftPortsGcScript(rs, 'n3', []))).toEqual([]);
  });
});

describe('firewall GC', () => {
  it('nftables: stale attachments\' rules in the containers chain; isolation rules stay', () => {
    const rs = parseNftJson(nftDoc(
      nftRule('inet', 'cni_ts_firewall', 'containers', 5, nftComment('n1', 'eth0', 'a')),
      nftRule('inet', 'cni_ts_firewall', 'containers', 6, nftComment('n1', 'eth0', 'a')),
      nftRule('inet', 'cni_ts_firewall', 'containers', 7, nftComment('n1', 'eth0', 'b')),
      nftRule('inet', 'cni_ts_firewall', 'containers', 8, nftComment('n2', 'eth0', 'a')),
      nftRule('inet', 'cni_ts_firewall', 'isolation_stage_1', 9, 'isolation br0: leaving for another interface'),
    ));
    expect(nftFirewallGcScript(rs, 'n1', [at('b')])).toBe('delete rule inet cni_ts_firewall containers handle 5\ndelete rule inet cni_ts_firewall containers handle 6\n');
    expect(nftFirewallGcScript(rs, 'n1', [at('a'), at('b')])).toBeUndefined();
  });
  it('iptables: commented accepts of stale containers; the reference\'s bare accepts name no owner and stay', () => {
    const c = (net: string, cid: string): string => quoteRestoreWord(iptablesComment(net, cid));
    const filter = parseSaveTable(
      `*filter\n:CNI-FORWARD - [0:0]\n-A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN\n` +
        `-A CNI-FORWARD -d 10.1.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ${c('n1', 'a')} -j ACCEPT\n` +
        `-A CNI-FORWARD -s 10.1.0.2/32 -m comment --comment ${c('n1', 'a')} -j ACCEPT\n` +
        `-A CNI-FORWARD -s 10.1.0.3/32 -m comment --comment ${c('n1', 'b')} -j ACCEPT\n` +
        `-A CNI-FORWARD -s 10.2.0.2/32 -m comment --comment ${c('n2', 'c')} -j ACCEPT\n` +
        `-A CNI-FORWARD -s 10.1.0.9/32 -j ACCEPT\nCOMMIT\n`,
      'filter',
    );
    expect(iptFirewallGcScript(4, filter, 'n1', [at('b')])).toBe(
      `*filter\n-D CNI-FORWARD -d 10.1.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ${c('n1', 'a')} -j ACCEPT\n-D CNI-FORWARD -s 10.1.0.2/32 -m comment --comment ${c('n1', 'a')} -j ACCEPT\nCOMMIT\n`,
    );
    expect(iptFirewallGcScript(4, filter, 'n1', [at('a'), at('b')])).toBeUndefined();
  });
});
