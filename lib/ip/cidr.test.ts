// Address math, with the ip-cidr package as an independent oracle for subnet bounds.
import {
  canonicalIP,
  cidrsOverlap,
  cmpIP,
  contains,
  formatCidr,
  formatIP,
  lastAddr,
  networkAddr,
  networkOf,
  nextIP,
  parseCidr,
  parseIP,
  prevIP,
  type Cidr,
  type IP,
} from './cidr';

const ip = (s: string): IP => {
  const r = parseIP(s);
  if (!r) throw new Error(`test address ${s} did not parse`);
  return r;
};
const cidr = (s: string): Cidr => {
  const r = parseCidr(s);
  if (!r) throw new Error(`test CIDR ${s} did not parse`);
  return r;
};

describe('parseIP / formatIP', () => {
  it.each([
    ['0.0.0.0', 0n],
    ['10.1.2.3', 0x0a010203n],
    ['255.255.255.255', 0xffffffffn],
  ])('v4 %s', (s, v) => {
    expect(parseIP(s)).toEqual({ family: 4, value: v });
    expect(formatIP({ family: 4, value: v })).toBe(s);
  });

  it.each([
    // [input, canonical RFC 5952 text]
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    // One zero group is not compressed.
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    // The longest run wins; the first on a tie.
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['fe80::0001:0002', 'fe80::1:2'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    // Mixed notation with a trailing dotted quad.
    ['::ffff:10.1.2.3', '::ffff:10.1.2.3'],
    ['::ffff:a01:203', '::ffff:10.1.2.3'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ])('v6 %s -> %s', (s, canon) => {
    const p = ip(s);
    expect(p.family).toBe(6);
    expect(formatIP(p)).toBe(canon);
    expect(ip(canon)).toEqual(p);
  });

  it('reads a dotted quad as the last two groups', () => {
    expect(ip('::ffff:1.2.3.4').value).toBe(0xffff01020304n);
    expect(ip('64:ff9b::192.0.2.33').value).toBe((0x64ff9bn << 96n) | 0xc0000221n);
  });

  it.each(['', 'abc', '1.2.3', '1.2.3.4.5', '300.1.1.1', '01.2.3.4', '1:2:3:4:5:6:7:8:9', '1::2::3', 'g::1', '10.0.0.0/8', ' 10.0.0.1', 'fe80::1%eth0'])(
    'rejects %j',
    (s) => {
      expect(parseIP(s)).toBeUndefined();
    },
  );

  it('canonicalIP normalises or refuses', () => {
    expect(canonicalIP('2001:DB8::0:1')).toBe('2001:db8::1');
    expect(canonicalIP('10.0.0.1')).toBe('10.0.0.1');
    expect(canonicalIP('nope')).toBeUndefined();
  });
});

describe('parseCidr / formatCidr', () => {
  it('keeps host bits as written', () => {
    const c = cidr('10.1.2.3/24');
    expect(c).toEqual({ ip: { family: 4, value: 0x0a010203n }, prefix: 24 });
    expect(formatCidr(c)).toBe('10.1.2.3/24');
    expect(formatCidr(networkOf(c))).toBe('10.1.2.0/24');
  });

  it('formats v6 canonically', () => {
    expect(formatCidr(cidr('2001:0DB8:0000::0005/64'))).toBe('2001:db8::5/64');
    expect(formatCidr(networkOf(cidr('2001:db8::5/64')))).toBe('2001:db8::/64');
  });

  it.each(['0.0.0.0/0', '10.0.0.0/32', '::/0', '::1/128'])('accepts the edge prefix in %s', (s) => {
    expect(formatCidr(cidr(s))).toBe(s);
  });

  it.each(['10.0.0.0/33', '300.1.1.1/24', 'abc', '10.0.0.0', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8a', '10.0.0.0/24/1', '::/129', '/24', 'fe80::1%eth0/64'])(
    'rejects %j',
    (s) => {
      expect(parseCidr(s)).toBeUndefined();
    },
  );
});

describe('subnet bounds and membership', () => {
  it('v4', () => {
    const c = cidr('192.168.10.77/22');
    expect(formatIP(networkAddr(c))).toBe('192.168.8.0');
    expect(formatIP(lastAddr(c))).toBe('192.168.11.255');
    expect(contains(c, ip('192.168.8.0'))).toBe(true);
    expect(contains(c, ip('192.168.11.255'))).toBe(true);
    expect(contains(c, ip('192.168.12.0'))).toBe(false);
    expect(contains(c, ip('192.168.7.255'))).toBe(false);
  });

  it('v6', () => {
    const c = cidr('2001:db8:1:2::99/56');
    expect(formatIP(networkAddr(c))).toBe('2001:db8:1::');
    expect(formatIP(lastAddr(c))).toBe('2001:db8:1:ff:ffff:ffff:ffff:ffff');
    expect(contains(c, ip('2001:db8:1:ff::1'))).toBe(true);
    expect(contains(c, ip('2001:db8:1:100::'))).toBe(false);
  });

  it('/0 and host prefixes', () => {
    expect(contains(cidr('0.0.0.0/0'), ip('255.1.2.3'))).toBe(true);
    expect(contains(cidr('::/0'), ip('ffff::1'))).toBe(true);
    expect(contains(cidr('10.0.0.1/32'), ip('10.0.0.1'))).toBe(true);
    expect(contains(cidr('10.0.0.1/32'), ip('10.0.0.2'))).toBe(false);
    expect(formatIP(lastAddr(cidr('::/0')))).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
  });

  it('never mixes families', () => {
    // ::a00:0 has the same value as 10.0.0.0 but is not inside 10.0.0.0/8.
    expect(contains(cidr('10.0.0.0/8'), ip('::a00:1'))).toBe(false);
    expect(contains(cidr('::/0'), ip('10.0.0.1'))).toBe(false);
  });

  it('cidrsOverlap', () => {
    expect(cidrsOverlap(cidr('10.0.0.0/8'), cidr('10.5.0.0/16'))).toBe(true);
    expect(cidrsOverlap(cidr('10.5.0.0/16'), cidr('10.0.0.0/8'))).toBe(true);
    expect(cidrsOverlap(cidr('10.0.0.0/24'), cidr('10.0.1.0/24'))).toBe(false);
    expect(cidrsOverlap(cidr('fd00::/64'), cidr('fd00::1234/120'))).toBe(true);
  });
});

describe('next / prev', () => {
  it('steps across octet boundaries', () => {
    expect(formatIP(nextIP(ip('10.0.0.255')))).toBe('10.0.1.0');
    expect(formatIP(prevIP(ip('10.0.1.0')))).toBe('10.0.0.255');
    expect(formatIP(nextIP(ip('2001:db8::ffff')))).toBe('2001:db8::1:0');
  });

  it('wraps at the ends of the address space', () => {
    expect(formatIP(nextIP(ip('255.255.255.255')))).toBe('0.0.0.0');
    expect(formatIP(prevIP(ip('0.0.0.0')))).toBe('255.255.255.255');
    expect(formatIP(nextIP(ip('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')))).toBe('::');
    expect(formatIP(prevIP(ip('::')))).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
  });

  it('cmpIP orders by family, then value', () => {
    const list = ['::1', '10.0.0.2', '10.0.0.1', '::'].map(ip).sort(cmpIP).map(formatIP);
    expect(list).toEqual(['10.0.0.1', '10.0.0.2', '::', '::1']);
  });
});

describe('against ip-cidr as an oracle', () => {
  // ip-cidr is ESM and default-imports the CommonJS ip-address, which esbuild's per-file CJS
  // output resolves to `exports.default` (undefined); hand it the module object, as Node would.
  jest.doMock('ip-address', () => {
    const m = jest.requireActual('ip-address');
    return { ...m, default: m };
  });
  const IPCIDR = (require('ip-cidr') as { default: typeof import('ip-cidr').default }).default;

  // A small deterministic PRNG so a failure can be reproduced.
  let seed = 0x2545f491;
  const rnd = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const randBits = (n: number): bigint => {
    let v = 0n;
    for (let i = 0; i < n; i += 16) v = (v << 16n) | BigInt(Math.floor(rnd() * 65536));
    return v & ((1n << BigInt(n)) - 1n);
  };

  const samples: string[] = [];
  for (let i = 0; i < 200; i++) {
    samples.push(`${formatIP({ family: 4, value: randBits(32) })}/${Math.floor(rnd() * 33)}`);
    // Bias v6 toward runs of zero groups so compression is exercised too.
    const v = randBits(128) & (rnd() < 0.5 ? ~(0xffffffffn << BigInt(16 * Math.floor(rnd() * 6))) : -1n);
    samples.push(`${formatIP({ family: 6, value: v })}/${Math.floor(rnd() * 129)}`);
  }

  it('agrees on the network start and end of 400 random CIDRs', () => {
    for (const s of samples) {
      const ours = cidr(s);
      const theirs = new IPCIDR(s);
      const start = BigInt(theirs.start<bigint>({ type: 'bigInteger' }) as bigint);
      const end = BigInt(theirs.end<bigint>({ type: 'bigInteger' }) as bigint);
      expect([s, networkAddr(ours).value, lastAddr(ours).value]).toEqual([s, start, end]);
      expect(contains(ours, { family: ours.ip.family, value: start })).toBe(true);
      expect(contains(ours, nextIP({ family: ours.ip.family, value: end }))).toBe(end === (1n << BigInt(ours.ip.family === 4 ? 32 : 128)) - 1n && start === 0n);
    }
  });

  it('agrees on which text is a valid CIDR for the inputs in this file', () => {
    for (const s of ['10.0.0.0/33', '300.1.1.1/24', 'abc', '10.0.0.0/24', '2001:db8::/48', '::/129']) {
      expect([s, parseCidr(s) !== undefined]).toEqual([s, IPCIDR.isValidCIDR(s)]);
    }
  });

  it('parses its own formatting of every sample back to the same value', () => {
    for (const s of samples) {
      const c = cidr(s);
      expect(cidr(formatCidr(c))).toEqual(c);
    }
  });
});
