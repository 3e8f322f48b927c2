// The one place the benchmark spawns processes: argv only, never a shell, never throws on a
// non-zero exit, bounded by a timeout. `ms` is wall time from spawn() to 'close' (stdio drained),
// which is what a runtime waiting on the plugin sees.
//
// With `pipes`, the child's stdin and stdout are real pipes, as every Go runtime gives a plugin
// (libcni's exec: os/exec makes an os.Pipe for a bytes.Buffer); Node's own 'pipe' stdio is a
// socket pair. It matters for served mode: the service reads a pipe stdin and writes a pipe
// stdout itself, while a socket makes the bash stub copy them byte by byte (lib/serve/protocol.ts).
// The pipes are FIFOs from a pool under the temp dir (Node makes no anonymous pipe), made once.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let pipeDir;
let pipesMade = 0;
const freePipes = [];
process.on('exit', () => {
  if (pipeDir) rmSync(pipeDir, { recursive: true, force: true });
});

/** A pair of FIFOs (stdin, stdout) nobody uses now. */
function pipePair() {
  if (freePipes.length) return freePipes.pop();
  pipeDir ??= mkdtempSync(join(tmpdir(), 'cni-bench-pipes-'));
  const n = pipesMade++;
  const pair = { i: join(pipeDir, `in${n}`), o: join(pipeDir, `out${n}`) };
  const r = spawnSync('mkfifo', ['-m', '600', pair.i, pair.o]);
  if (r.status !== 0) throw new Error(`mkfifo: ${r.stderr}`);
  return pair;
}

/** Runs argv to completion; resolves {code, signal, stdout, stderr, ms, timedOut}. */
export function run(argv, { stdin = '', env = process.env, timeoutMs = 60_000, pipes = false } = {}) {
  // A FIFO holds 64 KiB before anyone reads it: larger input goes the socket way.
  if (pipes && Buffer.byteLength(stdin) < 60_000) return runWithPipes(argv, { stdin, env, timeoutMs });
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

/** run() with stdin and stdout on pipes (FIFOs): stdin written and closed before the spawn, like os/exec. */
function runWithPipes(argv, { stdin, env, timeoutMs }) {
  const pair = pipePair();
  // Held read-write while filling so neither open blocks; the child's end is read-only and
  // blocking, and sees the end of input once the last writer (ours) is closed.
  const fill = openSync(pair.i, constants.O_RDWR);
  const inR = openSync(pair.i, constants.O_RDONLY);
  if (stdin) writeSync(fill, stdin);
  closeSync(fill);
  const outR = openSync(pair.o, constants.O_RDONLY | constants.O_NONBLOCK);
  const outW = openSync(pair.o, constants.O_WRONLY);
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let exit;
    let drained = false;
    const out = new Socket({ fd: outR, readable: true, writable: false });
    const finish = () => {
      if (!exit || !drained) return;
      clearTimeout(timer);
      freePipes.push(pair);
      resolve({ argv, ...exit, stdout, stderr, ms: Number(process.hrtime.bigint() - t0) / 1e6, timedOut });
    };
    out.setEncoding('utf8').on('data', (d) => (stdout += d));
    out.on('end', () => {
      drained = true;
      out.destroy();
      finish();
    });
    const t0 = process.hrtime.bigint();
    let child;
    try {
      child = spawn(argv[0], argv.slice(1), { env, stdio: [inR, outW, 'pipe'] });
    } finally {
      closeSync(inR);
      closeSync(outW);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', (e) => {
      stderr += String(e);
      exit = { code: null, signal: null };
      finish();
    });
    child.on('close', (code, signal) => {
      exit = { code, signal };
      finish();
    });
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
