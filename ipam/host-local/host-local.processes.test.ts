// The processes host-local starts per verb, through the fake spawner (lib/exec/testing.ts): one
// `flock` (lib/lock/flock.ts: Node cannot flock itself) for every verb that reads or writes the
// leases under the lock, none for STATUS. The leases are real files in a temp dataDir.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plugin } from './main';
import { fakeSpawn, type FakeSpawn } from '../../lib/exec/testing';
import { cmdArgs, FLOCK } from '../../lib/skel/testing';
import type { Verb } from '../../lib/skel/env';

let fake: FakeSpawn;
let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'cni-ts-leases-'));
  fake = fakeSpawn();
});
afterEach(() => {
  fake.restore();
  rmSync(dataDir, { recursive: true, force: true });
});
const args = (command: Verb, more: Record<string, unknown> = {}) =>
  cmdArgs({ type: 'bridge', ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.22.0.0/24' }]] }, ...more }, { command });

test('ADD, CHECK, DEL, GC: one flock each; STATUS: none', async () => {
  await plugin.add(args('ADD'));
  expect(fake.commands()).toEqual([FLOCK]);
  expect(fake.spawned[0]!.opts.extraFds).toHaveLength(1); // the lock file, held by our descriptor
  expect(readdirSync(join(dataDir, 'net1'))).toContain('10.22.0.2');
  for (const [verb, fn] of [
    ['CHECK', plugin.check],
    ['GC', plugin.gc],
    ['DEL', plugin.del],
  ] as const) {
    fake.clear();
    await fn(args(verb, verb === 'GC' ? { 'cni.dev/valid-attachments': [{ containerID: 'ctr1', ifname: 'eth0' }] } : {}));
    expect([verb, fake.commands()]).toEqual([verb, [FLOCK]]);
  }
  expect(readdirSync(join(dataDir, 'net1')).filter((f) => /^\d/.test(f))).toEqual([]);
  fake.clear();
  await plugin.status(args('STATUS'));
  expect(fake.spawned).toEqual([]);
});

test('a lock that cannot be had is code 11', async () => {
  fake.answer(() => ({ exitCode: 1, stderr: '' }));
  await expect(plugin.add(args('ADD'))).rejects.toMatchObject({ code: 11 });
});
