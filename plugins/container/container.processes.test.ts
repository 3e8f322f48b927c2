// The processes container starts per verb, through the fake spawner (lib/exec/testing.ts): how
// many and their exact argv. The target's cache entry names this process's own netns, which
// stands in for the target's; nothing is spawned and no kernel is touched.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plugin } from './main';
import { fakeSpawn, ipLink, type FakeSpawn } from '../../lib/exec/testing';
import { cmdArgs, SELF_NETNS } from '../../lib/skel/testing';
import type { Verb } from '../../lib/skel/env';

const ETH0 = ipLink('eth0', { addr_info: [{ family: 'inet', local: '10.88.0.5', prefixlen: 16, scope: 'global' }] });

let fake: FakeSpawn;
let cacheDir: string;
beforeEach(() => {
  cacheDir = mkdtempSync(join(tmpdir(), 'cni-ts-cache-'));
  mkdirSync(join(cacheDir, 'results'));
  writeFileSync(join(cacheDir, 'results', 'net1-target-eth0'), JSON.stringify({ kind: 'cniCacheV1', containerId: 'target', ifName: 'eth0', networkName: 'net1', netns: SELF_NETNS }));
  fake = fakeSpawn(() => ({ stdout: JSON.stringify([ETH0]) }));
});
afterEach(() => {
  fake.restore();
  rmSync(cacheDir, { recursive: true, force: true });
});
const args = (command: Verb) => cmdArgs({ type: 'container', container: 'target', cacheDir }, { command, containerID: 'joiner' });

test('ADD: one `ip -json addr show` in the shared namespace', async () => {
  const r = await plugin.add(args('ADD'));
  expect(fake.commands()).toEqual([`nsenter --net=${SELF_NETNS} -- ip -json addr show`]);
  expect(r.ips).toEqual([{ address: '10.88.0.5/16', interface: 0 }]);
});

test('ADD for a target with no cached attachment: refused before any process', async () => {
  await expect(plugin.add(cmdArgs({ type: 'container', container: 'nobody', cacheDir }, { containerID: 'joiner' }))).rejects.toMatchObject({ code: 104 });
  expect(fake.spawned).toEqual([]);
});

test.each(['DEL', 'CHECK', 'GC', 'STATUS'] as const)('%s: no process', async (verb) => {
  await plugin[({ DEL: 'del', CHECK: 'check', GC: 'gc', STATUS: 'status' } as const)[verb]](args(verb));
  expect(fake.spawned).toEqual([]);
});
