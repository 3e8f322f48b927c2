// container (Docker `--network container:<target>`): a target container is attached with our
// bridge plugin (host-local IPAM) inside a sandbox host, and the suite writes libcni's result
// cache entry for it, as the runtime would. A joiner ADD with the target's netns returns the
// target's interfaces and addresses and creates nothing; with another netns it is refused; the
// joiner's DEL leaves the target's interface, address and connectivity exactly as they were.
// Our plugin only: the reference has none. CNI_TEST_NO_BRIDGE=1 attaches the target by hand
// with ip commands instead (the fallback also used when the bridge ADD fails).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addrs, addressesOf, ping } from './helpers/ip-json';
import { execOk, inNetns } from './helpers/exec';
import { Registry, type Netns, randomHex, uniqueBridgeName, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { SPEC_VERSIONS, IMPL, PLUGIN_DIR, pluginPath, versionGte } from './helpers/plugin-dir';
import { describeRun, expectCniError, expectOk, runPlugin, type Json } from './helpers/run-plugin';

const maybe = process.getuid?.() === 0 && existsSync(pluginPath('container')) ? describe : describe.skip;

/** Links with flags and every address: what "nothing changed" is compared on. */
async function snapshot(ns: Netns): Promise<string[]> {
  return (await addrs(ns)).map((l) => `${l.ifname} ${l.flags.join(',')} ${l.addr_info.map((a) => `${a.local}/${a.prefixlen}`).join(' ')}`);
}

/** Writes one libcni cache entry (cni:libcni/api.go cacheAdd): `<dir>/results/<net>-<cid>-<ifname>`. */
function writeCacheEntry(
  cacheDir: string,
  e: { networkName: string; containerId: string; ifName: string; netns?: string; result: Json; config?: Json },
): string {
  const dir = join(cacheDir, 'results');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${e.networkName}-${e.containerId}-${e.ifName}`);
  const entry: Json = {
    kind: 'cniCacheV1',
    containerId: e.containerId,
    // Go marshals []byte as base64.
    config: Buffer.from(JSON.stringify(e.config ?? { cniVersion: '1.0.0', name: e.networkName, plugins: [] })).toString('base64'),
    ifName: e.ifName,
    networkName: e.networkName,
    result: e.result,
  };
  if (e.netns !== undefined) entry.netns = e.netns;
  writeFileSync(file, JSON.stringify(entry), { mode: 0o600 });
  return file;
}

interface Target {
  id: string;
  ns: Netns;
  address: string;
  gateway: string;
  result: Json;
  via: 'bridge' | 'manual';
}

maybe(`container [${IMPL}: ${PLUGIN_DIR}]`, () => {
  const reg = new Registry();
  let host: Netns;
  let cacheDir: string;
  let target: Target;

  /** Attaches a container with bridge + host-local, or by hand when that is not possible. */
  async function attachTarget(): Promise<Target> {
    const ns = await reg.netns('ctr');
    const id = uniqueContainerId();
    const { subnet, prefix, gateway } = uniqueSubnet24();
    const networkName = uniqueNetName('tgt');
    const bridge = uniqueBridgeName();
    if (process.env.CNI_TEST_NO_BRIDGE !== '1' && existsSync(pluginPath('bridge'))) {
      const config = {
        cniVersion: '1.0.0',
        name: networkName,
        type: 'bridge',
        bridge,
        isGateway: true,
        ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: reg.tempDir() },
      };
      // host-local: ours when built, else the reference's.
      const r = await runPlugin({ plugin: 'bridge', command: 'ADD', host, config, containerId: id, netns: ns.path, ifname: 'eth0', env: { CNI_PATH: `${PLUGIN_DIR}:/usr/lib/cni` } });
      if (r.code === 0 && r.json) {
        const eth0 = (r.json.interfaces as Json[]).findIndex((i) => i.name === 'eth0');
        const ip = (r.json.ips as Json[]).find((i) => i.interface === eth0);
        writeCacheEntry(cacheDir, { networkName, containerId: id, ifName: 'eth0', netns: ns.path, result: r.json, config });
        return { id, ns, address: ip.address, gateway: ip.gateway ?? gateway, result: r.json, via: 'bridge' };
      }
      // eslint-disable-next-line no-console
      console.warn(`bridge ADD failed, attaching the target by hand instead:\n${describeRun(r)}`);
    }
    const hostSide = `vh${randomHex(4)}`;
    const sh = (n: Netns, argv: string[]) => execOk(inNetns(n.path, argv));
    await sh(host, ['ip', 'link', 'add', bridge, 'type', 'bridge']);
    await sh(host, ['ip', 'addr', 'add', `${gateway}/24`, 'dev', bridge]);
    await sh(host, ['ip', 'link', 'set', bridge, 'up']);
    await sh(host, ['ip', 'link', 'add', hostSide, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    await sh(host, ['ip', 'link', 'set', hostSide, 'master', bridge, 'up']);
    const address = `${prefix}.2/24`;
    await sh(ns, ['ip', 'addr', 'add', address, 'dev', 'eth0']);
    await sh(ns, ['ip', 'link', 'set', 'eth0', 'up']);
    await sh(ns, ['ip', 'link', 'set', 'lo', 'up']);
    await sh(ns, ['ip', 'route', 'add', 'default', 'via', gateway]);
    const result = {
      cniVersion: '1.0.0',
      interfaces: [{ name: bridge }, { name: hostSide }, { name: 'eth0', sandbox: ns.path }],
      ips: [{ address, gateway, interface: 2 }],
      dns: {},
    };
    writeCacheEntry(cacheDir, { networkName, containerId: id, ifName: 'eth0', netns: ns.path, result });
    return { id, ns, address, gateway, result, via: 'manual' };
  }

  beforeAll(async () => {
    host = await reg.sandboxHost();
    cacheDir = reg.tempDir();
    target = await attachTarget();
    // eslint-disable-next-line no-console
    console.info(`[container] target ${target.id} attached by ${target.via}: ${target.address} in ${target.ns.path}`);
    expect(await ping(target.ns, target.gateway)).toBe(true);
  });
  afterAll(() => reg.cleanup());

  const conf = (v: string, extra: Record<string, unknown> = {}) => ({ cniVersion: v, name: uniqueNetName('join'), type: 'container', cacheDir, ...extra });
  const joinerAdd = (v: string, netns: string, extra: Record<string, unknown> = {}, args?: string) =>
    runPlugin({ plugin: 'container', command: 'ADD', host, config: conf(v, { container: target.id, ...extra }), containerId: uniqueContainerId(), netns, ifname: 'eth0', args });

  describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
    test("joiner ADD with the target's netns → the target's addresses → CHECK → DEL → target untouched and still pings its gateway", async () => {
      const c = conf(v, { container: target.id });
      const base = { plugin: 'container', host, containerId: uniqueContainerId(), netns: target.ns.path, ifname: 'eth0' } as const;
      const before = await snapshot(target.ns);
      const hostBefore = await snapshot(host);

      const res: Json = expectOk(await runPlugin({ ...base, command: 'ADD', config: c }), 'ADD').json;
      expect(res.cniVersion).toBe(v);
      const eth0 = (res.interfaces as Json[]).findIndex((i) => i.name === 'eth0');
      expect(eth0).toBeGreaterThanOrEqual(0);
      for (const i of res.interfaces) expect(i.sandbox).toBe(target.ns.path);
      const ethIps = (res.ips as Json[]).filter((i) => i.interface === eth0).map((i) => i.address);
      expect(ethIps).toContain(target.address);
      for (const ip of res.ips) {
        if (versionGte(v, '1.0.0')) expect(ip).not.toHaveProperty('version');
        else expect(ip.version).toBe(ip.address.includes(':') ? '6' : '4');
      }
      // It created nothing, here or on the host.
      expect(await snapshot(target.ns)).toEqual(before);
      expect(await snapshot(host)).toEqual(hostBefore);

      if (versionGte(v, '0.4.0')) expectOk(await runPlugin({ ...base, command: 'CHECK', config: { ...c, prevResult: res } }), 'CHECK');
      const delConf = versionGte(v, '0.4.0') ? { ...c, prevResult: res } : c;
      expectOk(await runPlugin({ ...base, command: 'DEL', config: delConf }), 'DEL');
      expectOk(await runPlugin({ ...base, command: 'DEL', config: delConf }), 'second DEL');

      expect(await snapshot(target.ns)).toEqual(before);
      expect(await snapshot(host)).toEqual(hostBefore);
      expect(await addressesOf(target.ns, 'eth0')).toContain(target.address);
      expect(await ping(target.ns, target.gateway)).toBe(true);
    });

    test('joiner ADD with another netns → code 103, nothing changes in either', async () => {
      const other = await reg.netns('ctr');
      const [t0, o0] = [await snapshot(target.ns), await snapshot(other)];
      const e = expectCniError(await joinerAdd(v, other.path), 103);
      expect(e.msg).toContain(other.path);
      expect(e.msg).toContain(target.id);
      expect(e.details).toContain(target.ns.path);
      expect(await snapshot(target.ns)).toEqual(t0);
      expect(await snapshot(other)).toEqual(o0);
    });

    if (versionGte(v, '0.4.0')) {
      test('CHECK with another netns → code 103', async () => {
        const other = await reg.netns('ctr');
        const r = await runPlugin({ plugin: 'container', command: 'CHECK', host, config: conf(v, { container: target.id }), containerId: uniqueContainerId(), netns: other.path, ifname: 'eth0' });
        expectCniError(r, 103);
      });
    }
  });

  describe('finding the target', () => {
    test('a target with no cache entry → code 104', async () => {
      const e = expectCniError(await joinerAdd('1.0.0', target.ns.path, { container: 'ctr-nobody' }), 104);
      expect(e.msg).toContain('ctr-nobody');
      expect(e.details).toContain(join(cacheDir, 'results'));
    });

    test('a cacheDir without results/ at all → code 104', async () => {
      expectCniError(await joinerAdd('1.0.0', target.ns.path, { cacheDir: reg.tempDir() }), 104);
    });

    test("a target whose netns is gone → code 104 naming the stale path", async () => {
      const dead = await reg.netns('ctr');
      const deadId = uniqueContainerId();
      writeCacheEntry(cacheDir, { networkName: uniqueNetName('dead'), containerId: deadId, ifName: 'eth0', netns: dead.path, result: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: dead.path }] } });
      const stale = dead.path;
      await reg.deleteNetns(dead);
      const e = expectCniError(await joinerAdd('1.0.0', target.ns.path, { container: deadId }), 104);
      expect(e.details).toContain(stale);
    });

    test("an entry with only the result's sandbox (no netns field) works; garbage cache files are skipped", async () => {
      const alias = uniqueContainerId();
      writeCacheEntry(cacheDir, { networkName: uniqueNetName('old'), containerId: alias, ifName: 'eth0', result: { ...target.result, cniVersion: '0.4.0' } });
      writeFileSync(join(cacheDir, 'results', `junk-${alias}-eth1`), '{"kind": "cniCacheV1", "contai');
      writeFileSync(join(cacheDir, 'results', `other-${alias}-eth2`), JSON.stringify({ kind: 'somethingElse', containerId: alias, netns: '/nonexistent' }));
      const res = expectOk(await joinerAdd('1.0.0', target.ns.path, { container: alias }), 'ADD').json;
      expect((res.ips as Json[]).map((i) => i.address)).toContain(target.address);
    });

    test('precedence: runtimeConfig.container > args.cni.container > CNI_ARGS CONTAINER > "container"', async () => {
      const ns = target.ns.path;
      expectOk(await joinerAdd('1.0.0', ns, { container: 'ctr-nobody', runtimeConfig: { container: target.id } }), 'runtimeConfig over container');
      expectOk(await joinerAdd('1.0.0', ns, { container: 'ctr-nobody' }, `CONTAINER=${target.id}`), 'CNI_ARGS over container');
      expectOk(await joinerAdd('1.0.0', ns, { args: { cni: { container: target.id } } }, 'CONTAINER=ctr-nobody'), 'args.cni over CNI_ARGS');
      expect(expectCniError(await joinerAdd('1.0.0', ns, { runtimeConfig: { container: 'ctr-nobody' }, args: { cni: { container: target.id } } }), 104).msg).toMatch(
        /runtimeConfig\.container/,
      );
      // CNI_ARGS alone, with K8S-style neighbours (unknown keys are fine).
      const r = await runPlugin({ plugin: 'container', command: 'ADD', host, config: conf('1.0.0'), containerId: uniqueContainerId(), netns: ns, ifname: 'eth0', args: `IgnoreUnknown=1;K8S_POD_NAME=x;CONTAINER=${target.id}` });
      expectOk(r, 'CNI_ARGS only');
    });

    test('bad config → code 7 (no target, joining itself, relative cacheDir, bad id) and 4 (bad CNI_ARGS id)', async () => {
      const ns = target.ns.path;
      const base = { plugin: 'container', command: 'ADD', host, netns: ns, ifname: 'eth0' } as const;
      expect(expectCniError(await runPlugin({ ...base, config: conf('1.0.0'), containerId: uniqueContainerId() }), 7).msg).toMatch(/no target container/);
      expect(expectCniError(await runPlugin({ ...base, config: conf('1.0.0', { container: target.id }), containerId: target.id }), 7).msg).toMatch(/its own/);
      expect(expectCniError(await runPlugin({ ...base, config: conf('1.0.0', { container: target.id, cacheDir: 'var/lib/cni' }), containerId: uniqueContainerId() }), 7).details).toMatch(/cacheDir/);
      expectCniError(await runPlugin({ ...base, config: conf('1.0.0', { container: '../etc' }), containerId: uniqueContainerId() }), 7);
      expectCniError(await runPlugin({ ...base, config: conf('1.0.0'), containerId: uniqueContainerId(), args: 'CONTAINER=a/b' }), 4);
      expectCniError(await runPlugin({ ...base, config: '{"cniVersion":"1.0.0",', containerId: uniqueContainerId() }), 6);
    });
  });

  test('DEL succeeds with no target, a vanished target, an empty or vanished netns, and never touches the target', async () => {
    const before = await snapshot(target.ns);
    const gone = await reg.netns('ctr');
    const stale = gone.path;
    await reg.deleteNetns(gone);
    const base = { plugin: 'container', command: 'DEL', host, containerId: uniqueContainerId(), ifname: 'eth0' } as const;
    expectOk(await runPlugin({ ...base, config: conf('1.0.0'), netns: target.ns.path }), 'DEL without a target');
    expectOk(await runPlugin({ ...base, config: conf('1.0.0', { container: 'ctr-nobody' }), netns: target.ns.path }), 'DEL of an unknown target');
    expectOk(await runPlugin({ ...base, config: conf('1.0.0', { container: target.id }), netns: '' }), 'DEL with empty netns');
    expectOk(await runPlugin({ ...base, config: conf('1.0.0', { container: target.id }), netns: stale }), 'DEL with a vanished netns');
    expect(await snapshot(target.ns)).toEqual(before);
    expect(await ping(target.ns, target.gateway)).toBe(true);
  });

  test('STATUS and GC (1.1.0) succeed silently', async () => {
    const c = conf('1.1.0');
    expect(expectOk(await runPlugin({ plugin: 'container', command: 'STATUS', host, config: c }), 'STATUS').stdout.trim()).toBe('');
    expect(expectOk(await runPlugin({ plugin: 'container', command: 'GC', host, config: { ...c, 'cni.dev/valid-attachments': [] } }), 'GC').stdout.trim()).toBe('');
  });
});
