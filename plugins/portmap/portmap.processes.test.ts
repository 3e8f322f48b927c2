// The processes portmap starts per verb, on each backend, on the fake host of lib/skel/testing.ts
// (spawner faked, nft and iptables installed): how many and their exact argv, in order. The fake
// kernel holds no rules unless a test says so (then CHECK, after its one read, reports them
// missing). Nothing is spawned and no kernel is touched; the prevResult's bridge does not
// exist here, so the route_localnet write (no process) is skipped.
import { plugin } from './main';
import { nftListing } from '../../lib/exec/testing';
import { cmdArgs, fakeHost, type FakeHost } from '../../lib/skel/testing';
import type { CmdArgs } from '../../lib/skel/dispatch';
import type { Result } from '../../lib/types/result';

const PREV: Result = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'brx-unittest' }, { name: 'vethx' }, { name: 'eth0', sandbox: '/proc/self/ns/net' }],
  ips: [{ address: '10.22.0.2/16', gateway: '10.22.0.1', interface: 2 }],
};
/** ctr1's DNAT rule as the nftables layout leaves it (found by its comment, the container ID). */
const CTR1_DNAT = nftListing([{ family: 'ip', table: 'cni_hostport', chain: 'hostports', comment: 'ctr1' }]);
// No iptables table on the fake host: the iptables driver's one process is nft's table list.
const TEARDOWN_READS = ['nft list tables', 'nft -j list ruleset'];

let host: FakeHost;
beforeEach(() => {
  host = fakeHost();
});
afterEach(() => host.restore());

function args(backend: string | undefined, extra: Partial<CmdArgs> = {}, more: Record<string, unknown> = {}): CmdArgs {
  const conf = { type: 'portmap', backend, capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] }, ...more };
  return cmdArgs(conf, { prevResult: PREV, ...extra });
}

describe.each([
  ['nftables (the default)', undefined, ['nft -j list ruleset', 'nft -f -']],
  ['iptables', 'iptables', ['iptables-save -t nat', 'iptables-restore --noflush -w']],
])('%s', (_name, backend, setup) => {
  test('ADD without port mappings: no process (plugins#464); with one: a read and a write (IPv4 only)', async () => {
    await plugin.add(args(backend, {}, { runtimeConfig: {} }));
    expect(host.spawned).toEqual([]);
    await plugin.add(args(backend));
    expect(host.commands()).toEqual(setup);
  });

  test('CHECK: one read (of the table setup reads), which here finds no mapping', async () => {
    const e = await plugin.check(args(backend, { command: 'CHECK' })).catch((x: Error) => x);
    expect([host.commands(), e?.message]).toEqual([[setup[0]], expect.stringMatching(/^port mappings \((nftables|iptables)\) for ctr1 incomplete/)]);
  });
});

test('DEL: every installed backend read, by owner (no netns or prevResult needed); a write where the rules are', async () => {
  host.nft = CTR1_DNAT;
  await plugin.del(args(undefined, { command: 'DEL', netns: '', prevResult: undefined }));
  expect(host.commands()).toEqual([...TEARDOWN_READS, 'nft -f -']);
  expect(host.spawned[2]!.input).toBe('delete rule ip cni_hostport hostports handle 10\n');
});

test('DEL with nothing left: reads only', async () => {
  await plugin.del(args(undefined, { command: 'DEL' }));
  expect(host.commands()).toEqual(TEARDOWN_READS);
});

test('GC: every installed backend read; nothing of this network there, nothing written', async () => {
  await plugin.gc(args(undefined, { command: 'GC' }, { 'cni.dev/valid-attachments': [] }));
  expect(host.commands()).toEqual(TEARDOWN_READS);
});
