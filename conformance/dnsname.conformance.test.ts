// dnsname chained after bridge (+ host-local), driven like a runtime: containers on a network
// resolve each other by name and alias through the network's dnsmasq (on the gateway), not a
// container of another network, and no longer a container after its DEL; the last DEL stops
// the server. Plus CHECK, GC, STATUS, bad input, rollback and concurrent ADD/DEL.
//
// Queries are real DNS over UDP from inside the container netns: a small node dgram client
// (no dig in the image), and libc's resolver (ping by name) with the resolv.conf a runtime
// would write from the ADD result, bind-mounted in a private mount namespace.
// Every dnsmasq runs in a sandbox host netns; afterEach kills any left by a failing test.
import { chmodSync, existsSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolvConf, resolveAndPing } from './helpers/dns';
import { execOk, inNetns } from './helpers/exec';
import { eventually, ping } from './helpers/ip-json';
import { Registry, type Netns, uniqueBridgeName, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { IMPL, PLUGIN_DIR, SPEC_VERSIONS, pluginPath, versionGte } from './helpers/plugin-dir';
import { ConflistRunner, type Json, type NetConfList, describeRun, expectCniError, expectOk, runPlugin } from './helpers/run-plugin';

// The reference plugin set has no dnsname (it was rejected upstream, plugins#380).
const maybe = process.getuid?.() === 0 && existsSync(pluginPath('dnsname')) ? describe : describe.skip;

// A minimal DNS client: one A query over UDP, prints {rcode, addrs} or {timeout}.
const DNS_QUERY = `
const dgram = require('dgram');
const [server, name] = process.argv.slice(1);
const id = Math.floor(Math.random() * 65535);
const labels = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
const q = Buffer.concat([Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
const s = dgram.createSocket(server.includes(':') ? 'udp6' : 'udp4');
const timer = setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(0); }, 2000);
s.on('message', (m) => {
  if (m.readUInt16BE(0) !== id) return;
  const rcode = m[3] & 15, an = m.readUInt16BE(6);
  let o = 12; while (m[o]) o += m[o] + 1; o += 5;
  const addrs = [];
  for (let i = 0; i < an; i++) {
    if ((m[o] & 0xc0) === 0xc0) o += 2; else { while (m[o]) o += m[o] + 1; o++; }
    const type = m.readUInt16BE(o), len = m.readUInt16BE(o + 8);
    if (type === 1) addrs.push([...m.subarray(o + 10, o + 10 + len)].join('.'));
    o += 10 + len;
  }
  console.log(JSON.stringify({ rcode, addrs })); clearTimeout(timer); s.close();
});
s.send(q, 53, server);
`;

interface Answer {
  rcode?: number;
  addrs?: string[];
  timeout?: boolean;
}

async function query(ns: Netns, server: string, name: string): Promise<Answer> {
  const r = await execOk(inNetns(ns.path, [process.execPath, '-e', DNS_QUERY, server, name]), { timeoutMs: 10_000 });
  return JSON.parse(r.stdout) as Answer;
}

const NXDOMAIN = 3;
/** What a network's directory holds once its last attachment is gone. */
const LEFT_AFTER_LAST_DEL = ['dnsmasq.log', 'hosts.d', 'lock'];

/** pids of every dnsmasq whose config file lies under dir (scans /proc, so it sees all netns). */
function dnsmasqUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const argv = cmd.split('\0');
    if (argv[0]?.endsWith('dnsmasq') && argv.some((a) => a.startsWith(`--conf-file=${dir}/`))) pids.push(Number(e));
  }
  return pids;
}

interface TestNet {
  list: NetConfList;
  name: string;
  domain: string;
  subnet: ReturnType<typeof uniqueSubnet24>;
  runDir: string;
  netDir: string;
}

maybe(`dnsname [${IMPL}: ${PLUGIN_DIR}]`, () => {
  let reg: Registry;
  let host: Netns;
  let runDirs: string[];

  beforeEach(async () => {
    reg = new Registry();
    host = await reg.sandboxHost();
    runDirs = [];
  });
  afterEach(async () => {
    // A failed test may leave servers behind; they would also keep the sandbox netns alive.
    for (const d of runDirs) for (const pid of dnsmasqUnder(d)) process.kill(pid, 'SIGKILL');
    await reg.cleanup();
  });

  function makeNet(v: string, domain: string, dnsExtra: Json = {}): TestNet {
    const subnet = uniqueSubnet24();
    const dataDir = reg.tempDir();
    // dnsmasq re-reads its hosts file as an unprivileged user: the dir must be enterable.
    const runDir = reg.tempDir();
    chmodSync(runDir, 0o755);
    runDirs.push(runDir);
    const name = uniqueNetName('dns');
    const list: NetConfList = {
      cniVersion: v,
      name,
      plugins: [
        { type: 'bridge', bridge: uniqueBridgeName(), isGateway: true, ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: subnet.subnet }]] } },
        { type: 'dnsname', domainName: domain, runDir, capabilities: { aliases: true }, ...dnsExtra },
      ],
    };
    return { list, name, domain, subnet, runDir, netDir: join(runDir, name) };
  }

  interface Ctr {
    ns: Netns;
    runner: ConflistRunner;
    result: Json;
    ip: string;
    cid: string;
  }

  async function attach(n: TestNet, name: string, aliases: string[] = [], ifname = 'eth0', ns?: Netns): Promise<Ctr> {
    const ctrNs = ns ?? (await reg.netns('ctr'));
    if (!ns) await execOk(inNetns(ctrNs.path, ['ip', 'link', 'set', 'lo', 'up']));
    const cid = uniqueContainerId();
    const runner = new ConflistRunner(host, n.list, {
      containerId: cid,
      netns: ctrNs.path,
      ifname,
      args: `IgnoreUnknown=1;K8S_POD_NAME=${name}`,
      capabilityArgs: { aliases: { [n.name]: aliases } },
    });
    const result = await runner.add();
    return { ns: ctrNs, runner, result, ip: (result.ips[0].address as string).split('/')[0]!, cid };
  }

  const hostsText = (n: TestNet): string => (existsSync(join(n.netDir, 'addnhosts')) ? readFileSync(join(n.netDir, 'addnhosts'), 'utf8') : '');

  describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
    test('ADD → result carries the server and search domain → CHECK → DEL stops the server → DEL again', async () => {
      const n = makeNet(v, 'dns.test');
      const c = await attach(n, 'alpine1');
      expect(c.result.cniVersion).toBe(v);
      expect(c.result.dns).toEqual({ nameservers: [n.subnet.gateway], search: ['dns.test'] });
      // prevResult passes through: bridge's three interfaces and the address.
      expect(c.result.interfaces).toHaveLength(3);
      expect(c.result.ips[0].address).toBe(`${c.ip}/24`);
      const pids = dnsmasqUnder(n.runDir);
      expect(pids).toHaveLength(1);
      // lib/daemon: the pid file names the foreground dnsmasq, whose log lines are in dnsmasq.log.
      expect(readFileSync(join(n.netDir, 'pidfile'), 'utf8')).toBe(`${pids[0]}\n`);
      expect(readFileSync(join(n.netDir, 'dnsmasq.log'), 'utf8')).toMatch(new RegExp(`starting dnsmasq for network ${n.name}: .*--keep-in-foreground[^]*dnsmasq\\[${pids[0]}\\]: started`));
      expect(hostsText(n)).toBe(`${c.ip}\talpine1 alpine1.dns.test\t# cni:${c.cid}:eth0\n`);
      expect(await query(c.ns, n.subnet.gateway, 'alpine1.dns.test')).toEqual({ rcode: 0, addrs: [c.ip] });
      if (versionGte(v, '0.4.0')) await c.runner.check();
      await c.runner.del();
      expect(dnsmasqUnder(n.runDir)).toEqual([]);
      // The lock stays (see README: removing it would break the flock protocol), the log, and
      // hosts.d (others' files).
      expect(readdirSync(n.netDir).sort()).toEqual(LEFT_AFTER_LAST_DEL);
      expect(readFileSync(join(n.netDir, 'dnsmasq.log'), 'utf8')).toMatch(/exiting on receipt of SIGTERM\n$/);
      await c.runner.del();
    });
  });

  test("containerd's second DEL (empty CNI_NETNS, no prevResult) after the netns died drops the name, and stops the server after the last", async () => {
    const n = makeNet('1.0.0', 'dns.test');
    const a = await attach(n, 'web1');
    const b = await attach(n, 'web2');
    await reg.deleteNetns(a.ns);
    await a.runner.del('', { cached: false });
    expect(hostsText(n)).toBe(`${b.ip}\tweb2 web2.dns.test\t# cni:${b.cid}:eth0\n`);
    await eventually(async () => expect((await query(b.ns, n.subnet.gateway, 'web1.dns.test')).rcode).toBe(NXDOMAIN), 3000);
    expect(await query(b.ns, n.subnet.gateway, 'web2.dns.test')).toEqual({ rcode: 0, addrs: [b.ip] });
    await reg.deleteNetns(b.ns);
    await b.runner.del('', { cached: false });
    expect(dnsmasqUnder(n.runDir)).toEqual([]);
    expect(readdirSync(n.netDir).sort()).toEqual(LEFT_AFTER_LAST_DEL);
    await b.runner.del('', { cached: false });
  });

  test("Docker's scenario: names and aliases resolve on the network, not across networks, not after DEL", async () => {
    const a = makeNet('1.0.0', 'dns.podman');
    const b = makeNet('1.0.0', 'dns.podman');
    const alpine1 = await attach(a, 'alpine1');
    const alpine2 = await attach(a, 'alpine2', ['web', 'alpine2']);
    const alpine4 = await attach(a, 'alpine4');
    const alpine3 = await attach(b, 'alpine3');
    expect(dnsmasqUnder(a.runDir)).toHaveLength(1);
    expect(dnsmasqUnder(b.runDir)).toHaveLength(1);

    const gwA = a.subnet.gateway;
    for (const [name, ip] of [
      ['alpine2', alpine2.ip],
      ['alpine2.dns.podman', alpine2.ip],
      ['web', alpine2.ip],
      ['web.dns.podman', alpine2.ip],
      ['alpine4', alpine4.ip],
      ['alpine1.dns.podman', alpine1.ip],
    ] as const) {
      expect([name, await query(alpine1.ns, gwA, name)]).toEqual([name, { rcode: 0, addrs: [ip] }]);
    }
    // alpine3 is on network B: "bad address" from A's server, bare or under the domain.
    expect((await query(alpine1.ns, gwA, 'alpine3')).rcode).toBe(NXDOMAIN);
    expect((await query(alpine1.ns, gwA, 'alpine3.dns.podman')).rcode).toBe(NXDOMAIN);
    // ...and B's server knows alpine3 but none of A's containers.
    expect(await query(alpine3.ns, b.subnet.gateway, 'alpine3')).toEqual({ rcode: 0, addrs: [alpine3.ip] });
    expect((await query(alpine3.ns, b.subnet.gateway, 'alpine1')).rcode).toBe(NXDOMAIN);

    // What the runtime does with the result: resolv.conf from result.dns; then libc resolves
    // and ping reaches the container by name and by alias.
    const rc = resolvConf(reg.tempDir(), alpine1.result.dns);
    const libc = (ns: Netns, name: string) => resolveAndPing(ns.path, rc, name);
    expect(await libc(alpine1.ns, 'alpine2')).toEqual({ addr: alpine2.ip, pinged: true });
    expect(await libc(alpine1.ns, 'web')).toEqual({ addr: alpine2.ip, pinged: true });
    expect(await libc(alpine1.ns, 'alpine3')).toEqual({ addr: '', pinged: false });
    expect(await ping(alpine1.ns, alpine2.ip)).toBe(true);

    // DEL alpine2: its name and alias stop resolving (dnsmasq reloads on SIGHUP), the server
    // stays for the others.
    const [pidA] = dnsmasqUnder(a.runDir);
    await alpine2.runner.del();
    await eventually(async () => expect((await query(alpine1.ns, gwA, 'alpine2')).rcode).toBe(NXDOMAIN), 3000);
    expect((await query(alpine1.ns, gwA, 'web.dns.podman')).rcode).toBe(NXDOMAIN);
    expect(await query(alpine1.ns, gwA, 'alpine4')).toEqual({ rcode: 0, addrs: [alpine4.ip] });
    expect(dnsmasqUnder(a.runDir)).toEqual([pidA]);

    // The last DEL of a network stops its server; the other network's is untouched.
    await alpine1.runner.del();
    await alpine4.runner.del();
    expect(dnsmasqUnder(a.runDir)).toEqual([]);
    expect(await query(host, gwA, 'alpine4')).toEqual({ timeout: true });
    expect(dnsmasqUnder(b.runDir)).toHaveLength(1);
    await alpine3.runner.del();
    expect(dnsmasqUnder(b.runDir)).toEqual([]);
  });

  test("a container on two networks is found on each under that network's domain", async () => {
    const a = makeNet('1.0.0', 'a.test');
    const b = makeNet('1.0.0', 'b.test');
    const onA = await attach(a, 'multi');
    const onB = await attach(b, 'multi', [], 'eth1', onA.ns);
    expect(onB.result.dns).toEqual({ nameservers: [b.subnet.gateway], search: ['b.test'] });
    expect(await query(onA.ns, a.subnet.gateway, 'multi.a.test')).toEqual({ rcode: 0, addrs: [onA.ip] });
    expect(await query(onA.ns, b.subnet.gateway, 'multi.b.test')).toEqual({ rcode: 0, addrs: [onB.ip] });
    // DEL of the eth1 attachment leaves the eth0 one.
    await onB.runner.del();
    expect(dnsmasqUnder(b.runDir)).toEqual([]);
    expect(await query(onA.ns, a.subnet.gateway, 'multi')).toEqual({ rcode: 0, addrs: [onA.ip] });
    await onA.runner.del();
  });

  test('CHECK fails once dnsmasq is killed; the next ADD starts a new one with every entry', async () => {
    const n = makeNet('1.0.0', 'dns.test');
    const c1 = await attach(n, 'one');
    await c1.runner.check();
    const [pid] = dnsmasqUnder(n.runDir);
    process.kill(pid!, 'SIGKILL');
    await eventually(async () => expect(dnsmasqUnder(n.runDir)).toEqual([]));
    await expect(c1.runner.check()).rejects.toThrow(/dnsmasq for network .* is not running/);
    const c2 = await attach(n, 'two');
    const pids = dnsmasqUnder(n.runDir);
    expect(pids).toHaveLength(1);
    expect(pids[0]).not.toBe(pid);
    expect(await query(c2.ns, n.subnet.gateway, 'one')).toEqual({ rcode: 0, addrs: [c1.ip] });
    await c1.runner.check();
    // A missing entry is a CHECK failure too.
    writeFileSync(join(n.netDir, 'addnhosts'), hostsText(n).split('\n').filter((l) => !l.includes(c1.cid)).join('\n'));
    await expect(c1.runner.check()).rejects.toThrow(/no name entry/);
    await c1.runner.del();
    await c2.runner.del();
    expect(dnsmasqUnder(n.runDir)).toEqual([]);
  });

  test('GC drops entries of attachments that are not valid, then stops the server with none left', async () => {
    const n = makeNet('1.1.0', 'dns.test');
    const keep = await attach(n, 'keep');
    const gone = await attach(n, 'gone');
    const gc = (valid: Json[]) => {
      const { plugins, ...rest } = n.list;
      return runPlugin({ plugin: 'dnsname', command: 'GC', host, config: { ...rest, ...plugins[1], 'cni.dev/valid-attachments': valid } });
    };
    expectOk(await gc([{ containerID: keep.cid, ifname: 'eth0' }]), 'GC');
    expect(hostsText(n)).not.toContain(gone.cid);
    expect(hostsText(n)).toContain(keep.cid);
    await eventually(async () => expect((await query(keep.ns, n.subnet.gateway, 'gone')).rcode).toBe(NXDOMAIN), 3000);
    expect(await query(keep.ns, n.subnet.gateway, 'keep')).toEqual({ rcode: 0, addrs: [keep.ip] });
    // GC without the list is refused rather than read as "nothing is valid".
    expectCniError(await runPlugin({ plugin: 'dnsname', command: 'GC', host, config: { ...n.list.plugins[1], cniVersion: '1.1.0', name: n.name } }), 7);
    expectOk(await gc([]), 'GC');
    expect(dnsmasqUnder(n.runDir)).toEqual([]);
    // DEL of attachments GC already dropped succeeds.
    await gone.runner.del();
    await keep.runner.del();
  });

  test('dnsmasq drops root; only a runDir its user cannot enter keeps it root (and names still reload)', async () => {
    const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    const open = makeNet('1.0.0', 'dns.test');
    const c = await attach(open, 'c');
    expect(uidOf(dnsmasqUnder(open.runDir)[0]!)).not.toBe(0);
    await c.runner.del();

    const closed = makeNet('1.0.0', 'dns.test');
    chmodSync(closed.runDir, 0o700);
    const c1 = await attach(closed, 'c1');
    expect(readFileSync(join(closed.netDir, 'dnsmasq.conf'), 'utf8')).toMatch(/^user=root$/m);
    expect(uidOf(dnsmasqUnder(closed.runDir)[0]!)).toBe(0);
    const c2 = await attach(closed, 'c2');
    expect(await query(c1.ns, closed.subnet.gateway, 'c2')).toEqual({ rcode: 0, addrs: [c2.ip] });
    await c1.runner.del();
    await c2.runner.del();
    expect(dnsmasqUnder(closed.runDir)).toEqual([]);
  });

  test('STATUS: available with dnsmasq, code 50 without it', async () => {
    const n = makeNet('1.1.0', 'dns.test');
    const conf = { ...n.list.plugins[1], cniVersion: '1.1.0', name: n.name };
    expectOk(await runPlugin({ plugin: 'dnsname', command: 'STATUS', host, config: conf }), 'STATUS');
    const r = await runPlugin({ plugin: 'dnsname', command: 'STATUS', host, config: { ...conf, dnsmasqPath: '/nonexistent/dnsmasq' } });
    expect(expectCniError(r, 50).msg).toMatch(/dnsmasq not found/);
  });

  describe('bad input: a clear error and nothing written', () => {
    // dnsname alone, with the prevResult a bridge would have passed.
    const prevResult = (gw: string, ip: string) => ({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'cnibr0' }, { name: 'veth0' }, { name: 'eth0', sandbox: '/run/netns/x' }],
      ips: [{ address: `${ip}/24`, gateway: gw, interface: 2 }],
    });
    async function addAlone(n: TestNet, extra: Json, args: string) {
      const ctr = await reg.netns('ctr');
      return runPlugin({
        plugin: 'dnsname',
        command: 'ADD',
        host,
        config: { ...n.list.plugins[1], cniVersion: '1.0.0', name: n.name, prevResult: prevResult(n.subnet.gateway, `${n.subnet.prefix}.9`), ...extra },
        containerId: uniqueContainerId(),
        netns: ctr.path,
        ifname: 'eth0',
        args,
      });
    }

    test.each([
      ['a name DNS forbids (K8S_POD_NAME=my_app)', {}, 'K8S_POD_NAME=my_app', 4, /invalid container name "my_app"/],
      ['a name with a space', {}, 'K8S_POD_NAME=a b', 4, /invalid container name/],
      ['an alias DNS forbids', { runtimeConfig: { aliases: {} } }, 'K8S_POD_NAME=ok', 7, /invalid alias "bad!"/],
      ['a domain that is not a domain', { domainName: 'not a domain' }, 'K8S_POD_NAME=ok', 7, /invalid domainName "not a domain"/],
      ['a domain with an empty label', { domainName: 'a..b' }, 'K8S_POD_NAME=ok', 7, /invalid domainName/],
      ['no prevResult (not chained)', { prevResult: undefined }, 'K8S_POD_NAME=ok', 7, /needs prevResult/],
      ['dnsmasq missing', { dnsmasqPath: '/nonexistent/dnsmasq' }, 'K8S_POD_NAME=ok', 50, /dnsmasq not found/],
    ])('%s', async (_what, extra: Json, args, code, msg) => {
      const n = makeNet('1.0.0', 'dns.test');
      if (extra.runtimeConfig) extra.runtimeConfig.aliases[n.name] = ['good', 'bad!'];
      const r = await addAlone(n, extra, args);
      expect(expectCniError(r, code).msg).toMatch(msg);
      expect(readdirSync(n.runDir)).toEqual([]);
      expect(dnsmasqUnder(n.runDir)).toEqual([]);
    });

    test('DEL of a network dnsname never saw creates nothing', async () => {
      const n = makeNet('1.0.0', 'dns.test');
      const r = await runPlugin({ plugin: 'dnsname', command: 'DEL', host, config: { ...n.list.plugins[1], cniVersion: '1.0.0', name: n.name }, containerId: 'x', ifname: 'eth0', netns: '' });
      expectOk(r, 'DEL');
      expect(readdirSync(n.runDir)).toEqual([]);
    });
  });

  test('hosts.d: a file renamed into it is served without SIGHUP, replaced and removed likewise; reloads keep it', async () => {
    const n = makeNet('1.0.0', 'dns.test');
    const c = await attach(n, 'local1');
    const hostsD = join(n.netDir, 'hosts.d');
    expect(statSync(hostsD).mode & 0o777).toBe(0o755);
    const [pid] = dnsmasqUnder(n.runDir);
    const log = () => readFileSync(join(n.netDir, 'dnsmasq.log'), 'utf8');
    // dnsmasq logs "read <addnhosts>" on start and on every SIGHUP: their count shows reloads.
    const reloads = () => log().split('\n').filter((l) => l.includes(`read ${join(n.netDir, 'addnhosts')}`)).length;
    const before = reloads();
    // As the overlay agent writes it: a temp name dnsmasq skips (leading dot), then rename.
    const put = (text: string) => {
      writeFileSync(join(hostsD, '.remote.tmp'), text, { mode: 0o644 });
      renameSync(join(hostsD, '.remote.tmp'), join(hostsD, 'remote'));
    };
    put('10.99.0.7\tremote1 remote1.dns.test\n');
    await eventually(async () => expect(await query(c.ns, n.subnet.gateway, 'remote1')).toEqual({ rcode: 0, addrs: ['10.99.0.7'] }), 3000);
    expect(await query(c.ns, n.subnet.gateway, 'remote1.dns.test')).toEqual({ rcode: 0, addrs: ['10.99.0.7'] });
    expect(reloads()).toBe(before);
    expect(log()).toContain(`inotify: ${join(hostsD, 'remote')} new or modified`);
    expect(dnsmasqUnder(n.runDir)).toEqual([pid]);
    // An ADD (a SIGHUP) re-reads everything: the remote name stays, the new one appears.
    const c2 = await attach(n, 'local2');
    expect(reloads()).toBe(before + 1);
    expect(await query(c.ns, n.subnet.gateway, 'local2')).toEqual({ rcode: 0, addrs: [c2.ip] });
    expect(await query(c.ns, n.subnet.gateway, 'remote1')).toEqual({ rcode: 0, addrs: ['10.99.0.7'] });
    // Replaced: the new address only. Removed: forgotten.
    put('10.99.0.8\tremote1 remote1.dns.test\n');
    await eventually(async () => expect(await query(c.ns, n.subnet.gateway, 'remote1')).toEqual({ rcode: 0, addrs: ['10.99.0.8'] }), 3000);
    rmSync(join(hostsD, 'remote'));
    await eventually(async () => expect((await query(c.ns, n.subnet.gateway, 'remote1')).rcode).toBe(NXDOMAIN), 3000);
    expect(reloads()).toBe(before + 1);
    expect(dnsmasqUnder(n.runDir)).toEqual([pid]);
    await c.runner.del();
    await c2.runner.del();
    expect(dnsmasqUnder(n.runDir)).toEqual([]);
    expect(readdirSync(n.netDir).sort()).toEqual(LEFT_AFTER_LAST_DEL);
  });

  test('a dnsmasq that fails at start: ADD fails with its own message from the log, nothing left running', async () => {
    const n = makeNet('1.0.0', 'dns.test');
    const bin = join(reg.tempDir(), 'dnsmasq');
    writeFileSync(bin, '#!/bin/sh\necho "dnsmasq: failed to create listening socket for 192.0.2.1: Address already in use" >&2\nexit 2\n', { mode: 0o755 });
    n.list.plugins[1].dnsmasqPath = bin;
    const ctr = await reg.netns('ctr');
    const runner = new ConflistRunner(host, n.list, { containerId: uniqueContainerId(), netns: ctr.path, ifname: 'eth0', args: 'K8S_POD_NAME=x' });
    const err = await runner.add().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(new RegExp(`dnsmasq for network ${n.name} exited before it was ready \\(exit code 2\\)`));
    expect(err?.message).toContain('failed to create listening socket for 192.0.2.1: Address already in use');
    expect(dnsmasqUnder(n.runDir)).toEqual([]);
    expect(readdirSync(n.netDir).sort()).toEqual(LEFT_AFTER_LAST_DEL);
    await runner.del();
  });

  test('a failure after the server started rolls back: entry removed, the server it started stopped', async () => {
    const n = makeNet('1.0.0', 'dns.test');
    const ctr = await reg.netns('ctr');
    const runner = new ConflistRunner(host, n.list, { containerId: uniqueContainerId(), netns: ctr.path, ifname: 'eth0', args: 'K8S_POD_NAME=x' }, { CNI_TS_FAILPOINT: 'dnsname-after-server' });
    await expect(runner.add()).rejects.toThrow(/failpoint dnsname-after-server/);
    expect(dnsmasqUnder(n.runDir)).toEqual([]);
    expect(readdirSync(n.netDir).sort()).toEqual(LEFT_AFTER_LAST_DEL);
    // libcni would DEL the list after a failed ADD; that must succeed.
    await runner.del();
    // With another container present, the failed ADD keeps the server and its entry.
    const other = await attach(n, 'other');
    const [pid] = dnsmasqUnder(n.runDir);
    await expect(runner.add()).rejects.toThrow(/failpoint/);
    expect(dnsmasqUnder(n.runDir)).toEqual([pid]);
    expect(hostsText(n)).toBe(`${other.ip}\tother other.dns.test\t# cni:${other.cid}:eth0\n`);
    await eventually(async () => expect((await query(other.ns, n.subnet.gateway, 'x')).rcode).toBe(NXDOMAIN), 3000);
    await runner.del();
    await other.runner.del();
  });

  test('concurrent ADD/DEL: one server per network, every surviving name served, none after the last DEL', async () => {
    // dnsname alone (the bridge and its gateway come from one real attachment), so the race is
    // between dnsname processes only: 12 ADDs at once, then 6 DELs racing 6 more ADDs, then
    // every DEL at once while one more ADD races them.
    const n = makeNet('1.0.0', 'dns.test');
    const base = await attach(n, 'base');
    const ctrNs = base.ns.path;
    const dnsConf = (ip: string) => ({
      ...n.list.plugins[1],
      cniVersion: '1.0.0',
      name: n.name,
      prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'br' }, { name: 'eth0', sandbox: ctrNs }], ips: [{ address: `${ip}/24`, gateway: n.subnet.gateway, interface: 1 }] },
    });
    const run = (cmd: 'ADD' | 'DEL', i: number) =>
      runPlugin({ plugin: 'dnsname', command: cmd, host, config: dnsConf(`${n.subnet.prefix}.${100 + i}`), containerId: `race-${i}`, netns: ctrNs, ifname: 'eth0', args: `K8S_POD_NAME=race${i}` }).then((r) => {
        if (r.code !== 0) throw new Error(`${cmd} race-${i}:\n${describeRun(r)}`);
      });
    const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

    await Promise.all(range(0, 12).map((i) => run('ADD', i)));
    expect(dnsmasqUnder(n.runDir)).toHaveLength(1);
    await Promise.all([...range(0, 6).map((i) => run('DEL', i)), ...range(12, 18).map((i) => run('ADD', i))]);
    expect(dnsmasqUnder(n.runDir)).toHaveLength(1);
    for (const i of range(0, 18)) {
      const want = i < 6 ? { rcode: NXDOMAIN, addrs: [] } : { rcode: 0, addrs: [`${n.subnet.prefix}.${100 + i}`] };
      expect([i, await query(base.ns, n.subnet.gateway, `race${i}`)]).toEqual([i, want]);
    }
    // Last DELs racing a late ADD: whichever order the lock gives, the end state matches it.
    await Promise.all([base.runner.del(), ...range(6, 18).map((i) => run('DEL', i)), run('ADD', 99)]);
    expect(dnsmasqUnder(n.runDir)).toHaveLength(1);
    // base's eth0 is gone with its DEL: ask from the sandbox host, which holds the gateway.
    expect(await query(host, n.subnet.gateway, 'race99')).toMatchObject({ rcode: 0 });
    await run('DEL', 99);
    expect(dnsmasqUnder(n.runDir)).toEqual([]);
    expect(readdirSync(n.netDir).sort()).toEqual(LEFT_AFTER_LAST_DEL);
  });
});
