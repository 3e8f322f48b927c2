/**
 * Served mode: the per-host cni-ts service and the bash stubs that hand it their calls. This file
 * is the protocol both sides agree on (scripts/stub.mjs writes the stub side in bash; the
 * service side is service.ts). It is small on purpose: the stub spawns no process at all on its
 * fast path (a Node client would cost more, ~70-100 ms to start, than the reference plugins take
 * for a whole ADD), and it reads and writes only a few bytes itself: bash reads a pipe one byte
 * per system call, so the service reads the call's stdin and writes its stdout directly.
 *
 * The service directory (CNI_TS_SERVICE_DIR, default /run/cni-ts, mode 0700: root only):
 *   service.pid        the service's pid (lib/daemon pid file)
 *   service.log        its log (lib/daemon)
 *   service.lock       taken to start or stop it (lib/daemon)
 *   requests.<pid>     the FIFO the service with that pid reads requests from; it exists only
 *                      while that service accepts requests, so a stub that finds the pid alive
 *                      and this FIFO present knows the service is ready
 *   q/<stubpid>.in     made (empty) when the service takes the call, before it reads the stub's
 *                      stdin; holds that config once read: a stub whose service died can run the
 *                      call itself from it
 *   q/<stubpid>.done   what .in becomes once the call is done and its output is being written
 *   q/<stubpid>.stdin  the config of a stub whose stdin is a socket (a caller written in Node:
 *                      /proc cannot reopen a socket), written by the stub, which then reads it
 *                      as its stdin; swept once that stub is gone
 *
 * The stub makes a pipe without a process (a bash here-string is a pipe, which it reopens
 * read-write through /proc/self/fd/3 so that it never reads as ended) and writes one line to
 * requests.<pid>: "<stubpid> <plugin> <build id>\n" (shorter than PIPE_BUF, so concurrent stubs
 * never interleave). The service reads the call's environment from /proc/<stubpid>/environ (the
 * stub changes nothing in it), checks that the stub runs in its own network and mount
 * namespaces, reads the config from /proc/<stubpid>/fd/0, writes the result to /proc/<stubpid>/fd/5
 * (the stub's copy of its stdout: fd 1 itself points at the FIFO while the stub writes its
 * request) when that is a pipe or a character device (else the answer carries it) and anything for
 * stderr to /proc/<stubpid>/fd/2. It answers on /proc/<stubpid>/fd/3 with one NUL-terminated
 * message: "<exit code> <stdout text, when not written already>", or "D" when it declines
 * (another build, its executable changed on disk, shutting down, another namespace, a stdin it
 * cannot read without consuming it): the stub then runs the call itself, stdin untouched.
 *
 * A stub that sees the service die while it waits (it checks /proc/<pid> every 0.5 s) looks at
 * what the service left: nothing, the call was not taken and it runs it itself; an empty .in,
 * its stdin may be half read and it fails with "try again later" (11); a full .in, it runs the
 * call itself from it with CNI_TS_RECOVER=1, which makes an ADD first undo whatever the dead
 * service may have half-made (a DEL); a .done, the output may be half written and it fails.
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
  done: (stubPid: number) => string;
  stdin: (stubPid: number) => string;
}

export function servicePaths(dir: string): ServicePaths {
  const queue = join(dir, 'q');
  return {
    dir,
    queue,
    fifo: (pid) => join(dir, `requests.${pid}`),
    input: (p) => join(queue, `${p}.in`),
    done: (p) => join(queue, `${p}.done`),
    stdin: (p) => join(queue, `${p}.stdin`),
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
