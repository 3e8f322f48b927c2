/**
 * One pool of addresses (a subnet with an optional start, end and gateway) and its defaults,
 * as the reference's allocator/range.go defines them. Pure: no I/O.
 */
import {
  type Cidr,
  type IP,
  cmpIP,
  contains,
  formatCidr,
  formatIP,
  ipEqual,
  lastAddr,
  networkAddr,
  nextIP,
  parseCidr,
  parseIP,
  prevIP,
} from '../../../lib/ip/cidr';

/** A range as written in the config (`ranges[i][j]`, or the legacy top-level keys). */
export interface RawRange {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

/** A range with every default filled in; all addresses share the subnet's family. */
export interface Range {
  /** The subnet, host bits cleared. */
  subnet: Cidr;
  /** First allocatable address, inclusive. */
  rangeStart: IP;
  /** Last allocatable address, inclusive. */
  rangeEnd: IP;
  gateway: IP;
}

/** Thrown for a bad range; config.ts turns it into a code-7 error naming the range set. */
export class RangeConfigError extends Error {}

function mustParseIP(s: string, what: string): IP {
  const ip = parseIP(s);
  if (!ip) throw new RangeConfigError(`invalid ${what} "${s}": not an IP address`);
  return ip;
}

/**
 * Fills in the defaults (range.go Canonicalize): gateway = network+1, rangeStart = network+1
 * (the iterator skips the gateway), rangeEnd = the last usable address (broadcast-1 for IPv4,
 * the last address for IPv6). A /31, /32, /127 or /128 is too small.
 */
export function canonicalizeRange(raw: RawRange): Range {
  const parsed = parseCidr(raw.subnet);
  if (!parsed) throw new RangeConfigError(`invalid CIDR address: ${raw.subnet}`);
  const width = parsed.ip.family === 4 ? 32 : 128;
  const net = networkAddr(parsed);
  if (parsed.prefix > width - 2) {
    throw new RangeConfigError(`Network ${formatIP(net)}/${parsed.prefix} too small to allocate from`);
  }
  if (!ipEqual(net, parsed.ip)) {
    throw new RangeConfigError(
      `Network has host bits set. For a subnet mask of length ${parsed.prefix} the network address is ${formatIP(net)}`,
    );
  }
  const subnet: Cidr = { ip: net, prefix: parsed.prefix };

  let gateway: IP;
  if (raw.gateway !== undefined && raw.gateway !== '') {
    gateway = mustParseIP(raw.gateway, 'gateway');
    if (gateway.family !== net.family) {
      throw new RangeConfigError(`gateway ${formatIP(gateway)} is not of the same IP family as ${formatCidr(subnet)}`);
    }
  } else {
    gateway = nextIP(net);
  }

  // rangeStart/rangeEnd: given, they must lie in the subnet (the reference's wording); absent, the
  // first host address, and the last one (IPv4: not the broadcast address).
  const bound = (value: string | undefined, key: 'rangeStart' | 'rangeEnd', label: string, dflt: () => IP): IP => {
    if (value === undefined || value === '') return dflt();
    const ip = mustParseIP(value, key);
    if (!contains(subnet, ip)) throw new RangeConfigError(`${label} ${formatIP(ip)} not in network ${formatCidr(subnet)}`);
    return ip;
  };
  const rangeStart = bound(raw.rangeStart, 'rangeStart', 'RangeStart', () => nextIP(net));
  const rangeEnd = bound(raw.rangeEnd, 'rangeEnd', 'RangeEnd', () => {
    const last = lastAddr(subnet);
    return net.family === 4 ? prevIP(last) : last;
  });
  // The reference does not check this; an inverted range would silently never allocate.
  if (cmpIP(rangeStart, rangeEnd) > 0) {
    throw new RangeConfigError(`RangeStart ${formatIP(rangeStart)} is after RangeEnd ${formatIP(rangeEnd)}`);
  }
  return { subnet, rangeStart, rangeEnd, gateway };
}

function boundsContain(r: { subnet: Cidr; rangeStart?: IP; rangeEnd?: IP }, ip: IP): boolean {
  if (!contains(r.subnet, ip)) return false;
  if (r.rangeStart && cmpIP(ip, r.rangeStart) < 0) return false;
  if (r.rangeEnd && cmpIP(ip, r.rangeEnd) > 0) return false;
  return true;
}

/** True when `ip` is in the subnet and between rangeStart and rangeEnd (range.go Contains). */
export function rangeContains(r: Range, ip: IP): boolean {
  return boundsContain(r, ip);
}

/** True when `ip` must never be handed out: the gateway, the network address, the IPv4 broadcast. */
export function isReservedAddress(r: Range, ip: IP): boolean {
  if (ipEqual(ip, r.gateway) || ipEqual(ip, networkAddr(r.subnet))) return true;
  return ip.family === 4 && ipEqual(ip, lastAddr(r.subnet));
}

/** Two ranges overlap when either holds an end of the other (range.go Overlaps). */
export function rangesOverlap(a: Range, b: Range): boolean {
  if (a.subnet.ip.family !== b.subnet.ip.family) return false;
  return rangeContains(a, b.rangeStart) || rangeContains(a, b.rangeEnd) || rangeContains(b, a.rangeStart) || rangeContains(b, a.rangeEnd);
}

/** `start-end`, as the reference prints a range in its errors. */
export function rangeString(r: Range): string {
  return `${formatIP(r.rangeStart)}-${formatIP(r.rangeEnd)}`;
}
