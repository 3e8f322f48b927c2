// The processes tuning starts per verb, through the fake spawner (lib/exec/testing.ts): how
// many and their exact argv, in order. The sysctl child (this program again, in its hidden
// mode, under nsenter) answers as lib/sysctl/netns.ts's would. Backups go to a temp dataDir.
// Nothing is spawned and no kernel is touched.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plugin } from './main';
import { acceptingKernel, fakeSpawn, ipLink, type FakeSpawn } from '../../lib/exec/testing';
import { cmdArgs, SELF_NETNS } from '../../lib/skel/testing';
import { SYSCTL_MODE, type SysctlJob } from '../../lib/sysctl/netns';
import type { CmdArgs } from '../../lib/skel/dispatch';
import type { Result } from '../../lib/types/result';

const IN_NETNS = `nsenter --net=${SELF_NETNS} --`;
const BATCH = `${IN_NETNS} ip -json -force -batch -`;
/** The sysctl child: this same program (node and its script under jest) in its hidden mode. */
const SYSCTL_CHILD = `${IN_NETNS} ${process.execPath} ${process.argv[1]} ${SYSCTL_MODE}`;
const ARP_FILTER = '/proc/sys/net/ipv4/conf/eth0/arp_filter';
const PREV: Result = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: SELF_NETNS }], ips: [{ address: '10.22.0.2/16', interface: 0 }] };

/** Whether the fake kernel's eth0 and sysctl carry the tuned values yet. */
let tuned = false;
let fake: FakeSpawn;
let dataDir: string;
beforeEach(() => {
  tuned = false;
  dataDir = mkdtempSync(join(tmpdir(), 'cni-ts-tuning-'));
  fake = fakeSpawn((p) => {
    if (p.argv.includes(SYSCTL_MODE)) {
      const job = JSON.parse(p.input!) as SysctlJob;
      const values = Object.fromEntries([...(job.read ?? []), ...(job.write ?? []).map(([k]) => k)].map((k) => [k, tuned ? '1' : '0']));
      return { stdout: JSON.stringify({ values, errors: [] }) };
    }
    const eth0 = ipLink('eth0', tuned ? { mtu: 1400, flags: ['BROADCAST', 'MULTICAST', 'PROMISC', 'UP', 'LOWER_UP'], txqlen: 1000 } : { txqlen: 1000 });
    return acceptingKernel((line) => (line === 'link show dev eth0' ? [eth0] : undefined))(p);
  });
});
afterEach(() => {
  fake.restore();
  rmSync(dataDir, { recursive: true, force: true });
});

function args(extra: Partial<CmdArgs> = {}, more: Record<string, unknown> = {}): CmdArgs {
  return cmdArgs({ type: 'tuning', dataDir, sysctl: { 'net.ipv4.conf.eth0.arp_filter': '1' }, mtu: 1400, promisc: true, ...more }, { prevResult: PREV, ...extra });
}

test('ADD: one sysctl child, then one ip batch (read, set, read back)', async () => {
  await plugin.add(args());
  expect(fake.commands()).toEqual([SYSCTL_CHILD, BATCH]);
  expect(JSON.parse(fake.spawned[0]!.input!)).toEqual({ write: [[ARP_FILTER, '1']] });
  expect(fake.spawned[1]!.input).toBe('link show dev eth0\nlink set dev eth0 promisc on\nlink set dev eth0 mtu 1400\nlink show dev eth0\n');
  expect(readdirSync(dataDir)).toEqual(['ctr1_eth0.json']);
});

test('ADD with link changes only: one ip batch; with sysctls only: one child', async () => {
  await plugin.add(args({}, { sysctl: undefined }));
  expect(fake.commands()).toEqual([BATCH]);
  fake.clear();
  await plugin.add(args({ containerID: 'ctr2' }, { mtu: undefined, promisc: undefined }));
  expect(fake.commands()).toEqual([SYSCTL_CHILD]);
});

test('DEL: the link restored in one batch, the sysctls by one child; none without a backup', async () => {
  await plugin.add(args());
  tuned = true;
  fake.clear();
  await plugin.del(args({ command: 'DEL' }));
  expect(fake.commands()).toEqual([BATCH, SYSCTL_CHILD]);
  expect(JSON.parse(fake.spawned[1]!.input!)).toEqual({ write: [[ARP_FILTER, '0']], mode: 'best-effort' });
  expect(readdirSync(dataDir)).toEqual([]);
  fake.clear();
  await plugin.del(args({ command: 'DEL' }));
  expect(fake.spawned).toEqual([]);
});

test('CHECK: the sysctl child and the link read at once', async () => {
  tuned = true;
  await plugin.check(args({ command: 'CHECK' }));
  expect(fake.commands()).toEqual([SYSCTL_CHILD, BATCH]);
});

test('GC: no process (backups are files)', async () => {
  await plugin.add(args());
  fake.clear();
  await plugin.gc(args({ command: 'GC' }, { 'cni.dev/valid-attachments': [] }));
  expect(fake.spawned).toEqual([]);
  expect(readdirSync(dataDir)).toEqual([]);
});
