/**
 * Coalescing of concurrent operations in one process, for the per-host service (lib/serve), where
 * a wave of DELs arrives at once: callers with the same key that arrive while a run for that key
 * is in flight wait for the next run, which takes all of them. A run never starts before the
 * callers it serves arrived, so what it reads is at least as fresh as what each caller would
 * have read alone; nothing is remembered between runs. A plugin process has one caller per key,
 * so there every run takes exactly one item and nothing changes.
 */

interface Waiter<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/** The callers waiting for the next run, per key; a key is here exactly while its runs go on. */
const queues = new Map<string, Waiter<unknown, unknown>[]>();

/**
 * Queues `item` under `key`; `work` is called with every item queued since the previous call
 * began (at most one call in flight per key) and answers each, in order. The `work` of the caller
 * that found the key idle serves everyone queued under it: callers sharing a key must pass
 * equivalent work.
 */
export function batched<T, R>(key: string, item: T, work: (items: readonly T[]) => Promise<PromiseSettledResult<R>[]>): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const waiter = { item, resolve, reject } as Waiter<unknown, unknown>;
    const waiting = queues.get(key);
    if (waiting) waiting.push(waiter);
    else void drain(key, [waiter], work as (items: readonly unknown[]) => Promise<PromiseSettledResult<unknown>[]>);
  });
}

async function drain(key: string, waiting: Waiter<unknown, unknown>[], work: (items: readonly unknown[]) => Promise<PromiseSettledResult<unknown>[]>): Promise<void> {
  queues.set(key, waiting);
  while (waiting.length) {
    const batch = waiting.splice(0);
    let results: PromiseSettledResult<unknown>[];
    try {
      results = await work(batch.map((w) => w.item));
    } catch (e) {
      results = batch.map(() => ({ status: 'rejected', reason: e }));
    }
    batch.forEach((w, i) => {
      const r = results[i] ?? { status: 'rejected', reason: new Error('no result for a batched item') };
      if (r.status === 'fulfilled') w.resolve(r.value);
      else w.reject(r.reason);
    });
  }
  queues.delete(key);
}

/** The same answer for every item of a batch (a read many callers share). */
export async function shared<R>(items: readonly unknown[], fn: () => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  try {
    const value = await fn();
    return items.map(() => ({ status: 'fulfilled', value }));
  } catch (reason) {
    return items.map(() => ({ status: 'rejected', reason }));
  }
}
