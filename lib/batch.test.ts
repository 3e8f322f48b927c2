import { batched, shared } from './batch';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('batched', () => {
  test('callers that arrive while a run is in flight share the next run; the first runs alone at once', async () => {
    const runs: number[][] = [];
    let release: () => void = () => undefined;
    const work = async (items: readonly number[]): Promise<PromiseSettledResult<number>[]> => {
      runs.push([...items]);
      if (runs.length === 1) await new Promise<void>((r) => (release = r));
      return items.map((i) => ({ status: 'fulfilled', value: i * 10 }));
    };
    const first = batched('k', 1, work);
    await tick();
    const rest = [2, 3, 4].map((i) => batched('k', i, work));
    await tick();
    expect(runs).toEqual([[1]]);
    release();
    expect(await Promise.all([first, ...rest])).toEqual([10, 20, 30, 40]);
    expect(runs).toEqual([[1], [2, 3, 4]]);
  });

  test('each caller gets its own outcome; a throwing run fails every caller of that run only', async () => {
    const work = async (items: readonly number[]): Promise<PromiseSettledResult<number>[]> =>
      items.map((i) => (i % 2 ? { status: 'fulfilled', value: i } : { status: 'rejected', reason: new Error(`odd one out ${i}`) }));
    await expect(batched('a', 1, work)).resolves.toBe(1);
    await expect(batched('a', 2, work)).rejects.toThrow('odd one out 2');
    await expect(batched('b', 1, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(batched('b', 3, work)).resolves.toBe(3);
  });

  test('different keys never share a run', async () => {
    const seen: string[] = [];
    const work = (k: string) => async (items: readonly number[]): Promise<PromiseSettledResult<void>[]> => {
      seen.push(`${k}:${items.join()}`);
      return shared(items, async () => undefined);
    };
    await Promise.all([batched('x', 1, work('x')), batched('y', 2, work('y'))]);
    expect(seen.sort()).toEqual(['x:1', 'y:2']);
  });
});
