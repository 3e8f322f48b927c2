// lib/daemon with real processes (no network): a tiny Node test daemon (helpers/daemon-fixture.ts,
// bundled here with esbuild) started by separate "plugin" processes and by this process.
// Proves: one daemon under 20 racing starts; pid and log file; what the daemon inherits (and does
// not: the lock, the caller's pipes, CNI_*); readiness wait and its timeout (code 11); a daemon
// dying at start-up reported with its log; a stale pid file not trusted; the daemon outliving
// (and not dying with) the process that started it; SIGTERM then SIGKILL; nothing left behind.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { ensureRunning, livePid, parseCmdline, parseProcStat, stopDaemon } from '../lib/daemon/daemon';
import { lockFile } from '../lib/lock/flock';
import { CniError } from '../lib/skel/errors';
import { exec, execOk } from './helpers/exec';
import { type FixtureSpec, toDaemonSpec } from './helpers/daemon-fixture';
import { Registry, randomHex } from './helpers/netns';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

/** Every live, non-zombie process with `needle` in an argument (daemons have the token as one). */
function pidsWith(needle: string, whole = true): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = parseCmdline(readFileSync(`/proc/${e}/cmdline`, 'utf8'));
      const st = parseProcStat(readFileSync(`/proc/${e}/stat`, 'utf8'));
      if (st && st.state !== 'Z' && argv.some((a) => (whole ? a === needle : a.includes(needle)))) out.push(Number(e));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

const alive = (pid: number): boolean => {
  try {
    const st = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return !!st && st.state !== 'Z';
  } catch {
    return false;
  }
};

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

maybe('lib/daemon: long-lived processes started by plugins', () => {
  const reg = new Registry();
  // Every test daemon's cmdline carries this run's tag: the final check scans /proc for it.
  const runTag = `cni-daemon-test-${randomHex(4)}`;
  let fixture: string;
  const others: number[] = [];

  beforeAll(() => {
    const dir = reg.tempDir();
    fixture = join(dir, 'fixture.js');
    buildSync({ entryPoints: [join(__dirname, 'helpers/daemon-fixture.ts')], outfile: fixture, bundle: true, platform: 'node', target: 'node20', format: 'cjs', logLevel: 'warning' });
  });

  afterAll(async () => {
    for (const pid of [...pidsWith(runTag, false), ...others]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await until('every test process gone', () => pidsWith(runTag, false).length === 0 && others.every((p) => !alive(p)));
    await reg.cleanup();
  });

  /** A fresh spec: its own dir, a unique token, the given mode. */
  function makeSpec(mode: 'normal' | 'ignore-term' | 'die' | 'never-ready', readyDelayMs = 0, extra: Partial<FixtureSpec> = {}): FixtureSpec {
    const dir = join(reg.tempDir(), 'state');
    const token = `${runTag}-${randomHex(4)}`;
    const readyFile = join(dir, 'ready');
    return {
      name: `test daemon ${token}`,
      dir,
      argv: [process.execPath, fixture, 'daemon', token, mode, readyFile, String(readyDelayMs)],
      token,
      readyFile,
      ...extra,
    };
  }

  /** One separate plugin process: ensure / stop; returns its parsed output line. */
  async function pluginProc(cmd: 'ensure' | 'stop', f: FixtureSpec, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, unknown>> {
    const r = await exec([process.execPath, fixture, cmd, JSON.stringify(f)], { env, timeoutMs: 60_000 });
    if (r.timedOut) throw new Error(`${cmd} timed out: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  async function expectCniError(p: Promise<unknown>): Promise<CniError> {
    try {
      await p;
    } catch (e) {
      expect(e).toBeInstanceOf(CniError);
      return e as CniError;
    }
    throw new Error('expected a CniError');
  }

  test('20 racing ensureRunning from separate processes start exactly one daemon; pid file, log, inheritance', async () => {
    const f = makeSpec('normal', 300, { env: { DAEMON_TEST_VAR: 'set-by-spec' } });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => pluginProc('ensure', f, { ...process.env, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'racer' })),
    );
    const pids = pidsWith(f.token);
    expect(pids).toHaveLength(1);
    const pid = pids[0]!;
    expect(results.map((r) => r.pid)).toEqual(Array(20).fill(pid));
    expect(results.filter((r) => r.started === true)).toHaveLength(1);
    // Every caller returned only once the daemon was ready.
    expect(existsSync(f.readyFile!)).toBe(true);

    // Files: <dir>/<basename(argv[0])>.{pid,log,lock}, the dir created 0755.
    const base = join(f.dir, 'node');
    expect(readFileSync(`${base}.pid`, 'utf8')).toBe(`${pid}\n`);
    expect(existsSync(`${base}.lock`)).toBe(true);
    const log = readFileSync(`${base}.log`, 'utf8');
    expect(log.match(/starting test daemon/g)).toHaveLength(1);
    expect(log).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z test daemon ${f.token} \\(normal\\) up, pid ${pid}$`, 'm'));
    expect(readdirSync(f.dir).sort()).toEqual(['node.lock', 'node.log', 'node.pid', 'ready']);

    // What it inherited: its own session, / as cwd, stdin /dev/null, stdout+stderr the log,
    // not the lock and not the plugin's pipes; spec.env but no CNI_*.
    const st = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))!;
    expect(st.session).toBe(pid);
    expect(st.pgrp).toBe(pid);
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe('/');
    const fds = Object.fromEntries(readdirSync(`/proc/${pid}/fd`).map((n) => [n, readlinkSync(`/proc/${pid}/fd/${n}`)]));
    expect([fds['0'], fds['1'], fds['2']]).toEqual(['/dev/null', `${base}.log`, `${base}.log`]);
    expect(Object.values(fds)).not.toContain(`${base}.lock`);
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain('DAEMON_TEST_VAR=set-by-spec');
    expect(environ.filter((e) => e.startsWith('CNI_'))).toEqual([]);

    // The lock is free again (no daemon holds it): a stop from another process takes it.
    expect(await pluginProc('stop', f)).toEqual({ wasRunning: true });
    expect(alive(pid)).toBe(false);
    expect(existsSync(`${base}.pid`)).toBe(false);
    expect(readFileSync(`${base}.log`, 'utf8')).toMatch(/got SIGTERM, exiting\n$/);
  });

  test('the daemon survives the process that started it, also when that process group is killed', async () => {
    // A starter that exits on its own: exec returns (so the daemon holds none of its pipes)
    // and the daemon lives on, reparented.
    const f1 = makeSpec('normal');
    const r1 = await execOk([process.execPath, fixture, 'ensure', JSON.stringify(f1)], { timeoutMs: 30_000 });
    const pid1 = (JSON.parse(r1.stdout) as { pid: number }).pid;
    expect(alive(pid1)).toBe(true);
    expect(livePid(toDaemonSpec(f1))).toBe(pid1);

    // A starter that is killed with its whole process group (as a runtime kills a plugin that
    // timed out): the daemon, in its own session, is not in that group.
    const f2 = makeSpec('normal');
    const starter = spawn(process.execPath, [fixture, 'ensure-hang', JSON.stringify(f2)], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    others.push(starter.pid!);
    const line = await new Promise<string>((resolve) => starter.stdout!.once('data', (d: Buffer) => resolve(d.toString())));
    const pid2 = (JSON.parse(line) as { pid: number }).pid;
    expect(parseProcStat(readFileSync(`/proc/${pid2}/stat`, 'utf8'))!.ppid).toBe(starter.pid);
    process.kill(-starter.pid!, 'SIGKILL');
    await until('the starter is gone', () => !alive(starter.pid!));
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(pid2)).toBe(true);
    expect(parseProcStat(readFileSync(`/proc/${pid2}/stat`, 'utf8'))!.ppid).not.toBe(starter.pid);
    // A later caller finds it, ready, without starting another.
    expect(await ensureRunning(toDaemonSpec(f2))).toEqual({ pid: pid2, started: false });

    expect(await stopDaemon(toDaemonSpec(f1))).toBe(true);
    expect(await stopDaemon(toDaemonSpec(f2))).toBe(true);
    expect([alive(pid1), alive(pid2)]).toEqual([false, false]);
  });

  test('readiness: ensureRunning waits for it; not ready in time is code 11 and the daemon stays', async () => {
    const f = makeSpec('normal', 700);
    const spec = toDaemonSpec(f);
    const r = await ensureRunning(spec);
    expect(r.started).toBe(true);
    expect(existsSync(f.readyFile!)).toBe(true);
    await stopDaemon(spec);

    const slow = makeSpec('never-ready');
    const slowSpec = toDaemonSpec(slow);
    const e = await expectCniError(ensureRunning(slowSpec, { readyTimeoutMs: 400 }));
    expect(e.code).toBe(11);
    expect(e.message).toMatch(/^test daemon .* \(pid \d+\) is not ready after 400 ms; try again later$/);
    const pid = livePid(slowSpec);
    expect(pid).toBeDefined();
    expect(alive(pid!)).toBe(true);
    // Asking again waits again (it is alive: no second start), and fails the same way.
    expect((await expectCniError(ensureRunning(slowSpec, { readyTimeoutMs: 200 }))).code).toBe(11);
    expect(pidsWith(slow.token)).toEqual([pid]);
    expect(await stopDaemon(slowSpec)).toBe(true);
    expect(alive(pid!)).toBe(false);
  });

  test('a daemon that dies before it is ready: an error with the tail of its log, no pid file, nothing running', async () => {
    const f = makeSpec('die');
    const e = await expectCniError(ensureRunning(toDaemonSpec(f)));
    expect(e.code).toBe(999);
    expect(e.message).toBe(`test daemon ${f.token} exited before it was ready (exit code 3)`);
    expect(e.details).toContain(`fatal: cannot bind 192.0.2.1:53 (${f.token})`);
    expect(e.details).toContain('(die) up, pid');
    expect(existsSync(join(f.dir, 'node.pid'))).toBe(false);
    expect(pidsWith(f.token)).toEqual([]);

    // argv[0] that cannot be run: the spawn error, and still no pid file.
    const g = makeSpec('normal');
    g.argv = ['/nonexistent/daemon', g.token];
    const e2 = await expectCniError(ensureRunning(toDaemonSpec(g)));
    expect(e2.message).toMatch(/failed to start test daemon .*: spawn \/nonexistent\/daemon ENOENT/);
    expect(existsSync(join(g.dir, 'daemon.pid'))).toBe(false);
    // A relative argv[0] is refused before anything runs.
    g.argv = ['node', g.token];
    expect((await expectCniError(ensureRunning(toDaemonSpec(g)))).message).toMatch(/argv\[0\] must be an absolute path/);
  });

  test('a daemon started through env(1) is recognized after its second exec; one its spec never recognizes is killed', async () => {
    // env execs node: the cmdline is env's first, node's (argv[0] = node) only after the second exec.
    const f = makeSpec('normal', 200, { argv0: process.execPath });
    f.argv = ['/usr/bin/env', ...f.argv];
    f.base = 'node';
    const spec = toDaemonSpec(f);
    const r = await ensureRunning(spec);
    expect(r.started).toBe(true);
    expect(parseCmdline(readFileSync(`/proc/${r.pid}/cmdline`, 'utf8'))[0]).toBe(process.execPath);
    expect(livePid(spec)).toBe(r.pid);
    expect(await stopDaemon(spec)).toBe(true);

    const g = makeSpec('normal', 0, { argv0: '/not/what/runs' });
    const e = await expectCniError(ensureRunning(toDaemonSpec(g)));
    expect(e.message).toMatch(/\(pid \d+\) does not match its own spec$/);
    await until('the unrecognized daemon is gone', () => pidsWith(g.token).length === 0);
    expect(existsSync(join(g.dir, 'node.pid'))).toBe(false);
  });

  test('a stale pid file whose pid is now another process is not trusted, and that process is left alone', async () => {
    const other = spawn('sleep', ['120'], { stdio: 'ignore' });
    others.push(other.pid!);
    const f = makeSpec('normal');
    const spec = toDaemonSpec(f);
    const pidFile = join(f.dir, 'node.pid');
    mkdirSync(f.dir, { recursive: true });
    writeFileSync(pidFile, `${other.pid}\n`);
    expect(livePid(spec)).toBeUndefined();
    // stop: nothing of ours runs; the stale file goes, the other process stays.
    expect(await stopDaemon(spec)).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
    expect(alive(other.pid!)).toBe(true);
    // start: a new daemon, the file now names it.
    writeFileSync(pidFile, `${other.pid}\n`);
    const r = await ensureRunning(spec);
    expect(r.started).toBe(true);
    expect(r.pid).not.toBe(other.pid);
    expect(readFileSync(pidFile, 'utf8')).toBe(`${r.pid}\n`);
    expect(alive(other.pid!)).toBe(true);
    // Garbage in the pid file is no pid at all.
    await stopDaemon(spec);
    writeFileSync(pidFile, 'not a pid\n');
    expect(livePid(spec)).toBeUndefined();
    other.kill('SIGKILL');
  });

  test('stopDaemon: SIGTERM, then SIGKILL for a daemon that ignores it; a daemon already gone is fine', async () => {
    const f = makeSpec('ignore-term');
    const spec = toDaemonSpec(f);
    const { pid } = await ensureRunning(spec);
    expect(await stopDaemon(spec, { graceMs: 300 })).toBe(true);
    expect(alive(pid)).toBe(false);
    const log = readFileSync(join(f.dir, 'node.log'), 'utf8');
    expect(log).toMatch(/stopping test daemon .* SIGTERM\n.*got SIGTERM, ignoring it\n.*still running 300 ms after SIGTERM: SIGKILL\n$/);
    expect(existsSync(join(f.dir, 'node.pid'))).toBe(false);
    expect(await stopDaemon(spec)).toBe(false);

    // Killed behind our back: the pid file is left, stop reports "was not running" and cleans up.
    const g = makeSpec('normal');
    const gSpec = toDaemonSpec(g);
    const r = await ensureRunning(gSpec);
    process.kill(r.pid, 'SIGKILL');
    await until('the daemon is gone', () => !alive(r.pid));
    expect(livePid(gSpec)).toBeUndefined();
    expect(await stopDaemon(gSpec)).toBe(false);
    expect(existsSync(join(g.dir, 'node.pid'))).toBe(false);
    // A stop where nothing was ever started creates nothing.
    const h = makeSpec('normal');
    expect(await stopDaemon(toDaemonSpec(h))).toBe(false);
    expect(existsSync(h.dir)).toBe(false);
  });

  test('the caller may hold the lock itself (locked: true): no second lock, no deadlock', async () => {
    const f = makeSpec('normal', 100);
    const spec = toDaemonSpec(f);
    mkdirSync(f.dir, { recursive: true });
    const held = await lockFile(join(f.dir, 'node.lock'));
    try {
      const r = await ensureRunning(spec, { locked: true });
      expect(r.started).toBe(true);
      expect(await ensureRunning(spec, { locked: true })).toEqual({ pid: r.pid, started: false });
      expect(await stopDaemon(spec, { locked: true })).toBe(true);
      // Without `locked`, a start from another process waits for our lock: still nothing runs.
      const racer = pluginProc('ensure', f);
      await new Promise((res) => setTimeout(res, 500));
      expect(pidsWith(f.token)).toEqual([]);
      held.release();
      const out = await racer;
      expect(out.started).toBe(true);
      expect(pidsWith(f.token)).toEqual([out.pid]);
    } finally {
      held.release();
    }
    expect(await stopDaemon(spec)).toBe(true);
  });

  test('nothing is left: no test daemon or helper process runs', () => {
    expect(pidsWith(runTag, false)).toEqual([]);
    expect(others.filter(alive)).toEqual([]);
  });
});
