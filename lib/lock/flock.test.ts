import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setSpawnHook, type RunOptions } from '../exec/run';
import { withLock } from './flock';

describe('withLock in one process', () => {
  let dir: string;
  const spawned: string[][] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flock-test-'));
    spawned.length = 0;
    setSpawnHook(async (argv: string[], _o: RunOptions) => {
      spawned.push(argv);
      return { stdout: '', stderr: '', exitCode: 0 };
    });
  });
  afterEach(() => {
    setSpawnHook(undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('concurrent callers take turns and share one flock(1); the next wave takes it again', async () => {
    const path = join(dir, 'lock');
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    const work = (i: number) =>
      withLock(path, async () => {
        inside++;
        most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 5));
        order.push(i);
        inside--;
        return i;
      });
    expect(await Promise.all([0, 1, 2, 3, 4].map(work))).toEqual([0, 1, 2, 3, 4]);
    expect(most).toBe(1);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(spawned.filter((a) => a[0] === 'flock')).toHaveLength(1);
    await work(5);
    expect(spawned.filter((a) => a[0] === 'flock')).toHaveLength(2);
  });

  test('a caller that throws passes the turn on; a failed flock is tried again by the next caller', async () => {
    const path = join(dir, 'lock');
    setSpawnHook(async (argv) => {
      spawned.push(argv);
      return { stdout: '', stderr: 'timeout', exitCode: spawned.length === 1 ? 1 : 0 };
    });
    const a = withLock(path, async () => 'a');
    const b = withLock(path, async () => 'b');
    await expect(a).rejects.toMatchObject({ code: 11 });
    await expect(b).resolves.toBe('b');
    await expect(withLock(path, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    await expect(withLock(path, async () => 'c')).resolves.toBe('c');
  });
});
