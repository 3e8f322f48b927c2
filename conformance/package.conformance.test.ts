// The packaged plugins (`npm run package`): the tarball's layout, its install.sh, and plugins that
// run with no node on the host. "No node" is made real: each plugin start runs in a private mount
// namespace where every node binary this machine has is covered by a bind of /dev/null, with
// `env -i` and a PATH of system directories only; the test first proves node cannot start there.
// The paths that used to need node: the netns sysctl child (tuning, macvlan) and host-local run
// in-process by bridge. strace shows which programs each start exec'd.
// Skipped when dist/package was not built (run `npm run package`).
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressesOf, link, readSysctl } from './helpers/ip-json';
import { exec, execOk, inNetns } from './helpers/exec';
import { Registry, type Netns, uniqueBridgeName, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { REPO_ROOT } from './helpers/plugin-dir';
import type { Json } from './helpers/run-plugin';

const PKG = join(REPO_ROOT, 'dist/package');
const built = existsSync(join(PKG, 'cni-ts'));
const maybe = process.getuid?.() === 0 && built ? describe : describe.skip;
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const STRACE = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));

/** Every node executable reachable on this machine: the one running jest and any on the system PATH. */
function nodeBinaries(): string[] {
  const found = new Set<string>([realpathSync(process.execPath)]);
  for (const d of SYSTEM_PATH.split(':')) {
    const p = join(d, 'node');
    if (existsSync(p)) found.add(realpathSync(p));
  }
  return [...found];
}

/** argv run with no node: private mount ns, /dev/null bound over each node, a clean environment. */
function withoutNode(env: Record<string, string>, argv: string[]): string[] {
  const hide = nodeBinaries()
    .map((n) => `mount --bind /dev/null '${n}'`)
    .join(' && ');
  // In-process: each call here gets a mount namespace of its own, so a service one of them
  // started could serve none of the others and would outlive the test (served mode with the
  // binary: conformance/served and the client suites).
  const envArgs = Object.entries({ PATH: SYSTEM_PATH, CNI_TS_SERVICE: 'off', ...env }).map(([k, v]) => `${k}=${v}`);
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', `${hide} && exec "$@"`, 'no-node', 'env', '-i', ...envArgs, ...argv];
}

interface Started {
  code: number | null;
  json: Json;
  stdout: string;
  stderr: string;
  /** Programs exec'd by the plugin and its children, as "path arg1 arg2..." (with strace). */
  execs: string[];
}

maybe(`packaged binary [${PKG}]`, () => {
  const reg = new Registry();
  let host: Netns;
  let straceDir: string;
  beforeAll(async () => {
    host = await reg.sandboxHost();
    straceDir = reg.tempDir();
  });
  afterAll(() => reg.cleanup());

  /** One plugin start with no node on the host, inside the sandbox host netns, traced. */
  async function start(dir: string, plugin: string, command: string, conf: Json, att: { id: string; netns: string; ifname?: string }, cniPath = dir): Promise<Started> {
    const env = { CNI_COMMAND: command, CNI_CONTAINERID: att.id, CNI_NETNS: att.netns, CNI_IFNAME: att.ifname ?? 'eth0', CNI_PATH: cniPath, CNI_ARGS: '' };
    const out = join(straceDir, `${plugin}-${command}-${att.id}`);
    let argv = ['nsenter', `--net=${host.path}`, '--', join(dir, plugin)];
    if (STRACE) argv = [STRACE, '-f', '-qq', '-e', 'trace=execve', '-e', 'signal=none', '-s', '200', '-o', out, ...argv];
    const r = await exec(withoutNode(env, argv), { stdin: JSON.stringify(conf), env: {}, timeoutMs: 45_000 });
    let json: Json;
    try {
      json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
    } catch {
      json = undefined;
    }
    const execs = existsSync(out)
      ? readFileSync(out, 'utf8')
          .split('\n')
          .map((l) => l.match(/execve\("([^"]*)", \[(.*?)\]/))
          .filter((m): m is RegExpMatchArray => !!m && !/= -1 /.test(m.input ?? ''))
          .map((m) => [m[1], ...[...m[2]!.matchAll(/"([^"]*)"/g)].slice(1).map((x) => x[1])].join(' '))
      : [];
    return { code: r.code, json, stdout: r.stdout, stderr: r.stderr, execs };
  }
  const ok = (r: Started, what: string): Started => {
    if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\nexecs: ${r.execs.join('\n')}`);
    return r;
  };

  test('the tarball is flat like the reference release: ./<plugin> stubs, cni-ts, install.sh, docs; owner 0', async () => {
    const tgz = readdirSync(join(REPO_ROOT, 'dist')).filter((f) => /^cni-ts-.*-linux-.*\.tgz$/.test(f));
    expect(tgz).toHaveLength(1);
    const list = (await execOk(['tar', '-tzvf', join(REPO_ROOT, 'dist', tgz[0]!)])).stdout.trim().split('\n');
    const entries = list.map((l) => l.split(/\s+/));
    expect(entries.every((e) => e[1] === '0/0')).toBe(true);
    const names = entries.map((e) => e[e.length - 1]!).filter((n) => n !== './');
    expect(names.every((n) => /^\.\/[^/]+$/.test(n))).toBe(true);
    const plugins = readdirSync(join(REPO_ROOT, 'dist/bin')).sort();
    expect(names.map((n) => n.slice(2)).sort()).toEqual([...plugins, 'LICENSE', 'LICENSE.node', 'README.md', 'cni-ts', 'install.sh'].sort());
  });

  test('node is really absent in the no-node wrapper', async () => {
    const r = await exec(withoutNode({}, ['sh', '-c', 'command -v node; for n in "$@"; do "$n" -e 0 && echo "$n runs"; done; exit 0', 'x', ...nodeBinaries()]));
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/runs/);
  });

  describe('install.sh (run with no node)', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'cni-test-install-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    test('the served-mode stubs are installed as shipped (they find cni-ts beside them); VERSION answers; a second install replaces', async () => {
      for (let k = 0; k < 2; k++) {
        const r = await exec(withoutNode({}, ['sh', join(PKG, 'install.sh'), '--dir', dir]));
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
      }
      const stub = readFileSync(join(dir, 'bridge'), 'utf8').split('\n');
      expect(stub.slice(0, 2)).toEqual(['#!/bin/bash', '# cni-ts plugin: bridge']);
      expect(readFileSync(join(dir, 'bridge'))).toEqual(readFileSync(join(PKG, 'bridge')));
      expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
      const v = await exec(withoutNode({ CNI_COMMAND: 'VERSION' }, [join(dir, 'host-local')]), { stdin: '{"cniVersion":"1.0.0"}' });
      expect(JSON.parse(v.stdout)).toEqual({ cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    });

    test('--links: a symlink per plugin to cni-ts', async () => {
      await execOk(withoutNode({}, ['sh', join(PKG, 'install.sh'), '--dir', dir, '--links']));
      expect(readlinkSync(join(dir, 'macvlan'))).toBe('cni-ts');
      const v = await exec(withoutNode({ CNI_COMMAND: 'VERSION' }, [join(dir, 'macvlan')]), { stdin: '{}' });
      expect(JSON.parse(v.stdout).supportedVersions).toContain('1.1.0');
    });

    test('a directory with spaces works: the stubs name no path', async () => {
      const odd = join(dir, 'with space');
      await execOk(withoutNode({}, ['sh', join(PKG, 'install.sh'), '--dir', odd]));
      const v = await exec(withoutNode({ CNI_COMMAND: 'VERSION' }, [join(odd, 'bridge')]), { stdin: '{}' });
      expect(JSON.parse(v.stdout).supportedVersions).toContain('1.1.0');
    });

    test('the stub drops NODE_OPTIONS (a --require preload would run inside the binary); a link does not', async () => {
      await execOk(['sh', join(PKG, 'install.sh'), '--dir', join(dir, 'stubs')]);
      await execOk(['sh', join(PKG, 'install.sh'), '--dir', join(dir, 'links'), '--links']);
      const mark = join(dir, 'preloaded');
      writeFileSync(join(dir, 'preload.js'), `require('fs').appendFileSync(${JSON.stringify(mark)}, 'x')`);
      const env = { CNI_COMMAND: 'VERSION', NODE_OPTIONS: `--require ${join(dir, 'preload.js')}` };
      await execOk(withoutNode(env, [join(dir, 'stubs', 'loopback')]), { stdin: '{}' });
      expect(existsSync(mark)).toBe(false);
      await execOk(withoutNode(env, [join(dir, 'links', 'loopback')]), { stdin: '{}' });
      expect(readFileSync(mark, 'utf8')).toBe('x');
    });
  });

  describe('plugins with no node on the host', () => {
    test('bridge + host-local in-process → tuning sysctls through the netns helper → DEL', async () => {
      const ctr = await reg.netns('ctr');
      const s = uniqueSubnet24();
      const dataDir = reg.tempDir();
      const name = uniqueNetName('pk');
      const id = uniqueContainerId();
      const att = { id, netns: ctr.path };
      const bridge = { cniVersion: '1.0.0', name, type: 'bridge', bridge: uniqueBridgeName(), isGateway: true, ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: s.subnet }]] } };
      const add = ok(await start(PKG, 'bridge', 'ADD', bridge, att), 'bridge ADD');
      const ip = add.json.ips[0].address as string;
      expect(await addressesOf(ctr, 'eth0')).toContain(ip);
      expect(existsSync(join(dataDir, name, ip.split('/')[0]!))).toBe(true);
      if (STRACE) {
        // In-process host-local: only the binary (through env) and ip/nsenter children; no second plugin start.
        expect(add.execs.filter((e) => e.includes('host-local'))).toEqual([]);
        expect(add.execs.filter((e) => e.startsWith(join(PKG, 'cni-ts')))).toHaveLength(1);
      }

      const tuning = { cniVersion: '1.0.0', name, type: 'tuning', dataDir: reg.tempDir(), sysctl: { 'net.ipv4.conf.eth0.arp_filter': '1' }, prevResult: add.json };
      expect(await readSysctl(ctr, '/proc/sys/net/ipv4/conf/eth0/arp_filter')).toBe('0');
      const tu = ok(await start(PKG, 'tuning', 'ADD', tuning, att), 'tuning ADD');
      expect(await readSysctl(ctr, '/proc/sys/net/ipv4/conf/eth0/arp_filter')).toBe('1');
      if (STRACE) expect(tu.execs.some((e) => e === `${realpathSync(join(PKG, 'cni-ts'))} tuning --cni-ts-netns-sysctl`)).toBe(true);
      ok(await start(PKG, 'tuning', 'DEL', tuning, att), 'tuning DEL');
      expect(await readSysctl(ctr, '/proc/sys/net/ipv4/conf/eth0/arp_filter')).toBe('0');

      ok(await start(PKG, 'bridge', 'DEL', { ...bridge, prevResult: add.json }, att), 'bridge DEL');
      expect(await link(ctr, 'eth0')).toBeUndefined();
      expect(existsSync(join(dataDir, name, ip.split('/')[0]!))).toBe(false);
    });

    test("macvlan + host-local; the reference's host-local first in CNI_PATH is exec'd, not run in-process", async () => {
      const ctr = await reg.netns('ctr');
      await execOk(inNetns(host.path, ['ip', 'link', 'add', 'pkm0', 'type', 'veth', 'peer', 'name', 'pkm0p']));
      reg.link(host, 'pkm0');
      await execOk(inNetns(host.path, ['ip', 'link', 'set', 'pkm0', 'up']));
      const s = uniqueSubnet24();
      const dataDir = reg.tempDir();
      const conf = { cniVersion: '1.0.0', name: uniqueNetName('pk'), type: 'macvlan', master: 'pkm0', ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: s.subnet }]] } };
      const att = { id: uniqueContainerId(), netns: ctr.path };
      const add = ok(await start(PKG, 'macvlan', 'ADD', conf, att, `/usr/lib/cni:${PKG}`), 'macvlan ADD');
      const l = await link(ctr, 'eth0');
      expect(l?.linkinfo?.info_kind).toBe('macvlan');
      expect(await addressesOf(ctr, 'eth0')).toContain(add.json.ips[0].address);
      if (STRACE) expect(add.execs.filter((e) => e.startsWith('/usr/lib/cni/host-local'))).toHaveLength(1);
      ok(await start(PKG, 'macvlan', 'DEL', conf, att, `/usr/lib/cni:${PKG}`), 'macvlan DEL');
      expect(await link(ctr, 'eth0')).toBeUndefined();
      expect(readdirSync(join(dataDir, conf.name)).filter((f) => /^\d/.test(f))).toEqual([]);
    });
  });
});
