/**
 * The per-host cni-ts service: `cni-ts serve` (the multi-call program, binary or bundle). It loads
 * every plugin once and runs the calls the served-mode stubs hand it (protocol.ts) through the
 * same dispatch() a plugin process runs, so there is one implementation of every verb. Started
 * on demand by a stub's in-process fallback (start.ts, under lib/daemon's lock) or by an
 * operator (`cni-ts serve` under systemd).
 *
 * What makes it safe to kill at any moment: it holds no state of its own. Every request works on
 * the same on-disk state under the same locks as an in-process call (host-local's flock, the
 * netfilter transactions), and a stub whose service dies runs the call itself (with
 * CNI_TS_RECOVER for a taken ADD). It declines what it must not serve: calls from another build
 * (an upgrade), from another network or mount namespace, and everything once its executable has
 * changed on disk or it is going away. It exits after CNI_TS_SERVICE_IDLE seconds (default 600)
 * without a request, and on SIGTERM/SIGINT after the calls in flight.
 */
import { chmodSync, closeSync, constants, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { run } from '../exec/run';
import { hasExited, logLine } from '../daemon/daemon';
import { dispatch, type Io, type Plugin } from '../skel/dispatch';
import { CniError, ErrCode } from '../skel/errors';
import { CURRENT_VERSION } from '../skel/versions';
import { isBinary, runAsPlugin } from '../self/self';
import { buildId, encodeReply, parseEnviron, parseRequest, serviceDir, servicePaths, type Request } from './protocol';

/** The multi-call table: each plugin's definition, loaded on demand (lib/self/multicall.ts). */
export type ServeTable = Record<string, () => Plugin>;

const DEFAULT_IDLE_S = 600;

function fileId(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

function sameNs(pid: number, kind: 'net' | 'mnt'): boolean {
  try {
    const a = statSync(`/proc/${pid}/ns/${kind}`);
    const b = statSync(`/proc/self/ns/${kind}`);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/** Alive and not a zombie (a killed service may wait for its reaper a while). */
const alive = (pid: number): boolean => !hasExited(pid);

/** Writes all of buf to a non-blocking pipe, waiting out a full pipe (the stub reads as we write). */
async function writeAll(fd: number, buf: Buffer): Promise<void> {
  let off = 0;
  for (let spins = 0; off < buf.length; ) {
    try {
      off += writeSync(fd, buf, off);
      spins = 0;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || ++spins > 2000) throw e;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** The stub's stdin, opened anew through /proc without disturbing it until read. */
interface Stdin {
  read(): Promise<Buffer>;
  close(): void;
}

/**
 * Opens a stub's stdin (/proc/<pid>/fd/0) when reading it here is safe: a pipe (read to its end
 * without blocking the service), a regular file (from the stub's own offset, which stays where it
 * was) or /dev/null. Anything else (a terminal, a socket) is left to the stub: undefined.
 */
function openStdin(path: string): Stdin | undefined {
  let st;
  try {
    st = statSync(path);
  } catch {
    return undefined;
  }
  if (st.isCharacterDevice()) {
    return st.rdev === DEV_NULL ? { read: async () => Buffer.alloc(0), close: () => undefined } : undefined;
  }
  if (st.isFile()) {
    // Opened anew, the file starts at 0: read from where the stub's descriptor stands.
    const pos = Number(/^pos:\s*(\d+)/m.exec(readFileSync(path.replace('/fd/', '/fdinfo/'), 'utf8'))?.[1] ?? 0);
    return { read: async () => readFileSync(path).subarray(pos), close: () => undefined };
  }
  if (!st.isFIFO()) return undefined;
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  let closed = false;
  const close = (): void => {
    if (!closed) closeSync(fd);
    closed = true;
  };
  return {
    read: async () => {
      try {
        return await readToEnd(fd, path);
      } finally {
        close();
      }
    },
    close,
  };
}

/**
 * Reads a non-blocking pipe to its end, polling. Not through the event loop: a pipe opened
 * anew through /proc after its last writer closed (the runtime wrote the config and closed its
 * end before the stub even started, which is the common case) never reports its end to epoll
 * (Linux only signals a hang-up to a FIFO reader that saw the writer leave), but read() returns
 * 0 at once. While a writer holds it with nothing written, waits 1 ms, doubling up to 50 ms,
 * for as long as the stub lives.
 */
async function readToEnd(fd: number, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(64 * 1024);
  const pid = Number(/^\/proc\/(\d+)\//.exec(path)?.[1]);
  for (let wait = 1; ; ) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      if (pid && hasExited(pid)) throw new Error(`pid ${pid} went away before its config was written`);
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 50);
      continue;
    }
    if (n === 0) return Buffer.concat(chunks);
    chunks.push(Buffer.from(buf.subarray(0, n)));
    wait = 1;
  }
}

/** makedev(1, 3) as stat reports it. */
const DEV_NULL = (1 << 8) | 3;

/**
 * Opens one of the stub's descriptors through /proc for writing, without blocking: a caller
 * whose pipe is full or closed must not stall every other call. With `onlyStreams`, only a pipe
 * or a terminal (a file opened anew would not share the stub's offset). undefined when it
 * cannot (closed, a socket, or a file with onlyStreams).
 */
function openCallerFd(path: string, flags: number, onlyStreams = false): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK | flags);
    const st = fstatSync(fd);
    if (!onlyStreams || st.isFIFO() || st.isCharacterDevice()) return fd;
  } catch {
    /* fall through */
  }
  if (fd !== undefined) closeSync(fd);
  return undefined;
}

export async function serviceMain(table: ServeTable): Promise<void> {
  const dir = serviceDir((k) => process.env[k]);
  const paths = servicePaths(dir);
  const id = buildId();
  const exe = isBinary() ? process.execPath : process.argv[1]!;
  const exeId = fileId(exe);
  const idleMs = Math.max(1, Number(process.env.CNI_TS_SERVICE_IDLE) || DEFAULT_IDLE_S) * 1000;
  const debug = process.env.CNI_TS_SERVICE_DEBUG === '1';

  // Every plugin's definition, loaded once (their modules register in-process IPAM and the like).
  // Each plugin's modules are loaded on its first call: a host that runs bridge, host-local and
  // portmap never holds overlay's etcd client or dnsname in memory (measured: ~2 MiB less RSS
  // at start with 14 plugins), and the first call of a plugin pays its load once (a few ms).
  const loaded = new Map<string, Plugin>();
  const pluginFor = (name: string): Plugin | undefined => {
    if (!Object.prototype.hasOwnProperty.call(table, name)) return undefined;
    let p = loaded.get(name);
    if (!p) loaded.set(name, (p = table[name]!()));
    return p;
  };

  mkdirSync(paths.queue, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  chmodSync(paths.queue, 0o700);
  // What dead services and dead stubs left behind.
  for (const f of readdirSync(dir)) {
    const m = /^requests\.(\d+)$/.exec(f);
    if (m && (Number(m[1]) === process.pid || !alive(Number(m[1])))) rmSync(`${dir}/${f}`, { force: true });
  }
  const sweepQueue = (): void => {
    for (const f of readdirSync(paths.queue)) {
      const m = /^(\d+)\.(in|in\.tmp|done|stdin)$/.exec(f);
      if (m && !alive(Number(m[1]))) rmSync(`${paths.queue}/${f}`, { force: true });
    }
  };
  sweepQueue();

  const fifo = paths.fifo(process.pid);
  // Made under another name and opened before it gets its own: a FIFO that nobody holds open
  // drops what is written to it when its last writer closes, so a stub must never find ours
  // before we hold it. O_RDWR: it never reads as ended when the last stub closes it.
  const fresh = `${dir}/.requests.${process.pid}.new`;
  rmSync(fresh, { force: true });
  await run(['mkfifo', '-m', '600', fresh]);
  const fd = openSync(fresh, constants.O_RDWR | constants.O_NONBLOCK);
  renameSync(fresh, fifo);
  const input = new Socket({ fd, readable: true, writable: false });
  // Our own pid file too (lib/daemon wrote it when a plugin started us; an operator's start did not).
  const pidFile = `${dir}/service.pid`;
  writeFileSync(`${pidFile}.${process.pid}.tmp`, `${process.pid}\n`);
  renameSync(`${pidFile}.${process.pid}.tmp`, pidFile);
  logLine(`serving ${Object.keys(table).length} plugins (build ${id}, pid ${process.pid}) on ${fifo}; idle exit after ${idleMs / 1000} s`);

  let inflight = 0;
  let closing: string | undefined;
  let served = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdle = (): void => {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => shutdown(`idle for ${idleMs / 1000} s`), idleMs);
  };

  const finishIfDone = (): void => {
    if (closing !== undefined && inflight === 0) {
      logLine(`exiting (${closing}) after ${served} calls`);
      process.exit(0);
    }
  };

  /** Stop taking requests: new stubs see no FIFO and run calls themselves; queued ones are declined. */
  function shutdown(why: string): void {
    if (closing !== undefined) return;
    closing = why;
    if (idleTimer) clearTimeout(idleTimer);
    rmSync(fifo, { force: true });
    try {
      if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile, { force: true });
    } catch {
      /* gone already */
    }
    // Lines already in the pipe get read (and declined) before we go.
    setTimeout(() => {
      input.destroy();
      finishIfDone();
    }, 50);
  }

  const reply = async (req: Request, out: number, r: { code: number; out: string } | 'decline'): Promise<void> => {
    try {
      await writeAll(out, encodeReply(r));
    } catch (e) {
      logLine(`request of pid ${req.stubPid}: the answer could not be written: ${(e as Error).message}`);
    } finally {
      closeSync(out);
    }
  };

  async function handle(req: Request): Promise<void> {
    const fdPath = (n: number): string => `/proc/${req.stubPid}/fd/${n}`;
    let out: number;
    try {
      out = openSync(fdPath(3), constants.O_WRONLY | constants.O_NONBLOCK);
      if (!fstatSync(out).isFIFO()) {
        closeSync(out);
        throw new Error('fd 3 is no pipe');
      }
    } catch {
      // The stub is gone (killed by its runtime), or that pid is no stub any more: nobody to answer.
      return;
    }
    // From here on the stub gets exactly one answer, whatever happens: it waits for as long as
    // we live. Until `taken`, that answer may be a decline (its stdin is untouched).
    let answer: { code: number; out: string } | 'decline' = 'decline';
    let taken = false;
    try {
      const plugin = pluginFor(req.plugin);
      let why: string | undefined;
      if (closing !== undefined) why = closing;
      else if (fileId(exe) !== exeId) why = `${exe} changed on disk`;
      else if (req.buildId !== id) why = `a call from build ${req.buildId}`;
      else if (!plugin) why = `unknown plugin ${req.plugin}`;
      else if (!sameNs(req.stubPid, 'net') || !sameNs(req.stubPid, 'mnt')) why = 'a call from another namespace';
      const env = why === undefined ? parseEnviron(readFileSync(`/proc/${req.stubPid}/environ`)) : undefined;
      const stdin = why === undefined ? openStdin(fdPath(0)) : undefined;
      if (why === undefined && !stdin) why = 'a stdin that is neither a pipe, a file nor /dev/null';
      if (why !== undefined || !plugin || !env || !stdin) {
        if (debug) logLine(`declined pid ${req.stubPid} (${req.plugin}): ${why}`);
        if (stdin) stdin.close();
        // An upgrade replaced us: make way (the stub's fallback starts the new build's service).
        if (closing === undefined && fileId(exe) !== exeId) shutdown(why ?? 'upgrade');
        return;
      }
      // Taken: from here on a stub that sees us die does not read its stdin again (.in tells it why).
      taken = true;
      const create = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
      rmSync(paths.done(req.stubPid), { force: true }); // a dead stub's of the same pid
      closeSync(openSync(paths.input(req.stubPid), create, 0o600));
      const config = await stdin.read();
      const tmp = `${paths.input(req.stubPid)}.tmp`;
      const tfd = openSync(tmp, create, 0o600);
      try {
        writeSync(tfd, config);
      } finally {
        closeSync(tfd);
      }
      renameSync(tmp, paths.input(req.stubPid));
      // The config is in .in now; the stub still reads its .stdin copy (if any) through its descriptor.
      rmSync(paths.stdin(req.stubPid), { force: true });
      const errs: string[] = [];
      const io: Io = {
        getenv: (k) => env.get(k),
        readStdin: () => config,
        finish: () => undefined,
        stderr: (t) => errs.push(t.endsWith('\n') ? t : t + '\n'),
      };
      const t0 = Date.now();
      const result = await runAsPlugin(req.plugin, () => dispatch(plugin, io));
      // Done: a stub that sees us die from here on must not run the call again (its output may be half written).
      renameSync(paths.input(req.stubPid), paths.done(req.stubPid));
      if (errs.length) {
        const efd = openCallerFd(fdPath(2), constants.O_APPEND);
        // A socket (a runtime's journal) cannot be opened through /proc: the log keeps it.
        if (efd === undefined) logLine(`stderr of pid ${req.stubPid} (${req.plugin} ${env.get('CNI_COMMAND')}): ${errs.join('').trimEnd()}`);
        else {
          try {
            writeSync(efd, errs.join(''));
          } catch {
            /* the caller's stderr is full: its loss */
          } finally {
            closeSync(efd);
          }
        }
      }
      answer = result;
      const ofd = result.out ? openCallerFd(fdPath(5), 0, true) : undefined;
      if (ofd !== undefined) {
        answer = { code: result.code, out: '' };
        try {
          await writeAll(ofd, Buffer.from(`${result.out}\n`));
        } catch (e) {
          logLine(`request of pid ${req.stubPid}: its stdout could not be written: ${(e as Error).message}`);
        } finally {
          closeSync(ofd);
        }
      }
      served++;
      if (debug) logLine(`served ${env.get('CNI_COMMAND')} ${req.plugin} for pid ${req.stubPid} (${env.get('CNI_CONTAINERID') ?? ''}): exit ${result.code} in ${Date.now() - t0} ms`);
    } catch (e) {
      // Not taken yet: the stub runs the call itself. Taken: dispatch() answers every error
      // itself, so this is a fault of ours; the stub's runtime gets a CNI error and retries.
      logLine(`request of pid ${req.stubPid} (${req.plugin}): ${(e as Error)?.stack ?? String(e)}`);
      if (taken && answer === 'decline') {
        answer = { code: 1, out: JSON.stringify(new CniError(ErrCode.TryAgainLater, 'the cni-ts service failed on this call; try again', (e as Error)?.message ?? String(e)).toJSON(CURRENT_VERSION)) };
      }
    } finally {
      await reply(req, out, answer);
      // Only after the answer: until then a stub whose service died goes by them. So they go a
      // moment after the stub may have exited. After a decline the stub's in-process run
      // removes its .stdin itself.
      if (taken) for (const f of [paths.input(req.stubPid), paths.done(req.stubPid), paths.stdin(req.stubPid)]) rmSync(f, { force: true });
    }
  }

  let buffered = '';
  input.setEncoding('utf8');
  input.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const req = parseRequest(line);
      if (!req) {
        logLine(`ignored a malformed request line: ${JSON.stringify(line.slice(0, 100))}`);
        continue;
      }
      inflight++;
      if (closing === undefined) armIdle();
      handle(req)
        .catch((e: unknown) => logLine(`request of pid ${req.stubPid} failed: ${(e as Error)?.stack ?? String(e)}`))
        .finally(() => {
          inflight--;
          finishIfDone();
        });
    }
  });
  input.on('error', (e) => logLine(`reading ${fifo}: ${e.message}`));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (e) => logLine(`unhandled rejection: ${(e as Error)?.stack ?? String(e)}`));
  setInterval(sweepQueue, 60_000).unref();
  armIdle();
}
