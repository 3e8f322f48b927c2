// loopback's config goes through its schema.json like every plugin's. The schema refuses nothing
// the skeleton accepts (the reference's loopback reads only the common keys), so these errors
// can only come from a config built by hand, never from stdin.
import type { CmdArgs } from '../../lib/skel/dispatch';
import { parseConf } from '../../lib/skel/dispatch';
import { plugin } from './main';
import { loadNetConf } from './loopback';

const args = (conf: CmdArgs['conf']): CmdArgs => ({ command: 'CHECK', containerID: 'c', netns: '/run/netns/x', ifName: 'eth0', args: '', argsMap: {}, path: [], stdin: Buffer.from('{}'), conf });

it('accepts whatever the skeleton parsed, unknown keys included', () => {
  const conf = parseConf(Buffer.from(JSON.stringify({ cniVersion: '1.1.0', name: 'lo', type: 'loopback', Whatever: { x: 1 } })));
  expect(loadNetConf(args(conf))).toBe(conf);
});

it('refuses a config whose common keys have the wrong type: code 7 with the problem in details', () => {
  const conf = parseConf(Buffer.from('{"cniVersion":"1.1.0","name":"lo"}'));
  Reflect.set(conf, 'name', 42);
  expect(() => loadNetConf(args(conf))).toThrow(expect.objectContaining({ code: 7, message: 'invalid loopback configuration', details: 'conf.name must be string' }));
});

it('checks the config before CHECK touches any netns', async () => {
  const conf = parseConf(Buffer.from('{"name":"lo"}'));
  Reflect.set(conf, 'cniVersion', 1);
  await expect(plugin.check(args(conf))).rejects.toMatchObject({ code: 7, details: 'conf.cniVersion must be string' });
});
