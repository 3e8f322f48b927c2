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

/** Test hook: throws when CNI_TS_FAILPOINT names this point, to prove rollback leaves nothing behind. */
export function failpoint(name: string): void {
  if (process.env.CNI_TS_FAILPOINT === name) throw new Error(`failpoint ${name} triggered`);
}
