// The one place the benchmark spawns processes: argv only, never a shell, never throws on a
// non-zero exit, bounded by a timeout. `ms` is wall time from spawn() to 'close' (stdio drained),
// which is what a runtime waiting on the plugin sees.
import { spawn } from 'node:child_process';

/** Runs argv to completion; resolves {code, signal, stdout, stderr, ms, timedOut}. */
export function run(argv, { stdin = '', env = process.env, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let child;
    try {
      child = spawn(argv[0], argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ argv, code: null, signal: null, stdout: '', stderr: String(e), ms: 0, timedOut: false });
      return;
    }
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ argv, code: null, signal: null, stdout, stderr: stderr + String(e), ms: 0, timedOut });
    });
    child.on('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      resolve({ argv, code, signal, stdout, stderr, ms, timedOut });
    });
    child.stdin.on('error', () => undefined); // a plugin may exit before reading stdin
    child.stdin.end(stdin);
  });
}

/** Like run, but throws (stderr, argv, exit code) when the command fails. */
export async function runOk(argv, opts) {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new Error(`${(r.stderr || r.stdout).trim()}\n  at: ${argv.join(' ')}\n  exit code: ${r.code}${r.timedOut ? ' (timed out)' : ''}`);
  }
  return r;
}

/** Argv prefix that runs a command inside the network namespace mounted at nsPath. */
export function inNetns(nsPath, argv) {
  return ['nsenter', `--net=${nsPath}`, '--', ...argv];
}
