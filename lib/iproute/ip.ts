/**
 * iproute2 driver: writes as one `ip -batch -` per namespace, reads with `ip -json`.
 * Builders of batch lines are pure (see batch.ts); this file only runs them.
 */
import { run, CommandError } from '../exec/run';

export interface BatchError {
  /** 0-based index into the lines given. */
  line: number;
  message: string;
}

export interface BatchOutcome {
  /** One parsed JSON value per `show` line in the batch, in order. */
  shows: unknown[];
  /** Lines that failed (only with force; without force the batch throws at the first one). */
  errors: BatchError[];
}

/** Parses the stderr of `ip -batch` into per-line errors ("Command failed -:N" closes each). */
export function parseBatchErrors(stderr: string): BatchError[] {
  const out: BatchError[] = [];
  let pending: string[] = [];
  for (const l of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)\s*$/.exec(l.trim());
    if (m) {
      out.push({ line: Number(m[1]) - 1, message: pending.join('; ').trim() || 'failed' });
      pending = [];
    } else if (l.trim()) {
      pending.push(l.trim());
    }
  }
  return out;
}

function parseShows(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('[') || l.trim().startsWith('{'))
    .map((l) => JSON.parse(l));
}

/**
 * Runs `lines` as one `ip -json -batch -` in `netns` (a path; host when undefined).
 * Without `force` the batch stops at the first failure and this throws an error naming the line.
 * With `force` every line runs and the failures are returned for the caller to judge.
 */
export async function ipBatch(lines: string[], opts: { netns?: string; force?: boolean; details?: boolean } = {}): Promise<BatchOutcome> {
  if (lines.length === 0) return { shows: [], errors: [] };
  const argv = ['ip', '-json', ...(opts.details ? ['-details'] : []), ...(opts.force ? ['-force'] : []), '-batch', '-'];
  const res = await run(argv, { netns: opts.netns, input: lines.join('\n') + '\n', nothrow: true });
  const errors = res.exitCode === 0 ? [] : parseBatchErrors(res.stderr);
  if (res.exitCode !== 0 && errors.length === 0) {
    throw new CommandError(['ip', ...argv.slice(1)], res.exitCode, res.stderr, opts.netns);
  }
  if (!opts.force && errors.length > 0) {
    const e = errors[0]!;
    throw new Error(`${e.message} (ip ${lines[e.line] ?? '?'}${opts.netns ? ` in ${opts.netns}` : ''})`);
  }
  return { shows: parseShows(res.stdout), errors };
}

/** `ip -json <args>` parsed; `[]` when the object does not exist and `missingOk`. */
export async function ipJson<T = unknown>(args: string[], opts: { netns?: string; missingOk?: boolean } = {}): Promise<T[]> {
  const res = await run(['ip', '-json', ...args], { netns: opts.netns, nothrow: true });
  if (res.exitCode !== 0) {
    if (opts.missingOk && /does not exist|Cannot find device|No such device/.test(res.stderr)) return [];
    throw new CommandError(['ip', '-json', ...args], res.exitCode, res.stderr, opts.netns);
  }
  const text = res.stdout.trim();
  return text ? (JSON.parse(text) as T[]) : [];
}
