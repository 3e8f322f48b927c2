// Kernel state readers for assertions: `ip -json` inside a netns, sysctls, netfilter rules,
// ping. Everything here only reads state, except ping/tcp which send packets between
// namespaces the suite created.
import { existsSync } from 'node:fs';
import { exec, execOk, inNetns } from './exec';
import type { Netns } from './netns';

// The shapes of `ip -json` output are the plugins' own (lib/iproute/json-types.ts).
import type { IpAddr, IpLink, IpRoute } from '../../lib/iproute/json-types';
export type { IpAddr, IpAddrInfo, IpLink, IpRoute } from '../../lib/iproute/json-types';

type NsLike = Netns | string;
const nsPath = (ns: NsLike): string => (typeof ns === 'string' ? ns : ns.path);

/** `ip -json -details <args>` inside ns, parsed. */
export async function ipJson<T>(ns: NsLike, args: string[]): Promise<T[]> {
  const r = await execOk(inNetns(nsPath(ns), ['ip', '-json', '-details', ...args]));
  const text = r.stdout.trim();
  return text ? (JSON.parse(text) as T[]) : [];
}

export function links(ns: NsLike): Promise<IpLink[]> {
  return ipJson<IpLink>(ns, ['link', 'show']);
}

/** The named link in ns, or undefined when it does not exist. */
export async function link(ns: NsLike, name: string): Promise<IpLink | undefined> {
  return (await links(ns)).find((l) => l.ifname === name);
}

export function addrs(ns: NsLike): Promise<IpAddr[]> {
  return ipJson<IpAddr>(ns, ['addr', 'show']);
}

/** "a.b.c.d/len" strings configured on a link (global scope only, both families). */
export async function addressesOf(ns: NsLike, ifname: string): Promise<string[]> {
  const a = (await addrs(ns)).find((l) => l.ifname === ifname);
  return (a?.addr_info ?? []).filter((i) => i.scope === 'global').map((i) => `${i.local}/${i.prefixlen}`);
}

export function routes(ns: NsLike, family: '-4' | '-6' = '-4'): Promise<IpRoute[]> {
  return ipJson<IpRoute>(ns, [family, 'route', 'show']);
}

/** Reads a sysctl file (path under /proc/sys) as seen from inside ns. */
export async function readSysctl(ns: NsLike, path: string): Promise<string> {
  return (await execOk(inNetns(nsPath(ns), ['cat', path]))).stdout.trim();
}

/** One ICMP echo from ns to dst; true if answered. */
export async function ping(ns: NsLike, dst: string, count = 1): Promise<boolean> {
  const argv = dst.includes(':') ? ['ping', '-6', '-n', '-c', String(count), '-W', '2', dst] : ['ping', '-n', '-c', String(count), '-W', '2', dst];
  const r = await exec(inNetns(nsPath(ns), argv), { timeoutMs: 10_000 });
  return r.code === 0;
}

/**
 * Every netfilter rule text in ns: `nft list ruleset` (covers native nftables and iptables-nft
 * tables) plus `iptables-save`/`ip6tables-save` (readable iptables syntax for the nat table).
 */
export async function netfilterDump(ns: NsLike): Promise<string> {
  const p = nsPath(ns);
  const parts = await Promise.all([
    exec(inNetns(p, ['nft', 'list', 'ruleset'])),
    exec(inNetns(p, ['iptables-save', '-t', 'nat'])),
    exec(inNetns(p, ['ip6tables-save', '-t', 'nat'])),
  ]);
  return parts.map((r) => r.stdout).join('\n');
}

/** Lines of any netfilter rule in ns that mention ip (as an exact address, not a prefix of one). */
export async function natRulesFor(ns: NsLike, ip: string): Promise<string[]> {
  const esc = ip.replace(/[.:]/g, (c) => `\\${c}`);
  const re = new RegExp(`(^|[^0-9a-fA-F.:])${esc}(?![0-9a-fA-F.:])`);
  // "/32" suffixes and ip saddr forms both match: the lookahead only rejects longer addresses.
  return (await netfilterDump(ns)).split('\n').filter((l) => re.test(l) && !l.startsWith('#'));
}

/** Lines of netfilter rules in ns whose comment names containerId. */
export async function rulesForContainer(ns: NsLike, containerId: string): Promise<string[]> {
  return (await netfilterDump(ns)).split('\n').filter((l) => l.includes(containerId));
}

export function netnsExists(ns: Netns): boolean {
  return existsSync(ns.path);
}

/**
 * Retries an assertion until it passes or timeoutMs elapses (then rethrows its last error).
 * Needed where the kernel is asynchronous: `ip netns del` frees the namespace (and the veth
 * peers in it) from a workqueue, after the command has returned.
 */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 5_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, stepMs));
    }
  }
}

/** The veth links in ns. */
export async function veths(ns: NsLike): Promise<IpLink[]> {
  return (await links(ns)).filter((l) => l.linkinfo?.info_kind === 'veth');
}
