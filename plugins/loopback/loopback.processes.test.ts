// The processes loopback starts per verb, through the fake spawner (lib/exec/testing.ts): how
// many and their exact argv. Nothing is spawned and no kernel is touched.
import { plugin } from './main';
import { acceptingKernel, fakeSpawn, ipLink, type FakeSpawn } from '../../lib/exec/testing';
import { cmdArgs, SELF_NETNS } from '../../lib/skel/testing';
import { asCniError } from '../../lib/skel/errors';

const IN_NETNS = `nsenter --net=${SELF_NETNS} --`;
const LO = ipLink('lo', { flags: ['LOOPBACK', 'UP', 'LOWER_UP'], address: '00:00:00:00:00:00', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] });
const args = (extra = {}) => cmdArgs({ type: 'loopback' }, extra);

let fake: FakeSpawn;
beforeEach(() => {
  fake = fakeSpawn(acceptingKernel((l) => (l.endsWith('dev lo') ? [LO] : undefined)));
});
afterEach(() => fake.restore());

test('ADD: one ip batch in the container (lo up, read back)', async () => {
  const r = await plugin.add(args());
  expect(fake.commands()).toEqual([`${IN_NETNS} ip -json -batch -`]);
  expect(fake.spawned[0]!.input).toBe('link set dev lo up\naddr show dev lo\n');
  expect(r.ips).toEqual([{ interface: 0, address: '127.0.0.1/8' }]);
});

test('ADD: a busy kernel is code 11', async () => {
  fake.answer(() => ({ exitCode: 1, stderr: 'RTNETLINK answers: Device or resource busy\nCommand failed -:1\n' }));
  const e = await plugin.add(args()).catch((x: unknown) => x);
  expect(asCniError(e).code).toBe(11);
});

test('CHECK: one ip batch in the container', async () => {
  await plugin.check(args({ command: 'CHECK' }));
  expect(fake.commands()).toEqual([`${IN_NETNS} ip -json -batch -`]);
  expect(fake.spawned[0]!.input).toBe('link show dev lo\n');
});

test('DEL: one ip batch (lo down); none with no netns', async () => {
  await plugin.del(args({ command: 'DEL' }));
  expect(fake.commands()).toEqual([`${IN_NETNS} ip -json -batch -`]);
  expect(fake.spawned[0]!.input).toBe('link set dev lo down\n');
  fake.clear();
  await plugin.del(args({ command: 'DEL', netns: '' }));
  expect(fake.spawned).toEqual([]);
});
