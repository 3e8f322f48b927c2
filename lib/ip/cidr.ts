/**
 * Address math on BigInt: parse, format (RFC 5952 for IPv6), step, compare, contain.
 * Pure: no I/O. Addresses are { family, value } so v4 and v6 share every function.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface IP {
  family: Family;
  value: bigint;
}

export interface Cidr {
  /** The address as written (host bits may be set, e.g. "10.1.2.3/24"). */
  ip: IP;
  prefix: number;
}

export const bits = (f: Family): number => (f === 4 ? 32 : 128);

/** Parses an IPv4 or IPv6 address; undefined if it is not one. */
export function parseIP(s: string): IP | undefined {
  if (isIPv4(s)) {
    const v = s.split('.').reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n);
    return { family: 4, value: v };
  }
  // node's isIPv6 accepts a zone ("fe80::1%eth0"); an address with a zone has no place in a CIDR.
  if (isIPv6(s) && !s.includes('%')) {
    // A trailing dotted quad (::ffff:1.2.3.4) stands for the last two groups: rewrite it as hex.
    const text = s.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a, b, c, d) =>
      `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
    );
    const halves = text.split('::');
    const groupsOf = (t: string | undefined): bigint[] => (t ? t.split(':').map((x) => BigInt('0x' + x)) : []);
    const head = groupsOf(halves[0]);
    const tail = groupsOf(halves[1]);
    const zeros: bigint[] = halves.length === 2 ? new Array(8 - head.length - tail.length).fill(0n) : [];
    const groups = [...head, ...zeros, ...tail];
    if (groups.length !== 8) return undefined;
    return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | g, 0n) };
  }
  return undefined;
}

/** Formats an address in its canonical text form. */
export function formatIP(ip: IP): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  }
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run of two or more zero groups, the first if tied.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  // RFC 5952 §5: IPv4-mapped addresses end in a dotted quad, as inet_ntop (and so `ip`) prints them.
  if (ip.value >> 32n === 0xffffn) return `::ffff:${formatIP({ family: 4, value: ip.value & 0xffffffffn })}`;
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** Parses "addr/prefix"; undefined if malformed or the prefix is out of range. */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > bits(ip.family)) return undefined;
  return { ip, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIP(c.ip)}/${c.prefix}`;
}

const hostMask = (f: Family, prefix: number): bigint => (1n << BigInt(bits(f) - prefix)) - 1n;

/** The first address of the subnet. */
export function networkAddr(c: Cidr): IP {
  return { family: c.ip.family, value: c.ip.value & ~hostMask(c.ip.family, c.prefix) };
}

/** The last address of the subnet (the broadcast address for IPv4). */
export function lastAddr(c: Cidr): IP {
  return { family: c.ip.family, value: c.ip.value | hostMask(c.ip.family, c.prefix) };
}

/** The subnet itself, host bits cleared. */
export function networkOf(c: Cidr): Cidr {
  return { ip: networkAddr(c), prefix: c.prefix };
}

export function contains(c: Cidr, ip: IP): boolean {
  return ip.family === c.ip.family && networkAddr(c).value === (ip.value & ~hostMask(ip.family, c.prefix));
}

export function offset(ip: IP, n: bigint): IP {
  const max = (1n << BigInt(bits(ip.family))) - 1n;
  let v = ip.value + n;
  if (v < 0n) v += max + 1n;
  if (v > max) v -= max + 1n;
  return { family: ip.family, value: v };
}

export const nextIP = (ip: IP): IP => offset(ip, 1n);
export const prevIP = (ip: IP): IP => offset(ip, -1n);

export function ipEqual(a: IP, b: IP): boolean {
  return a.family === b.family && a.value === b.value;
}

export function cmpIP(a: IP, b: IP): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return contains(a, networkAddr(b)) || contains(b, networkAddr(a));
}

/** Normalises an address string to canonical form, or undefined if it is not an address. */
export function canonicalIP(s: string): string | undefined {
  const ip = parseIP(s);
  return ip ? formatIP(ip) : undefined;
}
