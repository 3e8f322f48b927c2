// The processes bridge starts per verb, with and without ipMasq, on the fake host of
// lib/skel/testing.ts (spawner faked, both netfilter backends installed, host-local in-process on
// a temp dataDir): how many and their exact argv, in order. Nothing is spawned and no kernel is
// touched (IP forwarding is stubbed out: it writes /proc, not a process, and must not change the
// machine running the tests).
import { inPhases, ipLink } from '../../lib/exec/testing';
import { afterAdd, cmdArgs, fakeHost, FLOCK, MASQ, masqIf, SELF_NETNS, type FakeHost } from '../../lib/skel/testing';
import { asCniError } from '../../lib/skel/errors';
import type { CmdArgs } from '../../lib/skel/dispatch';
import type { Result } from '../../lib/types/result';
import '../../ipam/host-local/register';

jest.mock('../../lib/sysctl/forward', () => ({ enableForwarding: jest.fn() }));
// After the mock: the plugin must load the stubbed forwarding.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { plugin } = require('./main') as typeof import('./main');

const IN_NETNS = `nsenter --net=${SELF_NETNS} --`;
const HOST_BATCH = 'ip -json -details -force -batch -';
const CONTAINER_BATCH = `${IN_NETNS} ip -json -batch -`;
const GATEWAY_BATCH = 'ip -json -force -batch -';
const BUSY = 'RTNETLINK answers: Device or resource busy';

/** Whether cni0 has its gateway yet, and the container's address once added. */
let gateway: boolean;
let ip: string | undefined;
let host: FakeHost;
beforeEach(() => {
  gateway = false;
  ip = undefined;
  host = fakeHost((line) => {
    if (/^(addr|link) show dev cni0$/.test(line)) {
      const addr_info = gateway ? [{ family: 'inet', local: '10.22.0.1', prefixlen: 16, scope: 'global' }] : [];
      return [ipLink('cni0', { linkinfo: { info_kind: 'bridge' }, addr_info })];
    }
    const veth = /^link show dev (veth\w+)$/.exec(line)?.[1];
    if (veth) return [ipLink(veth, { master: 'cni0' })];
    if (line === 'addr show dev eth0' && ip) return [ipLink('eth0', { addr_info: [{ family: 'inet', local: ip.split('/')[0], prefixlen: 16, scope: 'global' }] })];
    return undefined;
  });
});
afterEach(() => host.restore());

function args(ipMasq: boolean, extra: Partial<CmdArgs> = {}, more: Record<string, unknown> = {}): CmdArgs {
  const conf = { type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq, ipam: { type: 'host-local', dataDir: host.dir, ranges: [[{ subnet: '10.22.0.0/16' }]] }, ...more };
  return cmdArgs(conf, { path: host.path, ...extra });
}

/** ADD; the fake kernel now holds what it made. */
async function added(ipMasq: boolean): Promise<Result> {
  const r = await plugin.add(args(ipMasq));
  ip = r.ips![0]!.address;
  gateway = true;
  return afterAdd(host, r, ipMasq);
}

describe.each([false, true])('ipMasq %s', (ipMasq) => {
  const masq = (steps: readonly string[]): readonly string[] => masqIf(ipMasq, steps);

  test('ADD, first container: IPAM lock beside the host batch, then the container batch, the gateway and NAT at once', async () => {
    const r = await plugin.add(args(ipMasq));
    const { got, want } = inPhases(host.commands(), [
      [FLOCK, HOST_BATCH],
      [CONTAINER_BATCH, GATEWAY_BATCH, ...masq(MASQ.setup)],
    ]);
    expect(got).toEqual(want);
    expect(host.spawned.find((p) => p.cmd === GATEWAY_BATCH)!.input).toBe('addr add 10.22.0.1/16 dev cni0\n');
    expect(r.ips).toEqual([{ address: '10.22.0.2/16', gateway: '10.22.0.1', interface: 2 }]);
  });

  test('ADD, the bridge already has its gateway: no gateway batch', async () => {
    gateway = true;
    await plugin.add(args(ipMasq));
    const { got, want } = inPhases(host.commands(), [[FLOCK, HOST_BATCH], [CONTAINER_BATCH, ...masq(MASQ.setup)]]);
    expect(got).toEqual(want);
  });

  test('DEL: lease, container link and (ipMasq) the NAT rules on every installed backend, at once', async () => {
    const r = await added(ipMasq);
    await plugin.del(args(ipMasq, { command: 'DEL', prevResult: r }));
    const { got, want } = inPhases(host.commands(), [[FLOCK, `${IN_NETNS} ip -json -force -batch -`, ...masq(MASQ.teardown)]]);
    expect(got).toEqual(want);
    expect(host.spawned.find((p) => p.cmd.startsWith(IN_NETNS))!.input).toBe('link del dev eth0\n');
  });

  test("DEL with an empty netns and no prevResult (containerd's second DEL): no link step; NAT found by owner", async () => {
    await added(ipMasq);
    await plugin.del(args(ipMasq, { command: 'DEL', netns: '' }));
    const { got, want } = inPhases(host.commands(), [[FLOCK, ...masq(MASQ.teardownByOwner)]]);
    expect(got).toEqual(want);
  });

  test('CHECK: lease, then the container and the host read, (ipMasq) one nft read', async () => {
    const r = await added(ipMasq);
    await plugin.check(args(ipMasq, { command: 'CHECK', prevResult: r }));
    expect(host.commands()).toEqual([FLOCK, `${IN_NETNS} ip -json -force -batch -`, HOST_BATCH, ...masq(MASQ.check)]);
  });

  test('GC: the IPAM and (ipMasq) every installed backend, both families', async () => {
    await added(ipMasq);
    await plugin.gc(args(ipMasq, { command: 'GC' }, { 'cni.dev/valid-attachments': [] }));
    const phases = inPhases(host.commands(), [[FLOCK, ...masq(MASQ.teardownByOwner)]]);
    expect(phases.got).toEqual(phases.want);
  });

  test('STATUS: no process', async () => {
    await plugin.status(args(ipMasq, { command: 'STATUS' }));
    expect(host.spawned).toEqual([]);
  });
});

test('DEL: a busy kernel is code 11, with every failure named', async () => {
  const r = await added(false);
  host.answer((p) => (p.argv.includes('-batch') ? { exitCode: 1, stderr: `${BUSY}\nCommand failed -:1\n` } : undefined));
  const e = asCniError(await plugin.del(args(false, { command: 'DEL', prevResult: r })).catch((x: unknown) => x));
  expect(e).toMatchObject({ code: 11, message: `bridge DEL: delete the container interface: delete eth0: ${BUSY}` });
});

test('ADD: a bridge port the kernel says is busy is code 11, and the lease and veth are rolled back', async () => {
  host.answer((p) => (p.cmd === HOST_BATCH ? { exitCode: 1, stderr: `${BUSY}\nCommand failed -:4\n` } : undefined));
  const e = asCniError(await plugin.add(args(false)).catch((x: unknown) => x));
  expect(e.code).toBe(11);
  expect(e.message).toMatch(new RegExp(`^failed to set up bridge cni0 and veth (veth\\w+): ${BUSY} \\(ip link set dev \\1 master cni0\\)$`));
  // The lease went back (another flock) and the half-made veth was deleted.
  const { got, want } = inPhases(host.commands(), [
    [FLOCK, HOST_BATCH],
    [FLOCK, 'ip -json -batch -'],
  ]);
  expect(got).toEqual(want);
});
