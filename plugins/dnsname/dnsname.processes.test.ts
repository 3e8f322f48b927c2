// The processes dnsname starts per verb, through the fake spawner (lib/exec/testing.ts): how
// many and their exact argv. Each verb takes the network's flock (one `flock` process). The
// server itself is not a process started through the spawner: lib/daemon starts dnsmasq
// detached and waits until it answers DNS, which the conformance suite covers; here ADD runs up
// to the failpoint before the server. Files go to a temp runDir. Nothing is spawned.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plugin } from './main';
import { fakeSpawn, fakeTools, type FakeSpawn } from '../../lib/exec/testing';
import { cmdArgs, FLOCK, SELF_NETNS } from '../../lib/skel/testing';
import { formatHosts, setEntries } from './hosts';
import type { CmdArgs } from '../../lib/skel/dispatch';
import type { Result } from '../../lib/types/result';

const PREV: Result = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'cni0' }, { name: 'vethx' }, { name: 'eth0', sandbox: SELF_NETNS }],
  ips: [{ address: '10.22.0.2/16', gateway: '10.22.0.1', interface: 2 }],
};

let fake: FakeSpawn;
let runDir: string;
let restoreTools: () => void;
const hosts = (): string => join(runDir, 'net1', 'addnhosts');
beforeEach(() => {
  runDir = mkdtempSync(join(tmpdir(), 'cni-ts-dnsname-'));
  restoreTools = fakeTools(['dnsmasq']); // found on PATH; never run
  fake = fakeSpawn();
});
afterEach(() => {
  fake.restore();
  restoreTools();
  rmSync(runDir, { recursive: true, force: true });
  delete process.env.CNI_TS_FAILPOINT;
});

function args(extra: Partial<CmdArgs> = {}, more: Record<string, unknown> = {}): CmdArgs {
  return cmdArgs({ type: 'dnsname', domainName: 'dns.test', runDir, ...more }, { prevResult: PREV, args: 'K8S_POD_NAME=web', argsMap: { K8S_POD_NAME: 'web' }, ...extra });
}

/** The network's hosts file with these containers' entries, as an earlier ADD wrote it. */
function registered(...cids: string[]): void {
  mkdirSync(join(runDir, 'net1'), { recursive: true });
  const lines = cids.reduce((l, cid, i) => setEntries(l, { containerID: cid, ifname: 'eth0' }, [`10.22.0.${i + 2}`], [cid]), [] as ReturnType<typeof setEntries>);
  writeFileSync(hosts(), formatHosts(lines));
}

test('ADD up to the server: the lock only (then the failpoint rolls the entry back)', async () => {
  process.env.CNI_TS_FAILPOINT = 'dnsname-before-server';
  await expect(plugin.add(args())).rejects.toThrow('failpoint dnsname-before-server triggered');
  expect(fake.commands()).toEqual([FLOCK]);
  expect(existsSync(hosts())).toBe(false);
});

test('DEL of the last entry: the lock; no server runs, so nothing to stop', async () => {
  registered('ctr1');
  await plugin.del(args({ command: 'DEL' }));
  expect(fake.commands()).toEqual([FLOCK]);
  expect(existsSync(hosts())).toBe(false);
});

test('DEL with another entry left: the lock (a live server would get a SIGHUP, no process)', async () => {
  registered('ctr1', 'other');
  await plugin.del(args({ command: 'DEL' }));
  expect(fake.commands()).toEqual([FLOCK]);
  expect(readFileSync(hosts(), 'utf8')).toContain('# cni:other:eth0');
});

test('DEL of a network never added here: no process', async () => {
  await plugin.del(args({ command: 'DEL' }));
  expect(fake.spawned).toEqual([]);
});

test('CHECK: the lock, then it finds no server', async () => {
  registered('ctr1');
  await expect(plugin.check(args({ command: 'CHECK' }))).rejects.toThrow('dnsmasq for network net1 is not running');
  expect(fake.commands()).toEqual([FLOCK]);
});

test('GC: the lock', async () => {
  registered('ctr1', 'gone');
  await plugin.gc(args({ command: 'GC' }, { 'cni.dev/valid-attachments': [{ containerID: 'ctr1', ifname: 'eth0' }] }));
  expect(fake.commands()).toEqual([FLOCK]);
  expect(readFileSync(hosts(), 'utf8')).not.toContain('gone');
});

test('STATUS: no process', async () => {
  await plugin.status(args({ command: 'STATUS' }));
  expect(fake.spawned).toEqual([]);
});
