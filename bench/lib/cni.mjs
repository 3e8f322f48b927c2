// Invokes plugins the way a runtime does: CNI_* env plus a realistic base environment, the
// config on stdin, inside the sandbox host netns (`nsenter --net=<host> -- <plugin>`), and
// network lists the way libcni runs them (cni:libcni/api.go AddNetworkList/DelNetworkList).
// Optional wrappers measure one invocation's peak RSS (/usr/bin/time -f %M) or the processes it
// exec's (strace -f --seccomp-bpf -e trace=execve, so only execve stops the tracee); timed iterations never use them.
// A served side's call is also counted in the service: under strace, the service itself is traced
// (strace -f -p <service pid>) for exactly the duration of the call, so the processes it spawns
// for that call are counted beside the stub's.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { inNetns, run } from './proc.mjs';

/**
 * What a runtime such as containerd passes on: its own environment, i.e. at least PATH, HOME and
 * a locale. Deliberately not process.env, so NODE_OPTIONS or NODE_EXTRA_CA_CERTS of whoever
 * runs the bench cannot skew one side; the CA scenario adds that variable on purpose.
 */
export const BASE_ENV = Object.freeze({
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
});

export const TIME_BIN = '/usr/bin/time';
export const STRACE_BIN = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p));

/** An implementation under test: a directory of plugin executables (also its CNI_PATH). */
export class Impl {
  constructor(key, label, dir) {
    this.key = key; // 'ours' | 'ref'
    this.label = label;
    this.dir = dir;
  }
  has(plugin) {
    return existsSync(join(this.dir, plugin));
  }
  missing(plugins) {
    return plugins.filter((p) => !this.has(p));
  }
}

/**
 * One plugin invocation. opts: {host, containerId, netns, ifname, env, service, wrap: 'rss'|'strace',
 * record(entry)}; service is the served side's Service (lib/service.mjs). Resolves {ok, code, ms,
 * json, stdout, stderr, rssKiB?, procs?, service?: {procs, children}}.
 */
export async function invoke(impl, plugin, command, conf, opts) {
  const bin = join(impl.dir, plugin);
  const env = {
    ...BASE_ENV,
    CNI_COMMAND: command,
    CNI_CONTAINERID: opts.containerId,
    CNI_NETNS: opts.netns ?? '',
    CNI_IFNAME: opts.ifname ?? 'eth0',
    CNI_ARGS: opts.args ?? '',
    CNI_PATH: impl.dir,
    ...(opts.env ?? {}),
  };
  let argv = inNetns(opts.host, [bin]);
  let tmp;
  if (opts.wrap === 'rss') {
    tmp = mkdtempSync(join(tmpdir(), 'cni-bench-rss-'));
    argv = inNetns(opts.host, [TIME_BIN, '-f', '%M', '-o', join(tmp, 'out'), bin]);
  } else if (opts.wrap === 'strace') {
    tmp = mkdtempSync(join(tmpdir(), 'cni-bench-strace-'));
    argv = [STRACE_BIN, '-f', '--seccomp-bpf', '-qq', '-e', 'trace=execve', '-e', 'signal=none', '-s', '256', '-o', join(tmp, 'out'), ...argv];
  }
  const svcTrace = opts.wrap === 'strace' && opts.service ? await traceProcess(opts.service.pid, join(tmp, 'service')) : undefined;
  if (opts.service) opts.service.calls++;
  const r = await run(argv, { stdin: JSON.stringify(conf), env, timeoutMs: opts.timeoutMs ?? 60_000, pipes: true });
  const svcText = svcTrace ? await svcTrace.stop() : undefined;
  let json;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  const out = { plugin, command, ok: r.code === 0, code: r.code, ms: r.ms, json, stdout: r.stdout, stderr: r.stderr };
  if (tmp) {
    try {
      const text = readFileSync(join(tmp, 'out'), 'utf8');
      if (opts.wrap === 'rss') {
        const kib = Number(text.trim().split('\n').pop());
        if (Number.isFinite(kib)) out.rssKiB = kib;
      } else {
        Object.assign(out, parseExecs(text));
        if (svcText !== undefined) out.service = parseExecs(svcText, { attached: true });
      }
    } catch {
      /* wrapper output missing: leave the field out */
    }
    rmSync(tmp, { recursive: true, force: true });
  }
  opts.record?.(out);
  return out;
}

/**
 * Traces the execve calls of a running process and of every process it forks from now on
 * (`strace -f -p`), until stop() (SIGINT: strace detaches and flushes); stop() resolves the
 * trace's text. Resolves once every thread of pid has strace as its tracer, so nothing the
 * process spawns after that is missed.
 */
export async function traceProcess(pid, out, timeoutMs = 10_000) {
  const child = spawn(STRACE_BIN, ['-f', '-qq', '-e', 'trace=execve', '-e', 'signal=none', '-s', '256', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  const exited = new Promise((r) => {
    child.once('exit', r);
    child.once('error', r);
  });
  let gone = false;
  exited.then(() => (gone = true));
  const traced = () => {
    try {
      return readdirSync(`/proc/${pid}/task`).every((t) => new RegExp(`^TracerPid:\\s+${child.pid}$`, 'm').test(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8')));
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + timeoutMs;
  while (!gone && !traced()) {
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  return {
    async stop() {
      if (!gone) child.kill('SIGINT');
      await exited;
      try {
        return readFileSync(out, 'utf8');
      } catch {
        return '';
      }
    },
  };
}

/**
 * Reads `strace -f -e trace=execve -o` output. Returns procs = processes that exec'd something
 * (the plugin itself counts as one; the nsenter wrapper's own exec is not counted separately,
 * since the plugin replaces it in the same pid), execs = successful execve calls minus the
 * wrapper's (for ours: the shebang costs /usr/bin/env then node), children = {program: count}.
 * attached: the trace of a process that was already running (strace -p): it execs nothing
 * itself, so every process that exec'd is a child.
 */
export function parseExecs(text, { attached = false } = {}) {
  const pending = new Map();
  const lastProg = new Map();
  let execs = 0;
  let rootPid;
  const done = (pid, path, rest) => {
    if (!/=\s*0\s*$/.test(rest)) return;
    execs++;
    if (rootPid === undefined) rootPid = pid;
    lastProg.set(pid, basename(path));
  };
  for (const line of text.split('\n')) {
    let m = line.match(/^(\d+)\s+execve\("([^"]*)"(.*)$/);
    if (m) {
      if (/<unfinished \.\.\.>\s*$/.test(m[3])) pending.set(m[1], m[2]);
      else done(m[1], m[2], m[3]);
      continue;
    }
    m = line.match(/^(\d+)\s+<\.\.\. execve resumed>(.*)$/);
    if (m && pending.has(m[1])) {
      done(m[1], pending.get(m[1]), m[2]);
      pending.delete(m[1]);
    }
  }
  const children = {};
  for (const [pid, prog] of lastProg) if (attached || pid !== rootPid) children[prog] = (children[prog] ?? 0) + 1;
  return { procs: lastProg.size, execs: attached ? execs : Math.max(0, execs - 1), children };
}

/** libcni's per-plugin config: list name/version, runtimeConfig from declared capabilities, prevResult. */
export function pluginConf(list, plugin, capabilityArgs, prevResult) {
  const { capabilities, ...rest } = plugin;
  const conf = { ...rest, cniVersion: list.cniVersion, name: list.name };
  const rc = {};
  for (const [k, v] of Object.entries(capabilityArgs ?? {})) if (capabilities?.[k]) rc[k] = v;
  if (Object.keys(rc).length) conf.runtimeConfig = rc;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

/** ADD every plugin in order, threading prevResult; resolves {ok, ms, result, steps, error}. */
export async function addList(impl, list, att, opts) {
  const t0 = process.hrtime.bigint();
  const steps = [];
  let prev;
  for (const p of list.plugins) {
    const r = await invoke(impl, p.type, 'ADD', pluginConf(list, p, att.capabilityArgs, prev), { ...opts, ...att });
    steps.push(r);
    if (!r.ok || !r.json) return { ok: false, ms: elapsed(t0), steps, error: describe(r) };
    prev = r.json;
  }
  return { ok: true, ms: elapsed(t0), steps, result: prev };
}

/** DEL every plugin in reverse with the cached final ADD result as prevResult (cniVersion >= 0.4.0). */
export async function delList(impl, list, att, cachedResult, opts) {
  const t0 = process.hrtime.bigint();
  const steps = [];
  let error;
  for (const p of [...list.plugins].reverse()) {
    const r = await invoke(impl, p.type, 'DEL', pluginConf(list, p, att.capabilityArgs, cachedResult), { ...opts, ...att });
    steps.push(r);
    if (!r.ok) {
      error = describe(r);
      break; // libcni stops at the first failing DEL too
    }
  }
  return { ok: !error, ms: elapsed(t0), steps, error };
}

function elapsed(t0) {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** One-line summary of a failed invocation. */
export function describe(r) {
  const msg = r.json?.msg ? `${r.json.msg}${r.json.details ? `: ${r.json.details}` : ''}` : (r.stdout || r.stderr).trim().slice(0, 400);
  return `${r.plugin} ${r.command} exit ${r.code}: ${msg}`;
}
