// none (Docker `--network none`): ADD brings lo up in the container netns and reports lo with no
// address; nothing else in the netns is touched; DEL changes nothing (lo stays up, see
// plugins/none/README.md); CHECK fails when lo is down. Our plugin only: the reference has none.
import { addrs, link, links, ping } from './helpers/ip-json';
import { execOk, inNetns } from './helpers/exec';
import { Registry, type Netns, uniqueContainerId, uniqueNetName } from './helpers/netns';
import { SPEC_VERSIONS, IMPL, PLUGIN_DIR, pluginPath, versionGte } from './helpers/plugin-dir';
import { expectCniError, expectOk, runPlugin } from './helpers/run-plugin';
import { existsSync } from 'node:fs';

const maybe = process.getuid?.() === 0 && existsSync(pluginPath('none')) ? describe : describe.skip;

/** What a test compares to prove "nothing changed": links with flags and every address. */
async function snapshot(ns: Netns): Promise<string[]> {
  return (await addrs(ns)).map((l) => `${l.ifname} ${l.flags.join(',')} ${l.addr_info.map((a) => `${a.local}/${a.prefixlen}`).join(' ')}`);
}

maybe(`none [${IMPL}: ${PLUGIN_DIR}]`, () => {
  const reg = new Registry();
  let host: Netns;
  beforeAll(async () => {
    host = await reg.sandboxHost();
  });
  afterAll(() => reg.cleanup());

  const conf = (v: string, extra: Record<string, unknown> = {}) => ({ cniVersion: v, name: uniqueNetName('none'), type: 'none', ...extra });

  describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
    test('ADD → only lo, up, no address in the result → CHECK → DEL (lo stays up) → DEL again', async () => {
      const ctr = await reg.netns('ctr');
      const c = conf(v);
      const base = { plugin: 'none', host, containerId: uniqueContainerId(), netns: ctr.path, ifname: 'eth0' } as const;
      expect((await link(ctr, 'lo'))?.flags).not.toContain('UP');

      const res = expectOk(await runPlugin({ ...base, command: 'ADD', config: c }), 'ADD').json;
      expect(res.cniVersion).toBe(v);
      expect(res.interfaces).toEqual([{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: ctr.path }]);
      expect(res.ips ?? []).toEqual([]);
      expect(res.routes ?? []).toEqual([]);

      // Kernel state: lo is the only link, it is up and answers; nothing global is configured.
      expect((await links(ctr)).map((l) => l.ifname)).toEqual(['lo']);
      expect((await link(ctr, 'lo'))?.flags).toContain('UP');
      const scopes = (await addrs(ctr)).flatMap((l) => l.addr_info.map((a) => a.scope));
      expect(scopes.filter((s) => s !== 'host')).toEqual([]);
      expect(await ping(ctr, '127.0.0.1')).toBe(true);

      if (versionGte(v, '0.4.0')) expectOk(await runPlugin({ ...base, command: 'CHECK', config: { ...c, prevResult: res } }), 'CHECK');

      const delConf = versionGte(v, '0.4.0') ? { ...c, prevResult: res } : c;
      const before = await snapshot(ctr);
      expectOk(await runPlugin({ ...base, command: 'DEL', config: delConf }), 'DEL');
      expect(await snapshot(ctr)).toEqual(before);
      expectOk(await runPlugin({ ...base, command: 'DEL', config: delConf }), 'second DEL');
    });

    test('leaves every other interface in the netns alone and does not report it', async () => {
      const ctr = await reg.netns('ctr');
      await execOk(inNetns(ctr.path, ['ip', 'link', 'add', 'other0', 'type', 'veth', 'peer', 'name', 'other1']));
      await execOk(inNetns(ctr.path, ['ip', 'addr', 'add', '192.0.2.7/24', 'dev', 'other0']));
      await execOk(inNetns(ctr.path, ['ip', 'link', 'set', 'other0', 'up']));
      const other = (await snapshot(ctr)).filter((l) => !l.startsWith('lo '));
      const res = expectOk(
        await runPlugin({ plugin: 'none', command: 'ADD', host, config: conf(v), containerId: uniqueContainerId(), netns: ctr.path, ifname: 'eth0' }),
        'ADD',
      ).json;
      expect(res.interfaces.map((i: { name: string }) => i.name)).toEqual(['lo']);
      expect(res.ips ?? []).toEqual([]);
      expect((await snapshot(ctr)).filter((l) => !l.startsWith('lo '))).toEqual(other);
    });

    test('DEL succeeds when the container netns is already gone (empty and stale CNI_NETNS)', async () => {
      const ctr = await reg.netns('ctr');
      const base = { plugin: 'none', host, containerId: uniqueContainerId(), ifname: 'eth0', config: conf(v) } as const;
      expectOk(await runPlugin({ ...base, command: 'ADD', netns: ctr.path }), 'ADD');
      const stale = ctr.path;
      await reg.deleteNetns(ctr);
      expectOk(await runPlugin({ ...base, command: 'DEL', netns: '' }), 'DEL with empty CNI_NETNS');
      expectOk(await runPlugin({ ...base, command: 'DEL', netns: stale }), 'DEL with a vanished netns');
    });

    if (versionGte(v, '0.4.0')) {
      test('CHECK fails when lo has been taken down', async () => {
        const ctr = await reg.netns('ctr');
        const c = conf(v);
        const base = { plugin: 'none', host, containerId: uniqueContainerId(), netns: ctr.path, ifname: 'eth0' } as const;
        const res = expectOk(await runPlugin({ ...base, command: 'ADD', config: c }), 'ADD').json;
        await execOk(inNetns(ctr.path, ['ip', 'link', 'set', 'lo', 'down']));
        const e = expectCniError(await runPlugin({ ...base, command: 'CHECK', config: { ...c, prevResult: res } }));
        expect(e.msg).toMatch(/loopback.*down/);
      });
    } else {
      test('CHECK is refused with code 1 below 0.4.0', async () => {
        const ctr = await reg.netns('ctr');
        expectCniError(await runPlugin({ plugin: 'none', command: 'CHECK', host, config: conf(v), containerId: uniqueContainerId(), netns: ctr.path, ifname: 'eth0' }), 1);
      });
    }
  });

  describe('errors leave nothing behind', () => {
    test('invalid JSON → 6; missing name → 7; schema violation → 7; lo untouched', async () => {
      const ctr = await reg.netns('ctr');
      const base = { plugin: 'none', command: 'ADD', host, containerId: uniqueContainerId(), netns: ctr.path, ifname: 'eth0' } as const;
      expectCniError(await runPlugin({ ...base, config: '{"cniVersion": "1.0.0", ' }), 6);
      expectCniError(await runPlugin({ ...base, config: { cniVersion: '1.0.0', type: 'none' } }), 7);
      const bad = expectCniError(await runPlugin({ ...base, config: { cniVersion: '1.0.0', name: 'n', type: 'none', runtimeConfig: 'x' } }), 7);
      expect(bad.details).toMatch(/runtimeConfig/);
      expectCniError(await runPlugin({ ...base, config: { cniVersion: '9.9.9', name: 'n', type: 'none' } }), 1);
      expect((await link(ctr, 'lo'))?.flags).not.toContain('UP');
    });

    test('a CNI_NETNS that does not exist → code 8', async () => {
      const r = await runPlugin({ plugin: 'none', command: 'ADD', host, config: conf('1.0.0'), containerId: uniqueContainerId(), netns: '/run/netns/cni-test-absent-0', ifname: 'eth0' });
      expectCniError(r, 8);
    });

    test('missing CNI_NETNS on ADD → code 4 naming it', async () => {
      const r = await runPlugin({ plugin: 'none', command: 'ADD', host, config: conf('1.0.0'), containerId: uniqueContainerId(), ifname: 'eth0' });
      expect(expectCniError(r, 4).msg).toMatch(/CNI_NETNS/);
    });
  });

  test('STATUS and GC (1.1.0) succeed silently; VERSION lists 0.3.0 to 1.1.0', async () => {
    const c = conf('1.1.0');
    const st = expectOk(await runPlugin({ plugin: 'none', command: 'STATUS', host, config: c }), 'STATUS');
    expect(st.stdout.trim()).toBe('');
    const gc = expectOk(await runPlugin({ plugin: 'none', command: 'GC', host, config: { ...c, 'cni.dev/valid-attachments': [] } }), 'GC');
    expect(gc.stdout.trim()).toBe('');
    const ver = expectOk(await runPlugin({ plugin: 'none', command: 'VERSION', host, config: { cniVersion: '1.1.0' } }), 'VERSION').json;
    expect(ver.supportedVersions).toEqual(expect.arrayContaining([...SPEC_VERSIONS]));
  });
});
