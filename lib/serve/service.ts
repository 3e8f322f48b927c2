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
import { chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
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
      const m = /^(\d+)\.(in|out)$/.exec(f);
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
    let out: number;
    try {
      out = openSync(paths.output(req.stubPid), constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      // The stub is gone (killed by its runtime): nobody to answer.
      rmSync(paths.input(req.stubPid), { force: true });
      rmSync(paths.output(req.stubPid), { force: true });
      return;
    }
    // From here on the stub gets exactly one answer, whatever happens: it waits for as long as
    // we live.
    let answer: { code: number; out: string } | 'decline' = 'decline';
    try {
      rmSync(paths.output(req.stubPid), { force: true });
      const plugin = pluginFor(req.plugin);
      let why: string | undefined;
      if (closing !== undefined) why = closing;
      else if (fileId(exe) !== exeId) why = `${exe} changed on disk`;
      else if (req.buildId !== id) why = `a call from build ${req.buildId}`;
      else if (!plugin) why = `unknown plugin ${req.plugin}`;
      else if (!sameNs(req.stubPid, 'net') || !sameNs(req.stubPid, 'mnt')) why = 'a call from another namespace';
      if (why !== undefined || !plugin) {
        if (debug) logLine(`declined pid ${req.stubPid} (${req.plugin}): ${why}`);
        // An upgrade replaced us: make way (the stub's fallback starts the new build's service).
        if (closing === undefined && fileId(exe) !== exeId) shutdown(why ?? 'upgrade');
        return;
      }
      const env = parseEnviron(readFileSync(`/proc/${req.stubPid}/environ`));
      const stdin = readFileSync(paths.input(req.stubPid));
      // Taken: from here on a stub that sees us die runs the call with CNI_TS_RECOVER.
      rmSync(paths.input(req.stubPid), { force: true });
      const errs: string[] = [];
      const io: Io = {
        getenv: (k) => env.get(k),
        readStdin: () => stdin,
        finish: () => undefined,
        stderr: (t) => errs.push(t.endsWith('\n') ? t : t + '\n'),
      };
      const t0 = Date.now();
      answer = await runAsPlugin(req.plugin, () => dispatch(plugin, io));
      if (errs.length) {
        // Non-blocking: a caller whose stderr pipe is full must not stall every other call.
        let efd: number | undefined;
        try {
          efd = openSync(`/proc/${req.stubPid}/fd/2`, constants.O_WRONLY | constants.O_APPEND | constants.O_NONBLOCK);
          writeSync(efd, errs.join(''));
        } catch {
          /* the caller's stderr is closed, full or not a file we can open */
        } finally {
          if (efd !== undefined) closeSync(efd);
        }
      }
      served++;
      if (debug) logLine(`served ${env.get('CNI_COMMAND')} ${req.plugin} for pid ${req.stubPid} (${env.get('CNI_CONTAINERID') ?? ''}): exit ${answer.code} in ${Date.now() - t0} ms`);
    } catch (e) {
      // Not taken yet: the stub runs the call itself. Taken: dispatch() answers every error
      // itself, so this is a fault of ours; the stub's runtime gets a CNI error and retries.
      logLine(`request of pid ${req.stubPid} (${req.plugin}): ${(e as Error)?.stack ?? String(e)}`);
      if (!existsSync(paths.input(req.stubPid)) && answer === 'decline') {
        answer = { code: 1, out: JSON.stringify(new CniError(ErrCode.TryAgainLater, 'the cni-ts service failed on this call; try again', (e as Error)?.message ?? String(e)).toJSON(CURRENT_VERSION)) };
      }
    } finally {
      await reply(req, out, answer);
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
