// The one place the conformance suite spawns processes (like actions-toolkit's Exec): argv only,
// never a shell, never throws on a non-zero exit, always bounded by a timeout.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

/**
 * exec() with stdin and stdout on real pipes, the way a Go runtime (libcni through os/exec) runs
 * a plugin: the config written and its end closed before the plugin starts. Node's own stdio
 * pipes are socket pairs, which a plugin's stub treats differently (lib/serve/protocol.ts).
 * The pipes are FIFOs in a temp dir of their own, removed before this returns.
 */
export async function execWithPipes(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cni-test-pipes-'));
  try {
    const [i, o] = [join(dir, 'in'), join(dir, 'out')];
    if (spawnSync('mkfifo', ['-m', '600', i, o]).status !== 0) throw new Error('mkfifo failed');
    const fill = openSync(i, constants.O_RDWR);
    const inR = openSync(i, constants.O_RDONLY);
    writeSync(fill, opts.stdin ?? '');
    closeSync(fill);
    const outR = openSync(o, constants.O_RDONLY | constants.O_NONBLOCK);
    const outW = openSync(o, constants.O_WRONLY);
    return await new Promise((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      let drained = false;
      const out = new Socket({ fd: outR, readable: true, writable: false });
      const done = (): void => {
        if (!exit || !drained) return;
        clearTimeout(timer);
        resolve({ argv, ...exit, stdout, stderr, timedOut });
      };
      out.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      // Our read end opened before any writer: epoll reports the end once the plugin's closes.
      out.on('end', () => {
        drained = true;
        out.destroy();
        done();
      });
      const child = spawn(argv[0]!, argv.slice(1), { env: opts.env ?? process.env, stdio: [inR, outW, 'pipe'] });
      closeSync(inR);
      closeSync(outW);
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
        out.destroy();
        drained = true;
        done();
      }, opts.timeoutMs ?? 30_000);
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', (e) => {
        clearTimeout(timer);
        out.destroy();
        reject(new Error(`cannot spawn ${argv.join(' ')}: ${e.message}`));
      });
      child.on('close', (code, signal) => {
        exit = { code, signal };
        done();
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
