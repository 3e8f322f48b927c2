// RuntimeSandbox.destroy() must leave no process behind, also one that has left the sandbox's
// mount namespace and process tree: a container's init, PID 1 of its own pid namespace, ignores
// SIGTERM and is re-parented to the machine's init once its shim (here: sh) is gone.
import { readFileSync } from 'node:fs';
import { describeIfRoot, PLUGIN_DIR } from './plugin-dir';
import { RuntimeSandbox } from './runtime-sandbox';

function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describeIfRoot('RuntimeSandbox', () => {
  test('destroy() kills a pid-namespace init that escaped the sandbox tree', async () => {
    const sb = await RuntimeSandbox.create('selftest', PLUGIN_DIR);
    let init = 0;
    try {
      sb.spawn(['sh', '-c', 'unshare --pid --fork --mount sleep 1000 & wait']);
      for (let i = 0; i < 100 && !init; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const line = sb.processNames().find((p) => p.endsWith(' sleep'));
        if (line) init = Number(line.split(' ')[0]);
      }
    } finally {
      await sb.destroy();
    }
    expect(init).toBeGreaterThan(0);
    expect(alive(init)).toBe(false);
  }, 30_000);
});
