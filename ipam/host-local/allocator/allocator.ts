/**
 * Allocation policy for one range set (allocator/allocator.go): requested address or
 * round-robin from `last_reserved_ip.<N>`. Never touches files: every lease goes through the
 * Store, whose lock the caller holds.
 */
import { CniError, ErrCode } from '../../../lib/skel/errors';
import { type IP, formatIP, ipEqual, nextIP } from '../../../lib/ip/cidr';
import type { IPConfig } from '../../../lib/types/result';
import type { Store } from '../store/store';
import { type Range, isReservedAddress } from './range';
import { type RangeSet, rangeFor, rangeSetContains, rangeSetString } from './range-set';

/** Exclusive-create attempts before one directory listing replaces blind probing. */
export const PROBES_BEFORE_LISTING = 32;

/** One candidate address and the range it came from. */
export interface Candidate {
  ip: IP;
  range: Range;
}

/**
 * Walks a range set once, range by range and wrapping, starting after `last` when given
 * (allocator.go RangeIter). Skips the gateway, and also the network and IPv4 broadcast
 * addresses, which the reference could hand out only when rangeStart/rangeEnd name them.
 */
export class RangeIter {
  private rangeIdx = 0;
  private cur: IP | undefined;
  private startIP: IP | undefined;

  constructor(
    private readonly set: RangeSet,
    last?: IP,
  ) {
    const idx = last ? set.findIndex((r) => rangeFor([r], last) !== undefined) : -1;
    if (last && idx >= 0) {
      // The first next() returns last+1; last itself comes round at the very end.
      this.rangeIdx = idx;
      this.cur = last;
    } else {
      this.startIP = set[0].rangeStart;
    }
  }

  next(): Candidate | undefined {
    for (;;) {
      let r = this.set[this.rangeIdx];
      if (this.cur === undefined) {
        this.cur = r.rangeStart;
        this.startIP = this.cur;
      } else {
        if (ipEqual(this.cur, r.rangeEnd)) {
          this.rangeIdx = (this.rangeIdx + 1) % this.set.length;
          r = this.set[this.rangeIdx];
          this.cur = r.rangeStart;
        } else {
          this.cur = nextIP(this.cur);
        }
        if (this.startIP === undefined) this.startIP = this.cur;
        else if (ipEqual(this.cur, this.startIP)) return undefined; // back where we began
      }
      if (!isReservedAddress(r, this.cur)) return { ip: this.cur, range: r };
    }
  }
}

export class IPAllocator {
  readonly rangeID: string;

  constructor(
    readonly rangeSet: RangeSet,
    readonly store: Store,
    id: number,
  ) {
    this.rangeID = String(id);
  }

  /** Round-robin iterator: starts after the last reserved address when it is in this set. */
  async getIter(): Promise<RangeIter> {
    let last: IP | undefined;
    try {
      last = await this.store.lastReservedIP(this.rangeID);
    } catch {
      // An unreadable last_reserved_ip only costs round-robin this once (as the reference).
      last = undefined;
    }
    return new RangeIter(this.rangeSet, last && rangeSetContains(this.rangeSet, last) ? last : undefined);
  }

  /** Reserves an address for (id, ifname): the requested one, or the next free one. */
  async get(id: string, ifname: string, requested?: IP): Promise<IPConfig> {
    if (requested) {
      const r = rangeFor(this.rangeSet, requested);
      if (!r) {
        throw new CniError(ErrCode.InvalidConfig, `${formatIP(requested)} not in range set ${rangeSetString(this.rangeSet)}`);
      }
      if (ipEqual(requested, r.gateway)) {
        throw new CniError(ErrCode.InvalidConfig, `requested ip ${formatIP(requested)} is subnet's gateway`);
      }
      if (isReservedAddress(r, requested)) {
        throw new CniError(ErrCode.InvalidConfig, `requested ip ${formatIP(requested)} is the subnet's network or broadcast address`);
      }
      if (!(await this.store.reserve(id, ifname, requested, this.rangeID))) {
        throw new CniError(
          ErrCode.AddressInUse,
          `requested IP address ${formatIP(requested)} is not available in range set ${rangeSetString(this.rangeSet)}`,
        );
      }
      return ipConfig(requested, r);
    }

    // The spec forbids two addresses from one set for one attachment (allocator.go Get).
    for (const held of await this.store.getByID(id, ifname)) {
      if (rangeSetContains(this.rangeSet, held)) {
        throw new CniError(ErrCode.Internal, `${formatIP(held)} has been allocated to ${id}, duplicate allocation is not allowed`);
      }
    }

    // Try each candidate with an exclusive create: no directory listing, and O_EXCL is the
    // final guard against a concurrent allocator that ignores our lock.
    // After PROBES_BEFORE_LISTING misses (a crowded stretch, or no last_reserved_ip) one
    // listing tells which candidates are worth a create.
    const iter = await this.getIter();
    let misses = 0;
    let leased: Set<string> | undefined;
    for (let c = iter.next(); c; c = iter.next()) {
      if (leased?.has(formatIP(c.ip))) continue;
      if (await this.store.reserve(id, ifname, c.ip, this.rangeID)) return ipConfig(c.ip, c.range);
      if (!leased && ++misses >= PROBES_BEFORE_LISTING) leased = await this.store.listReserved();
    }
    throw new CniError(ErrCode.NoAddressAvailable, `no IP addresses available in range set: ${rangeSetString(this.rangeSet)}`);
  }

  /** True when at least one address of the set is free (for STATUS). */
  async hasFree(): Promise<boolean> {
    const iter = await this.getIter();
    let misses = 0;
    let leased: Set<string> | undefined;
    for (let c = iter.next(); c; c = iter.next()) {
      if (leased) {
        if (!leased.has(formatIP(c.ip))) return true;
        continue;
      }
      if (!(await this.store.isReserved(c.ip))) return true;
      if (++misses >= PROBES_BEFORE_LISTING) leased = await this.store.listReserved();
    }
    return false;
  }

  /** Releases every lease of (id, ifname) (allocator.go Release). */
  async release(id: string, ifname: string): Promise<void> {
    await this.store.releaseByID(id, ifname);
  }
}

function ipConfig(ip: IP, r: Range): IPConfig {
  return { address: `${formatIP(ip)}/${r.subnet.prefix}`, gateway: formatIP(r.gateway) };
}
