// The processes host starts per verb, through the fake spawner (lib/exec/testing.ts): how many
// and their exact argv. Nothing is spawned and no kernel is touched.
import { plugin } from './main';
import { fakeSpawn, ipLink, type FakeSpawn } from '../../lib/exec/testing';
import { cmdArgs, SELF_NETNS } from '../../lib/skel/testing';
import type { Verb } from '../../lib/skel/env';

const ETH0 = ipLink('eth0', { addr_info: [{ family: 'inet', local: '192.0.2.10', prefixlen: 24, scope: 'global' }] });
const args = (command: Verb) => cmdArgs({ type: 'host' }, { command });

let fake: FakeSpawn;
beforeEach(() => {
  fake = fakeSpawn(() => ({ stdout: JSON.stringify([ETH0]) }));
});
afterEach(() => fake.restore());

test('ADD: one `ip -json addr show` in the namespace (its own)', async () => {
  const r = await plugin.add(args('ADD'));
  expect(fake.commands()).toEqual([`nsenter --net=${SELF_NETNS} -- ip -json addr show`]);
  expect(r.ips).toEqual([{ address: '192.0.2.10/24', interface: 0 }]);
});

test('ADD in another namespace: refused before any process', async () => {
  await expect(plugin.add(cmdArgs({ type: 'host' }, { netns: '/proc/self/ns/uts' }))).rejects.toMatchObject({ code: 103 });
  expect(fake.spawned).toEqual([]);
});

test.each(['DEL', 'CHECK', 'GC', 'STATUS'] as const)('%s: no process', async (verb) => {
  await plugin[({ DEL: 'del', CHECK: 'check', GC: 'gc', STATUS: 'status' } as const)[verb]](args(verb));
  expect(fake.spawned).toEqual([]);
});
