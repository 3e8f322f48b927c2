// Allocation policy on FakeStore: round-robin, skips, requested addresses, errors.
import { formatIP, parseIP } from '../../../lib/ip/cidr';
import { CniError, ErrCode } from '../../../lib/skel/errors';
import { FakeStore } from '../store/fake-store';
import { IPAllocator, PROBES_BEFORE_LISTING, RangeIter } from './allocator';
import { type RawRange } from './range';
import { canonicalizeRangeSet } from './range-set';

const ip = (s: string) => parseIP(s)!;
const set = (...r: RawRange[]) => canonicalizeRangeSet(r);
const walk = (it: RangeIter): string[] => {
  const out: string[] = [];
  for (let c = it.next(); c; c = it.next()) out.push(formatIP(c.ip));
  return out;
};

describe('RangeIter', () => {
  it('walks from rangeStart, skipping the gateway', () => {
    expect(walk(new RangeIter(set({ subnet: '10.0.0.0/29' })))).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  });

  it('starts after the last reserved address and wraps across ranges, last one tried last', () => {
    const s = set({ subnet: '10.0.0.0/30' }, { subnet: '10.0.1.0/30' });
    expect(walk(new RangeIter(s, ip('10.0.0.2')))).toEqual(['10.0.1.2', '10.0.0.2']);
    expect(walk(new RangeIter(s, ip('10.0.1.2')))).toEqual(['10.0.0.2', '10.0.1.2']);
  });

  it('never yields network or broadcast even when the range names them', () => {
    const s = set({ subnet: '10.0.0.0/29', rangeStart: '10.0.0.0', rangeEnd: '10.0.0.7', gateway: '10.0.0.6' });
    expect(walk(new RangeIter(s))).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5']);
  });

  it('ends when the only address is the gateway', () => {
    const s = set({ subnet: '10.0.0.0/30', rangeStart: '10.0.0.1', rangeEnd: '10.0.0.1' });
    expect(walk(new RangeIter(s))).toEqual([]);
  });
});

describe('IPAllocator.get', () => {
  it('allocates round-robin and records last_reserved_ip per range set', async () => {
    const store = new FakeStore();
    const a = new IPAllocator(set({ subnet: '10.0.0.0/29' }), store, 3);
    expect(await a.get('c1', 'eth0')).toEqual({ address: '10.0.0.2/29', gateway: '10.0.0.1' });
    expect((await a.get('c2', 'eth0')).address).toBe('10.0.0.3/29');
    await a.release('c1', 'eth0');
    // .2 is free again but round-robin moves on.
    expect((await a.get('c3', 'eth0')).address).toBe('10.0.0.4/29');
    expect(formatIP((await store.lastReservedIP('3'))!)).toBe('10.0.0.4');
    expect(store.leases.get('10.0.0.4')).toBe('c3\r\neth0');
  });

  it('wraps to the start after the end', async () => {
    const store = new FakeStore({}, { '0': '10.0.0.6' });
    const a = new IPAllocator(set({ subnet: '10.0.0.0/29' }), store, 0);
    expect((await a.get('c1', 'eth0')).address).toBe('10.0.0.2/29');
  });

  it('ignores a last_reserved_ip outside the set', async () => {
    const store = new FakeStore({}, { '0': '192.168.0.9' });
    const a = new IPAllocator(set({ subnet: '10.0.0.0/29' }), store, 0);
    expect((await a.get('c1', 'eth0')).address).toBe('10.0.0.2/29');
  });

  it('fails with the reference message and code 100 when the set is full', async () => {
    const store = new FakeStore({ '10.0.0.2': 'x\r\neth0' });
    const a = new IPAllocator(set({ subnet: '10.0.0.0/30' }), store, 0);
    const e = await a.get('c1', 'eth0').catch((x) => x);
    expect(e).toBeInstanceOf(CniError);
    expect(e.code).toBe(ErrCode.NoAddressAvailable);
    expect(e.message).toBe('no IP addresses available in range set: 10.0.0.1-10.0.0.2');
  });

  it('refuses a second address for one attachment in the same set, including legacy leases', async () => {
    const store = new FakeStore({ '10.0.0.5': 'c1\r\neth0', '10.0.0.6': 'old' });
    const a = new IPAllocator(set({ subnet: '10.0.0.0/24' }), store, 0);
    await expect(a.get('c1', 'eth0')).rejects.toThrow('10.0.0.5 has been allocated to c1, duplicate allocation is not allowed');
    await expect(a.get('old', 'eth1')).rejects.toThrow('10.0.0.6 has been allocated to old');
    // Another interface of the same container is fine.
    expect((await a.get('c1', 'eth1')).address).toBe('10.0.0.2/24');
    // A lease in another set does not count.
    const b = new IPAllocator(set({ subnet: '10.1.0.0/24' }), store, 1);
    expect((await b.get('c1', 'eth0')).address).toBe('10.1.0.2/24');
  });

  it('honours a requested address and checks it', async () => {
    const store = new FakeStore();
    const a = new IPAllocator(set({ subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.20' }), store, 0);
    expect((await a.get('c1', 'eth0', ip('10.0.0.15'))).address).toBe('10.0.0.15/24');
    await expect(a.get('c2', 'eth0', ip('10.0.0.15'))).rejects.toMatchObject({
      code: ErrCode.AddressInUse,
      message: 'requested IP address 10.0.0.15 is not available in range set 10.0.0.10-10.0.0.20',
    });
    await expect(a.get('c2', 'eth0', ip('10.0.0.30'))).rejects.toThrow('10.0.0.30 not in range set 10.0.0.10-10.0.0.20');
    const g = new IPAllocator(set({ subnet: '10.0.1.0/24' }), store, 1);
    await expect(g.get('c2', 'eth0', ip('10.0.1.1'))).rejects.toThrow("requested ip 10.0.1.1 is subnet's gateway");
  });

  it('switches from blind creates to one listing in a crowded stretch', async () => {
    const leases: Record<string, string> = {};
    for (let i = 2; i < 2 + PROBES_BEFORE_LISTING + 20; i++) leases[`10.0.0.${i}`] = `x${i}\r\neth0`;
    const store = new FakeStore(leases);
    const reserve = jest.spyOn(store, 'reserve');
    const list = jest.spyOn(store, 'listReserved');
    const a = new IPAllocator(set({ subnet: '10.0.0.0/24' }), store, 0);
    expect((await a.get('c', 'eth0')).address).toBe(`10.0.0.${2 + PROBES_BEFORE_LISTING + 20}/24`);
    expect(list).toHaveBeenCalledTimes(1);
    expect(reserve).toHaveBeenCalledTimes(PROBES_BEFORE_LISTING + 1);
  });

  it('works in IPv6', async () => {
    const a = new IPAllocator(set({ subnet: '2001:db8::/64' }), new FakeStore(), 0);
    expect(await a.get('c', 'eth0')).toEqual({ address: '2001:db8::2/64', gateway: '2001:db8::1' });
  });
});

describe('IPAllocator.hasFree', () => {
  it('is false only when every usable address is leased', async () => {
    const store = new FakeStore({ '10.0.0.2': 'a\r\neth0' });
    const a = new IPAllocator(set({ subnet: '10.0.0.0/29' }), store, 0);
    expect(await a.hasFree()).toBe(true);
    for (const i of [3, 4, 5]) store.leases.set(`10.0.0.${i}`, 'b');
    expect(await a.hasFree()).toBe(true);
    store.leases.set('10.0.0.6', 'b');
    expect(await a.hasFree()).toBe(false);
  });
});
