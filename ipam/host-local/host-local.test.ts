// The verbs end to end on a temp dataDir (through the skeleton's dispatch with an injected
// environment), plus multi-set rollback on FakeStore and resolv.conf parsing.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dispatch } from '../../lib/skel/dispatch';
import { ErrCode } from '../../lib/skel/errors';
import { allocateAll, parseResolvConf } from './host-local';
import { inProcessIpam } from '../../lib/ipam/exec';
import { plugin } from './main';
import { loadIpamConf } from './config';
import { FakeStore } from './store/fake-store';

let dataDir: string;
beforeEach(() => (dataDir = mkdtempSync(join(tmpdir(), 'hl-verbs-'))));
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const netconf = (ipam: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  cniVersion: '1.1.0',
  name: 'net1',
  type: 'bridge',
  ipam: { type: 'host-local', dataDir, ...ipam },
  ...extra,
});

async function run(command: string, conf: object, env: Record<string, string> = {}) {
  const e: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'c1',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    CNI_NETNS: command === 'ADD' || command === 'CHECK' ? '/var/run/netns/nonexistent' : '',
    ...env,
  };
  const res = await dispatch(plugin, {
    getenv: (k) => e[k] || undefined,
    readStdin: () => Buffer.from(JSON.stringify(conf)),
    finish: () => undefined,
    stderr: () => undefined,
  });
  return { code: res.code, out: res.out ? JSON.parse(res.out) : undefined };
}

describe('parseResolvConf', () => {
  it('reads nameserver, domain, search and options, skipping comments', () => {
    expect(
      parseResolvConf('# c\n; c\nnameserver 10.0.0.53\nnameserver fd00::53\ndomain example.com\nsearch a.example b.example\noptions ndots:5 rotate\nbogus\n'),
    ).toEqual({ nameservers: ['10.0.0.53', 'fd00::53'], domain: 'example.com', search: ['a.example', 'b.example'], options: ['ndots:5', 'rotate'] });
  });
});

describe('allocateAll', () => {
  it('rolls back earlier range sets when a later one fails, keeping leases that existed before', async () => {
    const store = new FakeStore({ 'fd00::2': 'c1\r\neth0' });
    const conf = loadIpamConf(netconf({ ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: 'fd00::/120' }]] }) as never);
    await expect(allocateAll(store, conf, 'c1', 'eth0')).rejects.toThrow(
      'failed to allocate for range 1: fd00::2 has been allocated to c1, duplicate allocation is not allowed',
    );
    expect([...store.leases.keys()]).toEqual(['fd00::2']);
  });

  it('fails and rolls back when a requested IP fits no range set', async () => {
    const store = new FakeStore();
    const conf = loadIpamConf(netconf({ subnet: '10.0.0.0/24' }, { args: { cni: { ips: ['10.0.0.9', '10.5.0.1'] } } }) as never);
    await expect(allocateAll(store, conf, 'c1', 'eth0')).rejects.toMatchObject({
      code: ErrCode.InvalidConfig,
      message: 'failed to allocate all requested IPs: 10.5.0.1',
    });
    expect(store.leases.size).toBe(0);
  });

  it('gives each set its requested address and the rest round-robin', async () => {
    const store = new FakeStore();
    const conf = loadIpamConf(netconf({ ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: 'fd00::/120' }]] }, { runtimeConfig: { ips: ['fd00::42/120'] } }) as never);
    expect(await allocateAll(store, conf, 'c1', 'eth0')).toEqual([
      { address: '10.0.0.2/24', gateway: '10.0.0.1' },
      { address: 'fd00::42/120', gateway: 'fd00::1' },
    ]);
  });
});

describe('verbs on disk', () => {
  const dual = () => netconf({ ranges: [[{ subnet: '10.1.0.0/29' }], [{ subnet: 'fd00:1::/125' }]], routes: [{ dst: '0.0.0.0/0' }] });

  it('ADD returns the 1.1 result; CHECK passes; DEL releases; DEL again and CHECK after', async () => {
    const add = await run('ADD', dual());
    expect(add).toEqual({
      code: 0,
      out: {
        cniVersion: '1.1.0',
        ips: [
          { address: '10.1.0.2/29', gateway: '10.1.0.1' },
          { address: 'fd00:1::2/125', gateway: 'fd00:1::1' },
        ],
        routes: [{ dst: '0.0.0.0/0' }],
        dns: {},
      },
    });
    expect(readFileSync(join(dataDir, 'net1', '10.1.0.2'), 'utf8')).toBe('c1\r\neth0');
    expect((await run('CHECK', dual())).code).toBe(0);
    expect((await run('DEL', dual())).code).toBe(0);
    expect(readdirSync(join(dataDir, 'net1')).filter((f) => !f.startsWith('last_') && f !== 'lock')).toEqual([]);
    expect((await run('DEL', dual())).code).toBe(0);
    const check = await run('CHECK', dual());
    expect(check.code).toBe(1);
    expect(check.out.msg).toBe('host-local: Failed to find address added by container c1');
  });

  it('downgrades the result for older configs', async () => {
    const add = await run('ADD', { ...dual(), cniVersion: '0.4.0' });
    expect(add.out.ips[0]).toEqual({ version: '4', address: '10.1.0.2/29', gateway: '10.1.0.1' });
  });

  it('takes CNI_ARGS IP= and reads resolvConf', async () => {
    const rc = join(dataDir, 'resolv.conf');
    writeFileSync(rc, 'nameserver 1.1.1.1\nsearch x.test\n');
    const add = await run('ADD', netconf({ subnet: '10.1.0.0/24', resolvConf: rc }), { CNI_ARGS: 'IgnoreUnknown=1;IP=10.1.0.77' });
    expect(add.out.ips).toEqual([{ address: '10.1.0.77/24', gateway: '10.1.0.1' }]);
    expect(add.out.dns).toEqual({ nameservers: ['1.1.1.1'], search: ['x.test'] });
  });

  it('reports exhaustion with code 100 and the reference message; STATUS says 50', async () => {
    const conf = netconf({ subnet: '10.1.0.0/30' });
    expect((await run('STATUS', conf)).code).toBe(0);
    expect((await run('ADD', conf, { CNI_CONTAINERID: 'a' })).code).toBe(0);
    const full = await run('ADD', conf, { CNI_CONTAINERID: 'b' });
    expect(full.out).toMatchObject({ code: 100, msg: 'failed to allocate for range 0: no IP addresses available in range set: 10.1.0.1-10.1.0.2' });
    const st = await run('STATUS', conf);
    expect(st.out).toMatchObject({ code: ErrCode.NotAvailable });
  });

  it('STATUS on a network never used creates nothing', async () => {
    expect((await run('STATUS', netconf({ subnet: '10.1.0.0/24' }))).code).toBe(0);
    expect(existsSync(join(dataDir, 'net1'))).toBe(false);
  });

  it('GC releases every lease not in cni.dev/valid-attachments', async () => {
    const conf = netconf({ subnet: '10.1.0.0/24' });
    await run('ADD', conf, { CNI_CONTAINERID: 'a' });
    await run('ADD', conf, { CNI_CONTAINERID: 'b' });
    await run('ADD', conf, { CNI_CONTAINERID: 'b', CNI_IFNAME: 'eth1' });
    const gc = await run('GC', { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'b', ifname: 'eth0' }] }, { CNI_CONTAINERID: '', CNI_IFNAME: '' });
    expect(gc.code).toBe(0);
    const left = readdirSync(join(dataDir, 'net1')).filter((f) => f.startsWith('10.'));
    expect(left).toEqual(['10.1.0.3']);
    expect((await run('GC', conf)).out).toMatchObject({ code: 7 });
  });

  it('bad config is code 7 and touches nothing', async () => {
    const res = await run('ADD', netconf({ subnet: '10.1.0.0/24', rangeStart: '10.2.0.1' }));
    expect(res.out).toMatchObject({ code: 7, msg: 'invalid range set 0: RangeStart 10.2.0.1 not in network 10.1.0.0/24' });
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it.each(['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'])('%s: a config its schema refuses is code 7, the problem in msg and details', async (verb) => {
    const res = await run(verb, netconf({ subnet: 42 }, { 'cni.dev/valid-attachments': [] }));
    expect(res.out).toMatchObject({ code: 7, msg: 'invalid host-local configuration: conf.ipam.subnet must be string', details: 'conf.ipam.subnet must be string' });
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('concurrent ADDs never share an address', async () => {
    const conf = netconf({ subnet: '10.1.0.0/28' });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => run('ADD', conf, { CNI_CONTAINERID: `p${i}` })),
    );
    const addrs = results.map((r) => r.out.ips[0].address);
    expect(new Set(addrs).size).toBe(8);
  });

  it('the in-process entry returns the result and raises CniErrors', async () => {
    const conf = netconf({ subnet: '10.1.0.0/24' });
    const args = {
      command: 'ADD' as const, containerID: 'x', netns: '', ifName: 'eth0', args: '', argsMap: {}, path: [],
      stdin: Buffer.from(JSON.stringify(conf)), conf: conf as never,
    };
    const hostLocal = inProcessIpam(plugin);
    expect(await hostLocal.add(args)).toMatchObject({ ips: [{ address: '10.1.0.2/24' }] });
    await expect(hostLocal.add(args)).rejects.toMatchObject({ code: ErrCode.Internal });
    await expect(hostLocal.del(args)).resolves.toBeUndefined();
  });
});
