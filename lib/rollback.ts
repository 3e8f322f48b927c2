import { CniError, ErrCode } from './skel/errors';

/**
 * Undo steps pushed right after each side effect of an ADD; run in reverse if the ADD fails.
 * Undo failures go to stderr and never replace the error that caused the rollback.
 */
export class Rollback {
  private steps: { what: string; fn: () => Promise<unknown> }[] = [];
  private done = false;

  push(what: string, fn: () => Promise<unknown>): void {
    this.steps.push({ what, fn });
  }

  /** The ADD succeeded: forget the undo steps. */
  commit(): void {
    this.done = true;
    this.steps = [];
  }

  /** Runs the undo steps, newest first; reports each failure on stderr. */
  async run(log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<void> {
    if (this.done) return;
    for (const s of this.steps.reverse()) {
      try {
        await s.fn();
      } catch (e) {
        log(`rollback: failed to ${s.what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    this.steps = [];
  }
}

/**
 * Runs the body of an ADD with a Rollback: the undo steps it pushes run, newest first, if it
 * throws (and the error is rethrown), and are dropped if it returns.
 */
export async function withRollback<T>(body: (undo: Rollback) => Promise<T>): Promise<T> {
  const undo = new Rollback();
  try {
    const out = await body(undo);
    undo.commit();
    return out;
  } catch (e) {
    await undo.run();
    throw e;
  }
}

/** One step of a DEL: what it does, and the step; `false` leaves it out. */
export type DelStep = [what: string, fn: () => Promise<unknown>] | false | undefined;

/**
 * Runs every step of a DEL at once and waits for all of them (DEL is best-effort, and its steps
 * — lease release, link delete, rule teardown — do not depend on each other), then throws one
 * error naming every failure, in step order: `<plugin> DEL: IPAM DEL: …; delete eth0: …`.
 * GC runs its steps (IPAM GC, rule GC) the same way, with `verb` 'GC'.
 */
export async function bestEffort(plugin: string, steps: DelStep[], verb: 'DEL' | 'GC' = 'DEL'): Promise<void> {
  const todo = steps.filter((s): s is [string, () => Promise<unknown>] => Boolean(s));
  const settled = await Promise.allSettled(todo.map(([, fn]) => fn()));
  const errors = settled.flatMap((r, i) => (r.status === 'rejected' ? [`${todo[i]![0]}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`] : []));
  if (errors.length) throw new CniError(ErrCode.Internal, `${plugin} ${verb}: ${errors.join('; ')}`);
}

/** Test hook: throws when CNI_TS_FAILPOINT names this point, to prove rollback leaves nothing behind. */
export function failpoint(name: string): void {
  if (process.env.CNI_TS_FAILPOINT === name) throw new Error(`failpoint ${name} triggered`);
}

/**
 * Waits for every step of an ADD phase (so each has pushed its undo before a rollback), then
 * throws the first failure; resolves to the steps' values in order.
 */
export async function settleAll<T extends unknown[]>(steps: [...{ [K in keyof T]: Promise<T[K]> }]): Promise<T> {
  const settled = await Promise.allSettled(steps);
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as T;
}
