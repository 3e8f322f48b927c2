// bridge (+ host-local), driven like a runtime: ADD → kernel state in the sandbox host and the
// container (bridge, enslaved veth, address, routes, gateway on the bridge, MTU, ip_forward,
// masquerade rules) and result shape per version → CHECK → DEL → state gone → DEL again.
// Plus: DEL after the netns died (empty CNI_NETNS, with and without prevResult), real packets, failures that must leave
// nothing behind, and 32 concurrent ADD/DELs on a bridge that does not exist yet.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execOk, inNetns } from './helpers/exec';
import { addressesOf, eventually, link, links, natRulesFor, netfilterDump, ping, readSysctl, routes, rulesForContainer, veths } from './helpers/ip-json';
import { leaseFiles } from './helpers/leases';
import { Registry, type Netns, uniqueBridgeName, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { IMPL, PLUGIN_DIR, SPEC_VERSIONS, knownReferenceBug, oursOnly, versionGap, versionGte } from './helpers/plugin-dir';
import { ConflistRunner, type Json, type NetConfList, describeRun, expectCniError, gcList, runPlugin } from './helpers/run-plugin';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

interface TestNet {
  list: NetConfList;
  bridge: string;
  subnet: ReturnType<typeof uniqueSubnet24>;
  dataDir: string;
  leaseDir: string;
}

maybe(`bridge [${IMPL}: ${PLUGIN_DIR}]`, () => {
  // One registry per test: each test gets its own sandbox host, so nothing leaks between tests.
  let reg: Registry;
  let host: Netns;
  beforeEach(async () => {
    reg = new Registry();
    host = await reg.sandboxHost();
  });
  afterEach(() => reg.cleanup());

  function makeNet(v: string, opts: Json = {}, ipamExtra: Json = {}): TestNet {
    const subnet = uniqueSubnet24();
    const bridge = uniqueBridgeName();
    const dataDir = reg.tempDir();
    const name = uniqueNetName('br');
    const plugin = {
      type: 'bridge',
      bridge,
      isGateway: true,
      isDefaultGateway: true,
      ipMasq: true,
      mtu: 1400,
      ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: subnet.subnet }]], ...ipamExtra },
      ...opts,
    };
    return { list: { cniVersion: v, name, plugins: [plugin] }, bridge, subnet, dataDir, leaseDir: join(dataDir, name) };
  }

  const leases = (n: TestNet): string[] => leaseFiles(n.leaseDir);

  async function attach(n: TestNet, env: Record<string, string | undefined> = {}): Promise<{ ctr: Netns; runner: ConflistRunner; cid: string }> {
    const ctr = await reg.netns('ctr');
    const cid = uniqueContainerId();
    const runner = new ConflistRunner(host, n.list, { containerId: cid, netns: ctr.path, ifname: 'eth0' }, env);
    return { ctr, runner, cid };
  }

  describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
    const it = knownReferenceBug(versionGap('bridge', v));

    it('ADD → kernel state + result shape → CHECK → DEL → state gone → DEL again', async () => {
      const n = makeNet(v);
      const { ctr, runner, cid } = await attach(n);
      expect(await readSysctl(host, '/proc/sys/net/ipv4/ip_forward')).toBe('0');

      const res = await runner.add();
      const ctrIp = `${n.subnet.prefix}.2`;

      // --- result JSON shape for this version
      expect(res.cniVersion).toBe(v);
      expect(res.interfaces).toHaveLength(3);
      const [brIf, hostIf, ctrIf] = res.interfaces as Json[];
      expect(brIf.name).toBe(n.bridge);
      expect(brIf.sandbox ?? '').toBe('');
      expect(hostIf.sandbox ?? '').toBe('');
      expect(ctrIf).toEqual(expect.objectContaining({ name: 'eth0', sandbox: ctr.path }));
      for (const i of res.interfaces as Json[]) expect(i.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      expect(res.ips).toHaveLength(1);
      expect(res.ips[0]).toEqual(expect.objectContaining({ address: `${ctrIp}/24`, gateway: n.subnet.gateway, interface: 2 }));
      if (versionGte(v, '1.0.0')) expect(res.ips[0]).not.toHaveProperty('version');
      else expect(res.ips[0].version).toBe('4');

      // --- sandbox host: bridge up with the gateway address and MTU; host veth enslaved
      const br = await link(host, n.bridge);
      expect(br?.linkinfo?.info_kind).toBe('bridge');
      expect(br?.flags).toContain('UP');
      expect(br?.address).toBe(brIf.mac);
      expect(await addressesOf(host, n.bridge)).toContain(`${n.subnet.gateway}/24`);
      const hv = await link(host, hostIf.name);
      expect(hv?.linkinfo?.info_kind).toBe('veth');
      expect(hv?.master).toBe(n.bridge);
      expect(hv?.mtu).toBe(1400);
      expect(hv?.flags).toContain('UP');
      expect(await readSysctl(host, '/proc/sys/net/ipv4/ip_forward')).toBe('1');

      // --- container: eth0 up with the address, MTU and a default route via the gateway
      const eth0 = await link(ctr, 'eth0');
      expect(eth0?.flags).toContain('UP');
      expect(eth0?.mtu).toBe(1400);
      expect(eth0?.address).toBe(ctrIf.mac);
      expect(await addressesOf(ctr, 'eth0')).toEqual([`${ctrIp}/24`]);
      const def = (await routes(ctr)).find((r) => r.dst === 'default');
      expect(def).toEqual(expect.objectContaining({ gateway: n.subnet.gateway, dev: 'eth0' }));

      // --- lease on disk and masquerade rules for exactly this container
      expect(leases(n)).toEqual([ctrIp]);
      expect(readFileSync(join(n.leaseDir, ctrIp), 'utf8')).toBe(`${cid}\r\neth0`);
      expect(await natRulesFor(host, ctrIp)).not.toEqual([]);

      // --- packets: the container reaches its gateway
      expect(await ping(ctr, n.subnet.gateway)).toBe(true);

      if (versionGte(v, '0.4.0')) await runner.check();

      await runner.del();
      expect(await link(ctr, 'eth0')).toBeUndefined();
      expect(await link(host, hostIf.name)).toBeUndefined();
      expect(await veths(host)).toEqual([]);
      expect(leases(n)).toEqual([]);
      expect(await natRulesFor(host, ctrIp)).toEqual([]);
      expect(await rulesForContainer(host, cid)).toEqual([]);
      await runner.del();
    });
  });

  describe('GC (cniVersion 1.1.0)', () => {
    const v = '1.1.0';
    const gcTest = knownReferenceBug(versionGap('bridge', v) ?? 'no-gc');
    const valid = (...cids: string[]) => cids.map((containerID) => ({ containerID, ifname: 'eth0' }));

    for (const backend of IMPL === 'ours' ? ['nftables', 'iptables'] : [undefined]) {
      gcTest(`GC removes the NAT rules and lease of attachments not in valid-attachments, keeps the rest (ipMasqBackend ${backend ?? 'default'})`, async () => {
        const n = makeNet(v, backend ? { ipMasqBackend: backend } : {});
        const a = await attach(n);
        const b = await attach(n);
        const ipA = ((await a.runner.add()).ips[0].address as string).split('/')[0]!;
        const ipB = ((await b.runner.add()).ips[0].address as string).split('/')[0]!;
        expect(await natRulesFor(host, ipA)).not.toEqual([]);
        // Both valid: nothing goes.
        await gcList(host, n.list, valid(a.cid, b.cid));
        expect(leases(n).sort()).toEqual([ipA, ipB].sort());
        expect(await natRulesFor(host, ipA)).not.toEqual([]);
        // Only B valid: A's rules and lease go (its netns may be assumed gone), B's stay and work.
        await reg.deleteNetns(a.ctr);
        await gcList(host, n.list, valid(b.cid));
        expect(leases(n)).toEqual([ipB]);
        expect(await natRulesFor(host, ipA)).toEqual([]);
        expect(await rulesForContainer(host, a.cid)).toEqual([]);
        expect(await natRulesFor(host, ipB)).not.toEqual([]);
        await b.runner.check();
        await b.runner.del();
        expect(await rulesForContainer(host, b.cid)).toEqual([]);
      });
    }

    gcTest("GC of one network with an empty valid list never touches another network's NAT rules", async () => {
      const n1 = makeNet(v);
      const n2 = makeNet(v);
      const a = await attach(n1);
      const b = await attach(n2);
      const ipA = ((await a.runner.add()).ips[0].address as string).split('/')[0]!;
      const ipB = ((await b.runner.add()).ips[0].address as string).split('/')[0]!;
      const before = await natRulesFor(host, ipB);
      expect(before).not.toEqual([]);
      await gcList(host, n1.list, []);
      expect(await natRulesFor(host, ipA)).toEqual([]);
      expect(leases(n1)).toEqual([]);
      expect(await natRulesFor(host, ipB)).toEqual(before);
      expect(leases(n2)).toEqual([ipB]);
      await b.runner.check();
      await b.runner.del();
    });
  });

  describe('cniVersion 1.0.0 scenarios', () => {
    const v = '1.0.0';

    test('DEL with an empty CNI_NETNS after the netns was deleted releases the lease', async () => {
      const n = makeNet(v);
      const { ctr, runner } = await attach(n);
      await runner.add();
      await reg.deleteNetns(ctr);
      // The veth pair dies with the netns, asynchronously (netns cleanup runs in a workqueue).
      await eventually(async () => expect(await veths(host)).toEqual([]));
      await runner.del('');
      expect(leases(n)).toEqual([]);
      await runner.del('');
    });

    knownReferenceBug('del-empty-netns-leaks-masq')('DEL with an empty CNI_NETNS after the netns was deleted removes the NAT rules', async () => {
      const n = makeNet(v);
      const { ctr, runner, cid } = await attach(n);
      const res = await runner.add();
      const ip = (res.ips[0].address as string).split('/')[0]!;
      expect(await natRulesFor(host, ip)).not.toEqual([]);
      await reg.deleteNetns(ctr);
      await eventually(async () => expect(await veths(host)).toEqual([]));
      await runner.del('');
      expect(leases(n)).toEqual([]);
      expect(await natRulesFor(host, ip)).toEqual([]);
      expect(await rulesForContainer(host, cid)).toEqual([]);
    });

    // containerd's RemovePodSandbox after the pod's netns died: CNI_NETNS="" and no prevResult
    // (libcni's result cache is gone). Lease and NAT rules are released all the same.
    knownReferenceBug('del-empty-netns-leaks-masq')("containerd's second DEL (empty CNI_NETNS, no prevResult) after the netns died releases the lease and the NAT rules", async () => {
      const n = makeNet(v);
      const { ctr, runner, cid } = await attach(n);
      const res = await runner.add();
      const ip = (res.ips[0].address as string).split('/')[0]!;
      await reg.deleteNetns(ctr);
      await eventually(async () => expect(await veths(host)).toEqual([]));
      await runner.del('', { cached: false });
      expect(leases(n)).toEqual([]);
      expect(await natRulesFor(host, ip)).toEqual([]);
      expect(await rulesForContainer(host, cid)).toEqual([]);
      await runner.del('', { cached: false });
    });

    test("after a full DEL, containerd's second DEL (empty CNI_NETNS, no prevResult) exits 0 and changes nothing", async () => {
      const n = makeNet(v);
      const { runner } = await attach(n);
      await runner.add();
      await runner.del();
      const rules = async () => (await netfilterDump(host)).split('\n').filter((l) => !l.startsWith('#'));
      const before = await rules();
      await runner.del('', { cached: false });
      expect(leases(n)).toEqual([]);
      expect(await rules()).toEqual(before);
    });

    test('two containers on one bridge ping each other and the gateway', async () => {
      const n = makeNet(v);
      const a = await attach(n);
      const b = await attach(n);
      const ipA = ((await a.runner.add()).ips[0].address as string).split('/')[0]!;
      const ipB = ((await b.runner.add()).ips[0].address as string).split('/')[0]!;
      expect(ipA).not.toBe(ipB);
      expect(await ping(a.ctr, ipB)).toBe(true);
      expect(await ping(b.ctr, ipA)).toBe(true);
      expect(await ping(a.ctr, n.subnet.gateway)).toBe(true);
      expect(await ping(b.ctr, n.subnet.gateway)).toBe(true);
      // And the negative: after B is deleted, A can no longer reach it.
      await b.runner.del();
      expect(await ping(a.ctr, ipB)).toBe(false);
      await a.runner.del();
    });

    test('one container on two networks, both with isDefaultGateway: ADD succeeds and both default routes are there', async () => {
      // A runtime attaching a second network (eth1) to a container whose eth0 already has a
      // default route: the reference appends the second one beside it; a plain `route add` fails.
      const n1 = makeNet(v);
      const n2 = makeNet(v);
      const ctr = await reg.netns('ctr');
      const cid = uniqueContainerId();
      const r1 = new ConflistRunner(host, n1.list, { containerId: cid, netns: ctr.path, ifname: 'eth0' });
      const r2 = new ConflistRunner(host, n2.list, { containerId: cid, netns: ctr.path, ifname: 'eth1' });
      await r1.add();
      await r2.add();
      const defaults = (await routes(ctr)).filter((r) => r.dst === 'default').map((r) => `${r.gateway} ${r.dev}`).sort();
      expect(defaults).toEqual([`${n1.subnet.gateway} eth0`, `${n2.subnet.gateway} eth1`].sort());
      expect(await ping(ctr, n2.subnet.gateway)).toBe(true);
      await r2.del();
      await r1.del();
      expect(leases(n1)).toEqual([]);
      expect(leases(n2)).toEqual([]);
    });

    test('without ipMasq no NAT rule is installed; without isGateway the bridge has no address', async () => {
      const n = makeNet(v, { ipMasq: false, isGateway: false, isDefaultGateway: false });
      const { runner } = await attach(n);
      const res = await runner.add();
      const ip = (res.ips[0].address as string).split('/')[0]!;
      expect(await natRulesFor(host, ip)).toEqual([]);
      expect(await addressesOf(host, n.bridge)).toEqual([]);
      expect(await readSysctl(host, '/proc/sys/net/ipv4/ip_forward')).toBe('0');
      await runner.del();
    });

    test('an interface name already taken in the container → ADD fails, no lease, no host veth', async () => {
      const n = makeNet(v);
      const { ctr, runner } = await attach(n);
      // A bridge device: always available where this plugin is (dummy may not be loadable).
      await execOk(inNetns(ctr.path, ['ip', 'link', 'add', 'eth0', 'type', 'bridge']));
      reg.link(ctr, 'eth0');
      // Reference: "container veth name provided (eth0) already exists".
      await expect(runner.add()).rejects.toThrow(/failed \(add\)[\s\S]*(eth0|exist)/i);
      expect(leases(n)).toEqual([]);
      expect(await veths(host)).toEqual([]);
      expect(await veths(ctr)).toEqual([]);
      expect((await link(ctr, 'eth0'))?.linkinfo?.info_kind).toBe('bridge'); // not touched
    });

    oursOnly('CNI_TS_FAILPOINT is compiled into our build only')(
      'rollback: CNI_TS_FAILPOINT=after-ipam makes ADD fail and leaves no veth, lease or NAT rule',
      async () => {
        const n = makeNet(v);
        const { ctr, runner, cid } = await attach(n, { CNI_TS_FAILPOINT: 'after-ipam' });
        // It must fail *because of the failpoint* (after IPAM ran), not for an unrelated reason.
        await expect(runner.add()).rejects.toThrow(/after-ipam/);
        expect(await veths(host)).toEqual([]);
        expect(await link(ctr, 'eth0')).toBeUndefined();
        expect(leases(n)).toEqual([]);
        expect(await natRulesFor(host, `${n.subnet.prefix}.2`)).toEqual([]);
        expect(await rulesForContainer(host, cid)).toEqual([]);
      },
    );

    test('error contract: invalid JSON → 6, missing env → 4 naming them, cniVersion 0.9.9 → 1', async () => {
      const ctr = await reg.netns('ctr');
      const base = { plugin: 'bridge', command: 'ADD', host, containerId: uniqueContainerId(), netns: ctr.path, ifname: 'eth0' } as const;
      expectCniError(await runPlugin({ ...base, config: '{not json' }), 6);

      const n = makeNet(v);
      const conf = { ...n.list.plugins[0], cniVersion: v, name: n.list.name };
      const missing = await runPlugin({ plugin: 'bridge', command: 'ADD', host, config: conf, containerId: uniqueContainerId() });
      const e4 = expectCniError(missing, 4);
      expect(e4.msg).toContain('CNI_NETNS');
      expect(e4.msg).toContain('CNI_IFNAME');

      const e1 = expectCniError(await runPlugin({ ...base, config: { ...conf, cniVersion: '0.9.9' } }), 1);
      expect(`${e1.msg} ${e1.details ?? ''}`).toContain('0.9.9');

      // None of these may have touched the system.
      expect(await link(host, n.bridge)).toBeUndefined();
      expect(await veths(host)).toEqual([]);
      expect(leases(n)).toEqual([]);
    });

    test('CHECK with cniVersion 0.3.1 → code 1', async () => {
      const n = makeNet('0.3.1');
      const { ctr, runner, cid } = await attach(n);
      const res = await runner.add();
      const conf = { ...n.list.plugins[0], cniVersion: '0.3.1', name: n.list.name, prevResult: res };
      const r = await runPlugin({ plugin: 'bridge', command: 'CHECK', host, config: conf, containerId: cid, netns: ctr.path, ifname: 'eth0' });
      expectCniError(r, 1);
      await runner.del();
    });

    test('32 parallel ADDs on a bridge that does not exist yet, then 32 parallel DELs', async () => {
      const N = 32;
      const n = makeNet(v);
      const atts = await Promise.all(Array.from({ length: N }, () => attach(n)));
      expect(await link(host, n.bridge)).toBeUndefined();

      const settled = await Promise.allSettled(atts.map((a) => a.runner.add()));
      const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failures.length) throw new Error(`${failures.length}/${N} ADDs failed; first:\n${String(failures[0]!.reason)}`);

      const ips = atts.map((a) => (a.runner.cachedResult.ips[0].address as string).split('/')[0]!);
      expect(new Set(ips).size).toBe(N);
      expect(leases(n).sort()).toEqual([...ips].sort());
      const configured = await Promise.all(atts.map((a) => addressesOf(a.ctr, 'eth0')));
      expect(configured).toEqual(ips.map((ip) => [`${ip}/24`]));
      const enslaved = (await veths(host)).filter((l) => l.master === n.bridge);
      expect(enslaved).toHaveLength(N);
      // Spot-check real traffic through the bridge that was created under contention.
      expect(await ping(atts[0]!.ctr, ips[N - 1]!)).toBe(true);

      const dels = await Promise.allSettled(atts.map((a) => a.runner.del()));
      const delFailures = dels.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (delFailures.length) throw new Error(`${delFailures.length}/${N} DELs failed; first:\n${String(delFailures[0]!.reason)}`);
      expect(leases(n)).toEqual([]);
      expect(await veths(host)).toEqual([]);
      for (const ip of ips) expect(await natRulesFor(host, ip)).toEqual([]);
    }, 180_000);
  });
});

// Referenced so describeRun stays available for ad-hoc debugging in this file.
void describeRun;
