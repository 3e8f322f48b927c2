// macvlan: the container gets a macvlan child of a master interface. The master is one end of a
// veth pair the suite makes inside its sandbox host netns (no dummy module on the test VM), so
// the real host's NICs are never touched. IPAM is host-local with a temp dataDir.
import { join } from 'node:path';
import { addressesOf, link, links, ping, readSysctl, routes, type IpLink } from './helpers/ip-json';
import { execOk, inNetns } from './helpers/exec';
import { leaseFiles } from './helpers/leases';
import { Registry, type Netns, randomHex, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { IMPL, PLUGIN_DIR, SPEC_VERSIONS, knownReferenceBug, oursOnly, versionGap, versionGte } from './helpers/plugin-dir';
import { type Json, describeRun, expectCniError, expectOk, runPlugin } from './helpers/run-plugin';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

maybe(`macvlan [${IMPL}: ${PLUGIN_DIR}]`, () => {
  const reg = new Registry();
  let host: Netns;
  /** The master: one end of a veth pair inside the sandbox host, up, with the default route. */
  let master: string;
  let masterIndex: number;

  beforeAll(async () => {
    host = await reg.sandboxHost();
    master = `mvm${randomHex(3)}`;
    const peer = `mvp${randomHex(3)}`;
    const sh = (argv: string[]) => execOk(inNetns(host.path, argv));
    await sh(['ip', 'link', 'add', 'name', master, 'type', 'veth', 'peer', 'name', peer]);
    reg.link(host, master);
    await sh(['ip', 'link', 'set', 'dev', master, 'up']);
    await sh(['ip', 'link', 'set', 'dev', peer, 'up']);
    await sh(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', master]);
    await sh(['ip', 'route', 'add', 'default', 'via', '192.0.2.254', 'dev', master]);
    masterIndex = (await link(host, master))!.ifindex;
  });
  afterAll(() => reg.cleanup());

  interface Net {
    conf: Json;
    leaseDir: string;
  }
  function makeNet(v: string, extra: Json = {}, ipam = true): Net {
    const dataDir = reg.tempDir();
    const name = uniqueNetName('mv');
    const s = uniqueSubnet24();
    const conf: Json = { cniVersion: v, name, type: 'macvlan', master, ...extra };
    if (ipam) conf.ipam = { type: 'host-local', dataDir, ranges: [[{ subnet: s.subnet, gateway: s.gateway }]], routes: [{ dst: '0.0.0.0/0' }] };
    return { conf, leaseDir: join(dataDir, name) };
  }
  const leases = (n: Net): string[] => leaseFiles(n.leaseDir);

  function call(command: 'ADD' | 'DEL' | 'CHECK', conf: Json, ctr: Netns | string, cid: string, opts: { ifname?: string; args?: string; env?: Record<string, string> } = {}) {
    return runPlugin({ plugin: 'macvlan', command, host, config: conf, containerId: cid, netns: typeof ctr === 'string' ? ctr : ctr.path, ifname: opts.ifname ?? 'eth0', args: opts.args, env: opts.env });
  }

  /** Every link in the sandbox host and in ctr, to prove a failed ADD left nothing. */
  const linkNames = async (ns: Netns): Promise<string[]> => (await links(ns)).map((l) => l.ifname).sort();

  describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
    const it = knownReferenceBug(versionGap('macvlan', v));

    it('ADD → macvlan of the master in bridge mode with the lease → CHECK → DEL → gone → DEL again', async () => {
      const ctr = await reg.netns('ctr');
      const cid = uniqueContainerId();
      const n = makeNet(v);
      const hostBefore = await linkNames(host);
      const r = expectOk(await call('ADD', n.conf, ctr, cid), 'ADD').json;

      expect(r.cniVersion).toBe(v);
      expect(r.interfaces).toHaveLength(1);
      expect(r.interfaces[0]).toMatchObject({ name: 'eth0', sandbox: ctr.path });
      expect(r.interfaces[0].mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      expect(r.ips).toHaveLength(1);
      expect(r.ips[0].interface).toBe(0);
      if (versionGte(v, '1.0.0')) expect(r.ips[0]).not.toHaveProperty('version');
      else expect(r.ips[0].version).toBe('4');
      expect(r.routes).toEqual([{ dst: '0.0.0.0/0' }]);

      // Kernel state: a macvlan in bridge mode whose lower device is our master, up, addressed, routed.
      const l = (await link(ctr, 'eth0')) as IpLink & { link_index?: number };
      expect(l?.linkinfo?.info_kind).toBe('macvlan');
      expect(l?.linkinfo?.info_data?.mode).toBe('bridge');
      expect(l?.link_index).toBe(masterIndex);
      expect(l?.address).toBe(r.interfaces[0].mac);
      expect(l?.flags).toContain('UP');
      expect(await addressesOf(ctr, 'eth0')).toEqual([r.ips[0].address]);
      expect((await routes(ctr)).find((x) => x.dst === 'default')?.gateway).toBe(r.ips[0].gateway);
      expect(leases(n)).toEqual([r.ips[0].address.split('/')[0]]);
      // Nothing left in the host netns under the temporary name.
      expect(await linkNames(host)).toEqual(hostBefore);
      // The reference turns on gratuitous ARP for the new link (arp_notify).
      expect(await readSysctl(ctr, '/proc/sys/net/ipv4/conf/eth0/arp_notify')).toBe('1');

      if (versionGte(v, '0.4.0')) expectOk(await call('CHECK', { ...n.conf, prevResult: r }, ctr, cid), 'CHECK');

      const delConf = versionGte(v, '0.4.0') ? { ...n.conf, prevResult: r } : n.conf;
      expectOk(await call('DEL', delConf, ctr, cid), 'DEL');
      expect(await link(ctr, 'eth0')).toBeUndefined();
      expect(leases(n)).toEqual([]);
      expectOk(await call('DEL', delConf, ctr, cid), 'second DEL');
    });

    it('L2 only (no ipam): link up, no ips in the result', async () => {
      const ctr = await reg.netns('ctr');
      const cid = uniqueContainerId();
      const n = makeNet(v, {}, false);
      const r = expectOk(await call('ADD', n.conf, ctr, cid, { ifname: 'net1' }), 'ADD').json;
      expect(r.interfaces[0]).toMatchObject({ name: 'net1', sandbox: ctr.path });
      expect(r.ips ?? []).toEqual([]);
      expect((await link(ctr, 'net1'))?.flags).toContain('UP');
      if (versionGte(v, '0.4.0')) expectOk(await call('CHECK', { ...n.conf, prevResult: r }, ctr, cid, { ifname: 'net1' }), 'CHECK');
      expectOk(await call('DEL', n.conf, ctr, cid, { ifname: 'net1' }), 'DEL');
      expect(await link(ctr, 'net1')).toBeUndefined();
    });
  });

  const v = '1.0.0';

  test('two containers on one master in bridge mode ping each other', async () => {
    const [a, b] = [await reg.netns('ctr'), await reg.netns('ctr')];
    const n = makeNet(v);
    const ra = expectOk(await call('ADD', n.conf, a, uniqueContainerId()), 'ADD a').json;
    const rb = expectOk(await call('ADD', n.conf, b, uniqueContainerId()), 'ADD b').json;
    const ipB = rb.ips[0].address.split('/')[0];
    const ipA = ra.ips[0].address.split('/')[0];
    expect(ipA).not.toBe(ipB);
    expect(await ping(a, ipB)).toBe(true);
    expect(await ping(b, ipA)).toBe(true);
  });

  test('private mode isolates two containers on one master; CHECK catches a mode mismatch', async () => {
    const [a, b] = [await reg.netns('ctr'), await reg.netns('ctr')];
    const n = makeNet(v, { mode: 'private' });
    const cid = uniqueContainerId();
    const ra = expectOk(await call('ADD', n.conf, a, cid), 'ADD a').json;
    const rb = expectOk(await call('ADD', n.conf, b, uniqueContainerId()), 'ADD b').json;
    expect((await link(a, 'eth0'))?.linkinfo?.info_data?.mode).toBe('private');
    expect(await ping(a, rb.ips[0].address.split('/')[0])).toBe(false);
    expectOk(await call('CHECK', { ...n.conf, prevResult: ra }, a, cid), 'CHECK private');
    const bad = await call('CHECK', { ...n.conf, mode: 'bridge', prevResult: ra }, a, cid);
    expect(bad.code).not.toBe(0);
    expect(bad.json.msg).toMatch(/mode/);
  });

  test('mtu above the master\'s is refused and leaves no link and no lease', async () => {
    const ctr = await reg.netns('ctr');
    const n = makeNet(v, { mtu: 9000 });
    const hostBefore = await linkNames(host);
    const ctrBefore = await linkNames(ctr);
    const r = await call('ADD', n.conf, ctr, uniqueContainerId());
    const e = expectCniError(r);
    expect(e.msg).toMatch(/MTU/);
    expect(await linkNames(host)).toEqual(hostBefore);
    expect(await linkNames(ctr)).toEqual(ctrBefore);
    expect(leases(n)).toEqual([]);
  });

  test('mtu within the master\'s is applied', async () => {
    const ctr = await reg.netns('ctr');
    const n = makeNet(v, { mtu: 1400 });
    expectOk(await call('ADD', n.conf, ctr, uniqueContainerId()), 'ADD');
    expect((await link(ctr, 'eth0'))?.mtu).toBe(1400);
  });

  test('a master that does not exist is an error and leaves nothing', async () => {
    const ctr = await reg.netns('ctr');
    const n = makeNet(v, { master: 'nosuchmaster0' });
    expectCniError(await call('ADD', n.conf, ctr, uniqueContainerId()));
    expect(await linkNames(ctr)).toEqual(['lo']);
    expect(leases(n)).toEqual([]);
  });

  test('no master: the interface of the default route is used', async () => {
    const ctr = await reg.netns('ctr');
    const n = makeNet(v, {}, false);
    delete n.conf.master;
    expectOk(await call('ADD', n.conf, ctr, uniqueContainerId()), 'ADD');
    expect(((await link(ctr, 'eth0')) as IpLink & { link_index?: number })?.link_index).toBe(masterIndex);
  });

  test('runtimeConfig.mac wins over CNI_ARGS MAC and mac', async () => {
    const ctr = await reg.netns('ctr');
    const n = makeNet(v, { mac: '02:00:00:aa:00:01', runtimeConfig: { mac: '02:00:00:aa:00:03' } }, false);
    const r = expectOk(await call('ADD', n.conf, ctr, uniqueContainerId(), { args: 'IgnoreUnknown=1;MAC=02:00:00:aa:00:02' }), 'ADD').json;
    expect(r.interfaces[0].mac).toBe('02:00:00:aa:00:03');
    expect((await link(ctr, 'eth0'))?.address).toBe('02:00:00:aa:00:03');
  });

  test('CNI_ARGS MAC is used when there is no runtimeConfig.mac', async () => {
    const ctr = await reg.netns('ctr');
    const n = makeNet(v, { mac: '02:00:00:aa:00:01' }, false);
    expectOk(await call('ADD', n.conf, ctr, uniqueContainerId(), { args: 'IgnoreUnknown=1;MAC=02:00:00:aa:00:02' }), 'ADD');
    expect((await link(ctr, 'eth0'))?.address).toBe('02:00:00:aa:00:02');
  });

  // linkInContainer arrived in plugins v1.4.0; the reference on this VM (Debian v1.1.1) looks the master up on the host.
  oursOnly('macvlan linkInContainer (reference v1.1.1 predates it: "Link not found")')('linkInContainer: the master lives in the container netns', async () => {
    const ctr = await reg.netns('ctr');
    const inner = `mvi${randomHex(3)}`;
    await execOk(inNetns(ctr.path, ['ip', 'link', 'add', 'name', inner, 'type', 'veth', 'peer', 'name', `${inner}p`]));
    await execOk(inNetns(ctr.path, ['ip', 'link', 'set', 'dev', inner, 'up']));
    const n = makeNet(v, { master: inner, linkInContainer: true });
    const cid = uniqueContainerId();
    const r = expectOk(await call('ADD', n.conf, ctr, cid, { ifname: 'net1' }), 'ADD').json;
    const l = await link(ctr, 'net1');
    expect(l?.linkinfo?.info_kind).toBe('macvlan');
    // Same netns as its lower device: ip names it instead of giving link_index.
    expect(l?.link).toBe(inner);
    expectOk(await call('CHECK', { ...n.conf, prevResult: r }, ctr, cid, { ifname: 'net1' }), 'CHECK');
    expectOk(await call('DEL', { ...n.conf, prevResult: r }, ctr, cid, { ifname: 'net1' }), 'DEL');
    expect(await link(ctr, 'net1')).toBeUndefined();
    expect(await link(ctr, inner)).toBeDefined();
  });

  test('an interface already named ifName in the container: error, it is untouched, no lease kept', async () => {
    const ctr = await reg.netns('ctr');
    await execOk(inNetns(ctr.path, ['ip', 'link', 'add', 'name', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']));
    const before = await link(ctr, 'eth0');
    const n = makeNet(v);
    expectCniError(await call('ADD', n.conf, ctr, uniqueContainerId()));
    const after = await link(ctr, 'eth0');
    expect(after?.ifindex).toBe(before?.ifindex);
    expect((await linkNames(ctr)).sort()).toEqual(['eth0', 'eth0p', 'lo']);
    expect(leases(n)).toEqual([]);
  });

  oursOnly('failpoint after-ipam')('a failure after IPAM rolls back: no link, no lease', async () => {
    const ctr = await reg.netns('ctr');
    const n = makeNet(v);
    const hostBefore = await linkNames(host);
    const r = await call('ADD', n.conf, ctr, uniqueContainerId(), { env: { CNI_TS_FAILPOINT: 'after-ipam' } });
    expect(r.code).not.toBe(0);
    expect(await linkNames(ctr)).toEqual(['lo']);
    expect(await linkNames(host)).toEqual(hostBefore);
    expect(leases(n)).toEqual([]);
  });

  test('DEL after the netns is gone (and with an empty CNI_NETNS) releases the lease', async () => {
    const ctr = await reg.netns('ctr');
    const n = makeNet(v);
    const cid = uniqueContainerId();
    const r = expectOk(await call('ADD', n.conf, ctr, cid), 'ADD').json;
    const path = ctr.path;
    await reg.deleteNetns(ctr);
    expectOk(await call('DEL', { ...n.conf, prevResult: r }, path, cid), 'DEL with a dead netns path');
    expect(leases(n)).toEqual([]);
    expectOk(await call('DEL', { ...n.conf, prevResult: r }, '', cid), 'DEL with empty CNI_NETNS');
  });

  test("containerd's second DEL (empty CNI_NETNS, no prevResult) after the netns died releases the lease", async () => {
    const ctr = await reg.netns('ctr');
    const n = makeNet(v);
    const cid = uniqueContainerId();
    expectOk(await call('ADD', n.conf, ctr, cid), 'ADD');
    expect(leases(n)).toHaveLength(1);
    await reg.deleteNetns(ctr);
    expectOk(await call('DEL', n.conf, '', cid), 'DEL with empty CNI_NETNS, no prevResult');
    expect(leases(n)).toEqual([]);
    expectOk(await call('DEL', n.conf, '', cid), 'the same DEL again');
  });

  test('CHECK fails once the link is gone', async () => {
    const ctr = await reg.netns('ctr');
    const n = makeNet(v);
    const cid = uniqueContainerId();
    const r = expectOk(await call('ADD', n.conf, ctr, cid), 'ADD').json;
    await execOk(inNetns(ctr.path, ['ip', 'link', 'del', 'eth0']));
    const c = await call('CHECK', { ...n.conf, prevResult: r }, ctr, cid);
    expect(c.code).not.toBe(0);
    if (c.code === 0) throw new Error(describeRun(c));
  });
});
