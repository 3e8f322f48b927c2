/**
 * The only place in the suite that spawns processes. argv only, never a shell; a timeout on
 * everything; failures become CommandError with stderr first, then the command, then the code.
 */
import { execa } from 'execa';

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    readonly netns?: string,
  ) {
    const where = netns ? ` (in netns ${netns})` : '';
    super(`${stderr.trim() || 'command failed'} [${argv.join(' ')}${where}: exit code ${exitCode ?? 'none'}]`);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  /** Run inside this network namespace (a path), through nsenter. */
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

/** Runs argv (optionally inside a netns); throws CommandError on a non-zero exit unless nothrow. */
export async function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const full = opts.netns ? ['nsenter', `--net=${opts.netns}`, '--', ...argv] : argv;
  let res: RunResult;
  if (spawnHook) {
    res = await spawnHook(full, opts);
  } else {
    const stdio: (string | number)[] = [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(opts.extraFds ?? [])];
    const r = await execa(full[0]!, full.slice(1), {
      input: opts.input,
      reject: false,
      timeout: opts.timeoutMs ?? 30_000,
      stripFinalNewline: false,
      stdio: stdio as never,
      env: { LC_ALL: 'C', ...opts.envOverride },
      extendEnv: true,
    });
    res = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? (r.timedOut ? 124 : 1) };
    if (r.failed && r.exitCode === undefined && !opts.nothrow) {
      throw new CommandError(full, undefined, r.timedOut ? 'timed out' : r.shortMessage ?? 'failed to run', opts.netns);
    }
  }
  if (res.exitCode !== 0 && !opts.nothrow) throw new CommandError(full, res.exitCode, res.stderr, opts.netns);
  return res;
}
