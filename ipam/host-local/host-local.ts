/**
 * host-local IPAM (plugins/ipam/host-local/main.go): one address per range set, leases in the
 * reference's on-disk format. Runs in the caller's namespace and touches only dataDir.
 * Verbs: ADD, DEL, CHECK, and the 1.1 GC and STATUS the reference lacks.
 */
import { readFileSync } from 'node:fs';
import { formatIP, parseIP } from '../../lib/ip/cidr';
import { CniError, ErrCode, wrapError } from '../../lib/skel/errors';
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CURRENT_VERSION } from '../../lib/skel/versions';
import type { DNS, IPConfig, Result } from '../../lib/types/result';
import { IPAllocator } from './allocator/allocator';
import { rangeSetContains, rangeSetString } from './allocator/range-set';
import type { IpamConfig } from './config';
import { validAttachments } from '../../lib/skel/gc';
import { DiskStore } from './store/disk';
import type { Store } from './store/store';

/** Parses a resolv.conf into the result's dns (dns.go parseResolvConf). */
export function parseResolvConf(text: string): DNS {
  const dns: DNS = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const f = line.split(/\s+/);
    if (f.length < 2) continue;
    switch (f[0]) {
      case 'nameserver':
        (dns.nameservers ??= []).push(f[1]);
        break;
      case 'domain':
        dns.domain = f[1];
        break;
      case 'search':
        (dns.search ??= []).push(...f.slice(1));
        break;
      case 'options':
        (dns.options ??= []).push(...f.slice(1));
        break;
    }
  }
  return dns;
}

function readResolvConf(path: string): DNS {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CniError(ErrCode.IOFailure, `failed to read resolvConf ${path}: ${(e as Error).message}`);
  }
}

/**
 * Allocates one address per range set for (id, ifname); the caller holds the store's lock.
 * On any failure the addresses already reserved here (and only those) are released.
 */
export async function allocateAll(store: Store, conf: IpamConfig, id: string, ifname: string): Promise<IPConfig[]> {
  const reserved: IPConfig[] = [];
  const requested = [...conf.ipArgs];
  try {
    for (const [idx, set] of conf.ranges.entries()) {
      const alloc = new IPAllocator(set, store, idx);
      const at = requested.findIndex((ip) => rangeSetContains(set, ip));
      const want = at >= 0 ? requested.splice(at, 1)[0] : undefined;
      try {
        reserved.push(await alloc.get(id, ifname, want));
      } catch (e) {
        throw wrapError(`failed to allocate for range ${idx}`, e);
      }
    }
    if (requested.length > 0) {
      throw new CniError(
        ErrCode.InvalidConfig,
        `failed to allocate all requested IPs: ${requested.map(formatIP).join(' ')}`,
        `ranges: ${conf.ranges.map(rangeSetString).join(' ; ')}`,
      );
    }
    return reserved;
  } catch (e) {
    // The reference releases everything of (id, ifname) here, which could also drop a lease
    // that existed before this ADD; we undo exactly what we reserved.
    for (const c of reserved) {
      const ip = c.address.slice(0, c.address.indexOf('/'));
      await store.releaseIP(parseIP(ip)!, id, ifname).catch((u) => process.stderr.write(`host-local: rollback of ${ip} failed: ${u}\n`));
    }
    throw e;
  }
}

function openStore(conf: IpamConfig, create = true): DiskStore {
  return new DiskStore(conf.name, conf.dataDir, { create });
}

export async function cmdAdd(args: CmdArgs, conf: IpamConfig): Promise<Result> {
  const result: Result = { cniVersion: CURRENT_VERSION };
  if (conf.resolvConf) result.dns = readResolvConf(conf.resolvConf);
  const store = openStore(conf);
  result.ips = await store.withLock(() => allocateAll(store, conf, args.containerID, args.ifName));
  if (conf.routes.length > 0) result.routes = conf.routes;
  return result;
}

/** Releases every lease of (containerID, ifname); nothing there is success. */
export async function cmdDel(args: CmdArgs, conf: IpamConfig): Promise<void> {
  const store = openStore(conf);
  await store.withLock(() => store.releaseByID(args.containerID, args.ifName));
}

/** Fails unless (containerID, ifname) holds at least one lease, whatever its address. */
export async function cmdCheck(args: CmdArgs, conf: IpamConfig): Promise<void> {
  const store = openStore(conf);
  const found = await store.withLock(() => store.findByID(args.containerID, args.ifName));
  if (!found) {
    throw new CniError(ErrCode.Internal, `host-local: Failed to find address added by container ${args.containerID}`);
  }
}

/** Releases every lease of this network whose attachment is not in cni.dev/valid-attachments. */
export async function cmdGc(args: CmdArgs, conf: IpamConfig): Promise<void> {
  const valid = validAttachments(args.conf);
  const store = openStore(conf);
  const out = await store.withLock(() => store.gc(valid));
  if (out.errors.length > 0) {
    throw new CniError(ErrCode.IOFailure, `host-local GC: ${out.errors.length} lease(s) could not be released`, out.errors.join('; '));
  }
}

/** Code 50 when some range set has no free address left (an ADD would fail). */
export async function cmdStatus(args: CmdArgs, conf: IpamConfig): Promise<void> {
  // A point-in-time answer: no lock, and no directory created just to look.
  const store = openStore(conf, false);
  for (const [idx, set] of conf.ranges.entries()) {
    if (!(await new IPAllocator(set, store, idx).hasFree())) {
      throw new CniError(ErrCode.NotAvailable, `no IP addresses available in range set ${idx}: ${rangeSetString(set)}`);
    }
  }
}
