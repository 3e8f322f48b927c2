// The processes ptp starts per verb, with and without ipMasq, on the fake host of
// lib/skel/testing.ts (spawner faked, both netfilter backends installed, host-local in-process on
// a temp dataDir): how many and their exact argv, in order. Nothing is spawned and no kernel is
// touched (IP forwarding is stubbed out: it writes /proc, not a process, and must not change the
// machine running the tests).
import { inPhases, ipLink } from '../../lib/exec/testing';
import { afterAdd, cmdArgs, fakeHost, FLOCK, MASQ, masqIf, SELF_NETNS, type FakeHost } from '../../lib/skel/testing';
import type { CmdArgs } from '../../lib/skel/dispatch';
import type { Result } from '../../lib/types/result';
import '../../ipam/host-local/register';

jest.mock('../../lib/sysctl/forward', () => ({ enableForwarding: jest.fn() }));
// After the mock: the plugin must load the stubbed forwarding.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { plugin } = require('./main') as typeof import('./main');

const IN_NETNS = `nsenter --net=${SELF_NETNS} --`;
const GW = '10.23.0.1';
const addr = (local: string, prefixlen: number) => ({ family: 'inet', local, prefixlen, scope: 'global' });

/** The container's address once added (the fake kernel then shows it on both ends). */
let ip: string | undefined;
let host: FakeHost;
beforeEach(() => {
  ip = undefined;
  host = fakeHost((line) => {
    const bare = ip?.split('/')[0];
    if (line === 'addr show dev eth0' && bare) return [ipLink('eth0', { linkinfo: { info_kind: 'veth' }, addr_info: [addr(bare, 16)] })];
    if (line === 'route show table all') return [{ dst: GW, dev: 'eth0', scope: 'link' }, { dst: '10.23.0.0/16', gateway: GW, dev: 'eth0' }];
    const veth = /^addr show dev (veth\w+)$/.exec(line)?.[1];
    if (veth) return [ipLink(veth, { linkinfo: { info_kind: 'veth' }, addr_info: [addr(GW, 32)] })];
    const routes = /^route show table all dev (veth\w+)$/.exec(line)?.[1];
    if (routes) return [{ dst: bare, dev: routes, scope: 'host' }];
    return undefined;
  });
});
afterEach(() => host.restore());

function args(ipMasq: boolean, extra: Partial<CmdArgs> = {}, more: Record<string, unknown> = {}): CmdArgs {
  const conf = { type: 'ptp', ipMasq, ipam: { type: 'host-local', dataDir: host.dir, ranges: [[{ subnet: '10.23.0.0/16', gateway: GW }]] }, ...more };
  return cmdArgs(conf, { path: host.path, ...extra });
}

/** ADD; the fake kernel now holds what it made. */
async function added(ipMasq: boolean): Promise<Result> {
  const r = await plugin.add(args(ipMasq));
  ip = r.ips![0]!.address;
  return afterAdd(host, r, ipMasq);
}

describe.each([false, true])('ipMasq %s', (ipMasq) => {
  const masq = (steps: readonly string[]): readonly string[] => masqIf(ipMasq, steps);

  test('ADD: the IPAM, then one host batch, then the container batch and (ipMasq) NAT at once', async () => {
    const r = await plugin.add(args(ipMasq));
    expect(host.commands()).toEqual([FLOCK, 'ip -json -force -batch -', `${IN_NETNS} ip -json -batch -`, ...masq(MASQ.setup)]);
    expect(r.ips).toEqual([{ address: '10.23.0.2/16', gateway: GW, interface: 1 }]);
  });

  test('DEL: lease, the pair from the container side, (ipMasq) NAT on every installed backend', async () => {
    await plugin.del(args(ipMasq, { command: 'DEL', prevResult: await added(ipMasq) }));
    const link = host.spawned.find((p) => p.cmd.startsWith(IN_NETNS));
    expect(link?.input).toBe('link del dev eth0\n');
    const phases = inPhases(host.commands(), [[FLOCK, link!.cmd, ...masq(MASQ.teardown)]]);
    expect(phases.got).toEqual(phases.want);
  });

  test('DEL with an empty netns: the pair by its host end, named in prevResult', async () => {
    const r = await added(ipMasq);
    await plugin.del(args(ipMasq, { command: 'DEL', netns: '', prevResult: r }));
    const { got, want } = inPhases(host.commands(), [[FLOCK, 'ip -json -force -batch -', ...masq(MASQ.teardown)]]);
    expect(got).toEqual(want);
    expect(host.spawned.find((p) => p.argv[0] === 'ip')!.input).toBe(`link del dev ${r.interfaces![0]!.name}\n`);
  });

  test('CHECK: lease, container and host read at once, (ipMasq) one nft read', async () => {
    const r = await added(ipMasq);
    await plugin.check(args(ipMasq, { command: 'CHECK', prevResult: r }));
    expect(host.commands()).toEqual([FLOCK, `${IN_NETNS} ip -json -details -force -batch -`, 'ip -json -details -force -batch -', ...masq(MASQ.check)]);
  });

  test('STATUS: no process; GC: the IPAM and (ipMasq) every installed backend, both families', async () => {
    await added(ipMasq);
    await plugin.status(args(ipMasq, { command: 'STATUS' }));
    expect(host.spawned).toEqual([]);
    await plugin.gc(args(ipMasq, { command: 'GC' }, { 'cni.dev/valid-attachments': [] }));
    const { got, want } = inPhases(host.commands(), [[FLOCK, ...masq(MASQ.teardownByOwner)]]);
    expect(got).toEqual(want);
  });
});
