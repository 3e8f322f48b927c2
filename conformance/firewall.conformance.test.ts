// firewall chained after bridge (+ host-local) on two networks (two bridges): A1, A2 on net A,
// B1 on net B, all routed through one sandbox host. ingressPolicy open / same-bridge /
// isolated checked with real pings; outbound to the sandbox host keeps working; DEL removes
// the container's rules; per spec version ADD → CHECK → DEL → DEL; both backends of ours.
import { execOk, inNetns } from './helpers/exec';
import { netfilterDump, ping } from './helpers/ip-json';
import { Registry, type Netns, uniqueBridgeName, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { IMPL, PLUGIN_DIR, SPEC_VERSIONS, versionGap, versionGte } from './helpers/plugin-dir';
import { ConflistRunner, type Json, type NetConfList, expectCniError, gcList, runPlugin } from './helpers/run-plugin';
import { iptablesComment, nftInstanceHash } from '../lib/netfilter/names';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

/** Reference gaps of this suite (REFERENCE-BUGS.md): `test.failing` on the reference. */
function refBug(bug: boolean): jest.It {
  if (!bug || IMPL !== 'reference' || process.env.CONFORMANCE_SHOW_REFERENCE_BUGS === '1') return test;
  return test.failing as unknown as jest.It;
}
const BACKENDS: (string | undefined)[] = IMPL === 'ours' ? ['nftables', 'iptables'] : ['iptables'];

interface TestNet {
  list: NetConfList;
  bridge: string;
  gw: string;
}

maybe(`firewall [${IMPL}: ${PLUGIN_DIR}]`, () => {
  let reg: Registry;
  let host: Netns;
  beforeEach(async () => {
    reg = new Registry();
    host = await reg.sandboxHost();
    await execOk(inNetns(host.path, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']));
  });
  afterEach(() => reg.cleanup());

  function makeNet(v: string, fw: Json): TestNet {
    const subnet = uniqueSubnet24();
    const bridge = uniqueBridgeName();
    const list: NetConfList = {
      cniVersion: v,
      name: uniqueNetName('fw'),
      plugins: [
        { type: 'bridge', bridge, isGateway: true, isDefaultGateway: true, ipam: { type: 'host-local', dataDir: reg.tempDir(), ranges: [[{ subnet: subnet.subnet }]] } },
        { type: 'firewall', ...fw },
      ],
    };
    return { list, bridge, gw: subnet.gateway };
  }

  async function attach(n: TestNet): Promise<{ ctr: Netns; runner: ConflistRunner; cid: string; ip: string }> {
    const ctr = await reg.netns('ctr');
    const cid = uniqueContainerId();
    const runner = new ConflistRunner(host, n.list, { containerId: cid, netns: ctr.path, ifname: 'eth0' });
    const res = await runner.add();
    return { ctr, runner, cid, ip: String(res.ips[0].address).split('/')[0]! };
  }

  /** The container's own firewall rules (iptables comment or nft owner hash, or the reference's bare IP rules). */
  async function rulesOf(n: TestNet, cid: string, ip: string): Promise<string[]> {
    const ipt = iptablesComment(n.list.name, cid).replace(/"/g, '\\"');
    const nft = nftInstanceHash(n.list.name, 'eth0', cid);
    const dump = (await netfilterDump(host)) + (await execOk(inNetns(host.path, ['iptables-save', '-t', 'filter']))).stdout;
    return dump.split('\n').filter((l) => !l.startsWith('#') && (l.includes(ipt) || l.includes(nft) || (l.includes('CNI-FORWARD') && l.includes(`${ip}/32`))));
  }

  describe.each(BACKENDS)('backend %s', (backend) => {
    const fwConf = (policy?: string): Json => ({ backend, ...(policy ? { ingressPolicy: policy } : {}) });

    describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
      refBug(!!versionGap('firewall', v) || !!versionGap('bridge', v))('ADD → rules → CHECK → DEL → rules gone → DEL again', async () => {
        const n = makeNet(v, fwConf('same-bridge'));
        const a = await attach(n);
        expect((await rulesOf(n, a.cid, a.ip)).length).toBeGreaterThan(0);
        if (versionGte(v, '0.4.0')) await a.runner.check();
        await a.runner.del();
        expect(await rulesOf(n, a.cid, a.ip)).toEqual([]);
        await a.runner.del();
      });
    });

    async function topology(policy: string) {
      const A = makeNet('1.0.0', fwConf(policy));
      const B = makeNet('1.0.0', fwConf(policy));
      const a1 = await attach(A);
      const a2 = await attach(A);
      const b1 = await attach(B);
      return { A, B, a1, a2, b1 };
    }

    test('open: A1 reaches B1 (routed) and A2 (same bridge)', async () => {
      const { A, a1, a2, b1 } = await topology('open');
      expect(await ping(a1.ctr, b1.ip)).toBe(true);
      expect(await ping(a1.ctr, a2.ip)).toBe(true);
      expect(await ping(a1.ctr, A.gw)).toBe(true);
    });

    test('same-bridge: A1 cannot reach B1 (nor B1 A1) but reaches A2 and the sandbox host', async () => {
      const { A, a1, a2, b1 } = await topology('same-bridge');
      expect(await ping(a1.ctr, b1.ip)).toBe(false);
      expect(await ping(b1.ctr, a1.ip)).toBe(false);
      expect(await ping(a1.ctr, a2.ip)).toBe(true);
      expect(await ping(a1.ctr, A.gw)).toBe(true);
    });

    refBug(true)('isolated: A1 reaches neither A2 nor B1, but still the sandbox host; DEL leaves the others isolated', async () => {
      const { A, B, a1, a2, b1 } = await topology('isolated');
      expect(await ping(a1.ctr, a2.ip)).toBe(false);
      expect(await ping(a1.ctr, b1.ip)).toBe(false);
      expect(await ping(a1.ctr, A.gw)).toBe(true);
      expect(await ping(b1.ctr, B.gw)).toBe(true);
      await a1.runner.del();
      expect(await rulesOf(A, a1.cid, a1.ip)).toEqual([]);
      expect((await rulesOf(A, a2.cid, a2.ip)).length).toBeGreaterThan(0);
      expect(await ping(a2.ctr, b1.ip)).toBe(false);
    });

    describe('GC (cniVersion 1.1.0)', () => {
      // The reference has no GC (plugins#1047) and, at v1.1.1, no 1.1.0 either.
      const gcTest = refBug(true);
      const valid = (...cids: string[]) => cids.map((containerID) => ({ containerID, ifname: 'eth0' }));

      gcTest('GC removes the rules of attachments not in valid-attachments, keeps the rest', async () => {
        const n = makeNet('1.1.0', fwConf('same-bridge'));
        const a = await attach(n);
        const b = await attach(n);
        const rulesA = await rulesOf(n, a.cid, a.ip);
        expect(rulesA.length).toBeGreaterThan(0);
        await gcList(host, n.list, valid(a.cid, b.cid));
        expect(await rulesOf(n, a.cid, a.ip)).toEqual(rulesA);
        await reg.deleteNetns(a.ctr);
        await gcList(host, n.list, valid(b.cid));
        expect(await rulesOf(n, a.cid, a.ip)).toEqual([]);
        expect((await rulesOf(n, b.cid, b.ip)).length).toBeGreaterThan(0);
        await b.runner.check();
        expect(await ping(b.ctr, n.gw)).toBe(true);
        await b.runner.del();
      });

      gcTest("GC of one network with an empty valid list never removes another network's rules", async () => {
        const n1 = makeNet('1.1.0', fwConf());
        const n2 = makeNet('1.1.0', fwConf());
        const a = await attach(n1);
        const b = await attach(n2);
        const rulesB = await rulesOf(n2, b.cid, b.ip);
        expect(rulesB.length).toBeGreaterThan(0);
        await gcList(host, n1.list, []);
        expect(await rulesOf(n1, a.cid, a.ip)).toEqual([]);
        expect(await rulesOf(n2, b.cid, b.ip)).toEqual(rulesB);
        await b.runner.check();
        await b.runner.del();
      });
    });

    test('DEL with an empty CNI_NETNS after the netns died removes the rules', async () => {
      const n = makeNet('1.0.0', fwConf());
      const a = await attach(n);
      await reg.deleteNetns(a.ctr);
      await a.runner.del('');
      expect(await rulesOf(n, a.cid, a.ip)).toEqual([]);
    });
  });

  (IMPL === 'ours' ? test : test.skip)('DEL without prevResult removes the rules (keyed on the container ID); backend "" is the default; firewalld → 2', async () => {
    const n = makeNet('1.0.0', { backend: '' });
    const a = await attach(n);
    expect((await rulesOf(n, a.cid, a.ip)).length).toBeGreaterThan(0);
    const conf = { type: 'firewall', backend: '', cniVersion: '1.0.0', name: n.list.name };
    const del = await runPlugin({ plugin: 'firewall', command: 'DEL', host, config: conf, containerId: a.cid, netns: '', ifname: 'eth0' });
    expect(del.code).toBe(0);
    expect(await rulesOf(n, a.cid, a.ip)).toEqual([]);
    const fwd = await runPlugin({
      plugin: 'firewall', command: 'ADD', host,
      config: { ...conf, backend: 'firewalld', prevResult: a.runner.cachedResult },
      containerId: a.cid, netns: a.ctr.path, ifname: 'eth0',
    });
    expectCniError(fwd, 2);
    await a.runner.del();
  });
});
