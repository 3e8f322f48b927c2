/**
 * Network sysctls of another network namespace. /proc/sys/net shows the netns of the process
 * that opens the file, and Node cannot setns(2), so the reads and writes run in one child:
 * `nsenter --net=<ns> -- <this program> --cni-ts-netns-sysctl` (lib/self/self.ts selfArgv: the
 * same bundle under node, or the same single-executable binary, never a `node` looked up on the
 * host), which gets its work as JSON on stdin and answers with JSON on stdout. One process per
 * phase, whatever the number of keys; no shell, and no dependency on procps' sysctl (whose
 * '.'/'/' key rules differ from the reference's).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { CommandError, run } from '../exec/run';
import { registerMode, selfArgv } from '../self/self';

/** Only paths under this prefix are ever touched (the child checks again). */
export const NET_SYSCTL_ROOT = '/proc/sys/net/';

export interface SysctlJob {
  /** Paths whose current value to report, without changing them. */
  read?: string[];
  /** [path, value] pairs to write in order; the previous value of each is reported. */
  write?: [string, string][];
  /**
   * all-or-nothing (default): stop at the first failed write and put back what was written.
   * best-effort: try every write and report the failures.
   */
  mode?: 'all-or-nothing' | 'best-effort';
}

export interface SysctlOutcome {
  /** Value of each read path and the value each written path had before (null: unreadable). */
  values: Record<string, string | null>;
  /** Writes that failed: path and errno text. */
  errors: { path: string; message: string }[];
}

/** The hidden mode that makes a start of this program the sysctl child. */
export const SYSCTL_MODE = '--cni-ts-netns-sysctl';

const isNetSysctl = (p: unknown): p is string => typeof p === 'string' && p.startsWith(NET_SYSCTL_ROOT) && !p.split('/').some((s) => s === '..' || s === '.');

/**
 * The child's work (runs inside the target netns). Values are read with the trailing newline the
 * kernel adds removed, and written verbatim, like the reference's os.WriteFile. Undo on failure
 * happens here, so a failed ADD leaves nothing half-written. Paths are checked again here.
 */
export function applySysctlJob(job: SysctlJob): SysctlOutcome {
  const get = (p: string): string | null => {
    try {
      return readFileSync(p, 'utf8').replace(/\n$/, '');
    } catch {
      return null;
    }
  };
  const allOrNothing = job.mode !== 'best-effort';
  const values: Record<string, string | null> = {};
  const errors: SysctlOutcome['errors'] = [];
  const done: [string, string | null][] = [];
  for (const p of job.read ?? []) values[p] = isNetSysctl(p) ? get(p) : null;
  for (const [p, v] of job.write ?? []) {
    if (!isNetSysctl(p)) {
      errors.push({ path: p, message: 'not a network sysctl' });
      if (allOrNothing) break;
      continue;
    }
    const old = get(p);
    values[p] = old;
    try {
      writeFileSync(p, v);
      done.push([p, old]);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      errors.push({ path: p, message: err.code === 'ENOENT' ? 'no such sysctl' : String(err.message) });
      if (allOrNothing) break;
    }
  }
  if (errors.length && allOrNothing) {
    for (const [p, old] of done.reverse()) {
      if (old === null) continue;
      try {
        writeFileSync(p, old);
      } catch {
        /* best effort: the failure that caused the undo is what gets reported */
      }
    }
  }
  return { values, errors };
}

registerMode(SYSCTL_MODE, () => {
  const job = JSON.parse(readFileSync(0, 'utf8')) as SysctlJob;
  process.stdout.write(JSON.stringify(applySysctlJob(job)));
});

/**
 * Runs `job` inside the netns at `netns` (a path); one child process. A child that fails or
 * answers nonsense is a CommandError, like any other failed command.
 */
export async function netnsSysctl(netns: string, job: SysctlJob): Promise<SysctlOutcome> {
  if (!job.read?.length && !job.write?.length) return { values: {}, errors: [] };
  const argv = selfArgv([SYSCTL_MODE]);
  const res = await run(argv, { netns, input: JSON.stringify(job) });
  try {
    return JSON.parse(res.stdout) as SysctlOutcome;
  } catch {
    throw new CommandError(argv, res.exitCode, res.stderr, netns, `sysctl helper in ${netns} answered: ${res.stdout.slice(0, 200) || res.stderr.slice(0, 200)}`);
  }
}

/**
 * Writes one value to several network sysctls of another netns, best-effort, with the smallest
 * child there is: `nsenter --net=<ns> -- tee <paths…>` (coreutils) fed the value on stdin. About
 * 2 ms against some 40 ms for the Node child above; for writes whose failure the reference also
 * ignores (macvlan's arp_notify/ndisc_notify). Paths outside /proc/sys/net are refused.
 */
export async function netnsSysctlSetAll(netns: string, paths: string[], value: string): Promise<void> {
  const bad = paths.find((p) => !isNetSysctl(p));
  if (bad !== undefined) throw new Error(`not a network sysctl: ${bad}`);
  if (paths.length === 0) return;
  await run(['tee', '--', ...paths], { netns, input: value, nothrow: true });
}
