/**
 * The CNI result in its current (1.1.0) shape, which every plugin works with, and the
 * converters to and from the older shapes. Plugins never see 0.3.x/0.4.0 objects: input is
 * upgraded by `parseResult`, output downgraded by `resultForVersion`.
 */
import { CniError, ErrCode } from '../skel/errors';
import { atLeast } from '../skel/versions';

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface IPConfig {
  /** CIDR notation: the address with its subnet's prefix length. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`; absent in IPAM results. */
  interface?: number;
}

export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface DNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: Route[];
  dns?: DNS;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function decodeError(msg: string): CniError {
  return new CniError(ErrCode.DecodeFailure, `failed to decode prevResult: ${msg}`);
}

/**
 * Reads a result of any supported version (from prevResult or a delegated IPAM's stdout)
 * into the current shape. `version` is the version the surrounding config declared.
 */
export function parseResult(raw: unknown, version: string): Result {
  if (!isObject(raw)) throw decodeError('not an object');
  const v = typeof raw.cniVersion === 'string' && raw.cniVersion ? raw.cniVersion : version;
  if (!atLeast(v, '0.3.0')) throw decodeError(`result version ${v} is not supported`);
  const out: Result = { cniVersion: v };
  // Each list: absent stays absent; present, it must be a list of entries that pass `item`.
  const list = <T>(value: unknown, what: string, item: (x: unknown) => T): T[] => {
    if (!Array.isArray(value)) throw decodeError(`${what} is not a list`);
    return value.map(item);
  };
  if (raw.interfaces !== undefined) {
    out.interfaces = list(raw.interfaces, 'interfaces', (i) => {
      if (!isObject(i) || typeof i.name !== 'string') throw decodeError('interface without a name');
      return { ...(i as unknown as Interface) };
    });
  }
  if (raw.ips !== undefined) {
    out.ips = list(raw.ips, 'ips', (ip) => {
      if (!isObject(ip) || typeof ip.address !== 'string') throw decodeError('ip without an address');
      const c: IPConfig = { address: ip.address };
      if (typeof ip.gateway === 'string' && ip.gateway) c.gateway = ip.gateway;
      if (typeof ip.interface === 'number') c.interface = ip.interface;
      return c;
    });
  }
  if (raw.routes !== undefined) {
    out.routes = list(raw.routes, 'routes', (r) => {
      if (!isObject(r) || typeof r.dst !== 'string') throw decodeError('route without dst');
      return { ...(r as unknown as Route) };
    });
  }
  if (raw.dns !== undefined) {
    if (!isObject(raw.dns)) throw decodeError('dns is not an object');
    out.dns = { ...(raw.dns as DNS) };
  }
  return out;
}

const ROUTE_11_KEYS = ['mtu', 'advmss', 'priority', 'table', 'scope'] as const;
const IFACE_11_KEYS = ['mtu', 'socketPath', 'pciID'] as const;

/** Renders a result in the shape of `version` (the config's cniVersion). */
export function resultForVersion(r: Result, version: string): Record<string, unknown> {
  const is11 = atLeast(version, '1.1.0');
  const is10 = atLeast(version, '1.0.0');
  const out: Record<string, unknown> = { cniVersion: version };
  if (r.interfaces) {
    out.interfaces = r.interfaces.map((i) => {
      const c: Record<string, unknown> = { ...i };
      if (!is11) for (const k of IFACE_11_KEYS) delete c[k];
      return c;
    });
  }
  if (r.ips) {
    out.ips = r.ips.map((ip) => {
      const c: Record<string, unknown> = {};
      if (!is10) c.version = ip.address.includes(':') ? '6' : '4';
      if (ip.interface !== undefined) c.interface = ip.interface;
      c.address = ip.address;
      if (ip.gateway) c.gateway = ip.gateway;
      return c;
    });
  }
  if (r.routes) {
    out.routes = r.routes.map((rt) => {
      const c: Record<string, unknown> = { ...rt };
      if (!is11) for (const k of ROUTE_11_KEYS) delete c[k];
      return c;
    });
  }
  out.dns = r.dns ?? {};
  return out;
}
