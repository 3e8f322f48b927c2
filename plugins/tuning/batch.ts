/**
 * Pure builders of tuning's `ip -batch` lines (all in the container netns) and of its backup
 * file, which keeps the reference's format so either implementation restores the other's.
 */
import type { LinkSettings } from './config';

/**
 * ADD: read the link (line 0: the values to back up), apply each change on its own line (so a
 * failure names the attribute) in the reference's order (mac, promisc, mtu, allmulti, then
 * txqueuelen), read it back (last line). Run with -force: line 0's output must survive.
 */
export function applyBatch(ifName: string, s: LinkSettings): string[] {
  return [`link show dev ${ifName}`, ...setLines(ifName, s, ['mac', 'promisc', 'mtu', 'allmulti', 'txQLen']), `link show dev ${ifName}`];
}

type Attr = keyof LinkSettings;

function setLines(ifName: string, s: LinkSettings, order: Attr[]): string[] {
  const out: string[] = [];
  for (const k of order) {
    const v = s[k];
    if (v === undefined) continue;
    if (k === 'mac') out.push(`link set dev ${ifName} address ${v}`);
    if (k === 'promisc') out.push(`link set dev ${ifName} promisc ${v ? 'on' : 'off'}`);
    if (k === 'mtu' && v) out.push(`link set dev ${ifName} mtu ${v}`);
    if (k === 'allmulti') out.push(`link set dev ${ifName} allmulticast ${v ? 'on' : 'off'}`);
    if (k === 'txQLen') out.push(`link set dev ${ifName} txqueuelen ${v}`);
  }
  return out;
}

/** DEL (and rollback): put back the saved values, in the reference's restore order (mtu, mac, promisc, allmulti). */
export function restoreBatch(ifName: string, saved: LinkSettings): string[] {
  return setLines(ifName, saved, ['mtu', 'mac', 'promisc', 'allmulti', 'txQLen']);
}

/** The part of `ip -json link show` we read. */
export interface LinkState {
  address?: string;
  mtu: number;
  flags: string[];
  txqlen?: number;
}

/** What to save before changing `want`: the current value of each attribute `want` touches. */
export function savedValues(want: LinkSettings, now: LinkState): LinkSettings {
  const s: LinkSettings = {};
  if (want.mac !== undefined && now.address) s.mac = now.address;
  if (want.promisc) s.promisc = now.flags.includes('PROMISC');
  if (want.mtu) s.mtu = now.mtu;
  if (want.allmulti !== undefined) s.allmulti = now.flags.includes('ALLMULTI');
  if (want.txQLen !== undefined && now.txqlen !== undefined) s.txQLen = now.txqlen;
  return s;
}

/**
 * The backup file: the reference's configToRestore ({mac, promisc, mtu, allmulti}, newer
 * versions add txQLen) plus `sysctl` (path → previous value), which the reference ignores
 * when it reads our file. Named <containerID>_<ifName>.json in dataDir.
 */
export interface Backup extends LinkSettings {
  sysctl?: Record<string, string>;
  /** Ours: the network whose ADD wrote it, so GC of one network never touches another's. */
  cniNetwork?: string;
}

export function backupFileName(containerID: string, ifName: string): string {
  return `${containerID}_${ifName}.json`;
}

/** Go's json.MarshalIndent(config, "", " ") shape, keys in the reference's order. */
export function formatBackup(b: Backup): string {
  const o: Record<string, unknown> = {};
  if (b.mac) o.mac = b.mac;
  if (b.promisc !== undefined) o.promisc = b.promisc;
  if (b.mtu) o.mtu = b.mtu;
  if (b.allmulti !== undefined) o.allmulti = b.allmulti;
  if (b.txQLen !== undefined) o.txQLen = b.txQLen;
  if (b.sysctl && Object.keys(b.sysctl).length) o.sysctl = b.sysctl;
  if (b.cniNetwork) o.cniNetwork = b.cniNetwork;
  return JSON.stringify(o, null, ' ');
}

/** Reads a backup leniently: fields of the wrong type are dropped, not fatal. */
export function parseBackup(text: string): Backup {
  const raw = JSON.parse(text) as Record<string, unknown>;
  const b: Backup = {};
  if (typeof raw.mac === 'string' && raw.mac) b.mac = raw.mac;
  if (typeof raw.promisc === 'boolean') b.promisc = raw.promisc;
  if (typeof raw.mtu === 'number' && raw.mtu > 0) b.mtu = raw.mtu;
  if (typeof raw.allmulti === 'boolean') b.allmulti = raw.allmulti;
  if (typeof raw.txQLen === 'number' && raw.txQLen >= 0) b.txQLen = raw.txQLen;
  if (raw.sysctl && typeof raw.sysctl === 'object') {
    const s: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw.sysctl as Record<string, unknown>)) if (typeof v === 'string') s[k] = v;
    b.sysctl = s;
  }
  if (typeof raw.cniNetwork === 'string' && raw.cniNetwork) b.cniNetwork = raw.cniNetwork;
  return b;
}

/** A second ADD for the same container/ifName must not overwrite the original values: old ones win. */
export function mergeBackup(older: Backup | undefined, newer: Backup): Backup {
  if (!older) return newer;
  return { ...newer, ...older, sysctl: { ...(newer.sysctl ?? {}), ...(older.sysctl ?? {}) } };
}
