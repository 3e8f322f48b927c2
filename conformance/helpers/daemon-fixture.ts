// The daemon conformance suite's two programs in one file, bundled by the suite with esbuild:
//
//   node fixture.js daemon <token> <mode> <readyFile> <readyDelayMs>
//     A tiny daemon, written the way a Node daemon should use lib/daemon: logLine for its log,
//     readiness published as a file written atomically, SIGTERM handled by a clean exit.
//     Modes: normal | ignore-term (logs and ignores SIGTERM) | die (fails at start-up) |
//     never-ready (runs, never publishes readiness). <token> only makes its cmdline unique.
//
//   node fixture.js ensure|stop|ensure-hang '<json>'
//     A separate "plugin" process calling ensureRunning / stopDaemon on the spec described by
//     the JSON; prints {"pid","started"} / {"wasRunning"}, or the CNI error and exit code 1.
//     ensure-hang stays alive afterwards (to be killed with its process group by the test).
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { ensureRunning, logLine, stopDaemon, type DaemonSpec } from '../../lib/daemon/daemon';
import { asCniError } from '../../lib/skel/errors';

export interface FixtureSpec {
  name: string;
  dir: string;
  argv: string[];
  base?: string;
  token: string;
  /** Also required: cmdline[0] is exactly this. */
  argv0?: string;
  readyFile?: string;
  pidFile?: string;
  logFile?: string;
  lockFile?: string;
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  graceMs?: number;
}

/**
 * The DaemonSpec a FixtureSpec stands for: ours if the token is in the cmdline, ready once
 * readyFile holds the daemon's pid (a file left by an earlier, killed instance does not count).
 */
export function toDaemonSpec(f: FixtureSpec): DaemonSpec {
  const { token, argv0, readyFile, readyTimeoutMs: _t, graceMs: _g, ...rest } = f;
  return {
    ...rest,
    matches: (cmdline) => cmdline.includes(token) && (argv0 === undefined || cmdline[0] === argv0),
    ready: readyFile ? (pid) => readText(readyFile) === String(pid) : undefined,
  };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function daemon(token: string, mode: string, readyFile: string, delayMs: number): void {
  logLine(`test daemon ${token} (${mode}) up, pid ${process.pid}`);
  if (mode === 'die') {
    process.stderr.write(`fatal: cannot bind 192.0.2.1:53 (${token})\n`);
    process.exit(3);
  }
  // Keeps the event loop (and so the daemon) alive until a signal ends it.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  if (mode !== 'never-ready') {
    setTimeout(() => {
      writeFileSync(`${readyFile}.tmp`, String(process.pid));
      renameSync(`${readyFile}.tmp`, readyFile);
      logLine('ready');
    }, delayMs);
  }
  process.on('SIGTERM', () => {
    if (mode === 'ignore-term') {
      logLine('got SIGTERM, ignoring it');
      return;
    }
    logLine('got SIGTERM, exiting');
    rmSync(readyFile, { force: true });
    clearInterval(keepAlive);
    process.exit(0);
  });
  // A daemon started by ensureRunning has no terminal; a SIGHUP is a request, not a hangup.
  process.on('SIGHUP', () => logLine('got SIGHUP'));
}

async function plugin(cmd: string, json: string): Promise<void> {
  const f = JSON.parse(json) as FixtureSpec;
  const spec = toDaemonSpec(f);
  try {
    if (cmd === 'stop') {
      process.stdout.write(JSON.stringify({ wasRunning: await stopDaemon(spec, { graceMs: f.graceMs }) }) + '\n');
      return;
    }
    const r = await ensureRunning(spec, { readyTimeoutMs: f.readyTimeoutMs });
    process.stdout.write(JSON.stringify(r) + '\n');
    if (cmd === 'ensure-hang') setInterval(() => undefined, 1 << 30);
  } catch (e) {
    const c = asCniError(e);
    process.stdout.write(JSON.stringify({ code: c.code, msg: c.message, details: c.details }) + '\n');
    process.exitCode = 1;
  }
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'daemon') daemon(args[0]!, args[1]!, args[2]!, Number(args[3] ?? 0));
else if (cmd === 'ensure' || cmd === 'stop' || cmd === 'ensure-hang') void plugin(cmd, args[0]!);
