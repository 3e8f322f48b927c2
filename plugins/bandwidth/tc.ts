/**
 * Pure builders of the bandwidth plugin's kernel state: the tbf numbers as the reference computes
 * them (plugins/meta/bandwidth ifb_creator.go createTBF, with vishvananda/netlink's tick clock),
 * the ifb name, and the `ip -batch` / `tc -batch` lines. All of it runs in the host netns.
 *
 * Shaping, as the reference: traffic *to* the container (ingressRate) is shaped by a tbf root
 * qdisc on the host end of the veth; traffic *from* the container (egressRate) arrives on the
 * host veth's ingress, where a u32 match-all filter redirects it (mirred egress redirect) to an
 * ifb device whose root tbf shapes it.
 */
import { hashWithPrefix } from '../../lib/netfilter/names';

/** Linux IFNAMSIZ - 1. */
const MAX_IFB_NAME = 15;
const IFB_PREFIX = 'bwp';
/** tbf latency the reference builds its limit from. */
const LATENCY_MS = 25;
const TIME_UNITS_PER_SEC = 1_000_000;
const TWO_32 = 2 ** 32;

/** The ifb of an attachment: `bwp` + hex(sha512(network + containerID)), 15 chars, as the reference. */
export function ifbName(network: string, containerID: string): string {
  return hashWithPrefix(MAX_IFB_NAME, IFB_PREFIX, network + containerID);
}

/**
 * Our ownership mark on an ifb (its `ip link` alias), so GC can tell the attachments of this
 * network from other networks' (the name's hash cannot be reversed). Network names and
 * container IDs contain no `/` or whitespace.
 */
export function ifbAlias(network: string, containerID: string): string {
  return `cni-bandwidth/${network}/${containerID}`;
}

/** Reads an ifbAlias back; undefined for anything else. */
export function parseIfbAlias(alias: string | undefined): { network: string; containerID: string } | undefined {
  const m = /^cni-bandwidth\/([^/]+)\/([^/]+)$/.exec(alias ?? '');
  return m ? { network: m[1]!, containerID: m[2]! } : undefined;
}

/**
 * Microseconds to scheduler ticks, from /proc/net/psched as tc and netlink read it
 * ("t2us us2t clock_res hz" in hex): 1000/64 = 15.625 on current kernels.
 */
export function tickInUsec(psched: string | undefined): number {
  const v = (psched ?? '').trim().split(/\s+/).map((x) => parseInt(x, 16));
  if (v.length < 3 || v.some((x) => !Number.isFinite(x)) || !v[1]) return 15.625;
  const [t2us, us2t, clockRes] = v as [number, number, number];
  const clockFactor = clockRes / TIME_UNITS_PER_SEC;
  return ((clockRes === 1_000_000_000 ? us2t : t2us) / us2t) * clockFactor;
}

/** Go's uint32(float64) on amd64: truncate to a 64-bit integer, keep the low 32 bits. */
function goUint32(x: number): number {
  const t = Math.trunc(x);
  return ((t % TWO_32) + TWO_32) % TWO_32;
}

export interface Tbf {
  /** Bytes per second (the reference's rateInBits / 8, integer division). */
  rate: number;
  /** Bytes, as uint32. */
  burst: number;
  /** The bucket's size in scheduler ticks, as the reference hands it to the kernel (uint32, wraps). */
  bufferTicks: number;
  /** Queue limit in bytes: rate × 25 ms + burst (uint32, wraps). */
  limit: number;
}

/** The reference's tbf numbers for a rate in bit/s and a burst in bits. */
export function tbfParams(rateBits: number, burstBits: number, tick = 15.625): Tbf {
  const rate = Math.floor(rateBits / 8);
  const burst = goUint32(Math.floor(burstBits / 8));
  const bufferUs = goUint32((burst * TIME_UNITS_PER_SEC) / rate);
  const bufferTicks = goUint32(bufferUs * tick);
  const latencyUs = TIME_UNITS_PER_SEC * (LATENCY_MS / 1000);
  const limit = (goUint32((rate * latencyUs) / TIME_UNITS_PER_SEC) + burst) % TWO_32;
  return { rate, burst, bufferTicks, limit };
}

/**
 * How far the kernel's bucket (in ticks) may be from the reference's number and still be the
 * configured one. tc hands the kernel the burst in bytes (TCA_TBF_BURST) and the kernel turns it
 * into nanoseconds itself, while the reference hands it ticks; the two differ by less than one
 * byte's time at this rate (and not at all for round numbers, e.g. 10 Mbit/s with 100 kbit).
 */
export function bufferTolerance(t: Tbf, tick = 15.625): number {
  return Math.ceil((TIME_UNITS_PER_SEC * tick) / t.rate) + 1;
}

/** `tbf rate <bytes>bps burst <bytes> limit <bytes>` (tc's "bps" is bytes per second). */
function tbfArgs(t: Tbf): string {
  return `tbf rate ${t.rate}bps burst ${t.burst} limit ${t.limit}`;
}

/**
 * `ip -batch` lines that make the ifb: the host veth's MTU, txqueuelen 0 (as the reference makes
 * it), up, our alias; then read it back (its MAC goes into the result).
 */
export function ifbLines(ifb: string, mtu: number, alias: string): string[] {
  return [`link add name ${ifb} mtu ${mtu} txqueuelen 0 type ifb`, `link set dev ${ifb} up alias ${alias}`, `link show dev ${ifb}`];
}

export interface ShapePlan {
  hostVeth: string;
  ingress?: Tbf;
  egress?: { ifb: string; tbf: Tbf };
}

/**
 * The `tc -batch` lines of an ADD: ingress tbf on the host veth; for egress the ingress qdisc,
 * the match-all redirect to the ifb (prio 1, flowid 1:1, as the reference's filter) and the
 * ifb's tbf.
 */
export function shapeLines(p: ShapePlan): string[] {
  const lines: string[] = [];
  if (p.ingress) lines.push(`qdisc add dev ${p.hostVeth} root handle 1: ${tbfArgs(p.ingress)}`);
  if (p.egress) {
    lines.push(`qdisc add dev ${p.hostVeth} handle ffff: ingress`);
    lines.push(`filter add dev ${p.hostVeth} parent ffff: protocol all prio 1 u32 match u32 0 0 flowid 1:1 action mirred egress redirect dev ${p.egress.ifb}`);
    lines.push(`qdisc add dev ${p.egress.ifb} root handle 1: ${tbfArgs(p.egress.tbf)}`);
  }
  return lines;
}

/**
 * What undoes the first `applied` lines of shapeLines (a rollback after the batch stopped at a
 * line): the veth's root and ingress qdiscs (the filter goes with the ingress qdisc); the ifb's
 * qdisc goes with the ifb.
 */
export function unshapeLines(lines: string[], applied: number, hostVeth: string): string[] {
  const out: string[] = [];
  for (const l of lines.slice(0, applied)) {
    if (l.startsWith(`qdisc add dev ${hostVeth} root `)) out.push(`qdisc del dev ${hostVeth} root`);
    if (l.startsWith(`qdisc add dev ${hostVeth} handle ffff: ingress`)) out.push(`qdisc del dev ${hostVeth} ingress`);
  }
  return out.reverse();
}

/** The reads of a CHECK (`tc -json -details -raw -force -batch`). */
export function checkLines(p: ShapePlan): string[] {
  const lines = [`qdisc show dev ${p.hostVeth}`];
  if (p.egress) lines.push(`filter show dev ${p.hostVeth} ingress`, `qdisc show dev ${p.egress.ifb}`);
  return lines;
}

/** A qdisc as `tc -json -details -raw qdisc show` prints it. */
export interface TcQdisc {
  kind: string;
  handle: string;
  root?: boolean;
  parent?: string;
  options?: { rate?: number; burst_raw?: string; limit?: number };
}

/** A filter as `tc -json filter show` prints it (the parts we read). */
export interface TcFilter {
  kind: string;
  options?: { actions?: { kind: string; mirred_action?: string; direction?: string; to_dev?: string }[] };
}

/** Why the root tbf of a device is not the configured one, or undefined when it is. */
export function tbfMismatch(dev: string, qdiscs: TcQdisc[] | undefined, want: Tbf, tick = 15.625): string | undefined {
  const q = (qdiscs ?? []).find((x) => x.root);
  if (!q || q.kind !== 'tbf') return `${dev} has no root tbf qdisc${q ? ` (it has ${q.kind})` : ''}`;
  const o = q.options ?? {};
  if (o.rate !== want.rate) return `${dev}: tbf rate is ${o.rate} bytes/s, expected ${want.rate}`;
  if (o.limit !== want.limit) return `${dev}: tbf limit is ${o.limit} bytes, expected ${want.limit}`;
  const ticks = parseInt(o.burst_raw ?? '', 16);
  if (!Number.isFinite(ticks) || Math.abs(ticks - want.bufferTicks) > bufferTolerance(want, tick)) {
    return `${dev}: tbf buffer is ${Number.isFinite(ticks) ? ticks : '?'} ticks, expected ${want.bufferTicks} (burst ${want.burst} bytes)`;
  }
  return undefined;
}

/** Why the host veth does not redirect its ingress to the ifb, or undefined when it does. */
export function redirectMismatch(veth: string, qdiscs: TcQdisc[] | undefined, filters: TcFilter[] | undefined, ifb: string): string | undefined {
  if (!(qdiscs ?? []).some((q) => q.kind === 'ingress')) return `${veth} has no ingress qdisc`;
  const ok = (filters ?? []).some((f) => (f.options?.actions ?? []).some((a) => a.kind === 'mirred' && a.mirred_action === 'redirect' && a.direction === 'egress' && a.to_dev === ifb));
  return ok ? undefined : `${veth} has no filter redirecting its ingress to ${ifb}`;
}
