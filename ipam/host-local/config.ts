/**
 * host-local's config (allocator/config.go LoadIPAMConfig): ajv schema first, then the
 * semantic checks and defaults. Nothing on disk changes before this returns; every problem
 * is a code-7 error that names it.
 */
import { host_local as validator } from '../../lib/generated/validators';
import { type IP, formatIP, parseIP, parseCidr } from '../../lib/ip/cidr';
import { validateConf } from '../../lib/schema/validate';
import { CniError, ErrCode } from '../../lib/skel/errors';
import type { NetConf } from '../../lib/skel/dispatch';
import type { Route } from '../../lib/types/result';
import { RangeConfigError, type RawRange } from './allocator/range';
import { type RangeSet, canonicalizeRangeSet, rangeSetsOverlap } from './allocator/range-set';
import { DEFAULT_DATA_DIR } from './store/disk';

export interface IpamConfig {
  /** The network name: the lease directory under dataDir. */
  name: string;
  cniVersion: string;
  dataDir: string;
  resolvConf?: string;
  routes: Route[];
  /** One address is allocated from each set. */
  ranges: RangeSet[];
  /** Requested addresses, in the order the reference gathers them. */
  ipArgs: IP[];
}

function invalid(msg: string, details = ''): CniError {
  return new CniError(ErrCode.InvalidConfig, msg, details);
}

/** Accepts "10.1.2.3" or "10.1.2.3/24" (runtimeConfig.ips carries CIDRs); returns the address. */
function parseRequested(s: string): IP {
  const ip = s.includes('/') ? parseCidr(s)?.ip : parseIP(s);
  if (!ip) throw invalid(`cannot understand ip: invalid IP address: ${s}`);
  return ip;
}

function canonicalRoute(r: Route, i: number): Route {
  const dst = parseCidr(r.dst);
  if (!dst) throw invalid(`invalid route ${i}: invalid CIDR address: ${r.dst}`);
  // Keep host bits as written (types.ParseCIDR does), in canonical text.
  const out: Route = { dst: `${formatIP(dst.ip)}/${dst.prefix}` };
  if (r.gw !== undefined && r.gw !== '') {
    const gw = parseIP(r.gw);
    if (!gw) throw invalid(`invalid route ${i}: invalid gw "${r.gw}"`);
    out.gw = formatIP(gw);
  }
  for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
    if (r[k] !== undefined && r[k] !== 0) out[k] = r[k];
  }
  return out;
}

/**
 * Parses host-local's part of the network config. `cniArgs` is CNI_ARGS parsed; its `IP=` is
 * ignored when `args.cni.ips` is present (CONVENTIONS.md: args supersede CNI_ARGS).
 */
export function loadIpamConf(conf: NetConf, cniArgs: Record<string, string> = {}): IpamConfig {
  validateConf(validator, conf, 'host-local', { detailsInMessage: true });
  const ipam = conf.ipam;
  if (!ipam) throw invalid("IPAM config missing 'ipam' key");
  // The name becomes a directory: refuse anything that could leave dataDir.
  if (conf.name.includes('/') || conf.name === '.' || conf.name === '..') {
    throw invalid(`invalid network name "${conf.name}": it names the lease directory`);
  }

  const rc = conf.runtimeConfig ?? {};
  const argIPs = conf.args?.cni?.ips ?? [];
  const requested: string[] = [];
  if (argIPs.length === 0 && cniArgs.IP) requested.push(cniArgs.IP);
  requested.push(...argIPs, ...(rc.ips ?? []));
  const seen = new Set<string>();
  const ipArgs: IP[] = [];
  for (const s of requested) {
    const ip = parseRequested(s.trim());
    const k = formatIP(ip);
    if (!seen.has(k)) {
      seen.add(k);
      ipArgs.push(ip);
    }
  }

  // Like the reference: runtimeConfig.ipRanges, then the legacy top-level range, then `ranges`.
  const raw: RawRange[][] = [];
  if (rc.ipRanges && rc.ipRanges.length > 0) raw.push(...rc.ipRanges);
  if (ipam.subnet) {
    raw.push([{ subnet: ipam.subnet, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway }]);
  }
  raw.push(...(ipam.ranges ?? []));
  if (raw.length === 0) throw invalid('no IP ranges specified');

  const ranges = raw.map((set, i) => {
    try {
      return canonicalizeRangeSet(set);
    } catch (e) {
      if (e instanceof RangeConfigError) throw invalid(`invalid range set ${i}: ${e.message}`);
      throw e;
    }
  });
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      if (rangeSetsOverlap(ranges[i], ranges[j])) throw invalid(`range set ${i} overlaps with ${j}`);
    }
  }

  return {
    name: conf.name,
    cniVersion: conf.cniVersion,
    dataDir: ipam.dataDir || DEFAULT_DATA_DIR,
    resolvConf: ipam.resolvConf || undefined,
    routes: (ipam.routes ?? []).map(canonicalRoute),
    ranges,
    ipArgs,
  };
}

