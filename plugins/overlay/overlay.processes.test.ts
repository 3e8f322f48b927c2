// The processes overlay starts per verb, as far as they can be driven without etcd, on the fake
// host of lib/skel/testing.ts (spawner faked, both netfilter backends installed): how many and
// their exact argv, in order. ADD needs the host's agent (a detached process holding an etcd
// lease), which the multi-host conformance suite covers; DEL, CHECK, GC and STATUS need neither
// etcd nor the agent. host-local runs in-process on a temp dataDir. Nothing is spawned.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { plugin } from './main';
import { inPhases, ipLink, nftMasqListing } from '../../lib/exec/testing';
import { cmdArgs, fakeHost, FLOCK, MASQ, SELF_NETNS, type FakeHost } from '../../lib/skel/testing';
import type { HostState } from './state';
import type { CmdArgs } from '../../lib/skel/dispatch';
import type { Result } from '../../lib/types/result';

const IN_NETNS = `nsenter --net=${SELF_NETNS} --`;
const IP = '10.40.3.2';
/** What ADD would have returned: bridge, host veth, container interface on the host's subnet. */
const PREV: Result = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'ov-net1' }, { name: 'veth0a1b2c3d' }, { name: 'eth0', mac: ipLink('eth0').address as string, sandbox: SELF_NETNS }],
  ips: [{ address: `${IP}/24`, gateway: '10.40.3.1', interface: 2 }],
  routes: [],
};
const STATE: HostState = {
  network: '10.40.0.0/16',
  subnet: '10.40.3.0/24',
  gateway: '10.40.3.1',
  vtepAddress: '10.40.3.0',
  mtu: 1450,
  vni: 1,
  port: 4789,
  vxlan: 'ovx-net1',
  vtepMac: '02:00:00:00:00:aa',
  publicIP: '192.0.2.10',
  underlay: 'eth1',
  key: '/cni-overlay/net1/subnets/10.40.3.0-24',
  leaseId: '1',
};

let host: FakeHost;
let dir: string;
beforeEach(() => {
  host = fakeHost((line) => {
    if (line === 'addr show dev eth0') return [ipLink('eth0', { addr_info: [{ family: 'inet', local: IP, prefixlen: 24, scope: 'global' }] })];
    if (line === 'link show dev ov-net1') return [ipLink('ov-net1', { linkinfo: { info_kind: 'bridge' } })];
    if (line === 'link show dev veth0a1b2c3d') return [ipLink('veth0a1b2c3d', { master: 'ov-net1' })];
    return undefined;
  });
  dir = host.dir;
  // The agent's state (this host's lease), the container's lease and its NAT rules, as ADD left them.
  mkdirSync(join(dir, 'run'));
  writeFileSync(join(dir, 'run', 'state.json'), JSON.stringify(STATE));
  mkdirSync(join(dir, 'data', 'net1'), { recursive: true });
  writeFileSync(join(dir, 'data', 'net1', IP), 'ctr1\r\neth0');
  host.nft = nftMasqListing({ network: 'net1', containerID: 'ctr1', ifName: 'eth0' }, [`${IP}/16`]);
});
afterEach(() => host.restore());

function args(extra: Partial<CmdArgs> = {}, more: Record<string, unknown> = {}): CmdArgs {
  const conf = { type: 'overlay', network: '10.40.0.0/16', etcd: { endpoints: ['http://127.0.0.1:2379'] }, dataDir: join(dir, 'data'), runDir: join(dir, 'run'), ...more };
  return cmdArgs(conf, { prevResult: PREV, ...extra });
}

test('DEL: lease, container link and masquerade rules at once (no etcd, no agent)', async () => {
  await plugin.del(args({ command: 'DEL' }));
  const { got, want } = inPhases(host.commands(), [[FLOCK, `${IN_NETNS} ip -json -force -batch -`, ...MASQ.teardown]]);
  expect(got).toEqual(want);
});

test('DEL with an empty netns, no prevResult and no lease state: lease and NAT by owner, both families', async () => {
  rmSync(join(dir, 'run', 'state.json'));
  await plugin.del(args({ command: 'DEL', netns: '', prevResult: undefined }));
  const { got, want } = inPhases(host.commands(), [[FLOCK, ...MASQ.teardownByOwner]]);
  expect(got).toEqual(want);
});

test('CHECK: lease, one batch in the container, one on the host, one nft read', async () => {
  await plugin.check(args({ command: 'CHECK' }));
  expect(host.commands()).toEqual([FLOCK, `${IN_NETNS} ip -json -force -batch -`, 'ip -json -details -force -batch -', ...MASQ.check]);
});

test('GC: leases and masquerade rules of attachments not valid, on every installed backend', async () => {
  await plugin.gc(args({ command: 'GC' }, { 'cni.dev/valid-attachments': [] }));
  const { got, want } = inPhases(host.commands(), [[FLOCK, ...MASQ.teardownByOwner]]);
  expect(got).toEqual(want);
});

test('STATUS without a running agent: code 50, no process', async () => {
  await expect(plugin.status(args({ command: 'STATUS' }))).rejects.toMatchObject({ code: 50 });
  expect(host.spawned).toEqual([]);
});
