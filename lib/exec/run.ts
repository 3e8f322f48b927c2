/**
 * The only place in the suite that spawns processes. argv only, never a shell; a timeout on
 * everything we wait for; failures become CommandError with stderr first, then the command,
 * then the code. The one exception to waiting is spawnDetached (for lib/daemon).
 *
 * Built on node:child_process rather than execa: every plugin process spawns, so the runner's
 * load cost is paid on every CNI call. Measured here (Node 20.20, one `true` child): plain
 * child_process 30 ms / 40.8 MB peak RSS, execa 8 50 ms / 45.4 MB, execa 9 60 ms / 48.7 MB. We use
 * none of execa's extras (argv is already an array, no shell, output is small).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';

/**
 * A command that failed: what ran, how it ended, what it said. Every process failure in the
 * suite is one (ip and tc batches, nft, iptables, sysctl helpers), so lib/skel/errors.ts
 * asCniError can tell from stderr in one place when the answer is "busy, try again" (code 11).
 * `message` replaces the default text (stderr, then the command, then the code) where the
 * caller can say more precisely what failed (the batch line).
 */
export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    readonly netns?: string,
    message?: string,
  ) {
    const where = netns ? ` (in netns ${netns})` : '';
    super(message ?? `${stderr.trim() || 'command failed'} [${argv.join(' ')}${where}: exit code ${exitCode ?? 'none'}]`);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  /** Run inside this network namespace (a path): `ip -n` or nsenter (inNetns). */
  netns?: string;
  /** Text for the child's stdin. */
  input?: string;
  /** Return the failure instead of throwing. */
  nothrow?: boolean;
  timeoutMs?: number;
  /** Pass these extra file descriptors to the child as fd 3, 4, ... */
  extraFds?: number[];
  /** Variables to set (or replace) in the child's environment. */
  envOverride?: Record<string, string>;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Hook for unit tests that check exact argv without spawning anything. */
export let spawnHook: ((argv: string[], opts: RunOptions) => Promise<RunResult>) | undefined;
export function setSpawnHook(h: typeof spawnHook): void {
  spawnHook = h;
}

/**
 * argv that runs `argv` inside `netns`. `ip` enters a namespace named in /run/netns itself
 * (`ip -n <name>`: one exec instead of nsenter's two, measured 4.4 ms against 6.9 ms a call on
 * the test VM); anything else, or another path, goes through nsenter.
 */
export function inNetns(netns: string, argv: string[]): string[] {
  const name = argv[0] === 'ip' ? /^\/(?:var\/)?run\/netns\/([A-Za-z0-9_][A-Za-z0-9_.-]*)$/.exec(netns)?.[1] : undefined;
  if (name !== undefined && (netns.startsWith('/run/') || varRunIsRun())) return ['ip', '-n', name, ...argv.slice(1)];
  return ['nsenter', `--net=${netns}`, '--', ...argv];
}

let varRunLinked: boolean | undefined;
/** Whether /var/run is /run (a symlink on every current distribution), so /var/run/netns/X is what `ip -n X` opens. */
function varRunIsRun(): boolean {
  if (varRunLinked === undefined) {
    try {
      varRunLinked = realpathSync('/var/run') === '/run';
    } catch {
      varRunLinked = false;
    }
  }
  return varRunLinked;
}

/** Runs argv (optionally inside a netns); throws CommandError on a non-zero exit unless nothrow. */
export async function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const full = opts.netns ? inNetns(opts.netns, argv) : argv;
  let res: RunResult;
  if (spawnHook) {
    res = await spawnHook(full, opts);
  } else {
    res = await spawnAndWait(full, opts);
  }
  if (res.exitCode !== 0 && !opts.nothrow) throw new CommandError(full, res.exitCode, res.stderr, opts.netns);
  return res;
}

/** Spawns argv (no shell), feeds `input`, collects stdout/stderr, enforces the timeout. */
function spawnAndWait(argv: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const stdio = [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(opts.extraFds ?? [])] as ('pipe' | 'ignore' | number)[];
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio,
      env: { ...process.env, LC_ALL: 'C', ...opts.envOverride },
      shell: false,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      // The program could not be started at all (e.g. not installed): no exit code.
      if (opts.nothrow) resolve({ stdout: '', stderr: e.message, exitCode: 127 });
      else reject(new CommandError(argv, undefined, `failed to run: ${e.message}`, opts.netns));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: timedOut ? `${stderr}timed out after ${opts.timeoutMs ?? 30_000} ms` : stderr,
        exitCode: code ?? (timedOut ? 124 : signal ? 128 : 1),
      });
    });
    if (opts.input !== undefined) {
      // A child that exits without reading its stdin makes the write fail with EPIPE: not our error.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(opts.input);
    }
  });
}

/**
 * Starts argv as a daemon and returns at once, without waiting for it: detached (setsid in
 * the child: its own session and process group, no controlling terminal), stdin /dev/null,
 * stdout and stderr on `outFd`, cwd /. Only lib/daemon/daemon.ts calls this; it owns the
 * returned handle (exit watch, unref).
 */
export function spawnDetached(argv: string[], opts: { outFd: number; env: NodeJS.ProcessEnv }): ChildProcess {
  return spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', opts.outFd, opts.outFd], env: opts.env, cwd: '/', shell: false });
}
