// tuning: chained after bridge (per spec version) or after a veth the suite makes by hand with a
// prevResult it writes. Sysctls are read inside the container netns (nsenter + cat), link state
// with ip -json; the backup lives in a temp dataDir, never /run/cni/tuning.
import { servedEnv } from './helpers/served';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { link, readSysctl, type IpLink } from './helpers/ip-json';
import { exec, execOk, inNetns } from './helpers/exec';
import { Registry, type Netns, uniqueBridgeName, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { IMPL, PLUGIN_DIR, SPEC_VERSIONS, knownReferenceBug, oursOnly, versionGap, versionGte } from './helpers/plugin-dir';
import { ConflistRunner, type Json, expectCniError, expectOk, runPlugin } from './helpers/run-plugin';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;
const REFERENCE_TUNING = '/usr/lib/cni/tuning';

const SOMAXCONN = '/proc/sys/net/core/somaxconn';
const arpFilter = (ifname: string) => `/proc/sys/net/ipv4/conf/${ifname}/arp_filter`;

interface LinkView {
  mac?: string;
  mtu: number;
  promisc: boolean;
  allmulti: boolean;
  txqlen?: number;
}
async function view(ns: Netns, ifname: string): Promise<LinkView> {
  const l = (await link(ns, ifname)) as (IpLink & { txqlen?: number }) | undefined;
  if (!l) throw new Error(`${ifname} not found in ${ns.name}`);
  return { mac: l.address, mtu: l.mtu, promisc: l.flags.includes('PROMISC'), allmulti: l.flags.includes('ALLMULTI'), txqlen: l.txqlen };
}

maybe(`tuning [${IMPL}: ${PLUGIN_DIR}]`, () => {
  const reg = new Registry();
  let host: Netns;
  beforeAll(async () => {
    host = await reg.sandboxHost();
  });
  afterAll(() => reg.cleanup());

  /** A container netns with a veth pair `eth0`/`eth0p` in it (up) and the prevResult a main plugin would give. */
  async function handVeth(v: string): Promise<{ ctr: Netns; prev: Json }> {
    const ctr = await reg.netns('ctr');
    const sh = (argv: string[]) => execOk(inNetns(ctr.path, argv));
    await sh(['ip', 'link', 'add', 'name', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
    await sh(['ip', 'link', 'set', 'dev', 'eth0', 'up']);
    const mac = (await link(ctr, 'eth0'))!.address;
    const ip: Json = { address: '10.250.0.2/24', gateway: '10.250.0.1', interface: 0 };
    if (!versionGte(v, '1.0.0')) ip.version = '4';
    const prev = { cniVersion: v, interfaces: [{ name: 'eth0', mac, sandbox: ctr.path }], ips: [ip], dns: {} };
    return { ctr, prev };
  }

  function tuningConf(v: string, extra: Json = {}): Json {
    return { cniVersion: v, name: uniqueNetName('tu'), type: 'tuning', dataDir: reg.tempDir(), ...extra };
  }
  const backups = (conf: Json): string[] => (existsSync(conf.dataDir) ? readdirSync(conf.dataDir) : []);

  function call(command: 'ADD' | 'DEL' | 'CHECK', conf: Json, ctr: Netns | string, cid: string, opts: { args?: string; env?: Record<string, string> } = {}) {
    return runPlugin({ plugin: 'tuning', command, host, config: conf, containerId: cid, netns: typeof ctr === 'string' ? ctr : ctr.path, ifname: 'eth0', args: opts.args, env: opts.env });
  }

  describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
    const it = knownReferenceBug(versionGap('tuning', v) ?? versionGap('bridge', v));

    it('bridge → tuning: ADD sets sysctls and link attributes → CHECK → DEL restores → DEL again', async () => {
      const ctr = await reg.netns('ctr');
      const s = uniqueSubnet24();
      const tuning = {
        type: 'tuning',
        dataDir: reg.tempDir(),
        // IFNAME spelled out: the reference's CHECK does not substitute it (tested on its own below).
        sysctl: { 'net.core.somaxconn': '321', 'net.ipv4.conf.eth0.arp_filter': '1' },
        mac: '02:11:22:33:44:55',
        mtu: 1400,
        promisc: true,
        allmulti: true,
      };
      const list = {
        cniVersion: v,
        name: uniqueNetName('tu'),
        plugins: [{ type: 'bridge', bridge: uniqueBridgeName(), ipam: { type: 'host-local', dataDir: reg.tempDir(), ranges: [[{ subnet: s.subnet }]] } }, tuning],
      };
      const cid = uniqueContainerId();
      const runner = new ConflistRunner(host, list, { containerId: cid, netns: ctr.path, ifname: 'eth0' });
      const somaxBefore = await readSysctl(ctr, SOMAXCONN);
      const r = await runner.add();
      const before = await view(ctr, 'eth0').catch(() => undefined);
      expect(before).toBeDefined();

      expect(r.cniVersion).toBe(v);
      const contIf = (r.interfaces as Json[]).find((i) => i.name === 'eth0' && i.sandbox === ctr.path);
      expect(contIf.mac).toBe('02:11:22:33:44:55');
      expect(await readSysctl(ctr, SOMAXCONN)).toBe('321');
      expect(await readSysctl(ctr, arpFilter('eth0'))).toBe('1');
      expect(await view(ctr, 'eth0')).toMatchObject({ mac: '02:11:22:33:44:55', mtu: 1400, promisc: true, allmulti: true });
      expect(backups(tuning)).toEqual([`${cid}_eth0.json`]);

      if (versionGte(v, '0.4.0')) await runner.check();

      // DEL of tuning alone first, to see the interface restored before bridge removes it.
      const del = { ...tuning, cniVersion: v, name: list.name, ...(versionGte(v, '0.4.0') ? { prevResult: r } : {}) };
      expectOk(await call('DEL', del, ctr, cid), 'tuning DEL');
      // The reference keeps no sysctl backup, so only link attributes come back there.
      if (IMPL === 'ours') {
        expect(await readSysctl(ctr, SOMAXCONN)).toBe(somaxBefore);
        expect(await readSysctl(ctr, arpFilter('eth0'))).toBe('0');
      }
      const after = await view(ctr, 'eth0');
      expect(after).toMatchObject({ mtu: 1500, promisc: false, allmulti: false });
      expect(after.mac).not.toBe('02:11:22:33:44:55');
      expect(backups(tuning)).toEqual([]);
      expectOk(await call('DEL', del, ctr, cid), 'tuning DEL again');
      await runner.del();
      expect(await link(ctr, 'eth0')).toBeUndefined();
    });
  });

  const v = '1.0.0';

  // Reference bug (plugins v1.1.1 cmdCheck): ADD replaces IFNAME in sysctl keys, CHECK does not,
  // so CHECK fails with "open /proc/sys/net/ipv4/conf/IFNAME/arp_filter: no such file".
  const ifnameCheck = IMPL === 'reference' ? (test.failing as unknown as jest.It) : test;
  ifnameCheck('IFNAME in a sysctl key is the container interface, on ADD and on CHECK', async () => {
    const { ctr, prev } = await handVeth(v);
    const cid = uniqueContainerId();
    const conf = tuningConf(v, { sysctl: { 'net.ipv4.conf.IFNAME.arp_filter': '1' }, prevResult: prev });
    const r = expectOk(await call('ADD', conf, ctr, cid), 'ADD').json;
    expect(await readSysctl(ctr, arpFilter('eth0'))).toBe('1');
    expectOk(await call('CHECK', { ...conf, prevResult: r }, ctr, cid), 'CHECK');
  });

  test('result is prevResult with the interface MAC updated; nothing else changes', async () => {
    const { ctr, prev } = await handVeth(v);
    const conf = tuningConf(v, { mac: '02:aa:bb:cc:dd:ee', prevResult: prev });
    const r = expectOk(await call('ADD', conf, ctr, uniqueContainerId()), 'ADD').json;
    expect(r).toEqual({ ...prev, interfaces: [{ ...prev.interfaces[0], mac: '02:aa:bb:cc:dd:ee' }] });
  });

  test('ADD needs a prevResult', async () => {
    const { ctr } = await handVeth(v);
    expectCniError(await call('ADD', tuningConf(v, { sysctl: { 'net.core.somaxconn': '100' } }), ctr, uniqueContainerId()));
  });

  test.each([
    ['kernel.hostname'],
    ['net/../../kernel/hostname'],
    ['net.core/../../../kernel/hostname'],
    ['../net/core/somaxconn'],
    ['net'],
  ])('forbidden sysctl %s is refused and nothing changes', async (key) => {
    const { ctr, prev } = await handVeth(v);
    const somax = await readSysctl(ctr, SOMAXCONN);
    const hostname = await readSysctl(ctr, '/proc/sys/kernel/hostname');
    const before = await view(ctr, 'eth0');
    const conf = tuningConf(v, { sysctl: { [key]: 'pwned', 'net.core.somaxconn': '99' }, mtu: 1300, prevResult: prev });
    const r = await call('ADD', conf, ctr, uniqueContainerId());
    expect(r.code).not.toBe(0);
    expect(await readSysctl(ctr, '/proc/sys/kernel/hostname')).toBe(hostname);
    // The reference checks keys one by one while writing (map order); ours refuses before writing.
    if (IMPL === 'ours') {
      expect(await readSysctl(ctr, SOMAXCONN)).toBe(somax);
      expect(await view(ctr, 'eth0')).toEqual(before);
      expect(backups(conf)).toEqual([]);
    }
  });

  test('mac, mtu, promisc, allmulti set, CHECKed, and restored by DEL', async () => {
    const { ctr, prev } = await handVeth(v);
    const before = await view(ctr, 'eth0');
    const cid = uniqueContainerId();
    const conf = tuningConf(v, { mac: '02:00:00:00:be:ef', mtu: 1280, promisc: true, allmulti: true, prevResult: prev });
    const r = expectOk(await call('ADD', conf, ctr, cid), 'ADD').json;
    expect(await view(ctr, 'eth0')).toMatchObject({ mac: '02:00:00:00:be:ef', mtu: 1280, promisc: true, allmulti: true });
    expectOk(await call('CHECK', { ...conf, prevResult: r }, ctr, cid), 'CHECK');
    expectOk(await call('DEL', { ...conf, prevResult: r }, ctr, cid), 'DEL');
    expect(await view(ctr, 'eth0')).toEqual(before);
  });

  test('CHECK fails when a tuned value was changed behind its back', async () => {
    const { ctr, prev } = await handVeth(v);
    const cid = uniqueContainerId();
    const conf = tuningConf(v, { mtu: 1280, sysctl: { 'net.core.somaxconn': '77' }, prevResult: prev });
    const r = expectOk(await call('ADD', conf, ctr, cid), 'ADD').json;
    await execOk(inNetns(ctr.path, ['ip', 'link', 'set', 'dev', 'eth0', 'mtu', '1300']));
    expect((await call('CHECK', { ...conf, prevResult: r }, ctr, cid)).code).not.toBe(0);
    await execOk(inNetns(ctr.path, ['ip', 'link', 'set', 'dev', 'eth0', 'mtu', '1280']));
    expectOk(await call('CHECK', { ...conf, prevResult: r }, ctr, cid), 'CHECK once put back');
    await execOk(inNetns(ctr.path, ['sysctl', '-q', '-w', 'net.core.somaxconn=78']));
    expect((await call('CHECK', { ...conf, prevResult: r }, ctr, cid)).code).not.toBe(0);
  });

  test('the backup file has the reference format: <cid>_<ifname>.json holding the old values', async () => {
    const { ctr, prev } = await handVeth(v);
    const before = await view(ctr, 'eth0');
    const cid = uniqueContainerId();
    const conf = tuningConf(v, { mac: '02:00:00:00:00:aa', mtu: 1400, promisc: true, allmulti: true, prevResult: prev });
    expectOk(await call('ADD', conf, ctr, cid), 'ADD');
    const saved = JSON.parse(readFileSync(join(conf.dataDir, `${cid}_eth0.json`), 'utf8'));
    expect(saved).toMatchObject({ mac: before.mac, mtu: 1500, promisc: false, allmulti: false });
  });

  oursOnly('txQLen (reference v1.1.1 predates it)')('txQLen set and restored', async () => {
    const { ctr, prev } = await handVeth(v);
    const before = await view(ctr, 'eth0');
    const cid = uniqueContainerId();
    const conf = tuningConf(v, { txQLen: 42, prevResult: prev });
    const r = expectOk(await call('ADD', conf, ctr, cid), 'ADD').json;
    expect((await view(ctr, 'eth0')).txqlen).toBe(42);
    expectOk(await call('CHECK', { ...conf, prevResult: r }, ctr, cid), 'CHECK');
    expectOk(await call('DEL', conf, ctr, cid), 'DEL');
    expect((await view(ctr, 'eth0')).txqlen).toBe(before.txqlen);
  });

  oursOnly('sysctls restored on DEL (the reference leaves them)')('sysctls are restored by DEL', async () => {
    const { ctr, prev } = await handVeth(v);
    const somax = await readSysctl(ctr, SOMAXCONN);
    const cid = uniqueContainerId();
    const conf = tuningConf(v, { sysctl: { 'net.core.somaxconn': '555', 'net/ipv4/conf/IFNAME/arp_filter': '1' }, prevResult: prev });
    expectOk(await call('ADD', conf, ctr, cid), 'ADD');
    expect(await readSysctl(ctr, SOMAXCONN)).toBe('555');
    expect(await readSysctl(ctr, arpFilter('eth0'))).toBe('1');
    expectOk(await call('DEL', conf, ctr, cid), 'DEL');
    expect(await readSysctl(ctr, SOMAXCONN)).toBe(somax);
    expect(await readSysctl(ctr, arpFilter('eth0'))).toBe('0');
    expect(backups(conf)).toEqual([]);
  });

  oursOnly('all-or-nothing ADD (the reference leaves what it did before the failure)')('a failing change rolls everything back', async () => {
    const { ctr, prev } = await handVeth(v);
    const somax = await readSysctl(ctr, SOMAXCONN);
    const before = await view(ctr, 'eth0');
    // A multicast MAC is refused by the kernel, after the sysctl and before the mtu.
    const conf = tuningConf(v, { sysctl: { 'net.core.somaxconn': '66' }, mac: '01:00:5e:00:00:01', mtu: 1300, prevResult: prev });
    expectCniError(await call('ADD', conf, ctr, uniqueContainerId()));
    expect(await readSysctl(ctr, SOMAXCONN)).toBe(somax);
    expect(await view(ctr, 'eth0')).toEqual(before);
    expect(backups(conf)).toEqual([]);
    // A sysctl that does not exist: the good one before it is put back too.
    const conf2 = tuningConf(v, { sysctl: { 'net.core.somaxconn': '66', 'net.core.no_such_knob': '1' }, prevResult: prev });
    expectCniError(await call('ADD', conf2, ctr, uniqueContainerId()));
    expect(await readSysctl(ctr, SOMAXCONN)).toBe(somax);
  });

  oursOnly('failpoint after-apply')('failpoint after-apply: everything restored, no backup', async () => {
    const { ctr, prev } = await handVeth(v);
    const somax = await readSysctl(ctr, SOMAXCONN);
    const before = await view(ctr, 'eth0');
    const conf = tuningConf(v, { sysctl: { 'net.core.somaxconn': '66' }, mtu: 1300, promisc: true, prevResult: prev });
    expectCniError(await call('ADD', conf, ctr, uniqueContainerId(), { env: { CNI_TS_FAILPOINT: 'after-apply' } }));
    expect(await readSysctl(ctr, SOMAXCONN)).toBe(somax);
    expect(await view(ctr, 'eth0')).toEqual(before);
    expect(backups(conf)).toEqual([]);
  });

  test('DEL with the netns gone or empty succeeds', async () => {
    const { ctr, prev } = await handVeth(v);
    const cid = uniqueContainerId();
    const conf = tuningConf(v, { mtu: 1300, prevResult: prev });
    expectOk(await call('ADD', conf, ctr, cid), 'ADD');
    const path = ctr.path;
    await reg.deleteNetns(ctr);
    expectOk(await call('DEL', conf, path, cid), 'DEL with a dead netns');
    expectOk(await call('DEL', conf, '', cid), 'DEL with an empty CNI_NETNS');
    if (IMPL === 'ours') expect(backups(conf)).toEqual([]);
  });

  test("containerd's second DEL (empty CNI_NETNS, no prevResult) after the netns died exits 0 and drops the backup", async () => {
    const { ctr, prev } = await handVeth(v);
    const cid = uniqueContainerId();
    const conf = tuningConf(v, { mtu: 1300, sysctl: { 'net.ipv4.conf.IFNAME.arp_filter': '1' } });
    expectOk(await call('ADD', { ...conf, prevResult: prev }, ctr, cid), 'ADD');
    if (IMPL === 'ours') expect(backups(conf)).toHaveLength(1);
    await reg.deleteNetns(ctr);
    expectOk(await call('DEL', conf, '', cid), 'DEL with an empty CNI_NETNS, no prevResult');
    if (IMPL === 'ours') expect(backups(conf)).toEqual([]);
    expectOk(await call('DEL', conf, '', cid), 'the same DEL again');
  });

  /** Runs a specific tuning binary (for cross-implementation backups). */
  async function runBinary(bin: string, command: string, conf: Json, ctr: Netns, cid: string) {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: command, CNI_PATH: PLUGIN_DIR, CNI_CONTAINERID: cid, CNI_NETNS: ctr.path, CNI_IFNAME: 'eth0', CNI_ARGS: '', ...servedEnv(host) };
    return exec(inNetns(host.path, [bin]), { stdin: JSON.stringify(conf), env });
  }
  const interop = IMPL === 'ours' && existsSync(REFERENCE_TUNING) ? test : test.skip;

  interop('a backup written by the reference is restored by our DEL, and ours by the reference', async () => {
    const ours = join(PLUGIN_DIR, 'tuning');
    for (const [adder, deleter] of [
      [REFERENCE_TUNING, ours],
      [ours, REFERENCE_TUNING],
    ] as const) {
      const { ctr, prev } = await handVeth(v);
      const before = await view(ctr, 'eth0');
      const cid = uniqueContainerId();
      const conf = tuningConf(v, { mac: '02:00:00:00:0a:0b', mtu: 1350, promisc: true, allmulti: true, prevResult: prev });
      const add = await runBinary(adder, 'ADD', conf, ctr, cid);
      expect(add.code).toBe(0);
      expect(await view(ctr, 'eth0')).toMatchObject({ mtu: 1350, promisc: true });
      const del = await runBinary(deleter, 'DEL', conf, ctr, cid);
      expect(del.code).toBe(0);
      expect(await view(ctr, 'eth0')).toEqual(before);
      expect(backups(conf)).toEqual([]);
    }
  });

});
