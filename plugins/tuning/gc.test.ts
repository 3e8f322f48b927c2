// tuning GC: backups of this network's vanished attachments go; valid ones, other networks'
// and the reference's (which name no network) stay; a malformed list is code 7.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CmdArgs } from '../../lib/skel/dispatch';
import { plugin } from './main';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'tuning-gc-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const args = (valid: unknown): CmdArgs =>
  ({
    command: 'GC',
    containerID: '',
    netns: '',
    ifName: '',
    args: '',
    argsMap: {},
    path: [],
    stdin: Buffer.from(''),
    conf: { cniVersion: '1.1.0', name: 'net1', type: 'tuning', dataDir: dir, 'cni.dev/valid-attachments': valid },
  }) as unknown as CmdArgs;

describe('tuning GC', () => {
  it('removes only this network\'s backups of attachments not in the valid list', async () => {
    const write = (f: string, net?: string) => writeFileSync(join(dir, f), JSON.stringify({ mtu: 1500, ...(net ? { cniNetwork: net } : {}) }));
    write('keep_eth0.json', 'net1');
    write('gone_eth0.json', 'net1');
    write('other_eth0.json', 'net2');
    write('reference_eth0.json');
    await plugin.gc(args([{ containerID: 'keep', ifname: 'eth0' }]));
    expect(['keep', 'gone', 'other', 'reference'].map((c) => existsSync(join(dir, `${c}_eth0.json`)))).toEqual([true, false, true, true]);
  });

  it.each([['a string', 'keep:eth0'], ['an object', { containerID: 'x' }], ['a bad entry', [{ containerID: 1, ifname: 'eth0' }]]])(
    'refuses an attachment list given as %s with code 7 and removes nothing',
    async (_what, valid) => {
      writeFileSync(join(dir, 'gone_eth0.json'), JSON.stringify({ cniNetwork: 'net1' }));
      await expect(plugin.gc(args(valid))).rejects.toMatchObject({ code: 7 });
      expect(existsSync(join(dir, 'gone_eth0.json'))).toBe(true);
    },
  );
});
