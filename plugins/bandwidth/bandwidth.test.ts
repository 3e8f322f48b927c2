// The bandwidth verbs through the fake spawner (lib/exec/testing.ts): every process the plugin
// starts, its argv and stdin, in order. No kernel is touched.
import { plugin } from './main';
import { ifbName } from './tc';
import { fakeSpawn, type FakeSpawn, type Reply } from '../../lib/exec/testing';
import type { RunOptions } from '../../lib/exec/run';
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import type { Result } from '../../lib/types/result';

let fake: FakeSpawn;
/** The processes so far, as this file has always read them: argv and stdin. */
const spawned = (): { argv: string[]; input?: string }[] => fake.spawned.map((p) => ({ argv: p.argv, input: p.input }));

// The container's eth0 is a veth whose peer is ifindex 7 in the host.
const CTR_LINK = JSON.stringify([{ ifindex: 2, ifname: 'eth0', flags: [], mtu: 1500, operstate: 'UP', link_index: 7, link_netnsid: 0, linkinfo: { info_kind: 'veth' } }]);
const HOST_LINKS = JSON.stringify([
  { ifindex: 6, ifname: 'cni0', flags: [], mtu: 1500, operstate: 'UP' },
  { ifindex: 7, ifname: 'veth1234', flags: [], mtu: 1450, operstate: 'UP', qdisc: 'tbf' },
]);
const IFB = 'bwp13229d9cfd25'; // ifbName('bwnet', 'abc123'), as the reference names it

function answer(fn: (argv: string[], opts: RunOptions) => Reply): void {
  fake.answer((p) => fn(p.argv, p.opts));
}

/** A kernel that answers the reads and accepts every change. */
function happyKernel(argv: string[], opts: RunOptions): Reply {
  const cmd = argv.join(' ');
  if (cmd.includes('-details link show dev eth0')) return { stdout: CTR_LINK };
  if (cmd === 'ip -json link show') return { stdout: HOST_LINKS };
  if (cmd === 'ip -json -batch -' && opts.input?.includes('link add')) return { stdout: `[{"ifindex":9,"ifname":"${IFB}","flags":["UP"],"mtu":1450,"operstate":"UNKNOWN","address":"02:00:00:00:00:09"}]\n` };
  if (cmd === 'ip -json -force -batch -' && opts.input?.includes('link show')) return { stdout: `${HOST_LINKS}\n` };
  return {};
}

const prev: Result = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'cni0', mac: '02:00:00:00:00:06' }, { name: 'veth1234', mac: '02:00:00:00:00:07' }, { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/proc/self/ns/net' }],
  ips: [{ address: '10.1.0.2/24', interface: 2 }],
};

function args(conf: Record<string, unknown>, extra: Partial<CmdArgs> = {}): CmdArgs {
  const c = { cniVersion: '1.0.0', name: 'bwnet', type: 'bandwidth', ...conf } as NetConf;
  // An existing path stands in for the container netns; nothing is entered (spawns are hooked).
  return { command: 'ADD', containerID: 'abc123', netns: '/proc/self/ns/net', ifName: 'eth0', args: '', argsMap: {}, path: [], stdin: Buffer.from(JSON.stringify(c)), conf: c, prevResult: prev, ...extra };
}

const BOTH = { ingressRate: 10_000_000, ingressBurst: 100_000, egressRate: 10_000_000, egressBurst: 100_000 };

beforeEach(() => {
  fake = fakeSpawn();
});
afterEach(() => fake.restore());

describe('ADD', () => {
  test('both limits: two reads, one ip batch (the ifb), one tc batch, and the ifb in the result', async () => {
    answer(happyKernel);
    const r = await plugin.add(args(BOTH));
    expect(spawned().map((s) => s.argv.join(' '))).toEqual([
      'nsenter --net=/proc/self/ns/net -- ip -json -details link show dev eth0',
      'ip -json link show',
      'ip -json -batch -',
      'tc -batch -',
    ]);
    expect(spawned()[2]!.input).toBe(`link add name ${IFB} mtu 1450 txqueuelen 0 type ifb\nlink set dev ${IFB} up alias cni-bandwidth/bwnet/abc123\nlink show dev ${IFB}\n`);
    expect(spawned()[3]!.input).toBe(
      [
        'qdisc add dev veth1234 root handle 1: tbf rate 1250000bps burst 12500 limit 43750',
        'qdisc add dev veth1234 handle ffff: ingress',
        `filter add dev veth1234 parent ffff: protocol all prio 1 u32 match u32 0 0 flowid 1:1 action mirred egress redirect dev ${IFB}`,
        `qdisc add dev ${IFB} root handle 1: tbf rate 1250000bps burst 12500 limit 43750`,
        '',
      ].join('\n'),
    );
    expect(r.interfaces).toEqual([...prev.interfaces!, { name: IFB, mac: '02:00:00:00:00:09' }]);
  });

  test('no limits: the prevResult, and no process at all', async () => {
    answer(happyKernel);
    expect(await plugin.add(args({}))).toEqual(prev);
    expect(spawned()).toEqual([]);
  });

  test('a tc line that fails: the lines before it and the ifb are undone, the error names the line', async () => {
    answer((argv, opts) => {
      if (argv[0] === 'tc' && opts.input?.includes('qdisc add')) return { exitCode: 1, stderr: 'Error: Exclusivity flag on, cannot modify.\nCommand failed -:4\n' };
      return happyKernel(argv, opts);
    });
    await expect(plugin.add(args(BOTH))).rejects.toThrow(`failed to shape veth1234: Error: Exclusivity flag on, cannot modify. (tc qdisc add dev ${IFB} root handle 1:`);
    expect(spawned().slice(4).map((s) => [s.argv.join(' '), s.input])).toEqual([
      ['tc -force -batch -', 'qdisc del dev veth1234 ingress\nqdisc del dev veth1234 root\n'],
      ['ip -json -batch -', `link del dev ${IFB}\n`],
    ]);
  });

  test('the veth already has a root qdisc: nothing of it is touched, only our ifb goes', async () => {
    answer((argv, opts) => {
      if (argv[0] === 'tc' && opts.input?.includes('qdisc add')) return { exitCode: 1, stderr: 'Error: Exclusivity flag on, cannot modify.\nCommand failed -:1\n' };
      return happyKernel(argv, opts);
    });
    await expect(plugin.add(args(BOTH))).rejects.toThrow('failed to shape veth1234');
    expect(spawned().slice(4).map((s) => s.input)).toEqual([`link del dev ${IFB}\n`]);
  });

  test('an interface that is not a veth is refused before anything changes', async () => {
    answer((argv, opts) => (argv.join(' ').includes('dev eth0') ? { stdout: JSON.stringify([{ ifindex: 2, ifname: 'eth0', flags: [], mtu: 1500, operstate: 'UP', linkinfo: { info_kind: 'macvlan' } }]) } : happyKernel(argv, opts)));
    await expect(plugin.add(args(BOTH))).rejects.toThrow('container interface eth0 has no veth peer');
    expect(spawned()).toHaveLength(2);
  });
});

describe('DEL', () => {
  test('no netns, no prevResult: one ip batch deleting the ifb by name; already gone is fine', async () => {
    answer(() => ({ exitCode: 1, stderr: `Cannot find device "${IFB}"\nCommand failed -:1\n` }));
    await plugin.del(args(BOTH, { command: 'DEL', netns: '', prevResult: undefined }));
    expect(spawned()).toEqual([{ argv: ['ip', '-json', '-force', '-batch', '-'], input: `link del dev ${IFB}\n` }]);
  });

  test('veth still there: the ifb and the host read in one ip batch, the container read beside it, then the qdiscs', async () => {
    answer(happyKernel);
    await plugin.del(args(BOTH, { command: 'DEL' }));
    expect(spawned().map((s) => [s.argv.join(' '), s.input])).toEqual([
      ['ip -json -force -batch -', `link del dev ${IFB}\nlink show\n`],
      ['nsenter --net=/proc/self/ns/net -- ip -json -details link show dev eth0', undefined],
      ['tc -force -batch -', 'qdisc del dev veth1234 root\nqdisc del dev veth1234 ingress\n'],
    ]);
  });
});

describe('GC', () => {
  test('deletes only ifbs whose alias names this network and a container that is not valid', async () => {
    const mine = (cid: string, name: string) => ({ ifindex: 1, ifname: name, flags: [], mtu: 1500, operstate: 'UP', ifalias: `cni-bandwidth/bwnet/${cid}` });
    answer((argv) => {
      if (argv.join(' ') === 'ip -json link show type ifb') {
        return {
          stdout: JSON.stringify([
            mine('abc123', IFB),
            mine('gone', 'bwpffffffffffff'.slice(0, 15)), // alias forged onto a name that is not its hash: kept
            { ...mine('x', 'bwp0'), ifalias: 'cni-bandwidth/other/x' },
            { ifindex: 4, ifname: 'bwpnoalias', flags: [], mtu: 1500, operstate: 'UP' },
            mine('stale', ifbName('bwnet', 'stale')),
          ]),
        };
      }
      return {};
    });
    await plugin.gc(args({ 'cni.dev/valid-attachments': [{ containerID: 'abc123', ifname: 'eth0' }] }, { command: 'GC' }));
    expect(spawned().map((s) => s.input)).toEqual([undefined, `link del dev ${ifbName('bwnet', 'stale')}\n`]);
  });
});

describe('CHECK', () => {
  test('both namespaces read at once, then one tc batch reads the qdiscs and the redirect', async () => {
    answer(happyKernel); // no qdisc on the veth: CHECK reads, then says what is missing
    await expect(plugin.check(args(BOTH, { command: 'CHECK' }))).rejects.toThrow(/veth1234/);
    expect(spawned().map((s) => [s.argv.join(' '), s.input])).toEqual([
      ['nsenter --net=/proc/self/ns/net -- ip -json -details link show dev eth0', undefined],
      ['ip -json link show', undefined],
      ['tc -json -details -raw -force -batch -', `qdisc show dev veth1234\nfilter show dev veth1234 ingress\nqdisc show dev ${IFB}\n`],
    ]);
  });
});
