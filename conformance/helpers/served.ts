// Served mode in the conformance suites (README "Served mode"). By default every plugin call is
// in-process (CNI_TS_SERVICE=off: a served-mode stub must never start a service the test did not
// ask for). CONFORMANCE_SERVED=1 runs the suites through the stubs with a service per sandbox
// host, in /run/cni-ts-test/<host netns name>: the service runs in the network namespace of the
// first call that starts it and declines calls from any other, so one directory per host.
// Every such service is stopped by pid when its host's sandbox is cleaned up.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { stopDaemon } from '../../lib/daemon/daemon';
import { serviceSpec } from '../../lib/serve/start';
import type { Netns } from './netns';
import { IMPL, PLUGIN_DIR } from './plugin-dir';
import type { RuntimeSandbox } from './runtime-sandbox';

export const SERVED = process.env.CONFORMANCE_SERVED === '1';
export const SERVED_ROOT = '/run/cni-ts-test';

/** The service directory of a sandbox host. */
export function serviceDirOf(host: Netns): string {
  return join(SERVED_ROOT, host.name);
}

/** The served-mode variables of a call made in `host`. */
export function servedEnv(host: Netns): Record<string, string> {
  if (!SERVED) return { CNI_TS_SERVICE: 'off' };
  return { CNI_TS_SERVICE: 'auto', CNI_TS_SERVICE_DIR: serviceDirOf(host), CNI_TS_SERVICE_DEBUG: '1' };
}

/** The pid in dir's pid file when that process is alive, else undefined. */
export function servicePid(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, 'service.pid'), 'utf8').trim());
    return pid > 1 && existsSync(`/proc/${pid}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stops the service in dir by pid (SIGTERM, then SIGKILL) and removes the directory. */
export async function stopServiceIn(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  await stopDaemon(serviceSpec(dir, ['/x/cni-ts', 'serve']), { graceMs: 3000 });
  const pid = servicePid(dir);
  if (pid !== undefined) throw new Error(`service in ${dir} (pid ${pid}) is still running`);
  // Kept for a failure's post-mortem (the suite's own temp space; small).
  if (process.env.CONFORMANCE_SERVED_LOGS && existsSync(join(dir, 'service.log'))) {
    mkdirSync(process.env.CONFORMANCE_SERVED_LOGS, { recursive: true });
    copyFileSync(join(dir, 'service.log'), join(process.env.CONFORMANCE_SERVED_LOGS, `${basename(dir)}.log`));
  }
  rmSync(dir, { recursive: true, force: true });
  // The shared root goes with its last host's directory.
  if (dir.startsWith(`${SERVED_ROOT}/`)) {
    try {
      rmdirSync(SERVED_ROOT);
    } catch {
      /* another host's service directory is still there */
    }
  }
}

/** Every service a served run left under SERVED_ROOT (for a suite-level check). */
export function leftoverServices(): string[] {
  if (!existsSync(SERVED_ROOT)) return [];
  return readdirSync(SERVED_ROOT).filter((d) => servicePid(join(SERVED_ROOT, d)) !== undefined);
}

/**
 * For the client suites (podman, containerd, CRI): stops the service our stubs started inside a
 * runtime sandbox. When the plugin dir is a served layout (stubs beside cni-ts), the runtime's
 * calls must have gone through it: it ran and served some.
 */
export async function stopServiceOf(sb: RuntimeSandbox): Promise<void> {
  const r = await sb.stopPluginService();
  if (existsSync(join(PLUGIN_DIR, 'cni-ts')) && IMPL === 'ours' && !(r && r.calls > 0)) {
    throw new Error(`served layout ${PLUGIN_DIR}: the runtime's calls did not go through a service (${JSON.stringify(r)})`);
  }
}
