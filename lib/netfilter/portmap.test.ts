import { setSpawnHook, type RunOptions, type RunResult } from '../exec/run';
import type { PortMapSpec } from './driver';
import { type ContainerAddr, mappingsFor } from './common';
import { dnatChainName, forwardLines, portsMissing as iptPortsMissing, unforwardLines, markDef } from './iptables/portmap';
import { parseSaveTable, restoreScript, type SavedTable } from './iptables/save';
import { NftablesDriver } from './nftables/driver';
import { forwardLines as nftForwardLines, unforwardRules } from './nftables/portmap';
import { deleteRuleLine, emptyRuleset, type NftRuleset, parseNftJson } from './nftables/json';

const iptForwardScript = (s: PortMapSpec, a: ContainerAddr, nat: SavedTable): string | undefined => restoreScript('nat', forwardLines(s, a, nat));
const iptUnforwardScript = (s: PortMapSpec, nat: SavedTable): string | undefined => restoreScript('nat', unforwardLines(s, nat));
const nftScript = (lines: string[]): string | undefined => (lines.length ? lines.join('\n') + '\n' : undefined);
const nftForwardScript = (s: PortMapSpec, addrs: ContainerAddr[], rs: NftRuleset): string | undefined => nftScript(nftForwardLines(s, addrs, rs));
const nftUnforwardScript = (containerID: string, rs: NftRuleset): string | undefined =>
  nftScript(unforwardRules({ network: 'net', containerID }, rs).map(deleteRuleLine));

const S: PortMapSpec = {
  network: 'net', containerID: 'ctr-a', ifName: 'eth0', addresses: ['10.1.0.5/24'],
  mappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }, { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '192.0.2.1' }],
  snat: true, masqAll: false, markMasqBit: 13,
};
const A4 = { family: 4 as const, ip: '10.1.0.5', cidr: '10.1.0.5/24', subnet: '10.1.0.0/24' };
const DN = dnatChainName('net', 'ctr-a');

describe('portmap iptables text', () => {
  it('mark bits print like Go %#x', () => {
    expect(markDef(13)).toBe('0x2000/0x2000');
    expect(markDef(31)).toBe('0x80000000/0x80000000');
  });
  it('hostIP of the other family is skipped; 0.0.0.0 means any', () => {
    expect(mappingsFor([{ hostPort: 1, containerPort: 1, protocol: 'tcp', hostIP: 'fd00::1' }], 4)).toEqual([]);
    expect(mappingsFor([{ hostPort: 1, containerPort: 1, protocol: 'tcp', hostIP: '0.0.0.0' }], 4)[0]!.dst).toBeUndefined();
  });
  it('forward on an empty nat table: shared chains, the container chain, entries first', () => {
    const s = iptForwardScript(S, A4, parseSaveTable('', 'nat'))!.split('\n');
    expect(s).toContain(':CNI-HOSTPORT-SETMARK - [0:0]');
    expect(s).toContain('-I POSTROUTING 1 -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ');
    expect(s).toContain('-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT');
    expect(s).toContain(`-A ${DN} -p tcp -m tcp --dport 8080 -s 10.1.0.5/24 -j CNI-HOSTPORT-SETMARK`);
    expect(s).toContain(`-A ${DN} -p tcp -m tcp --dport 8080 -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK`);
    expect(s).toContain(`-A ${DN} -p udp -m udp --dport 53 -d 192.0.2.1 -j DNAT --to-destination 10.1.0.5:53`);
    expect(s).toContain(`-I CNI-HOSTPORT-DNAT 1 -p tcp -m comment --comment "dnat name: \\"net\\" id: \\"ctr-a\\"" -m multiport --dports 8080 -j ${DN}`);
  });
  it('unforward finds the chain by owner alone; check reports a missing chain', () => {
    const save = `*nat\n:CNI-HOSTPORT-DNAT - [0:0]\n:${DN} - [0:0]\n-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "x" -m multiport --dports 8080 -j ${DN}\nCOMMIT\n`;
    expect(iptUnforwardScript(S, parseSaveTable(save, 'nat'))).toBe(
      `*nat\n-D CNI-HOSTPORT-DNAT -p tcp -m comment --comment "x" -m multiport --dports 8080 -j ${DN}\n-F ${DN}\n-X ${DN}\nCOMMIT\n`,
    );
    expect(iptUnforwardScript({ ...S, containerID: 'other' }, parseSaveTable(save, 'nat'))).toBeUndefined();
    expect(iptPortsMissing(S, A4, parseSaveTable('', 'nat'))).toEqual([`iptables nat chain ${DN} does not exist`]);
  });
});

describe('portmap nftables text', () => {
  it('forward: hooks at prerouting and output, rules commented with the container ID', () => {
    const s = nftForwardScript(S, [A4], emptyRuleset())!;
    expect(s).toContain('add chain ip cni_hostport prerouting { type nat hook prerouting priority dstnat ; }');
    expect(s).toContain('add rule ip cni_hostport output fib daddr type local jump hostports');
    expect(s).toContain('add rule ip cni_hostport hostports tcp dport 8080 dnat to 10.1.0.5:80 comment "ctr-a"');
    expect(s).toContain('add rule ip cni_hostport hostip_hostports ip daddr 192.0.2.1 udp dport 53 dnat to 10.1.0.5:53 comment "ctr-a"');
    expect(s).toContain('add rule ip cni_hostport masquerading ip saddr 127.0.0.1 ip daddr 10.1.0.5 masquerade comment "ctr-a"');
    expect(s).not.toContain('ip6');
  });
  const listing = JSON.stringify({ nftables: [
    { table: { family: 'ip', name: 'cni_hostport' } },
    { rule: { family: 'ip', table: 'cni_hostport', chain: 'hostports', handle: 4, comment: 'ctr-a', expr: [] } },
    { rule: { family: 'ip', table: 'cni_hostport', chain: 'hostports', handle: 5, comment: 'ctr-b', expr: [] } },
  ] });
  it("unforward deletes only the owner's rules", () => {
    expect(nftUnforwardScript('ctr-a', parseNftJson(listing))).toBe('delete rule ip cni_hostport hostports handle 4\n');
    expect(nftUnforwardScript('ctr-c', parseNftJson(listing))).toBeUndefined();
  });
  it('unforward is one read and one write', async () => {
    const calls: { argv: string[]; opts: RunOptions }[] = [];
    setSpawnHook(async (argv, opts): Promise<RunResult> => {
      calls.push({ argv, opts });
      return { stdout: calls.length === 1 ? listing : '', stderr: '', exitCode: 0 };
    });
    try {
      await new NftablesDriver().teardown(S, ['ports']);
    } finally {
      setSpawnHook(undefined);
    }
    expect(calls.map((c) => c.argv)).toEqual([['nft', '-j', 'list', 'ruleset'], ['nft', '-f', '-']]);
  });
});
