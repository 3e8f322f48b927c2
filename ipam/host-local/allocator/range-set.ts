/**
 * A range set: the pools one address is taken from (allocator/range_set.go). Every range in a
 * set has the same family and no two overlap. Pure: no I/O.
 */
import { type IP, formatIP } from '../../../lib/ip/cidr';
import { type RawRange, type Range, RangeConfigError, canonicalizeRange, rangeContains, rangeString, rangesOverlap } from './range';

export type RangeSet = Range[];

/** Canonicalizes every range of a set and checks family and overlap (RangeSet.Canonicalize). */
export function canonicalizeRangeSet(raw: RawRange[]): RangeSet {
  if (raw.length === 0) throw new RangeConfigError('empty range set');
  const set = raw.map(canonicalizeRange);
  const fam = set[0].subnet.ip.family;
  if (set.some((r) => r.subnet.ip.family !== fam)) throw new RangeConfigError('mixed address families');
  for (let i = 0; i < set.length; i++) {
    for (let j = i + 1; j < set.length; j++) {
      if (rangesOverlap(set[i], set[j])) {
        throw new RangeConfigError(`subnets ${rangeString(set[i])} and ${rangeString(set[j])} overlap`);
      }
    }
  }
  return set;
}

export function rangeSetContains(s: RangeSet, ip: IP): boolean {
  return s.some((r) => rangeContains(r, ip));
}

/** The range holding `ip`, or undefined (RangeSet.RangeFor). */
export function rangeFor(s: RangeSet, ip: IP): Range | undefined {
  return s.find((r) => rangeContains(r, ip));
}

/** Error text for an address outside every range of the set. */
export function notInRangeSet(s: RangeSet, ip: IP): string {
  return `${formatIP(ip)} not in range set ${rangeSetString(s)}`;
}

export function rangeSetsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((r1) => b.some((r2) => rangesOverlap(r1, r2)));
}

/** `start-end,start-end`, as the reference prints a set in its errors. */
export function rangeSetString(s: RangeSet): string {
  return s.map(rangeString).join(',');
}
