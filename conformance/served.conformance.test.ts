// Served mode (README "Served mode", lib/serve): the bash stubs of dist/served (or of the
// packaged binary, when CNI_PLUGIN_DIR names dist/package) hand their calls to the per-host
// service `cni-ts serve`, which the first in-process fallback starts. What must hold, on the
// kernel's state and real packets: calls served by the service do what in-process calls do; the
// service is never the reason a call fails (dead with a stale pid file and FIFO, killed with
// SIGKILL in the middle of a wave of ADDs, replaced on disk by an upgrade, gone idle, asked from
// another namespace, or switched off); nothing leaks; and served host-local excludes the
// reference's host-local on one dataDir. Every service started here is stopped by pid.
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { exec, execWithPipes, inNetns } from './helpers/exec';
import { addressesOf, eventually, ping, veths } from './helpers/ip-json';
import { leaseFiles } from './helpers/leases';
import { Registry, type Netns, uniqueBridgeName, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { IMPL, REPO_ROOT } from './helpers/plugin-dir';
import { servicePid, stopServiceIn } from './helpers/served';

const given = process.env.CNI_PLUGIN_DIR;
const DIR = given && existsSync(join(given, 'cni-ts')) ? given : join(REPO_ROOT, 'dist/served');
const maybe = process.getuid?.() === 0 && IMPL === 'ours' && existsSync(join(DIR, 'cni-ts')) ? describe : describe.skip;
const PATH = `${process.execPath.replace(/\/[^/]+$/, '')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

interface Call {
  code: number | null;
  stdout: string;
  stderr: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

maybe(`served mode [${DIR}]`, () => {
  let reg: Registry;
  let host: Netns;
  let svc: string;
  let dataDir: string;
  let conf: Record<string, unknown>;
  const started = new Set<number>();

  beforeEach(async () => {
    reg = new Registry();
    host = await reg.sandboxHost();
    svc = join(reg.tempDir(), 'svc');
    dataDir = reg.tempDir();
    const s = uniqueSubnet24();
    conf = {
      cniVersion: '1.0.0',
      name: uniqueNetName('srv'),
      type: 'bridge',
      bridge: uniqueBridgeName(),
      isGateway: true,
      ipMasq: true,
      ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: s.subnet }]] },
    };
    // Registered first, so it runs last: after the tests' own hooks, before the netns go.
    reg.onCleanup('stop the service', () => stopServiceIn(svc));
  });
  afterEach(() => reg.cleanup());
  afterAll(() => {
    // Every service any test saw is gone: stopped by pid, idle, or killed on purpose.
    for (const pid of started) expect(existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('serve')).toBe(false);
  });

  async function call(verb: string, cid: string, ctr: Netns | undefined, extra: Record<string, string> = {}, from: Netns = host, dir = DIR, stdin = JSON.stringify(conf), pipes = false): Promise<Call> {
    const env: Record<string, string> = {
      PATH,
      CNI_COMMAND: verb,
      CNI_CONTAINERID: cid,
      CNI_NETNS: ctr?.path ?? '',
      CNI_IFNAME: 'eth0',
      CNI_PATH: dir,
      CNI_TS_SERVICE_DIR: svc,
      CNI_TS_SERVICE_DEBUG: '1',
      ...extra,
    };
    const r = await (pipes ? execWithPipes : exec)(inNetns(from.path, [join(dir, 'bridge')]), { stdin, env, timeoutMs: 45_000 });
    let json;
    try {
      json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
    } catch {
      json = undefined;
    }
    return { code: r.code, stdout: r.stdout, stderr: r.stderr, json };
  }
  const ok = (c: Call, what: string): Call => {
    if (c.code !== 0) throw new Error(`${what} failed: exit ${c.code}\n${c.stdout}\n${c.stderr}`);
    return c;
  };
  const log = (): string => (existsSync(join(svc, 'service.log')) ? readFileSync(join(svc, 'service.log'), 'utf8') : '');
  const servedFor = (verb: string, cid: string): boolean => log().includes(`served ${verb} bridge for pid`) && log().split('\n').some((l) => l.includes(`served ${verb} bridge`) && l.includes(`(${cid})`));
  /** The live service, once it accepts requests (its FIFO exists). */
  async function readyService(): Promise<number> {
    return eventually(async () => {
      const pid = servicePid(svc);
      if (pid === undefined || !existsSync(join(svc, `requests.${pid}`))) throw new Error(`no ready service in ${svc}:\n${log()}`);
      started.add(pid);
      return pid;
    }, 15_000);
  }
  async function gone(pid: number): Promise<void> {
    await eventually(async () => {
      if (existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')) throw new Error(`pid ${pid} still running`);
    }, 10_000);
  }
  const ipOf = (c: Call): string => (c.json.ips[0].address as string).split('/')[0]!;
  const leases = (): string[] => leaseFiles(join(dataDir, conf.name as string));

  test('the first call runs in-process and starts the service; the next are served, with the same result and kernel state', async () => {
    const ctr1 = await reg.netns('ctr');
    const first = ok(await call('ADD', 'c1', ctr1), 'first ADD');
    const pid = await readyService();
    expect(servedFor('ADD', 'c1')).toBe(false);
    const ctr2 = await reg.netns('ctr');
    const second = ok(await call('ADD', 'c2', ctr2), 'served ADD');
    expect(servedFor('ADD', 'c2')).toBe(true);
    // Same shape as the in-process result: bridge, host veth, container eth0; the next address.
    const shape = (c: Call) => ({ ifs: c.json.interfaces.map((i: { name: string; sandbox?: string }) => [i.name.replace(/^veth.*/, 'veth'), i.sandbox !== undefined]), gw: c.json.ips[0].gateway, cv: c.json.cniVersion });
    expect(shape(second)).toEqual(shape(first));
    expect(ipOf(second)).not.toBe(ipOf(first));
    expect(await addressesOf(ctr2, 'eth0')).toContain(second.json.ips[0].address);
    expect(leases()).toEqual(expect.arrayContaining([ipOf(first), ipOf(second)]));
    expect(await ping(ctr2, ipOf(first))).toBe(true);
    ok(await call('CHECK', 'c2', ctr2, {}, host, DIR, JSON.stringify({ ...conf, prevResult: second.json })), 'served CHECK');
    ok(await call('DEL', 'c2', ctr2), 'served DEL');
    expect(servedFor('DEL', 'c2')).toBe(true);
    expect(leases()).toEqual([ipOf(first)]);
    expect(await addressesOf(ctr2, 'eth0').catch(() => [])).toEqual([]);
    // Errors come back as from an in-process plugin: bad JSON is code 6 on stdout, exit 1.
    const bad = await call('ADD', 'c3', ctr2, {}, host, DIR, '{"name":');
    expect(bad.code).toBe(1);
    expect(bad.json).toMatchObject({ code: 6, msg: 'error parsing network configuration' });
    expect(servicePid(svc)).toBe(pid);
    ok(await call('DEL', 'c1', ctr1), 'DEL c1');
    expect(leases()).toEqual([]);
  });

  test('a caller that gives pipes, as Go runtimes do (the config written and closed before the plugin starts): served, the service reads and writes them itself', async () => {
    const ctr1 = await reg.netns('ctr');
    ok(await call('ADD', 'p0', ctr1), 'first ADD');
    await readyService();
    const ctr2 = await reg.netns('ctr');
    const add = ok(await call('ADD', 'p1', ctr2, {}, host, DIR, JSON.stringify(conf), true), 'ADD over pipes');
    expect(servedFor('ADD', 'p1')).toBe(true);
    expect(add.stdout.endsWith('}\n')).toBe(true);
    expect(await addressesOf(ctr2, 'eth0')).toContain(add.json.ips[0].address);
    const bad = await call('ADD', 'p2', ctr2, {}, host, DIR, '{"name":', true);
    expect([bad.code, bad.json?.code]).toEqual([1, 6]);
    ok(await call('DEL', 'p1', ctr2, {}, host, DIR, JSON.stringify(conf), true), 'DEL over pipes');
    expect(servedFor('DEL', 'p1')).toBe(true);
    ok(await call('DEL', 'p0', ctr1), 'DEL p0');
    expect(leases()).toEqual([]);
    // The service removes a call's spool files right after its answer, so a moment after the stub exits.
    await eventually(async () => expect(readdirSync(join(svc, 'q'))).toEqual([]), 2_000, 20);
  });

  test('a service killed with SIGKILL, its pid file and FIFO left behind, never fails a call: it runs in-process and a new service starts', async () => {
    const ctr = await reg.netns('ctr');
    ok(await call('ADD', 'k1', ctr), 'ADD');
    const pid = await readyService();
    process.kill(pid, 'SIGKILL');
    await gone(pid);
    expect(existsSync(join(svc, `requests.${pid}`))).toBe(true);
    ok(await call('DEL', 'k1', ctr), 'DEL with a dead service');
    const next = await readyService();
    expect(next).not.toBe(pid);
    expect(existsSync(join(svc, `requests.${pid}`))).toBe(false);
    ok(await call('ADD', 'k2', ctr), 'ADD with the new service');
    expect(servedFor('ADD', 'k2')).toBe(true);
    ok(await call('DEL', 'k2', ctr), 'DEL');
    expect(leases()).toEqual([]);
  });

  test('SIGKILL in the middle of a wave of 16 ADDs: each call ends in a result or a CNI error, no address twice, and DEL leaves nothing', async () => {
    const ctrs = await Promise.all(Array.from({ length: 16 }, () => reg.netns('ctr')));
    const warm = await reg.netns('ctr');
    ok(await call('ADD', 'warm', warm), 'warm-up ADD');
    const pid = await readyService();
    const wave = ctrs.map((c, i) => call('ADD', `w${i}`, c));
    // Kill it once it has taken some of the wave.
    await eventually(async () => {
      if (!log().includes('(w')) throw new Error('nothing of the wave taken yet');
    }, 10_000, 5);
    process.kill(pid, 'SIGKILL');
    const results = await Promise.all(wave);
    const addrs: string[] = [];
    for (const [i, r] of results.entries()) {
      if (r.code === 0) {
        addrs.push(ipOf(r));
        expect(await addressesOf(ctrs[i]!, 'eth0')).toContain(r.json.ips[0].address);
      } else {
        expect(r.json).toMatchObject({ code: expect.any(Number), msg: expect.any(String) });
      }
    }
    expect(new Set(addrs).size).toBe(addrs.length);
    expect(addrs.length).toBeGreaterThan(0);
    const dels = await Promise.all(ctrs.map((c, i) => call('DEL', `w${i}`, c)));
    for (const d of dels) ok(d, 'DEL after the kill');
    ok(await call('DEL', 'warm', warm), 'DEL warm');
    expect(leases()).toEqual([]);
    expect(await veths(host)).toEqual([]);
    await eventually(async () => expect(readdirSync(join(svc, 'q')).filter((f) => servicePid(svc) === undefined || !f.startsWith(String(servicePid(svc))))).toEqual([]), 2_000, 20);
    const after = await exec(inNetns(host.path, ['nft', 'list', 'ruleset']));
    expect(after.stdout).not.toMatch(/w\d+/);
  });

  test('an upgrade: when cni-ts changes on disk the service declines, goes, and the next calls start the new one', async () => {
    const dir = join(reg.tempDir(), 'bin');
    cpSync(DIR, dir, { recursive: true });
    const ctr = await reg.netns('ctr');
    ok(await call('ADD', 'u1', ctr, {}, host, dir), 'ADD');
    const pid = await readyService();
    ok(await call('DEL', 'u1', ctr, {}, host, dir), 'served DEL');
    expect(servedFor('DEL', 'u1')).toBe(true);
    // install.sh's way: a new file renamed over the old one.
    copyFileSync(join(dir, 'cni-ts'), join(dir, '.cni-ts.new'));
    renameSync(join(dir, '.cni-ts.new'), join(dir, 'cni-ts'));
    ok(await call('ADD', 'u2', ctr, {}, host, dir), 'ADD during the upgrade');
    expect(servedFor('ADD', 'u2')).toBe(false);
    await gone(pid);
    expect(log()).toMatch(/changed on disk/);
    const next = await readyService();
    expect(next).not.toBe(pid);
    ok(await call('DEL', 'u2', ctr, {}, host, dir), 'DEL with the new service');
    expect(servedFor('DEL', 'u2')).toBe(true);
  });

  test('idle for CNI_TS_SERVICE_IDLE seconds, the service exits and removes its FIFO and pid file', async () => {
    const ctr = await reg.netns('ctr');
    ok(await call('ADD', 'i1', ctr, { CNI_TS_SERVICE_IDLE: '1' }), 'ADD');
    const pid = await readyService();
    await gone(pid);
    expect(existsSync(join(svc, `requests.${pid}`))).toBe(false);
    expect(existsSync(join(svc, 'service.pid'))).toBe(false);
    expect(log()).toMatch(/exiting \(idle/);
    ok(await call('DEL', 'i1', ctr, { CNI_TS_SERVICE: 'off' }), 'DEL');
  });

  test('CNI_TS_SERVICE=off: calls run in-process and no service is started', async () => {
    const ctr = await reg.netns('ctr');
    ok(await call('ADD', 'o1', ctr, { CNI_TS_SERVICE: 'off' }), 'ADD');
    ok(await call('DEL', 'o1', ctr, { CNI_TS_SERVICE: 'off' }), 'DEL');
    expect(existsSync(svc)).toBe(false);
    // `use`: take a running service, never start one.
    ok(await call('ADD', 'o2', ctr, { CNI_TS_SERVICE: 'use' }), 'ADD use');
    expect(existsSync(join(svc, 'service.pid'))).toBe(false);
    ok(await call('DEL', 'o2', ctr, { CNI_TS_SERVICE: 'use' }), 'DEL use');
  });

  test('a call from another network namespace is declined and runs in-process; the service keeps serving its own', async () => {
    const ctr = await reg.netns('ctr');
    ok(await call('ADD', 'n1', ctr), 'ADD');
    const pid = await readyService();
    const other = await reg.sandboxHost();
    const ctr2 = await reg.netns('ctr');
    const r = ok(await call('ADD', 'n2', ctr2, {}, other), 'ADD from another host netns');
    expect(servedFor('ADD', 'n2')).toBe(false);
    // It was done in that netns: its bridge is there, not in the service's.
    expect((await exec(inNetns(other.path, ['ip', 'link', 'show', conf.bridge as string]))).code).toBe(0);
    expect(await addressesOf(ctr2, 'eth0')).toContain(r.json.ips[0].address);
    ok(await call('DEL', 'n2', ctr2, {}, other), 'DEL from the other netns');
    ok(await call('DEL', 'n1', ctr), 'served DEL');
    expect(servedFor('DEL', 'n1')).toBe(true);
    expect(servicePid(svc)).toBe(pid);
  });

  test('served host-local and the reference host-local exclude each other on one dataDir: 24 concurrent ADDs, 24 addresses', async () => {
    if (!existsSync('/usr/lib/cni/host-local')) return;
    const ctr = await reg.netns('ctr');
    ok(await call('ADD', 'h0', ctr), 'ADD');
    await readyService();
    const ipamConf = JSON.stringify({ cniVersion: '1.0.0', name: conf.name, ipam: conf.ipam });
    const ours = Array.from({ length: 12 }, async (_, i) => {
      const c = await reg.netns('ctr');
      return call('ADD', `o${i}`, c);
    });
    const theirs = Array.from({ length: 12 }, (_, i) =>
      exec(inNetns(host.path, ['/usr/lib/cni/host-local']), {
        stdin: ipamConf,
        env: { PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: `r${i}`, CNI_NETNS: '/proc/self/ns/net', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' },
      }),
    );
    const a = await Promise.all(ours);
    const b = await Promise.all(theirs);
    const addrs = [...a.map((r) => ipOf(ok(r, 'served ADD'))), ...b.map((r) => (JSON.parse(r.stdout).ips[0].address as string).split('/')[0]!)];
    expect(new Set(addrs).size).toBe(24);
    expect(a.filter((_, i) => servedFor('ADD', `o${i}`)).length).toBeGreaterThan(0);
    expect(leases().length).toBe(25);
  });
});
