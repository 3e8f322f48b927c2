import {
  bufferTolerance,
  checkLines,
  ifbAlias,
  ifbLines,
  ifbName,
  parseIfbAlias,
  redirectMismatch,
  shapeLines,
  tbfMismatch,
  tbfParams,
  tickInUsec,
  unshapeLines,
} from './tc';

describe('tbf numbers as the reference computes them', () => {
  test('10 Mbit/s with a 100 kbit burst: the tc 6.1 dump of the reference shows 1250000 B/s, limit 43750, buffer 0x2625a', () => {
    expect(tbfParams(10_000_000, 100_000)).toEqual({ rate: 1_250_000, burst: 12_500, bufferTicks: 156_250, limit: 43_750 });
  });

  test("containerd's payload (bursts of 4294967295 bits): the buffer wraps at 32 bits as Go's uint32 conversion on amd64 does", () => {
    // 536870911 B at 125000 B/s = 4294967288 µs = 67108863875 ticks, whose low 32 bits are kept.
    expect(tbfParams(1_000_000, 4_294_967_295)).toEqual({ rate: 125_000, burst: 536_870_911, bufferTicks: 2_684_354_435, limit: 536_874_036 });
    expect(tbfParams(2_000_000, 4_294_967_295).bufferTicks).toBe(3_489_660_865);
  });

  test('rates and bursts in bits are cut to whole bytes (integer division, as the reference)', () => {
    expect(tbfParams(12_345_678, 99_999)).toMatchObject({ rate: 1_543_209, burst: 12_499, limit: 38_580 + 12_499 });
  });

  test('the psched clock: 1000/64 µs per tick on current kernels; unreadable → the same default', () => {
    expect(tickInUsec('000003e8 00000040 000f4240 3b9aca00\n')).toBe(15.625);
    expect(tickInUsec(undefined)).toBe(15.625);
    expect(tickInUsec('garbage')).toBe(15.625);
    // A 1 GHz clock_res: t2us is taken as us2t (tc and netlink do the same).
    expect(tickInUsec('000003e8 00000040 3b9aca00 3b9aca00')).toBe(1000);
  });

  test('buffer tolerance is about one byte of time at the rate', () => {
    expect(bufferTolerance(tbfParams(10_000_000, 100_000))).toBe(14);
    expect(bufferTolerance(tbfParams(8, 8))).toBe(15_625_001);
  });
});

describe('names', () => {
  test('ifb name: bwp + sha512(network + containerID), 15 chars (the reference named bwnet/abc123 bwp13229d9cfd25)', () => {
    expect(ifbName('bwnet', 'abc123')).toBe('bwp13229d9cfd25');
    expect(ifbName('bwnet', 'abc123')).toHaveLength(15);
  });

  test('alias round trip; anything else is not ours', () => {
    expect(parseIfbAlias(ifbAlias('net-1', 'ctr-abc'))).toEqual({ network: 'net-1', containerID: 'ctr-abc' });
    expect(parseIfbAlias(undefined)).toBeUndefined();
    expect(parseIfbAlias('something else')).toBeUndefined();
    expect(parseIfbAlias('cni-bandwidth/a/b/c')).toBeUndefined();
  });
});

describe('batch lines', () => {
  const ingress = tbfParams(10_000_000, 100_000);
  const egress = { ifb: 'bwp13229d9cfd25', tbf: tbfParams(20_000_000, 200_000) };

  test('the ifb: MTU of the veth, txqueuelen 0, up with our alias, read back', () => {
    expect(ifbLines('bwp13229d9cfd25', 1450, 'cni-bandwidth/n/c')).toEqual([
      'link add name bwp13229d9cfd25 mtu 1450 txqueuelen 0 type ifb',
      'link set dev bwp13229d9cfd25 up alias cni-bandwidth/n/c',
      'link show dev bwp13229d9cfd25',
    ]);
  });

  test('both directions: veth root tbf, ingress qdisc, match-all redirect, ifb tbf', () => {
    expect(shapeLines({ hostVeth: 'veth1234', ingress, egress })).toEqual([
      'qdisc add dev veth1234 root handle 1: tbf rate 1250000bps burst 12500 limit 43750',
      'qdisc add dev veth1234 handle ffff: ingress',
      'filter add dev veth1234 parent ffff: protocol all prio 1 u32 match u32 0 0 flowid 1:1 action mirred egress redirect dev bwp13229d9cfd25',
      'qdisc add dev bwp13229d9cfd25 root handle 1: tbf rate 2500000bps burst 25000 limit 87500',
    ]);
  });

  test('ingress only / egress only', () => {
    expect(shapeLines({ hostVeth: 'v', ingress })).toEqual(['qdisc add dev v root handle 1: tbf rate 1250000bps burst 12500 limit 43750']);
    expect(shapeLines({ hostVeth: 'v', egress })).toHaveLength(3);
  });

  test('undo only what took effect, newest first; the filter goes with the ingress qdisc', () => {
    const lines = shapeLines({ hostVeth: 'v', ingress, egress });
    expect(unshapeLines(lines, 0, 'v')).toEqual([]);
    expect(unshapeLines(lines, 1, 'v')).toEqual(['qdisc del dev v root']);
    expect(unshapeLines(lines, 3, 'v')).toEqual(['qdisc del dev v ingress', 'qdisc del dev v root']);
    expect(unshapeLines(lines, 4, 'v')).toEqual(['qdisc del dev v ingress', 'qdisc del dev v root']);
  });

  test('CHECK reads', () => {
    expect(checkLines({ hostVeth: 'v', ingress })).toEqual(['qdisc show dev v']);
    expect(checkLines({ hostVeth: 'v', egress })).toEqual(['qdisc show dev v', 'filter show dev v ingress', 'qdisc show dev bwp13229d9cfd25']);
  });
});

describe('CHECK against tc -json -details -raw output', () => {
  const want = tbfParams(10_000_000, 100_000);
  // Captured from tc 6.1 after the reference's ADD (10 Mbit/s, 100 kbit).
  const good = [
    { kind: 'tbf', handle: '1:', root: true, options: { rate: 1250000, burst_raw: '2625a', limit: 43750 } },
    { kind: 'ingress', handle: 'ffff:', parent: 'ffff:fff1', options: {} },
  ];
  test('matches', () => expect(tbfMismatch('v', good, want)).toBeUndefined());
  test('a bucket a few ticks off (tc passes bytes, the kernel converts) still matches', () => {
    expect(tbfMismatch('v', [{ ...good[0]!, options: { ...good[0]!.options, burst_raw: '26250' } }], want)).toBeUndefined();
  });
  test.each([
    [[], 'v has no root tbf qdisc'],
    [[{ kind: 'fq_codel', handle: '0:', root: true }], 'v has no root tbf qdisc (it has fq_codel)'],
    [[{ ...good[0]!, options: { ...good[0]!.options, rate: 125000 } }], 'v: tbf rate is 125000 bytes/s, expected 1250000'],
    [[{ ...good[0]!, options: { ...good[0]!.options, limit: 1 } }], 'v: tbf limit is 1 bytes, expected 43750'],
    [[{ ...good[0]!, options: { ...good[0]!.options, burst_raw: '1' } }], 'v: tbf buffer is 1 ticks, expected 156250 (burst 12500 bytes)'],
  ])('mismatch %#', (qdiscs, msg) => expect(tbfMismatch('v', qdiscs, want)).toBe(msg));

  const filters = [
    { kind: 'u32' },
    { kind: 'u32', options: { actions: [{ kind: 'mirred', mirred_action: 'redirect', direction: 'egress', to_dev: 'bwp1' }] } },
  ];
  test('redirect present', () => expect(redirectMismatch('v', good, filters, 'bwp1')).toBeUndefined());
  test('redirect to another device, or no ingress qdisc', () => {
    expect(redirectMismatch('v', good, filters, 'bwp2')).toBe('v has no filter redirecting its ingress to bwp2');
    expect(redirectMismatch('v', [good[0]!], filters, 'bwp1')).toBe('v has no ingress qdisc');
  });
});
