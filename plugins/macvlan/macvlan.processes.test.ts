// The processes macvlan starts per verb, on the fake host of lib/skel/testing.ts (spawner faked,
// host-local in-process on a temp dataDir): how many and their exact argv, in order. Nothing is
// spawned and no kernel is touched.
import { plugin } from './main';
import { inPhases, ipLink } from '../../lib/exec/testing';
import { cmdArgs, fakeHost, FLOCK, SELF_NETNS, type FakeHost } from '../../lib/skel/testing';
import type { CmdArgs } from '../../lib/skel/dispatch';
import type { Result } from '../../lib/types/result';
import '../../ipam/host-local/register';

const IN_NETNS = `nsenter --net=${SELF_NETNS} --`;
const MASTER = ipLink('eth1');

let ip: string | undefined;
let host: FakeHost;
beforeEach(() => {
  ip = undefined;
  host = fakeHost((line) => {
    if (line === 'link show dev eth1') return [MASTER];
    if (line === 'route show default') return [{ dst: 'default', gateway: '192.0.2.1', dev: 'eth1' }];
    if (line === 'addr show dev eth0' && ip) {
      const addr_info = [{ family: 'inet', local: ip.split('/')[0], prefixlen: 24, scope: 'global' }];
      return [ipLink('eth0', { link_index: MASTER.ifindex, link_netnsid: 0, linkinfo: { info_kind: 'macvlan', info_data: { mode: 'bridge' } }, addr_info })];
    }
    return undefined;
  });
});
afterEach(() => host.restore());

function args(extra: Partial<CmdArgs> = {}, more: Record<string, unknown> = {}): CmdArgs {
  const conf = { type: 'macvlan', master: 'eth1', ipam: { type: 'host-local', dataDir: host.dir, ranges: [[{ subnet: '192.0.2.0/24' }]] }, ...more };
  return cmdArgs(conf, { path: host.path, ...extra });
}

async function added(): Promise<Result> {
  const r = await plugin.add(args());
  ip = r.ips![0]!.address;
  host.clear();
  return r;
}

const ANNOUNCE = /^nsenter --net=\/proc\/self\/ns\/net -- tee -- \/proc\/sys\/net\/ipv4\/conf\/veth\w+\/arp_notify \/proc\/sys\/net\/ipv6\/conf\/veth\w+\/ndisc_notify$/;

test('ADD: the master read and the link made in one host batch, then the IPAM beside the announce sysctls, then the container batch', async () => {
  const r = await plugin.add(args());
  const announce = host.commands().find((c) => ANNOUNCE.test(c))!;
  const { got, want } = inPhases(host.commands(), [['ip -json -force -batch -'], [FLOCK, announce], [`${IN_NETNS} ip -json -batch -`]]);
  expect(got).toEqual(want);
  expect(host.spawned[0]!.input).toMatch(/^link show dev eth1\nlink add link eth1 name veth\w+ netns \/proc\/self\/ns\/net type macvlan mode bridge\n$/);
  expect(r.ips).toEqual([{ address: '192.0.2.2/24', gateway: '192.0.2.1', interface: 0 }]);
});

test('ADD without master: one more batch first, for the default-route interface', async () => {
  await plugin.add(args({}, { master: undefined }));
  expect(host.commands()[0]).toBe('ip -json -force -batch -');
  expect(host.spawned[0]!.input).toBe('route show default\nroute show ::/0\n');
  expect(host.commands()).toHaveLength(5);
});

test('DEL: lease and link at once', async () => {
  const r = await added();
  await plugin.del(args({ command: 'DEL', prevResult: r }));
  const { got, want } = inPhases(host.commands(), [[FLOCK, `${IN_NETNS} ip -json -force -batch -`]]);
  expect(got).toEqual(want);
});

test('DEL with an empty netns: the lease only', async () => {
  await added();
  await plugin.del(args({ command: 'DEL', netns: '' }));
  expect(host.commands()).toEqual([FLOCK]);
});

test('CHECK: the lease, then the container and the master read at once', async () => {
  const r = await added();
  await plugin.check(args({ command: 'CHECK', prevResult: r }));
  expect(host.commands()).toEqual([FLOCK, `${IN_NETNS} ip -json -details -force -batch -`, 'ip -json -force -batch -']);
});

test('GC: the IPAM only; STATUS: no process', async () => {
  await plugin.gc(args({ command: 'GC' }, { 'cni.dev/valid-attachments': [] }));
  expect(host.commands()).toEqual([FLOCK]);
  host.clear();
  await plugin.status(args({ command: 'STATUS' }));
  expect(host.spawned).toEqual([]);
});
