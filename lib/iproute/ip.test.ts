// The ip driver through setSpawnHook: exact argv and stdin, and how failures are reported.
// The stderr samples were captured from iproute2 6.1 (`ip -batch -` with the lines shown).
import { BatchLineError, ipBatch, ipJson, isShowLine, parseBatchErrors, tcBatch } from './ip';
import { CommandError, setSpawnHook, type RunOptions, type RunResult } from '../exec/run';

interface Spawned {
  argv: string[];
  opts: RunOptions;
}

let spawned: Spawned[] = [];

/** Every spawn answers `res` and is recorded. */
function answer(res: Partial<RunResult>): void {
  setSpawnHook(async (argv, opts) => {
    spawned.push({ argv, opts });
    return { stdout: '', stderr: '', exitCode: 0, ...res };
  });
}

beforeEach(() => {
  spawned = [];
});
afterEach(() => setSpawnHook(undefined));

const LO = '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"operstate":"UNKNOWN","address":"00:00:00:00:00:00"}]';

describe('parseBatchErrors', () => {
  it('maps "Command failed -:N" to the 0-based line with the message before it', () => {
    expect(parseBatchErrors('RTNETLINK answers: File exists\nCommand failed -:6\n')).toEqual([{ line: 5, message: 'RTNETLINK answers: File exists' }]);
  });

  it.each([
    ['Device "nosuch0" does not exist.\nCommand failed -:2\n', 1, 'Device "nosuch0" does not exist.'],
    ['Cannot find device "nosuch0"\nCommand failed -:1\n', 0, 'Cannot find device "nosuch0"'],
    ['Error: Unknown device type.\nCommand failed -:2\n', 1, 'Error: Unknown device type.'],
    ['Error: ipv4: Address already assigned.\nCommand failed -:3\n', 2, 'Error: ipv4: Address already assigned.'],
    ['RTNETLINK answers: Operation not permitted\nCommand failed -:1\n', 0, 'RTNETLINK answers: Operation not permitted'],
  ])('%j', (stderr, line, message) => {
    expect(parseBatchErrors(stderr)).toEqual([{ line, message }]);
  });

  it('joins a multi-line message', () => {
    const stderr = 'Error: argument "x" is wrong: invalid\nSee "ip link help"\nCommand failed -:4\n';
    expect(parseBatchErrors(stderr)).toEqual([{ line: 3, message: 'Error: argument "x" is wrong: invalid; See "ip link help"' }]);
  });

  it('reads every failure of a -force batch', () => {
    const stderr = 'Cannot find device "a"\nCommand failed -:1\nRTNETLINK answers: File exists\nCommand failed -:3\n';
    expect(parseBatchErrors(stderr)).toEqual([
      { line: 0, message: 'Cannot find device "a"' },
      { line: 2, message: 'RTNETLINK answers: File exists' },
    ]);
  });

  it('gives a placeholder when a failure has no message', () => {
    expect(parseBatchErrors('Command failed -:2')).toEqual([{ line: 1, message: 'failed' }]);
  });

  it('finds nothing in an error that aborted the batch (no "Command failed")', () => {
    expect(parseBatchErrors('Command "frob" is unknown, try "ip link help".\n')).toEqual([]);
    expect(parseBatchErrors('')).toEqual([]);
  });
});

describe('ipBatch', () => {
  it('spawns nothing for no lines', async () => {
    answer({});
    expect(await ipBatch([])).toEqual({ shows: [], byLine: [], errors: [] });
    expect(spawned).toEqual([]);
  });

  it('runs `ip -json -batch -` in the host with the lines on stdin', async () => {
    answer({ stdout: `${LO}\n` });
    const out = await ipBatch(['link set dev lo up', 'link show dev lo']);
    expect(spawned).toHaveLength(1);
    expect(spawned[0]!.argv).toEqual(['ip', '-json', '-batch', '-']);
    expect(spawned[0]!.opts.input).toBe('link set dev lo up\nlink show dev lo\n');
    expect(spawned[0]!.opts.nothrow).toBe(true);
    expect(out).toMatchObject({ shows: [JSON.parse(LO)], byLine: [undefined, JSON.parse(LO)], errors: [] });
  });

  it('enters a netns named in /run/netns with ip -n, any other through nsenter', async () => {
    answer({});
    await ipBatch(['link set dev lo up'], { netns: '/run/netns/ctr1' });
    await ipBatch(['link set dev lo up'], { netns: '/var/run/netns/ctr1' });
    await ipBatch(['link set dev lo up'], { netns: '/run/netns/sub/ctr1' });
    await ipBatch(['link set dev lo up'], { netns: '/run/netns/..' });
    expect(spawned.map((s) => s.argv)).toEqual([
      ['ip', '-n', 'ctr1', '-json', '-batch', '-'],
      ['ip', '-n', 'ctr1', '-json', '-batch', '-'],
      ['nsenter', '--net=/run/netns/sub/ctr1', '--', 'ip', '-json', '-batch', '-'],
      ['nsenter', '--net=/run/netns/..', '--', 'ip', '-json', '-batch', '-'],
    ]);
  });

  it('adds -force before -batch', async () => {
    answer({});
    await ipBatch(['link del dev a'], { force: true });
    expect(spawned[0]!.argv).toEqual(['ip', '-json', '-force', '-batch', '-']);
  });

  it('returns one value per show line, in order', async () => {
    answer({ stdout: `[]\n${LO}\n` });
    const out = await ipBatch(['route show table 100', 'link show dev lo']);
    expect(out.shows).toEqual([[], JSON.parse(LO)]);
  });

  it('names the failed line and its netns', async () => {
    answer({ exitCode: 1, stderr: 'RTNETLINK answers: File exists\nCommand failed -:2\n' });
    const p = ipBatch(['link set dev lo up', 'link add veth1 type veth peer name veth2', 'link set veth1 up'], { netns: '/run/netns/c' });
    await expect(p).rejects.toThrow('RTNETLINK answers: File exists (ip link add veth1 type veth peer name veth2 in /run/netns/c)');
  });

  it('names the failed line in the host', async () => {
    answer({ exitCode: 1, stderr: 'Cannot find device "nosuch0"\nCommand failed -:1\n' });
    await expect(ipBatch(['addr add 10.0.0.1/24 dev nosuch0'])).rejects.toThrow('Cannot find device "nosuch0" (ip addr add 10.0.0.1/24 dev nosuch0)');
  });

  it('with force returns every failure and the shows that worked', async () => {
    answer({ exitCode: 1, stdout: `${LO}\n`, stderr: 'Cannot find device "a"\nCommand failed -:1\n' });
    const out = await ipBatch(['link del dev a', 'link show dev lo'], { force: true });
    expect(out).toMatchObject({ shows: [JSON.parse(LO)], byLine: [undefined, JSON.parse(LO)], errors: [{ line: 0, message: 'Cannot find device "a"' }] });
  });

  it('with force keeps each show at its line when an earlier show failed', async () => {
    answer({ exitCode: 1, stdout: `${LO}\n`, stderr: 'Cannot find device "a"\nCommand failed -:1\n' });
    const out = await ipBatch(['link show dev a', 'link set dev lo up', 'link show dev lo'], { force: true });
    expect(out.byLine).toEqual([undefined, undefined, JSON.parse(LO)]);
  });

  it('throws a CommandError when ip fails without naming a line', async () => {
    answer({ exitCode: 255, stderr: 'Command "frob" is unknown, try "ip link help".\n' });
    const e = await ipBatch(['link frob'], { netns: '/run/netns/c' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandError);
    const ce = e as CommandError;
    expect(ce.exitCode).toBe(255);
    expect(ce.netns).toBe('/run/netns/c');
    expect(ce.argv).toEqual(['ip', '-json', '-batch', '-']);
    expect(ce.message).toBe('Command "frob" is unknown, try "ip link help". [ip -json -batch - (in netns /run/netns/c): exit code 255]');
  });
});

describe('ipJson', () => {
  it('runs `ip -json <args>` and parses the list', async () => {
    answer({ stdout: `${LO}\n` });
    const links = await ipJson<{ ifname: string }>(['-details', 'link', 'show', 'dev', 'lo']);
    expect(spawned[0]!.argv).toEqual(['ip', '-json', '-details', 'link', 'show', 'dev', 'lo']);
    expect(spawned[0]!.opts.input).toBeUndefined();
    expect(links[0]!.ifname).toBe('lo');
  });

  it('runs through nsenter when a netns is given', async () => {
    answer({ stdout: '[]\n' });
    expect(await ipJson(['addr', 'show'], { netns: '/proc/1234/ns/net' })).toEqual([]);
    expect(spawned[0]!.argv).toEqual(['nsenter', '--net=/proc/1234/ns/net', '--', 'ip', '-json', 'addr', 'show']);
  });

  it('reads empty output as an empty list', async () => {
    answer({ stdout: '' });
    expect(await ipJson(['route', 'show'])).toEqual([]);
  });

  it.each(['Device "eth9" does not exist.\n', 'Cannot find device "eth9"\n'])('is [] for %j when missingOk', async (stderr) => {
    answer({ exitCode: 1, stderr });
    expect(await ipJson(['link', 'show', 'dev', 'eth9'], { missingOk: true })).toEqual([]);
  });

  it('throws a CommandError for a missing object without missingOk', async () => {
    answer({ exitCode: 1, stderr: 'Device "eth9" does not exist.\n' });
    const e = await ipJson(['link', 'show', 'dev', 'eth9'], { netns: '/run/netns/c' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandError);
    expect((e as CommandError).argv).toEqual(['ip', '-json', 'link', 'show', 'dev', 'eth9']);
    expect((e as Error).message).toBe('Device "eth9" does not exist. [ip -json link show dev eth9 (in netns /run/netns/c): exit code 1]');
  });

  it('is [] for a route table that does not exist when missingOk', async () => {
    // Real output of `ip -json route show table 999`: a lone "[" and exit 2.
    answer({ exitCode: 2, stdout: '[', stderr: 'Error: ipv4: FIB table does not exist.\nDump terminated\n' });
    expect(await ipJson(['route', 'show', 'table', '999'], { missingOk: true })).toEqual([]);
  });

  it('throws a CommandError for other failures even with missingOk', async () => {
    answer({ exitCode: 2, stderr: 'Error: Operation not permitted.\n' });
    await expect(ipJson(['link', 'show'], { missingOk: true })).rejects.toThrow(CommandError);
  });
});

describe('tcBatch', () => {
  it('runs `tc -batch -` with -json, -details -raw and -force as asked', async () => {
    answer({ stdout: '[]\n' });
    const out = await tcBatch(['qdisc show dev veth1'], { netns: '/run/netns/h', json: true, raw: true, force: true });
    expect(spawned[0]!.argv).toEqual(['nsenter', '--net=/run/netns/h', '--', 'tc', '-json', '-details', '-raw', '-force', '-batch', '-']);
    expect(out.byLine).toEqual([[]]);
  });

  it('throws a BatchLineError carrying the failed line: the lines before it took effect', async () => {
    // Captured from tc 6.1: a second root qdisc on the same device.
    answer({ exitCode: 1, stderr: 'Error: Exclusivity flag on, cannot modify.\nCommand failed -:2\n' });
    const e = await tcBatch(['qdisc add dev v ingress', 'qdisc add dev v root handle 1: tbf rate 1bps burst 1 limit 1']).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BatchLineError);
    expect((e as BatchLineError).line).toBe(1);
    expect((e as Error).message).toBe('Error: Exclusivity flag on, cannot modify. (tc qdisc add dev v root handle 1: tbf rate 1bps burst 1 limit 1)');
  });
});

describe('isShowLine', () => {
  it.each([
    ['link show dev lo', true],
    ['qdisc show dev v', true],
    ['filter show dev v ingress', true],
    ['route list table all', true],
    ['link set dev lo up', false],
    ['qdisc add dev v root handle 1: tbf rate 1bps burst 1 limit 1', false],
  ])('%s', (line, want) => expect(isShowLine(line)).toBe(want));
});
