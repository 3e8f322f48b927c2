import { asCniError, CniError, ErrCode, wrapError } from './skel/errors';

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

/**
 * One step run by runSteps: what it does (names its failure), and the step. `false` or
 * `undefined` leaves it out, so a conditional step reads `conf.ipMasq && ['…', () => …]`.
 */
export type Step<T = unknown> = readonly [what: string, fn: () => Promise<T>];
export type MaybeStep<T = unknown> = Step<T> | false | undefined;

/** What each step resolves to: undefined for a step left out. */
type StepValue<S> = S extends Step<infer T> ? T : undefined;
export type StepValues<S extends readonly MaybeStep[]> = { -readonly [K in keyof S]: StepValue<S[K]> };

/**
 * How runSteps reports failures.
 * - `first` (an ADD phase): the first failure in step order, as it was thrown. Waiting for all
 *   of them first means each step has pushed its undo before the rollback runs.
 * - `all` (DEL, GC, teardown on every backend): one CniError naming every failure in step
 *   order, `<label>: <what>: <cause>; <what>: <cause>`. Its code is the one the failures share
 *   (e.g. 11, try again later), else 999. `bare` leaves out the steps' names (their causes
 *   already say where); `loneAsIs` throws a single failure as it is, without the label.
 */
export type StepsReport = { mode: 'first' } | { mode: 'all'; label: string; bare?: boolean; loneAsIs?: boolean };

/**
 * Runs every step at once, waits for all of them, and then resolves to their values in step
 * order, or throws as `report` says. The one way this project runs independent steps
 * concurrently: ADD phases, DEL and GC steps, netfilter teardown on each backend and family.
 * (Write a step whose value is used as an async function: `() => p.then(…)` would be typed
 * unknown here.)
 */
export async function runSteps<const S extends readonly MaybeStep[]>(report: StepsReport, steps: S): Promise<StepValues<S>> {
  // Each fn is called here, in order, before any is awaited: they run at once. One that throws
  // before returning its promise fails alone; the others still run.
  const start = (fn: () => Promise<unknown>): Promise<unknown> => {
    try {
      return fn();
    } catch (e) {
      return Promise.reject(e);
    }
  };
  const settled = await Promise.allSettled(steps.map((s) => (s ? start(s[1]) : Promise.resolve(undefined))));
  const failures = settled.flatMap((r, i) => (r.status === 'rejected' ? [{ what: (steps[i] as Step)[0], error: r.reason as unknown }] : []));
  if (failures.length === 0) return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as StepValues<S>;
  if (report.mode === 'first') throw failures[0]!.error;
  const errors = failures.map((f) => (report.bare ? asCniError(f.error) : wrapError(f.what, f.error)));
  if (report.loneAsIs && errors.length === 1) throw errors[0]!;
  const code = errors.every((e) => e.code === errors[0]!.code) ? errors[0]!.code : ErrCode.Internal;
  throw new CniError(code, `${report.label}: ${errors.map((e) => e.message).join('; ')}`);
}
