// One error path for failed commands: ip, tc, nft, iptables and the sysctl helper all fail with
// a CommandError, and asCniError alone decides its code: 11 (try again later) when the tool said
// it was busy, else 999. Failures are fed through the spawn hook; nothing runs.
import { ipBatch, ipJson, lineError, tcBatch } from '../iproute/ip';
import { delLinkInNetns } from '../iproute/iface';
import { netnsSysctl } from '../sysctl/netns';
import { CommandError } from '../exec/run';
import { fakeSpawn, type FakeSpawn } from '../exec/testing';
import { CniError, ErrCode, asCniError, wrapError } from './errors';

// What the tools print when the kernel or a lock holder says "not now" (iproute2 6.1, iptables 1.8.9).
const BUSY_LINE = 'RTNETLINK answers: Device or resource busy';
const EAGAIN_LINE = 'RTNETLINK answers: Resource temporarily unavailable';
const XTABLES = 'Another app is currently holding the xtables lock. Perhaps you want to use the -w option?';

let fake: FakeSpawn;
afterEach(() => fake?.restore());

/** The CNI code the error `p` rejects with ends up as, the way pluginMain maps it. */
async function codeOf(p: Promise<unknown>): Promise<number> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (e === undefined) throw new Error('expected a failure');
  return asCniError(e).code;
}

describe('asCniError', () => {
  it.each([
    [BUSY_LINE, ErrCode.TryAgainLater],
    [EAGAIN_LINE, ErrCode.TryAgainLater],
    [XTABLES, ErrCode.TryAgainLater],
    ['write /proc/sys/net/ipv4/ip_forward: EBUSY', ErrCode.TryAgainLater],
    ['RTNETLINK answers: File exists', ErrCode.Internal],
    ['Cannot find device "eth9"', ErrCode.Internal],
  ])('a command that said %j is code %d', (stderr, code) => {
    const e = asCniError(new CommandError(['ip', '-batch', '-'], 2, stderr));
    expect(e).toBeInstanceOf(CniError);
    expect(e.code).toBe(code);
    expect(e.message).toBe(`${stderr} [ip -batch -: exit code 2]`);
  });

  it('only a command is judged by its text: a plain error saying "busy" stays 999', () => {
    expect(asCniError(new Error(BUSY_LINE)).code).toBe(ErrCode.Internal);
  });

  it('a CniError passes through unchanged, anything else is 999', () => {
    const e = new CniError(ErrCode.InvalidConfig, 'bad');
    expect(asCniError(e)).toBe(e);
    expect(asCniError('text')).toMatchObject({ code: ErrCode.Internal, message: 'text' });
  });

  it('wrapError keeps the busy code under its context', () => {
    const e = wrapError('failed to configure eth0 in /run/netns/c', new CommandError(['tc', '-batch', '-'], 2, EAGAIN_LINE));
    expect(e).toMatchObject({ code: ErrCode.TryAgainLater, message: `failed to configure eth0 in /run/netns/c: ${EAGAIN_LINE} [tc -batch -: exit code 2]` });
  });
});

describe('every command runner fails with a CommandError, so busy is code 11', () => {
  it('ip batch: the failed line names itself and is code 11', async () => {
    fake = fakeSpawn(() => ({ exitCode: 1, stderr: `${BUSY_LINE}\nCommand failed -:2\n` }));
    const p = ipBatch(['link set dev eth0 up', 'link set dev eth0 netns /run/netns/c'], { netns: '/run/netns/h' });
    await expect(p).rejects.toBeInstanceOf(CommandError);
    await expect(p).rejects.toThrow(`${BUSY_LINE} (ip link set dev eth0 netns /run/netns/c in /run/netns/h)`);
    expect(await codeOf(p)).toBe(ErrCode.TryAgainLater);
  });

  it('ip batch: a line that failed for another reason stays 999', async () => {
    fake = fakeSpawn(() => ({ exitCode: 1, stderr: 'RTNETLINK answers: File exists\nCommand failed -:1\n' }));
    expect(await codeOf(ipBatch(['link add x type dummy']))).toBe(ErrCode.Internal);
  });

  it('tc batch', async () => {
    fake = fakeSpawn(() => ({ exitCode: 1, stderr: `${EAGAIN_LINE}\nCommand failed -:1\n` }));
    expect(await codeOf(tcBatch(['qdisc add dev v root handle 1: tbf rate 1bps burst 1 limit 1']))).toBe(ErrCode.TryAgainLater);
  });

  it('a -force batch line the caller judged fatal (lineError)', async () => {
    fake = fakeSpawn(() => ({ exitCode: 1, stderr: `${BUSY_LINE}\nCommand failed -:1\n` }));
    const out = await ipBatch(['link set dev br0 up'], { force: true });
    const e = lineError(out, out.errors[0]!, 'failed to raise br0');
    expect(e).toMatchObject({ message: 'failed to raise br0', line: 0, argv: ['ip', '-json', '-force', '-batch', '-'], exitCode: 1 });
    expect(asCniError(e).code).toBe(ErrCode.TryAgainLater);
  });

  it('DEL of the container link', async () => {
    fake = fakeSpawn(() => ({ exitCode: 1, stderr: `${BUSY_LINE}\nCommand failed -:1\n` }));
    const p = delLinkInNetns('/proc/self/ns/net', 'eth0');
    await expect(p).rejects.toThrow(`delete eth0: ${BUSY_LINE}`);
    expect(await codeOf(p)).toBe(ErrCode.TryAgainLater);
  });

  it('ip -json reads', async () => {
    fake = fakeSpawn(() => ({ exitCode: 2, stderr: `${EAGAIN_LINE}\n` }));
    expect(await codeOf(ipJson(['addr', 'show'], { netns: '/run/netns/c' }))).toBe(ErrCode.TryAgainLater);
  });

  it('the netns sysctl helper: failing, or answering nonsense', async () => {
    fake = fakeSpawn(() => ({ exitCode: 1, stderr: `nsenter: reassociate to namespace 'ns/net' failed: Resource temporarily unavailable\n` }));
    expect(await codeOf(netnsSysctl('/run/netns/c', { read: ['/proc/sys/net/ipv4/ip_forward'] }))).toBe(ErrCode.TryAgainLater);
    fake.answer(() => ({ stdout: 'not json' }));
    const p = netnsSysctl('/run/netns/c', { read: ['/proc/sys/net/ipv4/ip_forward'] });
    await expect(p).rejects.toBeInstanceOf(CommandError);
    await expect(p).rejects.toThrow('sysctl helper in /run/netns/c answered: not json');
  });
});
