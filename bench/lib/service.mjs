// The per-host cni-ts service of served mode (lib/serve), as the bench runs it for a served side.
//
// Started by hand, the way an operator would (`CNI_TS_SERVICE_DIR=D <dir>/cni-ts serve`), before
// anything is timed, with its own service directory under the sandbox's temp dirs, and inside the
// side's sandbox host netns through `nsenter --net=<host>`: the service declines calls from
// another network or mount namespace, and the bench runs the plugins as `nsenter --net=<host>`
// too (same mount namespace; `ip netns exec` would make a new one and every call would be
// declined). It is our child and is stopped by pid at the end of the run, also on failure
// (Sandbox.onCleanup runs from the bench's finally and its signal handlers).
//
// CNI_TS_SERVICE_DEBUG=1 makes the service log one line per call it served or declined; the bench
// reads that log to prove every timed call was served (a declined call runs in-process and would
// time the fallback instead) and to report the time the service itself spent on each call.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BASE_ENV } from './cni.mjs';

/** Seconds without a request before the service exits by itself: longer than any run, short enough that a SIGKILLed bench's service goes away. */
export const SERVICE_IDLE_S = 4 * 3600;

/**
 * The Node flags a service gets when a plugin starts it (lib/serve/start.ts serviceSpec), which
 * the README also gives an operator's systemd unit: what is deployed is what gets timed.
 */
export const SERVICE_NODE_OPTIONS = '--jitless --max-semi-space-size=1';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The fields of /proc/<pid>/stat after the command name (field 3 is index 0). */
function statFields(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** CPU of a process in clock ticks: its own (utime+stime, every thread) and its reaped children's (cutime+cstime). */
export function cpuTicks(pid = 'self') {
  const f = statFields(pid);
  return { own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

export class Service {
  /**
   * label: the side's name; argv: the multi-call program (bundle or binary) whose stubs the side
   * runs, as `serve` (a bundle run by node itself, not through its shebang, which drops
   * NODE_OPTIONS; as lib/serve/start.ts serviceArgv does); host: the sandbox host netns path;
   * dir: the service directory (CNI_TS_SERVICE_DIR); nodeOptions: NODE_OPTIONS for it.
   */
  constructor({ label, argv, host, dir, nodeOptions = SERVICE_NODE_OPTIONS }) {
    this.label = label;
    this.argv = argv;
    this.host = host;
    this.dir = dir;
    this.nodeOptions = nodeOptions;
    this.logFile = join(dir, 'service.log');
    this.env = { CNI_TS_SERVICE_DIR: dir, CNI_TS_SERVICE_IDLE: String(SERVICE_IDLE_S) };
    this.pid = undefined;
    this.calls = 0; // stub invocations the bench made for this service's side
    this.stopped = undefined;
  }

  async start(timeoutMs = 15_000) {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const log = openSync(this.logFile, 'a', 0o600);
    try {
      // Not detached: a ^C to the bench's process group reaches it too (it then stops taking calls).
      this.child = spawn('nsenter', [`--net=${this.host}`, '--', ...this.argv], {
        env: { ...BASE_ENV, ...this.env, CNI_TS_SERVICE_DEBUG: '1', ...(this.nodeOptions ? { NODE_OPTIONS: this.nodeOptions } : {}) },
        stdio: ['ignore', log, log],
      });
    } finally {
      closeSync(log);
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exit code ${code}`));
      this.child.once('error', (e) => resolve(e.message));
    });
    let gone;
    this.exited.then((why) => (gone = why));
    // nsenter execs in place: the spawned pid is the service's.
    this.pid = this.child.pid;
    const fifo = join(this.dir, `requests.${this.pid}`);
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(fifo)) {
      if (gone !== undefined || this.pid === undefined) throw new Error(`the ${this.label} service did not start (${gone}): ${this.logTail()}`);
      if (Date.now() > deadline) throw new Error(`the ${this.label} service (pid ${this.pid}) is not ready after ${timeoutMs} ms: ${this.logTail()}`);
      await sleep(10);
    }
    const cmdline = readFileSync(`/proc/${this.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    if (!isServeCmdline(cmdline)) throw new Error(`pid ${this.pid} is not a cni-ts service: ${cmdline.join(' ')}`);
    this.cmdline = cmdline.join(' ');
  }

  logTail(n = 10) {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-n).join(' | ');
    } catch {
      return '(no log)';
    }
  }

  /** The calls the service logged: {served, verb, plugin, cid, code, ms} (served: false = declined). */
  loggedCalls() {
    let text = '';
    try {
      text = readFileSync(this.logFile, 'utf8');
    } catch {
      return [];
    }
    const out = [];
    for (const line of text.split('\n')) {
      let m = / served (\S+) (\S+) for pid \d+ \(([^)]*)\): exit (\d+) in (\d+) ms$/.exec(line);
      if (m) {
        out.push({ served: true, verb: m[1], plugin: m[2], cid: m[3], code: Number(m[4]), ms: Number(m[5]) });
        continue;
      }
      m = / declined pid \d+ \((\S+)\): (.*)$/.exec(line);
      if (m) out.push({ served: false, plugin: m[1], why: m[2] });
    }
    return out;
  }

  /** {served, declined, firstDecline} so far. */
  counts() {
    const all = this.loggedCalls();
    const declined = all.filter((c) => !c.served);
    return { served: all.length - declined.length, declined: declined.length, firstDecline: declined[0]?.why };
  }

  /** CPU ticks of the service itself and of the processes it spawned and reaped; undefined once stopped. */
  cpu() {
    try {
      return cpuTicks(this.pid);
    } catch {
      return undefined;
    }
  }

  /** VmHWM (peak RSS) and VmRSS in KiB, from /proc/<pid>/status. */
  memory() {
    try {
      const s = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1]);
      return { hwmKiB: kib('VmHWM'), rssKiB: kib('VmRSS') };
    } catch {
      return undefined;
    }
  }

  /** SIGTERM (it finishes the calls in flight), then SIGKILL after graceMs; resolves how it ended. */
  async stop(graceMs = 5_000) {
    if (this.stopped !== undefined) return this.stopped;
    if (!this.child || this.pid === undefined) return (this.stopped = 'never started');
    this.child.kill('SIGTERM');
    const t = await Promise.race([this.exited, sleep(graceMs).then(() => undefined)]);
    if (t !== undefined) return (this.stopped = t);
    this.child.kill('SIGKILL');
    return (this.stopped = `SIGKILLed after ${graceMs} ms: ${await this.exited}`);
  }
}

/** `... cni-ts serve`: the multi-call program (binary, or node running the bundle) as the service. */
export function isServeCmdline(argv) {
  return argv.includes('serve') && argv.some((a) => basename(a) === 'cni-ts');
}

/**
 * Processes left on the machine that this run started: any whose command line names the
 * sandbox's tag (every executable, data dir and service dir of the run is under /tmp/<tag>-*),
 * or whose CNI_TS_SERVICE_DIR is one of ours. Returns [{pid, cmdline, serve}].
 */
export function leftoverProcesses(tag) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let argv;
    let environ = '';
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      environ = readFileSync(`/proc/${name}/environ`, 'utf8');
    } catch {
      if (!argv) continue; // gone meanwhile
    }
    const svcDir = /(?:^|\0)CNI_TS_SERVICE_DIR=([^\0]*)/.exec(environ)?.[1] ?? '';
    if (argv.some((a) => a.includes(tag)) || svcDir.includes(tag)) out.push({ pid: Number(name), cmdline: argv.join(' '), serve: isServeCmdline(argv) });
  }
  return out;
}
