// portmap chained after bridge (+ host-local), driven like a runtime with the portMappings
// capability. Real packets: a Python echo server in the container; clients in another netns
// (via the sandbox host's address), in the sandbox host (127.0.0.1 and the bridge address) and
// in the container itself (hairpin). Per spec version ADD → CHECK → DEL → DEL, DEL with an
// empty CNI_NETNS and without prevResult/runtimeConfig, two containers, both backends of ours,
// and interop with the reference in both directions.
import { existsSync } from 'node:fs';
import { execOk, inNetns } from './helpers/exec';
import { natRulesFor, netfilterDump } from './helpers/ip-json';
import { Registry, type Netns, randomHex, uniqueBridgeName, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { IMPL, PLUGIN_DIR, SPEC_VERSIONS, versionGap, versionGte } from './helpers/plugin-dir';
import { ConflistRunner, type Json, type NetConfList, expectCniError, gcList, runPlugin } from './helpers/run-plugin';
import { EchoServer, talk } from './helpers/sockets';
import { dnatChainName } from '../lib/netfilter/iptables/portmap';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

/**
 * Reference bugs of this suite (see REFERENCE-BUGS.md): `test.failing` on the reference.
 * Kept here rather than in helpers/plugin-dir.ts, which other suites share.
 */
const PORTMAP_BUGS = {
  'portmap-check-ipv6': 'plugins#819: CHECK looks for an ip6tables chain it never made for an IPv4-only container',
  'no-spec-1.1.0': 'plugins v1.1.1 supports cniVersion up to 1.0.0',
  'no-gc': 'plugins#1047: portmap implements no GC; stale mappings stay',
} as const;
function refBug(name: keyof typeof PORTMAP_BUGS | null | undefined): jest.It {
  if (!name || IMPL !== 'reference' || process.env.CONFORMANCE_SHOW_REFERENCE_BUGS === '1') return test;
  return test.failing as unknown as jest.It;
}

const REFERENCE_DIR = '/usr/lib/cni';
// Ours: both backends. The reference (v1.1.1) has iptables only and no `backend` key.
const BACKENDS: (string | undefined)[] = IMPL === 'ours' ? ['nftables', 'iptables'] : [undefined];

interface TestNet {
  list: NetConfList;
  bridge: string;
  gw: string;
  prefix: string;
}

maybe(`portmap [${IMPL}: ${PLUGIN_DIR}]`, () => {
  let reg: Registry;
  let host: Netns;
  let servers: EchoServer[];
  /** The sandbox host's own address on a veth to a "client" netns: what another machine dials. */
  let hostAddr: string;
  let client: Netns;

  beforeEach(async () => {
    reg = new Registry();
    servers = [];
    host = await reg.sandboxHost();
    await execOk(inNetns(host.path, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']));
    client = await reg.netns('client');
    const n = 200 + (Number.parseInt(randomHex(1), 16) % 50);
    hostAddr = `192.168.${n}.1`;
    const hv = `pmh${randomHex(3)}`;
    await execOk(inNetns(host.path, ['ip', 'link', 'add', hv, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client.path]));
    await execOk(inNetns(host.path, ['ip', 'addr', 'add', `${hostAddr}/24`, 'dev', hv]));
    await execOk(inNetns(host.path, ['ip', 'link', 'set', hv, 'up']));
    await execOk(inNetns(client.path, ['ip', 'link', 'set', 'lo', 'up']));
    await execOk(inNetns(client.path, ['ip', 'addr', 'add', `192.168.${n}.2/24`, 'dev', 'eth0']));
    await execOk(inNetns(client.path, ['ip', 'link', 'set', 'eth0', 'up']));
    await execOk(inNetns(client.path, ['ip', 'route', 'add', 'default', 'via', hostAddr]));
  });
  afterEach(async () => {
    for (const s of servers) s.stop();
    await reg.cleanup();
  });

  function makeNet(v: string, backend: string | undefined, extra: Json = {}): TestNet {
    const subnet = uniqueSubnet24();
    const bridge = uniqueBridgeName();
    const list: NetConfList = {
      cniVersion: v,
      name: uniqueNetName('pm'),
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          isDefaultGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: 'host-local', dataDir: reg.tempDir(), ranges: [[{ subnet: subnet.subnet }]] },
        },
        { type: 'portmap', capabilities: { portMappings: true }, ...(backend ? { backend } : {}), ...extra },
      ],
    };
    return { list, bridge, gw: subnet.gateway, prefix: subnet.prefix };
  }

  async function attach(n: TestNet, portMappings: Json[] | undefined): Promise<{ ctr: Netns; runner: ConflistRunner; cid: string; ip: string }> {
    const ctr = await reg.netns('ctr');
    const cid = uniqueContainerId();
    const capabilityArgs = portMappings ? { portMappings } : undefined;
    const runner = new ConflistRunner(host, n.list, { containerId: cid, netns: ctr.path, ifname: 'eth0', capabilityArgs });
    const res = await runner.add();
    await execOk(inNetns(ctr.path, ['ip', 'link', 'set', 'lo', 'up']));
    return { ctr, runner, cid, ip: String(res.ips[0].address).split('/')[0]! };
  }

  /**
   * Port-mapping lines that belong to the container: nft rules commented with its ID alone,
   * its iptables CNI-DN chain and the entry rules jumping to it (bridge's masquerade rules,
   * whose comments also name the container, are not portmap's).
   */
  async function rulesOf(n: TestNet, cid: string): Promise<string[]> {
    const chain = dnatChainName(n.list.name, cid);
    return (await netfilterDump(host)).split('\n').filter((l) => (l.includes(`comment "${cid}"`) || l.includes(chain)) && !l.startsWith('#'));
  }

  const TCP = (hostPort: number, containerPort = 80): Json => ({ hostPort, containerPort, protocol: 'tcp' });

  describe.each(BACKENDS)('backend %s', (backend) => {
    describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
      const gap = versionGap('portmap', v) ?? versionGap('bridge', v);
      refBug(gap ? 'no-spec-1.1.0' : versionGte(v, '0.4.0') ? 'portmap-check-ipv6' : null)('ADD → rules, result = prevResult → CHECK → DEL → nothing left → DEL again', async () => {
        const n = makeNet(v, backend);
        const ctr = await reg.netns('ctr');
        const cid = uniqueContainerId();
        const att = { containerId: cid, netns: ctr.path, ifname: 'eth0', capabilityArgs: { portMappings: [TCP(18080)] } };
        // Bridge alone first: portmap's result must equal the prevResult it was given.
        const bridgeOnly = new ConflistRunner(host, { ...n.list, plugins: [n.list.plugins[0]] }, att);
        const prev = await bridgeOnly.add();
        const pm = await runPlugin({
          plugin: 'portmap',
          command: 'ADD',
          host,
          config: { ...n.list.plugins[1], cniVersion: v, name: n.list.name, runtimeConfig: { portMappings: [TCP(18080)] }, prevResult: prev },
          containerId: cid,
          netns: ctr.path,
          ifname: 'eth0',
        });
        expect(pm.code).toBe(0);
        expect(pm.json).toEqual(prev);
        expect((await rulesOf(n, cid)).length).toBeGreaterThan(0);
        const runner = new ConflistRunner(host, n.list, att);
        runner.cachedResult = prev;
        if (versionGte(v, '0.4.0')) await runner.check();
        await runner.del();
        expect(await rulesOf(n, cid)).toEqual([]);
        await runner.del();
      });
    });

    refBug(versionGap('portmap', '1.0.0') ? 'no-spec-1.1.0' : null)('real packets: other netns via host address, 127.0.0.1, bridge address, hairpin, udp; DEL stops them', async () => {
      const n = makeNet('1.0.0', backend);
      const a = await attach(n, [TCP(18080), { hostPort: 18053, containerPort: 53, protocol: 'udp' }]);
      servers.push(await EchoServer.start(a.ctr.path, 80, 'tcp-a'));
      servers.push(await EchoServer.start(a.ctr.path, 53, 'udp-a'));
      expect(await talk(client.path, 'tcp', hostAddr, 18080)).toBe('tcp-a');
      expect(await talk(host.path, 'tcp', '127.0.0.1', 18080)).toBe('tcp-a');
      expect(await talk(host.path, 'tcp', n.gw, 18080)).toBe('tcp-a');
      expect(await talk(a.ctr.path, 'tcp', hostAddr, 18080)).toBe('tcp-a');
      expect(await talk(client.path, 'udp', hostAddr, 18053)).toBe('udp-a');
      await a.runner.del();
      expect(await talk(client.path, 'tcp', hostAddr, 18080)).toBeUndefined();
      expect(await talk(host.path, 'tcp', '127.0.0.1', 18080)).toBeUndefined();
      expect(await rulesOf(n, a.cid)).toEqual([]);
    });

    // The kubelet path: containerd's CRI plugin sends the capability with go-cni's field names
    // (no JSON tags), and the CNI_ARGS of a pod. The Go plugins match keys case-insensitively.
    refBug(versionGap('portmap', '1.0.0') ? 'no-spec-1.1.0' : null)("containerd's PascalCase portMappings: ADD forwards a real connection, DEL removes it, the second DEL (empty netns, no prevResult) exits 0", async () => {
      const n = makeNet('1.0.0', backend);
      const ctr = await reg.netns('ctr');
      const cid = uniqueContainerId();
      const portMappings = [{ HostPort: 18095, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }];
      const args = `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-${randomHex(2)};K8S_POD_INFRA_CONTAINER_ID=${cid};K8S_POD_UID=${randomHex(4)}-0000-4000-8000-${randomHex(6)}`;
      const runner = new ConflistRunner(host, n.list, { containerId: cid, netns: ctr.path, ifname: 'eth0', args, capabilityArgs: { portMappings } });
      await runner.add();
      await execOk(inNetns(ctr.path, ['ip', 'link', 'set', 'lo', 'up']));
      servers.push(await EchoServer.start(ctr.path, 80, 'kubelet'));
      expect((await rulesOf(n, cid)).some((l) => /dport 18095\b/.test(l))).toBe(true);
      expect(await talk(client.path, 'tcp', hostAddr, 18095)).toBe('kubelet');
      expect(await talk(host.path, 'tcp', '127.0.0.1', 18095)).toBe('kubelet');
      await runner.del();
      expect(await rulesOf(n, cid)).toEqual([]);
      expect(await talk(client.path, 'tcp', hostAddr, 18095)).toBeUndefined();
      await runner.del('', { cached: false });
      expect(await rulesOf(n, cid)).toEqual([]);
    });

    test('two containers on different host ports: DEL of one leaves the other working', async () => {
      const n = makeNet('1.0.0', backend);
      const a = await attach(n, [TCP(18081)]);
      const b = await attach(n, [TCP(18082)]);
      servers.push(await EchoServer.start(a.ctr.path, 80, 'A'));
      servers.push(await EchoServer.start(b.ctr.path, 80, 'B'));
      expect(await talk(client.path, 'tcp', hostAddr, 18081)).toBe('A');
      expect(await talk(client.path, 'tcp', hostAddr, 18082)).toBe('B');
      await a.runner.del();
      expect(await talk(client.path, 'tcp', hostAddr, 18081)).toBeUndefined();
      expect(await talk(client.path, 'tcp', hostAddr, 18082)).toBe('B');
      expect(await rulesOf(n, a.cid)).toEqual([]);
      expect((await rulesOf(n, b.cid)).length).toBeGreaterThan(0);
      await b.runner.del();
      expect(await rulesOf(n, b.cid)).toEqual([]);
    });

    test('DEL with an empty CNI_NETNS after the netns died removes the mappings', async () => {
      const n = makeNet('1.0.0', backend);
      const a = await attach(n, [TCP(18083)]);
      await reg.deleteNetns(a.ctr);
      await a.runner.del('');
      expect(await rulesOf(n, a.cid)).toEqual([]);
    });

    test('DEL without prevResult and without runtimeConfig still removes the mappings (keyed on the container ID)', async () => {
      const n = makeNet('1.0.0', backend);
      const a = await attach(n, [TCP(18084)]);
      const r = await runPlugin({
        plugin: 'portmap',
        command: 'DEL',
        host,
        config: { ...n.list.plugins[1], cniVersion: '1.0.0', name: n.list.name },
        containerId: a.cid,
        netns: '',
        ifname: 'eth0',
      });
      if (IMPL === 'reference') return; // the reference returns early without runtimeConfig
      expect(r.code).toBe(0);
      expect(await rulesOf(n, a.cid)).toEqual([]);
    });

    describe('GC (cniVersion 1.1.0)', () => {
      const gcTest = refBug(versionGap('portmap', '1.1.0') ? 'no-spec-1.1.0' : 'no-gc');
      const valid = (...cids: string[]) => cids.map((containerID) => ({ containerID, ifname: 'eth0' }));

      gcTest('GC removes the mappings of attachments not in valid-attachments; the valid one keeps answering', async () => {
        const n = makeNet('1.1.0', backend);
        const a = await attach(n, [TCP(18085)]);
        const b = await attach(n, [TCP(18086)]);
        servers.push(await EchoServer.start(b.ctr.path, 80, 'B'));
        const rulesA = await rulesOf(n, a.cid);
        expect(rulesA.length).toBeGreaterThan(0);
        await gcList(host, n.list, valid(a.cid, b.cid));
        expect(await rulesOf(n, a.cid)).toEqual(rulesA);
        await reg.deleteNetns(a.ctr);
        await gcList(host, n.list, valid(b.cid));
        expect(await rulesOf(n, a.cid)).toEqual([]);
        expect(await natRulesFor(host, a.ip)).toEqual([]);
        expect((await rulesOf(n, b.cid)).length).toBeGreaterThan(0);
        expect(await talk(client.path, 'tcp', hostAddr, 18086)).toBe('B');
        await b.runner.del();
      });

      gcTest("GC of one network with an empty valid list never removes another network's mappings", async () => {
        const n1 = makeNet('1.1.0', backend);
        const n2 = makeNet('1.1.0', backend);
        const a = await attach(n1, [TCP(18087)]);
        const b = await attach(n2, [TCP(18088)]);
        servers.push(await EchoServer.start(b.ctr.path, 80, 'B'));
        const rulesB = await rulesOf(n2, b.cid);
        await gcList(host, n1.list, []);
        expect(await rulesOf(n1, a.cid)).toEqual([]);
        expect(await rulesOf(n2, b.cid)).toEqual(rulesB);
        expect(await talk(client.path, 'tcp', hostAddr, 18088)).toBe('B');
        await b.runner.del();
      });
    });

    test('no portMappings: ADD passes prevResult through and creates nothing', async () => {
      const n = makeNet('1.0.0', backend);
      const a = await attach(n, undefined);
      expect(await rulesOf(n, a.cid)).toEqual([]);
      const dump = await netfilterDump(host);
      expect(dump).not.toContain('cni_hostport');
      expect(dump).not.toContain('CNI-HOSTPORT');
      await a.runner.del();
    });
  });

  const haveReference = existsSync(`${REFERENCE_DIR}/portmap`) && IMPL === 'ours';
  (haveReference ? describe : describe.skip)('interop with the reference (iptables layout)', () => {
    // runPlugin resolves binaries from PLUGIN_DIR (ours); the reference runs through nsenter directly.
    async function reference(cmd: 'ADD' | 'DEL', n: TestNet, cid: string, ctr: Netns, prev: Json, pm: Json[]): Promise<void> {
      const stdin = JSON.stringify({ type: 'portmap', cniVersion: '1.0.0', name: n.list.name, runtimeConfig: { portMappings: pm }, prevResult: prev });
      await execOk(inNetns(host.path, ['env', `CNI_COMMAND=${cmd}`, `CNI_CONTAINERID=${cid}`, `CNI_NETNS=${ctr.path}`, 'CNI_IFNAME=eth0', `CNI_PATH=${REFERENCE_DIR}`, `${REFERENCE_DIR}/portmap`]), { stdin });
    }

    test('reference ADD → our DEL leaves nothing; our ADD (iptables) → reference DEL leaves nothing', async () => {
      const n = makeNet('1.0.0', undefined);
      const ctr = await reg.netns('ctr');
      const cid = uniqueContainerId();
      const bridgeOnly = new ConflistRunner(host, { ...n.list, plugins: [n.list.plugins[0]] }, { containerId: cid, netns: ctr.path, ifname: 'eth0' });
      const prev = await bridgeOnly.add();
      await reference('ADD', n, cid, ctr, prev, [TCP(18090)]);
      expect((await rulesOf(n, cid)).length).toBeGreaterThan(0);
      const del = await runPlugin({ plugin: 'portmap', command: 'DEL', host, config: { type: 'portmap', cniVersion: '1.0.0', name: n.list.name, prevResult: prev }, containerId: cid, netns: '', ifname: 'eth0' });
      expect(del.code).toBe(0);
      expect(await rulesOf(n, cid)).toEqual([]);

      const add = await runPlugin({
        plugin: 'portmap', command: 'ADD', host,
        config: { type: 'portmap', backend: 'iptables', cniVersion: '1.0.0', name: n.list.name, runtimeConfig: { portMappings: [TCP(18091)] }, prevResult: prev },
        containerId: cid, netns: ctr.path, ifname: 'eth0',
      });
      expect(add.code).toBe(0);
      expect((await rulesOf(n, cid)).length).toBeGreaterThan(0);
      await reference('DEL', n, cid, ctr, prev, [TCP(18091)]);
      expect(await rulesOf(n, cid)).toEqual([]);
    });
  });

  (IMPL === 'ours' ? test : test.skip)('config errors: bad port → 7, nftables with markMasqBit → 7, no prevResult → 7', async () => {
    const n = makeNet('1.0.0', undefined);
    const base = { ...n.list.plugins[1], cniVersion: '1.0.0', name: n.list.name, prevResult: { cniVersion: '1.0.0', ips: [] } };
    const run = (config: Json) => runPlugin({ plugin: 'portmap', command: 'ADD', host, config, containerId: 'x', netns: '/proc/1/ns/net', ifname: 'eth0' });
    expectCniError(await run({ ...base, runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] } }), 7);
    expectCniError(await run({ ...base, backend: 'nftables', markMasqBit: 5 }), 7);
    const { prevResult: _p, ...noPrev } = base;
    void _p;
    expectCniError(await run(noPrev), 7);
  });
});
