// Helpers for the demo: the sandbox (a "host" network namespace and container namespaces beside
// it, temp dirs under /tmp), a CNI runner that drives a network list the way libcni does, and
// small traffic probes (ping, TCP, DNS). Nothing here touches the machine's own interfaces,
// firewall, /var/lib/cni or /run/containers.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const BIN = process.env.CNI_PLUGIN_DIR ?? new URL('../dist/bin', import.meta.url).pathname;
export const say = (s = '') => console.log(s);
export const indent = (text, pad = '     ') => text.split('\n').map((l) => `${pad}${l}`).join('\n');

/** Runs argv; throws with stderr unless check is false. */
export function sh(argv, { input, check = true, env, timeout = 15_000 } = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: 'utf8', env, timeout });
  if (check && r.status !== 0) throw new Error(`${argv.join(' ')}: ${(r.stderr || r.stdout || r.error?.message || '').trim()}`);
  return r;
}

export const PYTHON = (() => {
  try {
    return execFileSync('python3', ['-c', 'import sys;print(sys.executable)'], { encoding: 'utf8' }).trim();
  } catch {
    return 'python3';
  }
})();

/**
 * The sandbox: one "host" netns (where the plugins run, as a runtime runs them in the host's
 * netns) and container namespaces beside it. Everything it makes is recorded and removed by
 * destroy(), also after a failure.
 */
export class Sandbox {
  constructor() {
    this.tag = Math.random().toString(16).slice(2, 6);
    this.netnses = [];
    this.dirs = [];
    this.children = [];
    this.host = this.netns('host');
  }

  /** A new netns cni-demo-<role>-<tag>; returns {name, path}. */
  netns(role) {
    const name = `cni-demo-${role}-${this.tag}`;
    sh(['ip', 'netns', 'add', name]);
    const ns = { name, path: `/run/netns/${name}` };
    this.netnses.push(ns);
    return ns;
  }

  /** A temp dir /tmp/cni-demo-<what>-XXXX (mode 0755: dnsmasq reads its files as nobody). */
  tempDir(what) {
    const d = mkdtempSync(join(tmpdir(), `cni-demo-${what}-`));
    chmodSync(d, 0o755);
    this.dirs.push(d);
    return d;
  }

  /** argv run inside ns (a {path} or a path). */
  run(ns, argv, opts) {
    return sh(['nsenter', `--net=${ns.path ?? ns}`, '--', ...argv], opts);
  }

  /** A background process inside ns, killed by pid at destroy(); resolves once it prints `ready`. */
  background(ns, argv) {
    const child = spawn('nsenter', [`--net=${ns.path ?? ns}`, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${argv[0]} did not start`)), 10_000);
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.stdout.on('data', (d) => {
        if (String(d).includes('ready')) {
          clearTimeout(t);
          resolve(child);
        }
      });
      child.on('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`${argv[0]} exited with ${code}: ${err.trim()}`));
      });
    });
  }

  stop(child) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  /** Removes every process, netns and temp dir it made; returns what it had to force. */
  destroy() {
    for (const c of this.children) this.stop(c);
    for (const ns of [...this.netnses].reverse()) sh(['ip', 'netns', 'del', ns.name], { check: false });
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

/**
 * One CNI call as a runtime makes it: `nsenter --net=<sandbox host> -- <plugin>`, CNI_* in the
 * environment (plus PATH, never the caller's NODE_OPTIONS), the config on stdin. Returns the
 * exit code, the parsed stdout and everything needed to report a failure exactly.
 */
export function cniCall(host, plugin, command, conf, { cid, netns, ifName, args = '' }) {
  const env = {
    PATH: `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    CNI_COMMAND: command,
    CNI_CONTAINERID: cid,
    CNI_NETNS: netns,
    CNI_IFNAME: ifName,
    CNI_ARGS: args,
    CNI_PATH: BIN,
  };
  const stdin = JSON.stringify(conf);
  const r = spawnSync('nsenter', [`--net=${host.path}`, '--', join(BIN, plugin)], { input: stdin, env, encoding: 'utf8', timeout: 60_000 });
  let json;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { code: r.status, json, stdout: r.stdout, stderr: r.stderr, env, stdin };
}

/** A failed plugin call, with the whole exchange (env, stdin, stdout, stderr) for the report. */
export class PluginError extends Error {
  constructor(plugin, command, r) {
    const envShown = Object.fromEntries(Object.entries(r.env).filter(([k]) => k.startsWith('CNI_')));
    super(`${plugin} ${command} failed (exit ${r.code}): ${(r.stdout || '').trim() || (r.stderr || '').trim()}\n` +
      `       env: ${JSON.stringify(envShown)}\n       stdin: ${r.stdin}\n       stderr: ${(r.stderr || '').trim()}`);
    this.plugin = plugin;
    this.result = r;
  }
}

/**
 * A network list (conflist) driven as libcni's AddNetworkList / DelNetworkList drive it:
 * every plugin gets the list's name and cniVersion; runtimeConfig only for the capabilities it
 * declares; ADD in order with prevResult threaded through; the final result cached in
 * `<cacheDir>/results/<network>-<containerID>-<ifname>` (libcni's cniCacheV1 format); DEL in
 * reverse order with the cached result as prevResult, then the cache entry removed.
 */
export class NetworkList {
  constructor(host, cacheDir, list) {
    this.host = host;
    this.cacheDir = cacheDir;
    this.list = list;
  }

  get name() {
    return this.list.name;
  }

  pluginConf(plugin, att, prevResult) {
    const conf = { ...plugin, cniVersion: this.list.cniVersion, name: this.list.name };
    const rc = {};
    for (const [k, v] of Object.entries(att.capabilityArgs ?? {})) if (plugin.capabilities?.[k]) rc[k] = v;
    if (Object.keys(rc).length) conf.runtimeConfig = rc;
    if (prevResult !== undefined) conf.prevResult = prevResult;
    return conf;
  }

  cacheFile(att) {
    return join(this.cacheDir, 'results', `${this.list.name}-${att.cid}-${att.ifName}`);
  }

  /** ADD; returns the attachment {cid, netns, ifName, args, capabilityArgs, result}. */
  add(att) {
    let prev;
    for (const p of this.list.plugins) {
      const r = cniCall(this.host, p.type, 'ADD', this.pluginConf(p, att, prev), att);
      if (r.code !== 0 || !r.json) throw new PluginError(p.type, 'ADD', r);
      prev = r.json;
    }
    const a = { ...att, net: this, result: prev };
    mkdirSync(join(this.cacheDir, 'results'), { recursive: true, mode: 0o700 });
    const entry = {
      kind: 'cniCacheV1',
      containerId: att.cid,
      config: Buffer.from(JSON.stringify(this.list)).toString('base64'), // Go marshals []byte as base64
      ifName: att.ifName,
      networkName: this.list.name,
      netns: att.netns,
      ...(att.args ? { cniArgs: att.args.split(';').map((kv) => kv.split('=')) } : {}),
      ...(att.capabilityArgs ? { capabilityArgs: att.capabilityArgs } : {}),
      result: prev,
    };
    writeFileSync(this.cacheFile(a), JSON.stringify(entry), { mode: 0o600 });
    return a;
  }

  /** DEL in reverse order with the cached result; every plugin runs, failures are thrown together. */
  del(a) {
    const errors = [];
    for (const p of [...this.list.plugins].reverse()) {
      const r = cniCall(this.host, p.type, 'DEL', this.pluginConf(p, a, a.result), a);
      if (r.code !== 0) errors.push(new PluginError(p.type, 'DEL', r).message);
    }
    rmSync(this.cacheFile(a), { force: true });
    if (errors.length) throw new Error(errors.join('\n'));
  }
}

/** One ping from ns; true when answered. */
export function ping(sb, ns, to, { wait = 1 } = {}) {
  return sb.run(ns, ['ping', '-n', '-c', '1', '-W', String(wait), to], { check: false }).status === 0;
}

// A TCP server for the published-port scene: answers every connection with a line, then closes.
const TCP_SERVER = `
import socket, sys
port, tag = int(sys.argv[1]), sys.argv[2].encode()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', port)); s.listen(16)
print('ready', flush=True)
while True:
    c, a = s.accept(); c.sendall(tag + b' (you came from ' + a[0].encode() + b')\\n'); c.close()
`;
const TCP_CLIENT = `
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print(s.recv(200).decode().strip())
`;

export const startTcpServer = (sb, ns, port, tag) => sb.background(ns, [PYTHON, '-c', TCP_SERVER, String(port), tag]);

/** One TCP connection from ns; the server's line, or undefined. */
export function tcpConnect(sb, ns, host, port) {
  const r = sb.run(ns, [PYTHON, '-c', TCP_CLIENT, host, String(port)], { check: false });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * Runs argv in the container's netns with the resolv.conf a runtime writes from the ADD
 * result's `dns` (nameservers, search), bind-mounted over /etc/resolv.conf in a private mount
 * namespace: only that process sees it.
 */
export function withResolvConf(sb, ns, dns, argv) {
  const dir = sb.tempDir('resolv');
  const rc = join(dir, 'resolv.conf');
  writeFileSync(rc, [...(dns.nameservers ?? []).map((n) => `nameserver ${n}`), dns.search?.length ? `search ${dns.search.join(' ')}` : ''].join('\n') + '\n');
  const script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"';
  return sb.run(ns, ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, rc, ...argv], { check: false });
}

/** pids of dnsmasq processes whose --conf-file lies under dir (scans /proc: every netns). */
export function dnsmasqUnder(dir) {
  const pids = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let argv;
    try {
      argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv[0]?.endsWith('dnsmasq') && argv.some((a) => a.startsWith(`--conf-file=${dir}/`))) pids.push(Number(e));
  }
  return pids;
}

/** Files under dir, recursively (relative paths); [] when it does not exist. */
export function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath ?? d.path, d.name).slice(dir.length + 1));
}
