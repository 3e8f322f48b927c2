/**
 * flock(2) on a file, compatible with the reference plugins' lock (go-filemutex flocks
 * `<dir>/lock`), so our host-local and theirs exclude each other on a shared dataDir.
 *
 * Node cannot call flock itself. We open the file and hand the descriptor to flock(1) as its
 * fd 3: a flock belongs to the open file description, which we share with the child, so the
 * lock stays held by our descriptor after flock(1) exits, until we close it.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { run } from '../exec/run';
import { CniError, ErrCode } from '../skel/errors';

export interface Lock {
  release(): void;
}

/** Takes an exclusive lock on `path` (created if missing); waits up to timeoutMs. */
export async function lockFile(path: string, timeoutMs = 30_000): Promise<Lock> {
  // O_NOFOLLOW: a symlink planted as the lock file must not make us create or open a file elsewhere.
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new CniError(ErrCode.IOFailure, `failed to open lock file ${path}`, (e as Error).message);
  }
  const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
  const res = await run(['flock', '--exclusive', '--timeout', String(secs), '3'], {
    extraFds: [fd],
    nothrow: true,
    timeoutMs: timeoutMs + 2000,
  });
  if (res.exitCode !== 0) {
    closeSync(fd);
    throw new CniError(ErrCode.TryAgainLater, `failed to lock ${path}`, res.stderr.trim() || `flock exit code ${res.exitCode}`);
  }
  let released = false;
  return {
    release() {
      if (!released) {
        released = true;
        closeSync(fd);
      }
    },
  };
}

/** Callers of withLock in this process for one path: their queue, and the flock while any is in it. */
interface Slot {
  users: number;
  tail: Promise<void>;
  lock?: Lock;
}
const slots = new Map<string, Slot>();

/**
 * Runs fn while holding the lock on `path`. Callers in this process take turns in a queue, and
 * the flock is taken by the first of them and released when the queue is empty: one flock(1)
 * per wave instead of one per caller. In a plugin process that is one caller; in the served-mode
 * service (lib/serve) it is every concurrent call on one network, which then pay one process
 * between them while other processes (the reference's host-local, a plugin running in-process)
 * are still excluded for as long as any of them holds it.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  let slot = slots.get(path);
  if (!slot) {
    slot = { users: 0, tail: Promise.resolve() };
    slots.set(path, slot);
  }
  const s = slot;
  s.users++;
  const turn = s.tail;
  let done!: () => void;
  s.tail = new Promise<void>((r) => (done = r));
  try {
    await turn;
    s.lock ??= await lockFile(path);
    return await fn();
  } finally {
    if (--s.users === 0) {
      s.lock?.release();
      s.lock = undefined;
      slots.delete(path);
    }
    done();
  }
}
