/**
 * Starting the per-host service (lib/serve/service.ts) on demand, and its lib/daemon spec. Loaded
 * only by a plugin that a served-mode stub ran itself because no service took the call.
 */
import { existsSync, rmSync } from 'node:fs';
import { basename } from 'node:path';
import { ensureRunning, type DaemonSpec } from '../daemon/daemon';
import { getMulticallPath, isBinary, MULTICALL_NAME } from '../self/self';
import { serviceMode, servicePaths } from './protocol';

/** The word after the multi-call program that makes it the service: `cni-ts serve`. */
export const SERVE_WORD = 'serve';

/** argv that runs this build's multi-call program as the service; undefined outside one. */
export function serviceArgv(): string[] | undefined {
  if (isBinary()) return [process.execPath, SERVE_WORD];
  const script = getMulticallPath();
  return script ? [process.execPath, script, SERVE_WORD] : undefined;
}

/** The service as lib/daemon knows it: pid, log and lock file in `dir`; ready once its FIFO exists. */
export function serviceSpec(dir: string, argv: string[] = serviceArgv() ?? []): DaemonSpec {
  return {
    name: 'cni-ts service',
    dir,
    argv,
    base: 'service',
    matches: (c) => c.includes(SERVE_WORD) && c.some((a) => basename(a) === MULTICALL_NAME),
    ready: (pid) => existsSync(servicePaths(dir).fifo(pid)),
    // lib/daemon passes no CNI_* variable on: name the service's own settings explicitly.
    env: {
      // Measured on a 36-call bridge workload: peak RSS 57.8 MiB by default, 48.8 MiB without the
      // JIT and with a 1 MiB young generation, at 12% less CPU (the service's JavaScript is
      // short glue between spawns; compiling it cost more than it saved). Both flags are allowed
      // in NODE_OPTIONS, which the single-executable binary obeys too. Nothing here needs
      // WebAssembly (the etcd client is node:http, not fetch).
      NODE_OPTIONS: '--jitless --max-semi-space-size=1',
      CNI_TS_SERVICE_DIR: dir,
      ...Object.fromEntries(['CNI_TS_SERVICE_IDLE', 'CNI_TS_SERVICE_DEBUG'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : []))),
    },
  };
}

/**
 * Starts the service unless served mode is off or `use` (an operator runs it), or it runs
 * already. Does not wait for it: this call is being handled here anyway. Never throws.
 */
export async function startForNextCalls(stderr: (s: string) => void): Promise<void> {
  const dir = process.env.CNI_TS_VIA_STUB;
  // This process is the stub itself (it execs us): what it or a service left in q/ under its
  // pid is ours to remove. Our stdin may be one of those files: it stays readable once unlinked.
  if (dir) {
    const paths = servicePaths(dir);
    for (const f of [paths.input, paths.stdin, paths.done]) rmSync(f(process.pid), { force: true });
  }
  const argv = serviceArgv();
  if (!dir || !argv || serviceMode((k) => process.env[k]) !== 'auto') return;
  try {
    await ensureRunning(serviceSpec(dir, argv), { noWait: true, lockTimeoutMs: 2_000 });
  } catch (e) {
    stderr(`cni-ts: the per-host service was not started (this call ran in-process): ${(e as Error).message}`);
  }
}
