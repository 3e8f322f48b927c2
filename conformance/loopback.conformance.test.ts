// loopback: ADD brings `lo` up in the container netns and reports it; DEL brings it down;
// both are idempotent, and DEL tolerates a netns that is already gone.
import { addrs, link, ping } from './helpers/ip-json';
import { Registry, type Netns, uniqueContainerId, uniqueNetName } from './helpers/netns';
import { SPEC_VERSIONS, IMPL, PLUGIN_DIR, knownReferenceBug, versionGap, versionGte } from './helpers/plugin-dir';
import { describeRun, expectCniError, expectOk, runPlugin } from './helpers/run-plugin';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

maybe(`loopback [${IMPL}: ${PLUGIN_DIR}]`, () => {
  const reg = new Registry();
  let host: Netns;
  beforeAll(async () => {
    host = await reg.sandboxHost();
  });
  afterAll(() => reg.cleanup());

  describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
    const it = knownReferenceBug(versionGap('loopback', v));

    it('ADD → lo up and answering → CHECK → DEL → lo down → DEL again', async () => {
      const ctr = await reg.netns('ctr');
      const containerId = uniqueContainerId();
      const conf = { cniVersion: v, name: uniqueNetName('lo'), type: 'loopback' };
      const base = { plugin: 'loopback', host, containerId, netns: ctr.path, ifname: 'lo' } as const;

      expect((await link(ctr, 'lo'))?.flags).not.toContain('UP');
      expect(await ping(ctr, '127.0.0.1')).toBe(false);

      const add = expectOk(await runPlugin({ ...base, command: 'ADD', config: conf }), 'ADD');
      const res = add.json;
      expect(res.cniVersion).toBe(v);
      expect(res.interfaces).toEqual([expect.objectContaining({ name: 'lo', sandbox: ctr.path })]);
      const v4 = (res.ips as { address: string; version?: string; interface?: number }[]).find((i) => i.address === '127.0.0.1/8');
      expect(v4).toBeDefined();
      expect(v4!.interface).toBe(0);
      if (versionGte(v, '1.0.0')) expect(v4).not.toHaveProperty('version');

      // Kernel state, not just JSON: lo is UP, has 127.0.0.1 and answers.
      expect((await link(ctr, 'lo'))?.flags).toContain('UP');
      const loAddrs = (await addrs(ctr)).find((l) => l.ifname === 'lo')?.addr_info.map((a) => a.local) ?? [];
      expect(loAddrs).toContain('127.0.0.1');
      expect(await ping(ctr, '127.0.0.1')).toBe(true);

      if (versionGte(v, '0.4.0')) {
        const check = await runPlugin({ ...base, command: 'CHECK', config: { ...conf, prevResult: res } });
        expectOk(check, 'CHECK');
      }

      const delConf = versionGte(v, '0.4.0') ? { ...conf, prevResult: res } : conf;
      expectOk(await runPlugin({ ...base, command: 'DEL', config: delConf }), 'DEL');
      expect((await link(ctr, 'lo'))?.flags).not.toContain('UP');
      expect(await ping(ctr, '127.0.0.1')).toBe(false);
      expectOk(await runPlugin({ ...base, command: 'DEL', config: delConf }), 'second DEL');
    });

    // 0.3.x/0.4.0 results require ips[].version (types/040); 1.x dropped it.
    const shapeIt = versionGte(v, '1.0.0') ? it : knownReferenceBug(versionGap('loopback', v) ?? 'loopback-040-no-ip-version');
    shapeIt('result ips[] carry version "4"/"6" exactly when cniVersion < 1.0.0', async () => {
      const ctr = await reg.netns('ctr');
      const conf = { cniVersion: v, name: uniqueNetName('lo'), type: 'loopback' };
      const r = expectOk(
        await runPlugin({ plugin: 'loopback', command: 'ADD', host, config: conf, containerId: uniqueContainerId(), netns: ctr.path, ifname: 'lo' }),
        'ADD',
      );
      const ips = r.json.ips as { address: string; version?: string }[];
      expect(ips.length).toBeGreaterThan(0);
      for (const ip of ips) {
        if (versionGte(v, '1.0.0')) expect(ip).not.toHaveProperty('version');
        else expect(ip.version).toBe(ip.address.includes(':') ? '6' : '4');
      }
    });

    it('passes a prevResult through unchanged when chained', async () => {
      const ctr = await reg.netns('ctr');
      const prevResult = versionGte(v, '1.0.0')
        ? { cniVersion: v, interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: ctr.path }], ips: [{ address: '10.99.0.2/24', gateway: '10.99.0.1', interface: 0 }], dns: {} }
        : { cniVersion: v, interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: ctr.path }], ips: [{ version: '4', address: '10.99.0.2/24', gateway: '10.99.0.1', interface: 0 }], dns: {} };
      const conf = { cniVersion: v, name: uniqueNetName('lo'), type: 'loopback', prevResult };
      const r = expectOk(
        await runPlugin({ plugin: 'loopback', command: 'ADD', host, config: conf, containerId: uniqueContainerId(), netns: ctr.path, ifname: 'lo' }),
        'ADD',
      );
      expect(r.json).toEqual(prevResult);
      expect((await link(ctr, 'lo'))?.flags).toContain('UP');
    });

    it('DEL succeeds when the container netns is already gone (empty and stale CNI_NETNS)', async () => {
      const ctr = await reg.netns('ctr');
      const containerId = uniqueContainerId();
      const conf = { cniVersion: v, name: uniqueNetName('lo'), type: 'loopback' };
      const base = { plugin: 'loopback', host, containerId, ifname: 'lo', config: conf } as const;
      expectOk(await runPlugin({ ...base, command: 'ADD', netns: ctr.path }), 'ADD');
      const stalePath = ctr.path;
      await reg.deleteNetns(ctr);
      const empty = await runPlugin({ ...base, command: 'DEL', netns: '' });
      expect(empty.code).toBe(0);
      const stale = await runPlugin({ ...base, command: 'DEL', netns: stalePath });
      if (stale.code !== 0) throw new Error(`DEL with a vanished netns path must succeed (kubernetes#43014):\n${describeRun(stale)}`);
    });
  });

  test('invalid JSON on stdin → error code 6 on stdout and a non-zero exit', async () => {
    const ctr = await reg.netns('ctr');
    const r = await runPlugin({ plugin: 'loopback', command: 'ADD', host, config: '{"cniVersion": "1.0.0", ', containerId: uniqueContainerId(), netns: ctr.path, ifname: 'lo' });
    expectCniError(r, 6);
  });
});
