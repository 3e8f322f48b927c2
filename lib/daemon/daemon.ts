/**
 * Long-lived per-host processes that a plugin starts and that outlive it by design (dnsname's
 * dnsmasq, the overlay agent): start once under a lock, a pid file, a readiness wait, a log
 * file, stop by pid.
 *
 * How a daemon is started (see ensureRunning):
 * - `spawn` with `detached: true` (spawnDetached in lib/exec/run.ts): libuv calls setsid() in
 *   the child before exec, so it leads a new session and process group with no controlling
 *   terminal. A signal to the plugin's process group (a runtime killing the plugin on timeout,
 *   ^C in a terminal) does not reach it, and when the plugin exits it is reparented to init
 *   (or the nearest subreaper). `setsid(1)` would do the same at the cost of one more exec,
 *   and its pid would not be the daemon's when it has to fork (it does when it leads a group).
 * - stdio: stdin is /dev/null, stdout and stderr are one O_APPEND descriptor of the log file.
 *   Nothing else is inherited: Node opens every file (the lock, the log) with O_CLOEXEC, so the
 *   daemon holds neither the caller's lock nor the pipes a runtime reads the plugin's result
 *   from (a daemon holding the plugin's stdout would make the runtime wait forever).
 * - cwd is /, so the daemon pins no mount; CNI_* variables are not passed on.
 * - The pid file is written by us (write + rename) right after spawn: we know the pid, and a
 *   daemon that forks would have to be trusted to write it. So daemons must stay in the
 *   foreground (dnsmasq: --keep-in-foreground).
 * - After readiness, the child handle is unref'd and the log descriptor closed in the parent:
 *   nothing keeps the plugin process alive, it exits as soon as its own work is done.
 *
 * What it does not protect against: a cgroup-wide kill of the process that started it (the
 * daemon stays in the caller's cgroup; e.g. stopping a systemd unit with KillMode=control-group
 * that ran the plugin also stops the daemon).
 *
 * Liveness: a pid file alone is not trusted (pids are reused). A pid counts only if
 * /proc/<pid>/cmdline satisfies the spec's `matches` and the process is not a zombie.
 *
 * Locking: one flock(2) per daemon (lib/lock/flock.ts: Node has no flock, so it costs one
 * flock(1) process, ~6 ms here) serializes start and stop; the kernel drops it if the holder
 * dies, which no lock file made with O_EXCL or mkdir does. ensureRunning takes no lock at all
 * when the daemon is already live and ready. A caller that already holds a lock covering every
 * start and stop of this daemon passes `locked: true` instead (dnsname holds its per-network
 * lock around read/edit/write/start/reload/stop), so no second lock is ever taken under it.
 */
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { spawnDetached } from '../exec/run';
import { lockFile } from '../lock/flock';
import { CniError, ErrCode } from '../skel/errors';

export interface DaemonSpec {
  /** For messages and log lines, e.g. "dnsmasq for net1", "overlay agent for net1". */
  name: string;
  /** Holds the pid file, log file and lock file (created 0755 if missing). */
  dir: string;
  /** argv[0] is an absolute path; run with no shell. */
  argv: string[];
  /** File name stem of the defaults below; default basename(argv[0]). */
  base?: string;
  /** Defaults: <dir>/<base>.pid, <dir>/<base>.log, <dir>/<base>.lock. */
  pidFile?: string;
  logFile?: string;
  lockFile?: string;
  /** The pid is ours only if its /proc/<pid>/cmdline (split on NUL) satisfies this (pids are reused; zombies are dead). */
  matches: (cmdline: string[]) => boolean;
  /** Polled after start until true or the timeout; e.g. a socket answers, a state file exists. Default: alive. */
  ready?: (pid: number) => boolean | Promise<boolean>;
  /** Set in the daemon's environment (on top of the caller's, minus CNI_*). */
  env?: Record<string, string>;
}

export interface DaemonPaths {
  pidFile: string;
  logFile: string;
  lockFile: string;
}

export interface EnsureOptions {
  /** How long a daemon may take to become ready (default 10 s); then code 11, left running. */
  readyTimeoutMs?: number;
  /** The caller holds a lock that covers every start and stop of this daemon: take none. */
  locked?: boolean;
  /** Bound on waiting for the daemon's lock (default 30 s, then code 11). */
  lockTimeoutMs?: number;
  /**
   * Return once a new daemon is spawned and its pid file written, without waiting for it to be
   * ready (the caller does not need it now: served mode starts its service for the next calls).
   */
  noWait?: boolean;
}

export interface StopOptions {
  /** Time between SIGTERM and SIGKILL (default 2 s). */
  graceMs?: number;
  locked?: boolean;
  lockTimeoutMs?: number;
}

const DEFAULT_READY_TIMEOUT_MS = 10_000;
const DEFAULT_GRACE_MS = 2_000;
/** After SIGKILL, the kernel still has to tear the process down (exit of a big process, D state). */
const KILL_WAIT_MS = 2_000;
/** At start, a log bigger than this is moved to <log>.1 (replacing it), so logs stay bounded. */
export const LOG_ROTATE_BYTES = 1 << 20;
/** How much of a dead daemon's log goes into the error. */
const TAIL_LINES = 20;
const TAIL_BYTES = 4096;

/** The pid, log and lock file of a spec, defaults filled in. Pure. */
export function daemonPaths(spec: DaemonSpec): DaemonPaths {
  const base = spec.base ?? basename(spec.argv[0] ?? 'daemon');
  return {
    pidFile: spec.pidFile ?? join(spec.dir, `${base}.pid`),
    logFile: spec.logFile ?? join(spec.dir, `${base}.log`),
    lockFile: spec.lockFile ?? join(spec.dir, `${base}.lock`),
  };
}

/** /proc/<pid>/cmdline as argv: split on NUL, without the terminating NUL's empty string. Pure. */
export function parseCmdline(raw: string): string[] {
  if (raw === '') return [];
  const parts = raw.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** The fields of /proc/<pid>/stat we use; comm may hold spaces and parentheses. Pure. */
export function parseProcStat(stat: string): { state: string; ppid: number; pgrp: number; session: number } | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = stat.slice(close + 2).split(' ');
  if (f.length < 4) return undefined;
  return { state: f[0]!, ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]) };
}

/** A pid file's pid, or undefined when it holds no plausible pid. Pure. */
export function parsePidFile(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const pid = Number(t);
  return pid > 1 && Number.isSafeInteger(pid) ? pid : undefined;
}

/** "<ISO time> <msg>\n"; continuation lines of a multi-line message are indented. Pure. */
export function formatLogLine(at: Date, msg: string): string {
  return `${at.toISOString()} ${msg.replace(/\r?\n$/, '').replace(/\r?\n/g, '\n    ')}\n`;
}

/** The last `lines` whole lines of text (at most `bytes` characters), trimmed. Pure. */
export function tailOf(text: string, lines = TAIL_LINES, bytes = TAIL_BYTES): string {
  // A cut through a line drops that line's start.
  const t = text.length > bytes ? text.slice(text.indexOf('\n', text.length - bytes - 1) + 1) : text;
  return t.trimEnd().split('\n').slice(-lines).join('\n');
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** True when pid is a live, non-zombie process whose cmdline the spec recognizes. */
export function pidMatches(spec: DaemonSpec, pid: number): boolean {
  const cmdline = readProc(pid, 'cmdline');
  if (cmdline === undefined) return false;
  const st = parseProcStat(readProc(pid, 'stat') ?? '');
  // Z: zombie (its cmdline reads empty anyway); X: dead, being reaped.
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return spec.matches(parseCmdline(cmdline));
}

/** The daemon's pid: from its pid file, only if that process is alive and recognized as ours. */
export function livePid(spec: DaemonSpec): number | undefined {
  let text: string;
  try {
    text = readFileSync(daemonPaths(spec).pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const pid = parsePidFile(text);
  return pid !== undefined && pidMatches(spec, pid) ? pid : undefined;
}

/** A wait that ends early when `wake` settles; its timer never outlives it. */
function pause(ms: number, wake?: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    wake?.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      () => undefined,
    );
  });
}

async function isReady(spec: DaemonSpec, pid: number): Promise<boolean> {
  if (!spec.ready) return true;
  try {
    return await spec.ready(pid);
  } catch {
    return false;
  }
}

type ReadyOutcome = 'ready' | 'dead' | 'timeout';

/**
 * Polls ready(pid) until it holds, the process is gone, or timeoutMs passes. For a child we
 * just started, `exited` tells when it is gone (its cmdline may not be final yet, see start);
 * for a daemon found running, gone is "no longer a live process that matches".
 * Polls fast at first (a daemon is often ready in ms).
 */
async function pollReady(spec: DaemonSpec, pid: number, timeoutMs: number, exited?: Promise<unknown>): Promise<ReadyOutcome> {
  let dead = false;
  exited?.then(() => (dead = true));
  const gone = (): boolean => (exited ? dead || hasExited(pid) : !pidMatches(spec, pid));
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
    if (gone()) return 'dead';
    if (await isReady(spec, pid)) return gone() ? 'dead' : 'ready';
    const left = deadline - Date.now();
    if (left <= 0) return 'timeout';
    await pause(Math.min(delay, left), exited);
  }
}

function notReady(spec: DaemonSpec, pid: number, timeoutMs: number, logFile: string): CniError {
  return new CniError(ErrCode.TryAgainLater, `${spec.name} (pid ${pid}) is not ready after ${timeoutMs} ms; try again later`, `it is left running; its log: ${logFile}`);
}

/** Text appended to the log since `offset` (what this start of the daemon wrote). */
function readLogSince(logFile: string, offset: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(logFile, 'r');
    const size = fstatSync(fd).size;
    const from = Math.max(offset, size - TAIL_BYTES);
    const buf = Buffer.alloc(Math.max(0, size - from));
    readSync(fd, buf, 0, buf.length, from);
    return buf.toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Appends one of our own lines (start, stop) to the daemon's log; never fails the caller. */
function note(logFile: string, msg: string): void {
  try {
    appendFileSync(logFile, formatLogLine(new Date(), msg), { mode: 0o644 });
  } catch {
    /* the log is for people; a failure to write it changes nothing */
  }
}

function writePidFile(pidFile: string, pid: number): void {
  const tmp = `${pidFile}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
    renameSync(tmp, pidFile);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** The daemon's environment: the caller's minus CNI_* (they describe one plugin call), plus spec.env. */
function daemonEnv(spec: DaemonSpec): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CNI_')) env[k] = v;
  return { ...env, ...spec.env };
}

/**
 * Opens the log for the child's stdout/stderr (moving an oversized one to <log>.1 first) and
 * writes our first line; offset is where the child's own output will begin.
 */
function openLog(logFile: string, first: string): { fd: number; offset: number } {
  try {
    if (statSync(logFile).size > LOG_ROTATE_BYTES) renameSync(logFile, `${logFile}.1`);
  } catch {
    /* no log yet */
  }
  const fd = openSync(logFile, 'a', 0o644);
  try {
    writeSync(fd, formatLogLine(new Date(), first));
    return { fd, offset: fstatSync(fd).size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

async function start(spec: DaemonSpec, paths: DaemonPaths, timeoutMs: number, noWait = false): Promise<{ pid: number; started: boolean }> {
  const bin = spec.argv[0];
  if (!bin || !isAbsolute(bin)) throw new CniError(ErrCode.Internal, `cannot start ${spec.name}: argv[0] must be an absolute path, got "${bin ?? ''}"`);
  const log = openLog(paths.logFile, `starting ${spec.name}: ${spec.argv.join(' ')}`);
  let child: ChildProcess;
  try {
    child = spawnDetached(spec.argv, { outFd: log.fd, env: daemonEnv(spec) });
  } finally {
    // The child has its own copy; ours would keep the file open for nothing.
    closeSync(log.fd);
  }
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exit code ${code}`));
    child.once('error', (e) => resolve(e.message));
  });
  try {
    const pid = child.pid;
    if (pid === undefined) {
      // spawn itself failed (no such file, not executable): reported on 'error'.
      throw new CniError(ErrCode.Internal, `failed to start ${spec.name}: ${await exited}`);
    }
    try {
      writePidFile(paths.pidFile, pid);
    } catch (e) {
      // Without its pid file nobody could find or stop it: it must not run.
      signal(pid, 'SIGKILL');
      throw new CniError(ErrCode.IOFailure, `failed to write ${paths.pidFile} for ${spec.name}: ${(e as Error).message}`);
    }
    if (noWait) return { pid, started: true };
    const outcome = await pollReady(spec, pid, timeoutMs, exited);
    if (outcome === 'ready') {
      // Checked only now: a program started through an interpreter or env(1) execs more than
      // once, and its cmdline is final only then.
      const cmdline = readProc(pid, 'cmdline') ?? '';
      if (pidMatches(spec, pid)) return { pid, started: true };
      // `matches` does not recognize it: it could never be found or stopped again.
      signal(pid, 'SIGKILL');
      rmSync(paths.pidFile, { force: true });
      throw new CniError(ErrCode.Internal, `${spec.name} (pid ${pid}) does not match its own spec`, `its cmdline: ${parseCmdline(cmdline).join(' ')}`);
    }
    if (outcome === 'timeout') throw notReady(spec, pid, timeoutMs, paths.logFile);
    rmSync(paths.pidFile, { force: true });
    const tail = tailOf(readLogSince(paths.logFile, log.offset));
    throw new CniError(ErrCode.Internal, `${spec.name} exited before it was ready (${await exited})`, tail ? `last lines of ${paths.logFile}:\n${tail}` : `its log ${paths.logFile} is empty`);
  } finally {
    child.removeAllListeners();
    child.unref();
  }
}

async function underLock<T>(paths: DaemonPaths, opts: { locked?: boolean; lockTimeoutMs?: number }, fn: () => Promise<T>): Promise<T> {
  if (opts.locked) return fn();
  const l = await lockFile(paths.lockFile, opts.lockTimeoutMs);
  try {
    return await fn();
  } finally {
    l.release();
  }
}

/**
 * Under spec's lock: returns the live daemon (once ready), or starts one (detached, new session,
 * stdin /dev/null, stdout+stderr appended to the log file, pid file written by us) and waits for
 * readiness up to readyTimeoutMs. A child that exits before ready → a CniError carrying the tail
 * of its log. A daemon that is alive but not ready in time → code 11 "try again later" (it is
 * left running). A live and ready daemon is returned without taking the lock.
 */
export async function ensureRunning(spec: DaemonSpec, opts: EnsureOptions = {}): Promise<{ pid: number; started: boolean }> {
  const paths = daemonPaths(spec);
  const timeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  if (!opts.locked) {
    // The common case costs no lock (a flock(1) process): running and ready is a final state
    // that only a stop, which is not ours to order against, can change.
    const pid = livePid(spec);
    if (pid !== undefined && (opts.noWait || (await isReady(spec, pid)))) return { pid, started: false };
  }
  try {
    mkdirSync(spec.dir, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new CniError(ErrCode.IOFailure, `failed to create ${spec.dir} for ${spec.name}: ${(e as Error).message}`);
  }
  return underLock(paths, opts, async () => {
    // Another caller may have started it while we waited for the lock. If it dies while we
    // wait for it to be ready, we start a new one.
    const pid = opts.noWait ? livePid(spec) : await readyPid(spec, { readyTimeoutMs: timeoutMs });
    if (pid !== undefined) return { pid, started: false };
    return start(spec, paths, timeoutMs, opts.noWait);
  });
}

/**
 * The live daemon once it is ready (waiting up to readyTimeoutMs), or undefined when none
 * runs; alive but not ready in time → code 11. Takes no lock and starts nothing: for a caller
 * that signals the daemon (a reload) only once it can handle the signal.
 */
export async function readyPid(spec: DaemonSpec, opts: { readyTimeoutMs?: number } = {}): Promise<number | undefined> {
  const pid = livePid(spec);
  if (pid === undefined) return undefined;
  const timeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const outcome = await pollReady(spec, pid, timeoutMs);
  if (outcome === 'timeout') throw notReady(spec, pid, timeoutMs, daemonPaths(spec).logFile);
  return outcome === 'ready' ? pid : undefined;
}

/**
 * True once pid has exited: no such process, or a zombie (state Z, or X while being reaped).
 * Not "its cmdline stopped matching": an exiting process loses its cmdline (its memory)
 * before it closes its files, so it may still hold its sockets then.
 */
export function hasExited(pid: number): boolean {
  const st = parseProcStat(readProc(pid, 'stat') ?? '');
  return !st || st.state === 'Z' || st.state === 'X';
}

/** Waits up to timeoutMs for pid (known to be ours when signalled) to exit; true when it has. */
async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; !hasExited(pid); delay = Math.min(delay * 2, 50)) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await pause(Math.min(delay, left));
  }
  return true;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL; only a pid that matches; a daemon already gone is fine; removes the pid file. */
export async function stopDaemon(spec: DaemonSpec, opts: StopOptions = {}): Promise<boolean> {
  const paths = daemonPaths(spec);
  // Nothing to stop and no directory: take no lock (that would create the lock file).
  if (livePid(spec) === undefined && !statOk(spec.dir)) return false;
  return underLock(paths, opts, async () => {
    const pid = livePid(spec);
    if (pid === undefined) {
      rmSync(paths.pidFile, { force: true });
      return false;
    }
    const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
    note(paths.logFile, `stopping ${spec.name} (pid ${pid}): SIGTERM`);
    signal(pid, 'SIGTERM');
    if (!(await waitGone(pid, graceMs))) {
      note(paths.logFile, `${spec.name} (pid ${pid}) still running ${graceMs} ms after SIGTERM: SIGKILL`);
      signal(pid, 'SIGKILL');
      if (!(await waitGone(pid, KILL_WAIT_MS))) throw new CniError(ErrCode.Internal, `${spec.name} (pid ${pid}) did not stop`, 'it survived SIGKILL; see its /proc/<pid>/status');
    }
    rmSync(paths.pidFile, { force: true });
    return true;
  });
}

function statOk(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * For the daemon process itself: writes "<ISO time> <msg>" to its log (stdout is the log when
 * started by ensureRunning; when run by an operator under systemd it goes to the journal).
 * Synchronous, so a line written just before exit is not lost; a failed write is ignored.
 */
export function logLine(msg: string): void {
  try {
    writeSync(1, formatLogLine(new Date(), msg));
  } catch {
    /* no stdout: nowhere to log */
  }
}
