/**
 * iproute2 driver: writes as one `ip -batch -` (or `tc -batch -`) per namespace, reads with `ip -json`.
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
  /** The same, by line index: undefined for lines that print nothing or failed. */
  byLine: (unknown | undefined)[];
  /** Lines that failed (only with force; without force the batch throws at the first one). */
  errors: BatchError[];
  /** The batch as it ran (none for no lines), for lineError. */
  ran?: { tool: 'ip' | 'tc'; argv: string[]; exitCode: number; stderr: string; netns?: string; lines: string[] };
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

/** True for a batch line that prints (`link show …`, `qdisc show …`, `filter list …`). */
export function isShowLine(line: string): boolean {
  return /^\S+\s+(show|list|ls)\b/.test(line.trim());
}

function parseShows(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('[') || l.trim().startsWith('{'))
    .map((l) => JSON.parse(l));
}

/**
 * The output of each show line, by line index (undefined for other lines and for shows that
 * failed): with -force a failed show prints nothing, so `shows` alone would shift.
 */
function showsByLine(lines: string[], shows: unknown[], errors: BatchError[]): (unknown | undefined)[] {
  const failed = new Set(errors.map((e) => e.line));
  let next = 0;
  return lines.map((l, i) => (isShowLine(l) && !failed.has(i) ? shows[next++] : undefined));
}

/**
 * A batch line that failed, `line` 0-based: thrown by a batch without -force (the lines before
 * it took effect), or made by lineError from a -force batch's outcome. A CommandError, so a
 * busy kernel is code 11 (lib/skel/errors.ts asCniError).
 */
export class BatchLineError extends CommandError {
  constructor(
    ran: NonNullable<BatchOutcome['ran']>,
    readonly line: number,
    message: string,
  ) {
    super(ran.argv, ran.exitCode, ran.stderr, ran.netns, message);
    this.name = 'BatchLineError';
  }
}

/** How a failed line reads: its message, then the tool and the line (and the netns). */
function lineText(ran: NonNullable<BatchOutcome['ran']>, e: BatchError): string {
  return `${e.message} (${ran.tool} ${ran.lines[e.line] ?? '?'}${ran.netns ? ` in ${ran.netns}` : ''})`;
}

/**
 * One failed line of a -force batch as an error, for a caller that judged it fatal. `message`
 * (default: the line's message, the tool and the line) says what failed in the caller's words.
 */
export function lineError(out: BatchOutcome, e: BatchError, message?: string): BatchLineError {
  const ran = out.ran ?? { tool: 'ip', argv: [], exitCode: 1, stderr: e.message, lines: [] };
  return new BatchLineError(ran, e.line, message ?? lineText(ran, e));
}

/**
 * Runs `lines` as one `<tool> <flags> -batch -` (ip and tc both close a failed line's message
 * with "Command failed -:N"). Without `force` the batch stops at the first failure and this
 * throws a BatchLineError naming the line; with `force` every line runs and the failures are
 * returned for the caller to judge.
 */
async function toolBatch(tool: 'ip' | 'tc', flags: string[], lines: string[], opts: { netns?: string; force?: boolean }): Promise<BatchOutcome> {
  if (lines.length === 0) return { shows: [], byLine: [], errors: [] };
  const argv = [tool, ...flags, ...(opts.force ? ['-force'] : []), '-batch', '-'];
  const res = await run(argv, { netns: opts.netns, input: lines.join('\n') + '\n', nothrow: true });
  const errors = res.exitCode === 0 ? [] : parseBatchErrors(res.stderr);
  if (res.exitCode !== 0 && errors.length === 0) {
    throw new CommandError(argv, res.exitCode, res.stderr, opts.netns);
  }
  const ran = { tool, argv, exitCode: res.exitCode, stderr: res.stderr, netns: opts.netns, lines };
  if (!opts.force && errors.length > 0) {
    const e = errors[0]!;
    throw new BatchLineError(ran, e.line, lineText(ran, e));
  }
  const shows = parseShows(res.stdout);
  return { shows, byLine: showsByLine(lines, shows, errors), errors, ran };
}

/**
 * Runs `lines` as one `ip -json -batch -` in `netns` (a path; host when undefined); see toolBatch.
 */
export function ipBatch(lines: string[], opts: { netns?: string; force?: boolean; details?: boolean } = {}): Promise<BatchOutcome> {
  return toolBatch('ip', ['-json', ...(opts.details ? ['-details'] : [])], lines, opts);
}

/**
 * Runs `lines` as one `tc -batch -` (qdisc and filter changes and shows); see toolBatch.
 * `json` prints shows as JSON; `raw` adds `-details -raw` (e.g. tbf's buffer in ticks and limit).
 */
export function tcBatch(lines: string[], opts: { netns?: string; force?: boolean; json?: boolean; raw?: boolean } = {}): Promise<BatchOutcome> {
  return toolBatch('tc', [...(opts.json ? ['-json'] : []), ...(opts.raw ? ['-details', '-raw'] : [])], lines, opts);
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
