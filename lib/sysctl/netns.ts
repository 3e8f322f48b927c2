/**
 * Network sysctls of another network namespace. /proc/sys/net shows the netns of the process
 * that opens the file, and Node cannot setns(2), so the reads and writes run in one child:
 * `nsenter --net=<ns> -- node -e <SCRIPT>`, which gets its work as JSON on stdin and answers
 * with JSON on stdout. One process per phase, whatever the number of keys; no shell, and no
 * dependency on procps' sysctl (whose '.'/'/' key rules differ from the reference's).
 */
import { run } from '../exec/run';

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

// Runs in the child (plain JS, kept free of anything esbuild could rename). Values are read with
// the trailing newline the kernel adds removed, and written verbatim, like the reference's
// os.WriteFile. Undo on failure happens here, so a failed ADD leaves nothing half-written.
const SCRIPT = `
const fs = require('fs');
const job = JSON.parse(fs.readFileSync(0, 'utf8'));
const ROOT = ${JSON.stringify(NET_SYSCTL_ROOT)};
const ok = (p) => typeof p === 'string' && p.startsWith(ROOT) && !p.split('/').some((s) => s === '..' || s === '.');
const get = (p) => { try { return fs.readFileSync(p, 'utf8').replace(/\\n$/, ''); } catch { return null; } };
const values = {}; const errors = []; const done = [];
for (const p of job.read || []) values[p] = ok(p) ? get(p) : null;
for (const [p, v] of job.write || []) {
  if (!ok(p)) { errors.push({ path: p, message: 'not a network sysctl' }); if (job.mode !== 'best-effort') break; continue; }
  const old = get(p);
  values[p] = old;
  try { fs.writeFileSync(p, v); done.push([p, old]); }
  catch (e) { errors.push({ path: p, message: e.code === 'ENOENT' ? 'no such sysctl' : String(e.message) }); if (job.mode !== 'best-effort') break; }
}
if (errors.length && job.mode !== 'best-effort') {
  for (const [p, old] of done.reverse()) { if (old !== null) { try { fs.writeFileSync(p, old); } catch {} } }
}
process.stdout.write(JSON.stringify({ values, errors }));
`;

/** Runs `job` inside the netns at `netns` (a path); one child process. */
export async function netnsSysctl(netns: string, job: SysctlJob): Promise<SysctlOutcome> {
  if (!job.read?.length && !job.write?.length) return { values: {}, errors: [] };
  const res = await run([process.execPath, '-e', SCRIPT], { netns, input: JSON.stringify(job) });
  try {
    return JSON.parse(res.stdout) as SysctlOutcome;
  } catch {
    throw new Error(`sysctl helper in ${netns} answered: ${res.stdout.slice(0, 200) || res.stderr.slice(0, 200)}`);
  }
}

/**
 * Writes one value to several network sysctls of another netns, best-effort, with the smallest
 * child there is: `nsenter --net=<ns> -- tee <paths…>` (coreutils) fed the value on stdin. About
 * 2 ms against some 40 ms for the Node child above; for writes whose failure the reference also
 * ignores (macvlan's arp_notify/ndisc_notify). Paths outside /proc/sys/net are refused.
 */
export async function netnsSysctlSetAll(netns: string, paths: string[], value: string): Promise<void> {
  const bad = paths.find((p) => !p.startsWith(NET_SYSCTL_ROOT) || p.split('/').some((s) => s === '..' || s === '.'));
  if (bad !== undefined) throw new Error(`not a network sysctl: ${bad}`);
  if (paths.length === 0) return;
  await run(['tee', '--', ...paths], { netns, input: value, nothrow: true });
}
