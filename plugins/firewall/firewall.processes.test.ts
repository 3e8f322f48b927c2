// The processes firewall starts per verb, on each backend, on the fake host of lib/skel/testing.ts
// (spawner faked, nft and iptables installed): how many and their exact argv, in order. The fake
// kernel holds no rules unless a test says so (then CHECK, after its one read, reports them
// missing). Nothing is spawned and no kernel is touched.
import { plugin } from './main';
import { nftListing } from '../../lib/exec/testing';
import { cmdArgs, fakeHost, type FakeHost } from '../../lib/skel/testing';
import { nftComment } from '../../lib/netfilter/names';
import type { CmdArgs } from '../../lib/skel/dispatch';
import type { Result } from '../../lib/types/result';

const PREV: Result = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'cni0' }, { name: 'vethx' }, { name: 'eth0', sandbox: '/proc/self/ns/net' }],
  ips: [{ address: '10.22.0.2/16', gateway: '10.22.0.1', interface: 2 }],
};
const NFT_READ = 'nft -j list table inet cni_ts_firewall';
// No iptables table on the fake host: the iptables driver's one process is nft's table list.
const TEARDOWN_READS = ['nft list tables', NFT_READ];

let host: FakeHost;
beforeEach(() => {
  host = fakeHost();
});
afterEach(() => host.restore());

function args(backend: string | undefined, extra: Partial<CmdArgs> = {}, more: Record<string, unknown> = {}): CmdArgs {
  return cmdArgs({ type: 'firewall', backend, ...more }, { prevResult: PREV, ...extra });
}

describe.each([
  ['nftables (the default)', undefined, [NFT_READ, 'nft -f -']],
  ['iptables', 'iptables', ['iptables-save -t filter', 'iptables-restore --noflush -w']],
])('%s', (_name, backend, setup) => {
  test('ADD: one read and one write (IPv4 only: the container has no IPv6 address)', async () => {
    await plugin.add(args(backend));
    expect(host.commands()).toEqual(setup);
  });

  test('CHECK: one read', async () => {
    await expect(plugin.check(args(backend, { command: 'CHECK' }))).rejects.toThrow(/incomplete/);
    expect(host.commands()).toEqual([setup[0]]);
  });
});

test('DEL: every installed backend read, by owner, and a write where the rules are; a second DEL reads only', async () => {
  host.nft = nftListing([{ family: 'inet', table: 'cni_ts_firewall', chain: 'containers', comment: nftComment('net1', 'eth0', 'ctr1') }]);
  const del = () => plugin.del(args(undefined, { command: 'DEL', netns: '', prevResult: undefined }));
  await del();
  expect(host.commands()).toEqual([...TEARDOWN_READS, 'nft -f -']);
  expect(host.spawned[2]!.input).toBe('delete rule inet cni_ts_firewall containers handle 10\n');
  host.nft = '';
  host.clear();
  await del();
  expect(host.commands()).toEqual(TEARDOWN_READS);
});

test('GC: every installed backend read; a write where a stale attachment has rules', async () => {
  host.nft = nftListing([{ family: 'inet', table: 'cni_ts_firewall', chain: 'containers', comment: nftComment('net1', 'eth0', 'gone') }]);
  await plugin.gc(args(undefined, { command: 'GC' }, { 'cni.dev/valid-attachments': [{ containerID: 'ctr1', ifname: 'eth0' }] }));
  expect(host.commands()).toEqual([...TEARDOWN_READS, 'nft -f -']);
});
