/**
 * Served mode: the per-host cni-ts service and the bash stubs that hand it their calls. This file
 * is the protocol both sides agree on (scripts/stub.mjs writes the stub side in bash; the
 * service side is service.ts). It is small on purpose: the stub may spawn nothing but one
 * mkfifo(1) on its fast path, since a Node client would cost more (~70-100 ms to start) than the
 * reference plugins take for a whole ADD.
 *
 * The service directory (CNI_TS_SERVICE_DIR, default /run/cni-ts, mode 0700: root only):
 *   service.pid        the service's pid (lib/daemon pid file)
 *   service.log        its log (lib/daemon)
 *   service.lock       taken to start or stop it (lib/daemon)
 *   requests.<pid>     the FIFO the service with that pid reads requests from; it exists only
 *                      while that service accepts requests, so a stub that finds the pid alive
 *                      and this FIFO present knows the service is ready
 *   q/<stubpid>.in     the config the stub read from its stdin (the service deletes it when it
 *                      takes the request: its absence tells the stub the request was taken)
 *   q/<stubpid>.out    a FIFO the stub made and reads the answer from
 *
 * A request is one line written to requests.<pid>: "<stubpid> <plugin> <build id>\n" (shorter
 * than PIPE_BUF, so concurrent stubs never interleave). The service reads the call's
 * environment from /proc/<stubpid>/environ (the stub changes nothing in it), checks that the
 * stub runs in its own network and mount namespaces, and answers on q/<stubpid>.out with one
 * NUL-terminated message: "<exit code> <stdout text>", or "D" when it declines (another build,
 * its executable changed on disk, shutting down, another namespace): the stub then runs the call
 * itself. Whatever the plugin writes to stderr goes to /proc/<stubpid>/fd/2.
 *
 * A stub that sees the service die while it waits (it polls /proc/<pid> every 0.5 s) runs the
 * call itself; if the request had been taken (q/<stubpid>.in is gone), with CNI_TS_RECOVER=1,
 * which makes an ADD first undo whatever the dead service may have half-made (a DEL).
 */
import { join } from 'node:path';

export const DEFAULT_SERVICE_DIR = '/run/cni-ts';

/** Served-mode switch in the caller's environment: auto (default), off, or use (never start one). */
export type ServiceMode = 'auto' | 'off' | 'use';

export function serviceMode(getenv: (k: string) => string | undefined): ServiceMode {
  const v = (getenv('CNI_TS_SERVICE') ?? '').toLowerCase();
  if (v === 'off' || v === '0' || v === 'false' || v === 'no') return 'off';
  if (v === 'use') return 'use';
  return 'auto';
}

export function serviceDir(getenv: (k: string) => string | undefined): string {
  return getenv('CNI_TS_SERVICE_DIR') || DEFAULT_SERVICE_DIR;
}

export interface ServicePaths {
  dir: string;
  queue: string;
  fifo: (pid: number) => string;
  input: (stubPid: number) => string;
  output: (stubPid: number) => string;
}

export function servicePaths(dir: string): ServicePaths {
  const queue = join(dir, 'q');
  return {
    dir,
    queue,
    fifo: (pid) => join(dir, `requests.${pid}`),
    input: (p) => join(queue, `${p}.in`),
    output: (p) => join(queue, `${p}.out`),
  };
}

export interface Request {
  stubPid: number;
  plugin: string;
  buildId: string;
}

/** One request line (without its newline); undefined when malformed. */
export function parseRequest(line: string): Request | undefined {
  const m = /^([1-9][0-9]{0,9}) ([A-Za-z0-9._-]{1,64}) ([A-Za-z0-9]{1,64})$/.exec(line);
  if (!m) return undefined;
  return { stubPid: Number(m[1]), plugin: m[2]!, buildId: m[3]! };
}

/** The answer to a stub: exit code and stdout, or a decline. NUL ends it (results never hold one). */
export function encodeReply(r: { code: number; out: string } | 'decline'): Buffer {
  if (r === 'decline') return Buffer.from('D\0');
  return Buffer.from(`${r.code} ${r.out.replace(/\0/g, '')}\0`);
}

/** /proc/<pid>/environ as a map (later duplicates win, as getenv's first match would not matter). */
export function parseEnviron(raw: Buffer): Map<string, string> {
  const env = new Map<string, string>();
  for (const kv of raw.toString('utf8').split('\0')) {
    const eq = kv.indexOf('=');
    if (eq > 0 && !env.has(kv.slice(0, eq))) env.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return env;
}

declare const __CNI_TS_BUILD_ID__: string | undefined;
/** This build's id (scripts/build-id.mjs; the same in the stubs); 'dev' when unbundled. */
export function buildId(): string {
  return typeof __CNI_TS_BUILD_ID__ === 'string' && __CNI_TS_BUILD_ID__ ? __CNI_TS_BUILD_ID__ : 'dev';
}
