// Range defaults and checks, against the reference's range_test.go behaviour.
import { formatIP, parseIP } from '../../../lib/ip/cidr';
import { canonicalizeRange, isReservedAddress, rangeContains, rangesOverlap, rangeString } from './range';
import { canonicalizeRangeSet, rangeFor, rangeSetString } from './range-set';

const ip = (s: string) => parseIP(s)!;

describe('canonicalizeRange', () => {
  it('fills IPv4 defaults: gateway .1, start .1, end broadcast-1', () => {
    const r = canonicalizeRange({ subnet: '192.0.2.0/24' });
    expect(formatIP(r.gateway)).toBe('192.0.2.1');
    expect(rangeString(r)).toBe('192.0.2.1-192.0.2.254');
  });

  it('fills IPv6 defaults: end is the last address', () => {
    const r = canonicalizeRange({ subnet: '2001:db8:1::/120' });
    expect(rangeString(r)).toBe('2001:db8:1::1-2001:db8:1::ff');
    expect(formatIP(r.gateway)).toBe('2001:db8:1::1');
  });

  it('keeps explicit start, end and gateway', () => {
    const r = canonicalizeRange({ subnet: '10.1.0.0/16', rangeStart: '10.1.2.10', rangeEnd: '10.1.2.20', gateway: '10.1.0.254' });
    expect(rangeString(r)).toBe('10.1.2.10-10.1.2.20');
    expect(formatIP(r.gateway)).toBe('10.1.0.254');
  });

  it.each([
    ['10.0.0.0/31', 'Network 10.0.0.0/31 too small to allocate from'],
    ['10.0.0.1/32', 'Network 10.0.0.1/32 too small to allocate from'],
    ['fd00::/127', 'Network fd00::/127 too small to allocate from'],
    ['10.0.0.1/24', 'Network has host bits set. For a subnet mask of length 24 the network address is 10.0.0.0'],
    ['10.0.0.0/33', 'invalid CIDR address: 10.0.0.0/33'],
    ['nonsense', 'invalid CIDR address: nonsense'],
  ])('rejects subnet %s', (subnet, msg) => {
    expect(() => canonicalizeRange({ subnet })).toThrow(msg);
  });

  it('rejects rangeStart/rangeEnd outside the subnet, inverted, or of the other family', () => {
    expect(() => canonicalizeRange({ subnet: '10.0.0.0/24', rangeStart: '10.0.1.5' })).toThrow('RangeStart 10.0.1.5 not in network 10.0.0.0/24');
    expect(() => canonicalizeRange({ subnet: '10.0.0.0/24', rangeEnd: '10.0.1.5' })).toThrow('RangeEnd 10.0.1.5 not in network 10.0.0.0/24');
    expect(() => canonicalizeRange({ subnet: '10.0.0.0/24', rangeStart: '10.0.0.9', rangeEnd: '10.0.0.5' })).toThrow('is after RangeEnd');
    expect(() => canonicalizeRange({ subnet: '10.0.0.0/24', rangeStart: 'fd00::1' })).toThrow('not in network');
    expect(() => canonicalizeRange({ subnet: '10.0.0.0/24', gateway: 'fd00::1' })).toThrow('not of the same IP family');
    expect(() => canonicalizeRange({ subnet: '10.0.0.0/24', gateway: 'x' })).toThrow('invalid gateway "x"');
  });

  it('contains only addresses between start and end', () => {
    const r = canonicalizeRange({ subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.20' });
    expect(rangeContains(r, ip('10.0.0.10'))).toBe(true);
    expect(rangeContains(r, ip('10.0.0.20'))).toBe(true);
    expect(rangeContains(r, ip('10.0.0.9'))).toBe(false);
    expect(rangeContains(r, ip('10.0.0.21'))).toBe(false);
    expect(rangeContains(r, ip('fd00::10'))).toBe(false);
  });

  it('marks gateway, network and IPv4 broadcast as never to be handed out', () => {
    const r = canonicalizeRange({ subnet: '10.0.0.0/24' });
    expect(isReservedAddress(r, ip('10.0.0.1'))).toBe(true);
    expect(isReservedAddress(r, ip('10.0.0.0'))).toBe(true);
    expect(isReservedAddress(r, ip('10.0.0.255'))).toBe(true);
    expect(isReservedAddress(r, ip('10.0.0.2'))).toBe(false);
    const r6 = canonicalizeRange({ subnet: 'fd00::/120' });
    expect(isReservedAddress(r6, ip('fd00::ff'))).toBe(false);
  });
});

describe('range sets', () => {
  it('detects overlapping ranges in a set', () => {
    expect(() => canonicalizeRangeSet([{ subnet: '10.0.0.0/24' }, { subnet: '10.0.0.0/16' }])).toThrow('overlap');
    expect(rangesOverlap(canonicalizeRange({ subnet: '10.0.0.0/24', rangeEnd: '10.0.0.100' }), canonicalizeRange({ subnet: '10.0.0.0/24', rangeStart: '10.0.0.101' }))).toBe(false);
  });

  it('rejects an empty set and mixed families', () => {
    expect(() => canonicalizeRangeSet([])).toThrow('empty range set');
    expect(() => canonicalizeRangeSet([{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }])).toThrow('mixed address families');
  });

  it('finds the range of an address and prints like the reference', () => {
    const s = canonicalizeRangeSet([{ subnet: '10.0.0.0/30' }, { subnet: '10.0.1.0/30' }]);
    expect(rangeSetString(s)).toBe('10.0.0.1-10.0.0.2,10.0.1.1-10.0.1.2');
    expect(rangeFor(s, ip('10.0.1.2'))).toBe(s[1]);
    expect(rangeFor(s, ip('10.0.2.2'))).toBeUndefined();
  });
});
