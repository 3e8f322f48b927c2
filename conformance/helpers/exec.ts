// The one place the conformance suite spawns processes (like actions-toolkit's Exec): argv only,
// never a shell, never throws on a non-zero exit, always bounded by a timeout.
import { spawn } from 'node:child_process';

export interface ExecResult {
  argv: string[];
  /** Exit code, or null when the process was killed (signal / timeout). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface ExecOptions {
  stdin?: string;
  /** Replaces the environment entirely when set (plugins must not depend on ours). */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs argv to completion and returns its exit status and output; never rejects on exit codes. */
export function exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot spawn ${argv.join(' ')}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ argv, code, signal, stdout, stderr, timedOut });
    });
    // A plugin may exit before reading stdin (e.g. VERSION); ignore EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.stdin ?? '');
  });
}

/** Like exec, but throws an error carrying stderr, the command and the exit code when it fails. */
export async function execOk(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await exec(argv, opts);
  if (r.code !== 0) {
    throw new Error(
      `${r.stderr.trim() || r.stdout.trim()}\n  at: ${argv.join(' ')}\n  exit code: ${r.code}${r.timedOut ? ' (timed out)' : ''}`,
    );
  }
  return r;
}

/** Argv prefix that runs a command inside the network namespace mounted at nsPath. */
export function inNetns(nsPath: string, argv: string[]): string[] {
  return ['nsenter', `--net=${nsPath}`, '--', ...argv];
}

/** p's value, or undefined after ms (the timer never keeps jest alive). */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
