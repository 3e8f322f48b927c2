// bandwidth: chained after bridge (+ host-local) in a sandbox host. Asserts on the kernel's tc
// state (`tc -json -details -raw qdisc/filter show`, read in the sandbox host), on the ifb link,
// and on real TCP throughput between the container and a peer on the same bridge.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { exec, execOk, inNetns } from './helpers/exec';
import { ipJson, type IpLink } from './helpers/ip-json';
import { Registry, type Netns, uniqueBridgeName, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { IMPL, PLUGIN_DIR, SPEC_VERSIONS, knownReferenceBug, oursOnly, versionGap, versionGte } from './helpers/plugin-dir';
import { ConflistRunner, type Json, type PluginResult, expectCniError, expectOk, gcList, runPlugin } from './helpers/run-plugin';
import { tcpTransfer } from './helpers/sockets';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

/**
 * Reference bugs of this suite (conformance/REFERENCE-BUGS.md): `test.failing` on the reference.
 * 'del-leaves-qdiscs': the reference's DEL removes only the ifb; the veth's tbf, ingress qdisc and
 * the redirect filter (now pointing at nothing) stay while the veth lives, so a new ADD on it fails.
 */
/**
 * 'panic-without-prev': ADD with no limit and no prevResult dereferences the nil prevResult
 * (types.PrintResult) and panics: exit 2, a Go stack trace on stderr, no JSON on stdout.
 */
function refBug(bug: 'del-leaves-qdiscs' | 'panic-without-prev'): jest.It {
  if (IMPL !== 'reference' || process.env.CONFORMANCE_SHOW_REFERENCE_BUGS === '1') return test;
  // eslint-disable-next-line no-console
  console.info(`[conformance] expected to fail on the reference: bandwidth ${bug}`);
  return test.failing as unknown as jest.It;
}
const REFERENCE_BANDWIDTH = '/usr/lib/cni/bandwidth';

interface Qdisc {
  kind: string;
  handle: string;
  root?: boolean;
  options?: { rate?: number; limit?: number; burst_raw?: string };
}
interface Filter {
  kind: string;
  options?: { flowid?: string; actions?: { kind: string; mirred_action?: string; direction?: string; to_dev?: string }[] };
}

/** The reference's ifb name for (network, containerID): `bwp` + sha512 hex, 15 chars. */
function ifbOf(net: string, cid: string): string {
  return ('bwp' + createHash('sha512').update(net + cid).digest('hex')).slice(0, 15);
}

// 10 Mbit/s with a 100 kbit bucket: 1250000 bytes/s, 12500 bytes, limit 1250000 × 25 ms + 12500.
const TEN_MBIT = { rate: 10_000_000, burst: 100_000, rateBytes: 1_250_000, limit: 43_750 };

maybe(`bandwidth [${IMPL}: ${PLUGIN_DIR}]`, () => {
  const reg = new Registry();
  let host: Netns;
  beforeAll(async () => {
    host = await reg.sandboxHost();
  });
  afterAll(() => reg.cleanup());

  async function qdiscs(dev: string): Promise<Qdisc[]> {
    const r = await exec(inNetns(host.path, ['tc', '-json', '-details', '-raw', 'qdisc', 'show', 'dev', dev]));
    return r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as Qdisc[]) : [];
  }
  async function ingressFilters(dev: string): Promise<Filter[]> {
    const r = await execOk(inNetns(host.path, ['tc', '-json', 'filter', 'show', 'dev', dev, 'ingress']));
    return r.stdout.trim() ? (JSON.parse(r.stdout) as Filter[]) : [];
  }
  const ifbs = async (): Promise<IpLink[]> => ipJson<IpLink>(host, ['link', 'show', 'type', 'ifb']);
  const rootTbf = async (dev: string): Promise<Qdisc | undefined> => (await qdiscs(dev)).find((q) => q.root && q.kind === 'tbf');

  interface Net {
    name: string;
    bridge: Json;
    subnet: ReturnType<typeof uniqueSubnet24>;
  }
  function newNet(): Net {
    const subnet = uniqueSubnet24();
    const bridge = { type: 'bridge', bridge: uniqueBridgeName(), isGateway: true, ipam: { type: 'host-local', dataDir: reg.tempDir(), ranges: [[{ subnet: subnet.subnet }]] } };
    return { name: uniqueNetName('bw'), bridge, subnet };
  }
  /** bridge → bandwidth for one container; capabilityArgs as a runtime offers them. */
  async function attach(v: string, net: Net, bw: Json, capabilityArgs?: Record<string, unknown>) {
    const ctr = await reg.netns('ctr');
    const cid = uniqueContainerId();
    const list = { cniVersion: v, name: net.name, plugins: [net.bridge, { type: 'bandwidth', ...bw }] };
    const runner = new ConflistRunner(host, list, { containerId: cid, netns: ctr.path, ifname: 'eth0', capabilityArgs });
    return { ctr, cid, list, runner, ifb: ifbOf(net.name, cid) };
  }
  /** A peer container on the same bridge (no bandwidth plugin), for traffic. */
  async function peer(v: string, net: Net): Promise<{ ns: Netns; ip: string }> {
    const ns = await reg.netns('peer');
    const r = await new ConflistRunner(host, { cniVersion: v, name: net.name, plugins: [net.bridge] }, { containerId: uniqueContainerId(), netns: ns.path, ifname: 'eth0' }).add();
    return { ns, ip: (r.ips[0].address as string).split('/')[0]! };
  }
  const hostVeth = (r: Json): string => (r.interfaces as Json[]).find((i) => !i.sandbox && i.name.startsWith('veth')).name;
  const ctrIp = (r: Json): string => (r.ips[0].address as string).split('/')[0]!;

  function bwCall(command: 'ADD' | 'DEL' | 'CHECK', conf: Json, netns: string, cid: string): Promise<PluginResult> {
    return runPlugin({ plugin: 'bandwidth', command, host, config: conf, containerId: cid, netns, ifname: 'eth0' });
  }

  describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
    const it = knownReferenceBug(versionGap('bandwidth', v) ?? versionGap('bridge', v));

    it('bridge → bandwidth: ADD puts tbf on the host veth and an ifb with tbf behind a redirect → CHECK → DEL removes the ifb → DEL again', async () => {
      const net = newNet();
      const bw = { ingressRate: TEN_MBIT.rate, ingressBurst: TEN_MBIT.burst, egressRate: 2 * TEN_MBIT.rate, egressBurst: 2 * TEN_MBIT.burst };
      const { runner, ifb } = await attach(v, net, bw);
      const r = await runner.add();
      expect(r.cniVersion).toBe(v);
      const veth = hostVeth(r);

      // Ingress limit: the root tbf on the host veth.
      expect(await rootTbf(veth)).toMatchObject({ kind: 'tbf', handle: '1:', options: { rate: TEN_MBIT.rateBytes, limit: TEN_MBIT.limit, burst_raw: (156_250).toString(16) } });
      // Egress limit: ingress qdisc + match-all redirect to the ifb, and the ifb's tbf.
      expect((await qdiscs(veth)).some((q) => q.kind === 'ingress')).toBe(true);
      const redirect = (await ingressFilters(veth)).flatMap((f) => f.options?.actions ?? []).find((a) => a.kind === 'mirred');
      expect(redirect).toMatchObject({ mirred_action: 'redirect', direction: 'egress', to_dev: ifb });
      const ifbLink = (await ifbs()).find((l) => l.ifname === ifb);
      expect(ifbLink).toBeDefined();
      expect(ifbLink!.flags).toContain('UP');
      expect(ifbLink!.mtu).toBe(1500);
      expect(await rootTbf(ifb)).toMatchObject({ options: { rate: 2 * TEN_MBIT.rateBytes, limit: 2 * 31_250 + 25_000 } });
      // The result is the prevResult plus the ifb, as a host interface.
      expect(r.interfaces).toHaveLength(4);
      expect(r.interfaces[3]).toEqual({ name: ifb, mac: ifbLink!.address });

      if (versionGte(v, '0.4.0')) await runner.check();
      await runner.del();
      expect((await ifbs()).map((l) => l.ifname)).not.toContain(ifb);
      await runner.del();
    });
  });

  const v = '1.0.0';

  test('CHECK fails when the shaping was changed or removed behind its back', async () => {
    const net = newNet();
    const { runner, ifb } = await attach(v, net, { ingressRate: TEN_MBIT.rate, ingressBurst: TEN_MBIT.burst, egressRate: TEN_MBIT.rate, egressBurst: TEN_MBIT.burst });
    const r = await runner.add();
    const veth = hostVeth(r);
    await runner.check();
    await execOk(inNetns(host.path, ['tc', 'qdisc', 'replace', 'dev', veth, 'root', 'handle', '1:', 'tbf', 'rate', '1mbit', 'burst', '12500', 'limit', '43750']));
    await expect(runner.check()).rejects.toThrow(/bandwidth failed \(check\)/);
    await execOk(inNetns(host.path, ['tc', 'qdisc', 'replace', 'dev', veth, 'root', 'handle', '1:', 'tbf', 'rate', '1250000bps', 'burst', '12500', 'limit', '43750']));
    await runner.check();
    await execOk(inNetns(host.path, ['ip', 'link', 'del', ifb]));
    // The reference's CHECK only looks at qdiscs it finds; a missing ifb is an error there too.
    await expect(runner.check()).rejects.toThrow(/bandwidth failed \(check\)/);
    await runner.del();
  });

  describe('runtimeConfig.bandwidth (capability "bandwidth")', () => {
    const limits = { IngressRate: TEN_MBIT.rate, IngressBurst: 4_294_967_295, EgressRate: 2 * TEN_MBIT.rate, EgressBurst: 4_294_967_295 };
    async function viaRuntime(args: Record<string, unknown>) {
      const net = newNet();
      const a = await attach(v, net, { capabilities: { bandwidth: true } }, { bandwidth: args });
      const r = await a.runner.add();
      const veth = hostVeth(r);
      // containerd's bursts: 4294967295 bits = 536870911 bytes; the reference hands the kernel a
      // bucket whose tick count wrapped at 32 bits (2684354435 at 1 Mbit/s...), here at 10 Mbit/s.
      expect(await rootTbf(veth)).toMatchObject({ options: { rate: TEN_MBIT.rateBytes, limit: 31_250 + 536_870_911 } });
      expect(await rootTbf(a.ifb)).toMatchObject({ options: { rate: 2 * TEN_MBIT.rateBytes, limit: 62_500 + 536_870_911 } });
      await a.runner.check();
      await a.runner.del();
      expect((await ifbs()).map((l) => l.ifname)).not.toContain(a.ifb);
    }

    test('camelCase keys (CONVENTIONS.md)', async () => {
      await viaRuntime({ ingressRate: limits.IngressRate, ingressBurst: limits.IngressBurst, egressRate: limits.EgressRate, egressBurst: limits.EgressBurst });
    });

    // containerd's CRI plugin sends go-cni's struct without JSON tags, so PascalCase keys; Go's
    // decoder matches them case-insensitively, and so does our skeleton (lib/schema/keys.ts, from
    // the plugin's schema.json).
    test("containerd's PascalCase keys", async () => {
      await viaRuntime(limits);
    });

    test('top-level keys win over runtimeConfig', async () => {
      const net = newNet();
      const a = await attach(v, net, { capabilities: { bandwidth: true }, ingressRate: TEN_MBIT.rate, ingressBurst: TEN_MBIT.burst }, { bandwidth: { egressRate: 8000, egressBurst: 8000 } });
      const r = await a.runner.add();
      expect(await rootTbf(hostVeth(r))).toMatchObject({ options: { rate: TEN_MBIT.rateBytes } });
      expect((await ifbs()).map((l) => l.ifname)).not.toContain(a.ifb);
      await a.runner.del();
    });
  });

  describe('real throughput at 10 Mbit/s (TCP, 4 MB, measured at the receiver; within ±25%)', () => {
    const BYTES = 4_000_000;
    const TOLERANCE = 0.25;
    async function measure(direction: 'ingress' | 'egress') {
      const net = newNet();
      const bw = direction === 'ingress' ? { ingressRate: TEN_MBIT.rate, ingressBurst: TEN_MBIT.burst } : { egressRate: TEN_MBIT.rate, egressBurst: TEN_MBIT.burst };
      const { ctr, runner } = await attach(v, net, bw);
      const r = await runner.add();
      const p = await peer(v, net);
      // ingress = towards the container (peer sends), egress = from the container (it sends).
      const t =
        direction === 'ingress' ? await tcpTransfer(p.ns.path, ctr.path, ctrIp(r), 5201, BYTES) : await tcpTransfer(ctr.path, p.ns.path, p.ip, 5202, BYTES);
      // eslint-disable-next-line no-console
      console.info(`[bandwidth ${IMPL}] ${direction} 10 Mbit/s: ${t.bytes} bytes in ${t.seconds.toFixed(2)} s = ${(t.bitsPerSecond / 1e6).toFixed(2)} Mbit/s`);
      expect(t.bytes).toBe(BYTES);
      expect(t.bitsPerSecond).toBeGreaterThan(TEN_MBIT.rate * (1 - TOLERANCE));
      expect(t.bitsPerSecond).toBeLessThan(TEN_MBIT.rate * (1 + TOLERANCE));
      await runner.del();
    }
    test('ingress (tbf on the host veth)', () => measure('ingress'), 60_000);
    test('egress (redirect to the ifb, tbf there)', () => measure('egress'), 60_000);

    test('control: the same transfer without a limit is far faster (so the checks above can fail)', async () => {
      const net = newNet();
      const { ctr, runner } = await attach(v, net, {});
      const r = await runner.add();
      const p = await peer(v, net);
      const t = await tcpTransfer(p.ns.path, ctr.path, ctrIp(r), 5203, BYTES);
      expect(t.bitsPerSecond).toBeGreaterThan(TEN_MBIT.rate * 3);
      await runner.del();
    });
  });

  refBug('del-leaves-qdiscs')('DEL (veth still there) removes its qdiscs and filter from the host veth; ADD again works', async () => {
    const net = newNet();
    const bw = { ingressRate: TEN_MBIT.rate, ingressBurst: TEN_MBIT.burst, egressRate: TEN_MBIT.rate, egressBurst: TEN_MBIT.burst };
    const { runner, cid, ifb, ctr } = await attach(v, net, {});
    const prev = await runner.add();
    const veth = hostVeth(prev);
    const conf = { cniVersion: v, name: net.name, type: 'bandwidth', ...bw };
    const r = expectOk(await bwCall('ADD', { ...conf, prevResult: prev }, ctr.path, cid), 'ADD').json;
    expectOk(await bwCall('DEL', { ...conf, prevResult: r }, ctr.path, cid), 'DEL');
    expect((await ifbs()).map((l) => l.ifname)).not.toContain(ifb);
    try {
      expect((await qdiscs(veth)).map((q) => q.kind)).not.toContain('tbf');
      expect((await qdiscs(veth)).map((q) => q.kind)).not.toContain('ingress');
      expect(await ingressFilters(veth).catch(() => [])).toEqual([]);
      const again = expectOk(await bwCall('ADD', { ...conf, prevResult: prev }, ctr.path, cid), 'ADD again').json;
      expectOk(await bwCall('DEL', { ...conf, prevResult: again }, ctr.path, cid), 'DEL again');
    } finally {
      await bwCall('DEL', conf, '', cid);
      await runner.del();
    }
  });

  test('DEL with an empty CNI_NETNS and no prevResult removes the ifb', async () => {
    const net = newNet();
    const { runner, cid, ifb, ctr } = await attach(v, net, { egressRate: TEN_MBIT.rate, egressBurst: TEN_MBIT.burst });
    await runner.add();
    expect((await ifbs()).map((l) => l.ifname)).toContain(ifb);
    const conf = { cniVersion: v, name: net.name, type: 'bandwidth', egressRate: TEN_MBIT.rate, egressBurst: TEN_MBIT.burst };
    expectOk(await bwCall('DEL', conf, '', cid), 'DEL with empty netns');
    expect((await ifbs()).map((l) => l.ifname)).not.toContain(ifb);
    expectOk(await bwCall('DEL', conf, '', cid), 'DEL again');
    // The container's netns gone too: DEL still succeeds.
    await reg.deleteNetns(ctr);
    expectOk(await bwCall('DEL', { ...conf, prevResult: runner.cachedResult }, ctr.path, cid), 'DEL with a vanished netns');
    await runner.del('');
  });

  describe('bad input: a CNI error and nothing left', () => {
    test.each([
      ['rate without burst', { ingressRate: 1000 }],
      ['burst without rate', { egressBurst: 1000 }],
      ['negative rate', { ingressRate: -1000, ingressBurst: 1000 }],
      ['rate not a number', { egressRate: 'fast', egressBurst: 1000 }],
      ['burst of 4 GB or more', { egressRate: 1000, egressBurst: 8 * 4294967295 }],
    ])('%s', async (_what, bw) => {
      const net = newNet();
      const a = await attach(v, net, {});
      const r = await a.runner.add(); // bridge + a no-op bandwidth
      const veth = hostVeth(r);
      const conf = { cniVersion: v, name: net.name, type: 'bandwidth', ...bw, prevResult: r };
      expectCniError(await bwCall('ADD', conf, a.ctr.path, a.cid));
      expect(await qdiscs(veth)).not.toContainEqual(expect.objectContaining({ kind: 'tbf' }));
      expect(await qdiscs(veth)).not.toContainEqual(expect.objectContaining({ kind: 'ingress' }));
      expect((await ifbs()).map((l) => l.ifname)).not.toContain(a.ifb);
      await a.runner.del();
    });

    test('missing prevResult', async () => {
      const ctr = await reg.netns('ctr');
      const cid = uniqueContainerId();
      const conf = { cniVersion: v, name: uniqueNetName('bw'), type: 'bandwidth', egressRate: 1000, egressBurst: 1000 };
      expectCniError(await bwCall('ADD', conf, ctr.path, cid));
      expect((await ifbs()).map((l) => l.ifname)).not.toContain(ifbOf(conf.name, cid));
    });

    refBug('panic-without-prev')('no limit and no prevResult: a CNI error, not a crash', async () => {
      const ctr = await reg.netns('ctr');
      const conf = { cniVersion: v, name: uniqueNetName('bw'), type: 'bandwidth' };
      expectCniError(await bwCall('ADD', conf, ctr.path, uniqueContainerId()));
    });

    oursOnly('per-subnet keys (plugins v1.5 only; v1.1.1 ignores unknown keys)')('unshapedSubnets / shapedSubnets: refused with code 2, not ignored', async () => {
      const ctr = await reg.netns('ctr');
      const conf = { cniVersion: v, name: uniqueNetName('bw'), type: 'bandwidth', egressRate: 1000, egressBurst: 1000, unshapedSubnets: ['10.0.0.0/8'], prevResult: { cniVersion: v, interfaces: [] } };
      const e = expectCniError(await bwCall('ADD', conf, ctr.path, uniqueContainerId()), 2);
      expect(e.msg).toContain('unshapedSubnets');
    });

    oursOnly('failpoint after-apply')('a failure after the qdiscs are in place rolls back everything', async () => {
      const net = newNet();
      const a = await attach(v, net, {});
      const r = await a.runner.add();
      const veth = hostVeth(r);
      const conf = { cniVersion: v, name: net.name, type: 'bandwidth', ingressRate: 8000, ingressBurst: 8000, egressRate: 8000, egressBurst: 8000, prevResult: r };
      const res = await runPlugin({ plugin: 'bandwidth', command: 'ADD', host, config: conf, containerId: a.cid, netns: a.ctr.path, ifname: 'eth0', env: { CNI_TS_FAILPOINT: 'after-apply' } });
      expectCniError(res);
      expect((await qdiscs(veth)).map((q) => q.kind)).not.toEqual(expect.arrayContaining(['tbf']));
      expect((await qdiscs(veth)).map((q) => q.kind)).not.toContain('ingress');
      expect((await ifbs()).map((l) => l.ifname)).not.toContain(a.ifb);
      await a.runner.del();
    });
  });

  describe('interoperability with the reference binary', () => {
    const both = IMPL === 'ours' && existsSync(REFERENCE_BANDWIDTH) ? test : test.skip;
    async function refCall(command: 'ADD' | 'DEL' | 'CHECK', conf: Json, netns: string, cid: string): Promise<PluginResult> {
      const r = await exec(inNetns(host.path, [REFERENCE_BANDWIDTH]), {
        stdin: JSON.stringify(conf),
        env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: cid, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' },
      });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined, env: {}, stdin: '' };
    }

    both("the reference's CHECK accepts our ADD (same rate, limit and bucket), for round and containerd-style limits", async () => {
      for (const bw of [
        { ingressRate: TEN_MBIT.rate, ingressBurst: TEN_MBIT.burst, egressRate: TEN_MBIT.rate, egressBurst: TEN_MBIT.burst },
        { ingressRate: 1_000_000, ingressBurst: 4_294_967_295, egressRate: 2_000_000, egressBurst: 4_294_967_295 },
      ]) {
        const net = newNet();
        const a = await attach(v, net, bw);
        const r = await a.runner.add();
        expectOk(await refCall('CHECK', { cniVersion: v, name: net.name, type: 'bandwidth', ...bw, prevResult: r }, a.ctr.path, a.cid), 'reference CHECK of our state');
        await a.runner.del();
      }
    });

    both("our CHECK accepts the reference's ADD, and our DEL removes the reference's ifb", async () => {
      const net = newNet();
      const a = await attach(v, net, {});
      const prev = await a.runner.add();
      const bw = { ingressRate: 12_345_678, ingressBurst: 99_999, egressRate: TEN_MBIT.rate, egressBurst: TEN_MBIT.burst };
      const conf = { cniVersion: v, name: net.name, type: 'bandwidth', ...bw };
      const r = expectOk(await refCall('ADD', { ...conf, prevResult: prev }, a.ctr.path, a.cid), 'reference ADD').json;
      expectOk(await bwCall('CHECK', { ...conf, prevResult: r }, a.ctr.path, a.cid), 'our CHECK of the reference state');
      expectOk(await bwCall('DEL', conf, '', a.cid), 'our DEL');
      expect((await ifbs()).map((l) => l.ifname)).not.toContain(a.ifb);
      await a.runner.del();
    });
  });

  describe('cniVersion 1.1.0 verbs', () => {
    const it11 = knownReferenceBug(versionGap('bandwidth', '1.1.0'));
    it11('STATUS succeeds (stateless)', async () => {
      const r = await runPlugin({ plugin: 'bandwidth', command: 'STATUS', host, config: { cniVersion: '1.1.0', name: 'x', type: 'bandwidth' } });
      expectOk(r, 'STATUS');
      expect(r.stdout.trim()).toBe('');
    });

    oursOnly('GC (the reference has none)')('GC removes the ifb of a stale attachment, keeps the valid one and other networks\' ifbs', async () => {
      const bw = { egressRate: TEN_MBIT.rate, egressBurst: TEN_MBIT.burst };
      const net = newNet();
      const keep = await attach('1.1.0', net, bw);
      const stale = await attach('1.1.0', net, bw);
      const other = await attach('1.1.0', newNet(), bw);
      await keep.runner.add();
      await stale.runner.add();
      await other.runner.add();
      await gcList(host, { cniVersion: '1.1.0', name: net.name, plugins: [{ type: 'bandwidth', ...bw }] }, [{ containerID: keep.cid, ifname: 'eth0' }]);
      const names = (await ifbs()).map((l) => l.ifname);
      expect(names).toContain(keep.ifb);
      expect(names).toContain(other.ifb);
      expect(names).not.toContain(stale.ifb);
      for (const a of [keep, stale, other]) await a.runner.del();
    });
  });

  test('nothing left in the sandbox host: no ifb, no qdisc on any remaining veth', async () => {
    expect(await ifbs()).toEqual([]);
    const veths = await ipJson<IpLink>(host, ['link', 'show', 'type', 'veth']);
    for (const l of veths) expect((await qdiscs(l.ifname)).map((q) => q.kind)).not.toContain('tbf');
  });
});
