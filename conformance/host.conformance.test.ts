// host (Docker `--network host`): the plugin runs under `nsenter --net=<sandbox host>` as a
// runtime runs it in the host netns. ADD with CNI_NETNS = that same namespace succeeds and
// reports its interfaces and global addresses; any other namespace is refused with code 103 and
// nothing changes anywhere; DEL never changes anything. Our plugin only: the reference has none.
import { existsSync } from 'node:fs';
import { addrs } from './helpers/ip-json';
import { execOk, inNetns } from './helpers/exec';
import { Registry, type Netns, uniqueContainerId, uniqueNetName } from './helpers/netns';
import { SPEC_VERSIONS, IMPL, PLUGIN_DIR, pluginPath, versionGte } from './helpers/plugin-dir';
import { expectCniError, expectOk, runPlugin, type Json } from './helpers/run-plugin';

const maybe = process.getuid?.() === 0 && existsSync(pluginPath('host')) ? describe : describe.skip;

/** Links with flags and every address: what "nothing changed" is compared on. */
async function snapshot(ns: Netns): Promise<string[]> {
  return (await addrs(ns)).map((l) => `${l.ifname} ${l.flags.join(',')} ${l.addr_info.map((a) => `${a.local}/${a.prefixlen}`).join(' ')}`);
}

maybe(`host [${IMPL}: ${PLUGIN_DIR}]`, () => {
  const reg = new Registry();
  let host: Netns;
  beforeAll(async () => {
    // The sandbox "host" gets a veth pair with v4 and v6 addresses, so the result has something
    // beyond lo to report (this kernel has no dummy driver).
    host = await reg.sandboxHost();
    const sh = (argv: string[]) => execOk(inNetns(host.path, argv));
    await sh(['ip', 'link', 'add', 'uplink0', 'address', '02:00:00:00:aa:01', 'type', 'veth', 'peer', 'name', 'uplink1']);
    await sh(['ip', 'addr', 'add', '192.0.2.10/24', 'dev', 'uplink0']);
    await sh(['ip', 'addr', 'add', '2001:db8::10/64', 'dev', 'uplink0', 'nodad']);
    await sh(['ip', 'link', 'set', 'uplink1', 'up']);
    await sh(['ip', 'link', 'set', 'uplink0', 'up']);
  });
  afterAll(() => reg.cleanup());

  const conf = (v: string, extra: Record<string, unknown> = {}) => ({ cniVersion: v, name: uniqueNetName('host'), type: 'host', ...extra });

  describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
    test('ADD with the host netns → its interfaces and addresses → CHECK → DEL changes nothing', async () => {
      const c = conf(v);
      const base = { plugin: 'host', host, containerId: uniqueContainerId(), netns: host.path, ifname: 'eth0' } as const;
      const before = await snapshot(host);

      const res: Json = expectOk(await runPlugin({ ...base, command: 'ADD', config: c }), 'ADD').json;
      expect(res.cniVersion).toBe(v);
      const names = res.interfaces.map((i: Json) => i.name);
      expect(names).toEqual(expect.arrayContaining(['lo', 'uplink0', 'uplink1']));
      // Every interface is the container's too: sandbox = CNI_NETNS.
      for (const i of res.interfaces) expect(i.sandbox).toBe(host.path);
      const up0 = names.indexOf('uplink0');
      expect(res.interfaces[up0].mac).toBe('02:00:00:00:aa:01');
      const ips = res.ips as Json[];
      expect(ips.filter((ip) => ip.interface === up0).map((ip) => ip.address).sort()).toEqual(['192.0.2.10/24', '2001:db8::10/64']);
      // Only global addresses: no 127.0.0.1, ::1 or fe80::.
      for (const ip of ips) expect(ip.address).not.toMatch(/^(127\.|::1\/|fe80:)/);
      for (const ip of ips) {
        if (versionGte(v, '1.0.0')) expect(ip).not.toHaveProperty('version');
        else expect(ip.version).toBe(ip.address.includes(':') ? '6' : '4');
      }
      if (!versionGte(v, '1.1.0')) for (const i of res.interfaces) expect(i).not.toHaveProperty('mtu');
      expect(await snapshot(host)).toEqual(before);

      if (versionGte(v, '0.4.0')) expectOk(await runPlugin({ ...base, command: 'CHECK', config: { ...c, prevResult: res } }), 'CHECK');
      const delConf = versionGte(v, '0.4.0') ? { ...c, prevResult: res } : c;
      expectOk(await runPlugin({ ...base, command: 'DEL', config: delConf }), 'DEL');
      expectOk(await runPlugin({ ...base, command: 'DEL', config: delConf }), 'second DEL');
      expect(await snapshot(host)).toEqual(before);
    });

    test('ADD with another netns → code 103, and neither namespace changes', async () => {
      const ctr = await reg.netns('ctr');
      const [hostBefore, ctrBefore] = [await snapshot(host), await snapshot(ctr)];
      const r = await runPlugin({ plugin: 'host', command: 'ADD', host, config: conf(v), containerId: uniqueContainerId(), netns: ctr.path, ifname: 'eth0' });
      const e = expectCniError(r, 103);
      expect(e.msg).toContain(ctr.path);
      expect(e.msg).toMatch(/not the host network namespace/);
      expect(await snapshot(host)).toEqual(hostBefore);
      expect(await snapshot(ctr)).toEqual(ctrBefore);
    });

    if (versionGte(v, '0.4.0')) {
      test('CHECK with another netns → code 103', async () => {
        const ctr = await reg.netns('ctr');
        const r = await runPlugin({ plugin: 'host', command: 'CHECK', host, config: conf(v), containerId: uniqueContainerId(), netns: ctr.path, ifname: 'eth0' });
        expectCniError(r, 103);
      });
    }

    test('DEL always succeeds: other netns, empty CNI_NETNS, vanished netns', async () => {
      const ctr = await reg.netns('ctr');
      const base = { plugin: 'host', command: 'DEL', host, config: conf(v), containerId: uniqueContainerId(), ifname: 'eth0' } as const;
      const before = await snapshot(host);
      expectOk(await runPlugin({ ...base, netns: ctr.path }), 'DEL other netns');
      expectOk(await runPlugin({ ...base, netns: '' }), 'DEL empty netns');
      const stale = ctr.path;
      await reg.deleteNetns(ctr);
      expectOk(await runPlugin({ ...base, netns: stale }), 'DEL vanished netns');
      expect(await snapshot(host)).toEqual(before);
    });
  });

  test('another path to the same namespace is accepted (identity is the nsfs inode)', async () => {
    // From inside the plugin, /proc/self/ns/net is its own namespace: the sandbox host.
    const r = await runPlugin({ plugin: 'host', command: 'ADD', host, config: conf('1.1.0'), containerId: uniqueContainerId(), netns: '/proc/self/ns/net', ifname: 'eth0' });
    const res = expectOk(r, 'ADD via /proc/self/ns/net').json;
    expect(res.interfaces.map((i: Json) => i.name)).toContain('uplink0');
  });

  test('a CNI_NETNS that does not exist → code 8', async () => {
    const r = await runPlugin({ plugin: 'host', command: 'ADD', host, config: conf('1.0.0'), containerId: uniqueContainerId(), netns: '/run/netns/cni-test-absent-0', ifname: 'eth0' });
    expectCniError(r, 8);
  });

  test('bad input → clear CNI errors (6, 7, 1) and nothing changes', async () => {
    const before = await snapshot(host);
    const base = { plugin: 'host', command: 'ADD', host, containerId: uniqueContainerId(), netns: host.path, ifname: 'eth0' } as const;
    expectCniError(await runPlugin({ ...base, config: '{"cniVersion":' }), 6);
    expectCniError(await runPlugin({ ...base, config: { cniVersion: '1.0.0', type: 'host' } }), 7);
    expect(expectCniError(await runPlugin({ ...base, config: conf('1.0.0', { args: [] }) }), 7).details).toMatch(/args/);
    expectCniError(await runPlugin({ ...base, config: { ...conf('1.0.0'), cniVersion: '0.9.0' } }), 1);
    expect(await snapshot(host)).toEqual(before);
  });

  test('a chained prevResult is kept first and the host view appended', async () => {
    const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'lo', sandbox: host.path }], ips: [], dns: { nameservers: ['192.0.2.53'] } };
    const res = expectOk(
      await runPlugin({ plugin: 'host', command: 'ADD', host, config: conf('1.0.0', { prevResult }), containerId: uniqueContainerId(), netns: host.path, ifname: 'eth0' }),
      'ADD',
    ).json;
    expect(res.interfaces[0]).toEqual({ name: 'lo', sandbox: host.path });
    expect(res.interfaces.filter((i: Json) => i.name === 'lo')).toHaveLength(1);
    expect(res.dns).toEqual({ nameservers: ['192.0.2.53'] });
    const up0 = res.interfaces.findIndex((i: Json) => i.name === 'uplink0');
    expect(res.ips).toEqual(expect.arrayContaining([{ interface: up0, address: '192.0.2.10/24' }]));
  });

  test('STATUS and GC (1.1.0) succeed silently', async () => {
    const c = conf('1.1.0');
    expect(expectOk(await runPlugin({ plugin: 'host', command: 'STATUS', host, config: c }), 'STATUS').stdout.trim()).toBe('');
    expect(expectOk(await runPlugin({ plugin: 'host', command: 'GC', host, config: { ...c, 'cni.dev/valid-attachments': [] } }), 'GC').stdout.trim()).toBe('');
  });
});
