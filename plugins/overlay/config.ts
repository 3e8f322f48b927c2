/**
 * overlay config: ajv schema (compiled at build time), then the semantic rules and defaults.
 * Nothing on the system changes before loadNetConf returns. The agent reads the same config
 * (`overlay agent --config FILE`), so both go through this one function.
 */
import { createHash } from 'node:crypto';
import { NETWORK_NAME_RE, type CmdArgs, type NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import { validateConf } from '../../lib/schema/validate';
import { overlay as validateOverlay, type OverlayNetConf } from '../../lib/generated/validators';
import { type Cidr, bits, formatIP, networkAddr, offset, parseCidr, parseIP, contains } from '../../lib/ip/cidr';
import type { BackendName } from '../../lib/netfilter/driver';

export const DEFAULT_PORT = 4789;
export const DEFAULT_VNI = 1;
export const DEFAULT_LEASE_TTL = 60;
export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';
export const DEFAULT_RUN_ROOT = '/run/cni/overlay';
export const DEFAULT_NAMES_RUN_DIR = '/run/containers/cni/dnsname';
const MAX_VNI = 0xffffff;

export interface EtcdConf {
  endpoints: string[];
  prefix: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
  password?: string;
}

export interface OverlayConf {
  raw: NetConf & OverlayNetConf;
  cniVersion: string;
  name: string;
  network: Cidr;
  subnetLen: number;
  /** First and last subnet (their network addresses) a host may lease. */
  subnetMin: bigint;
  subnetMax: bigint;
  vni: number;
  port: number;
  etcd: EtcdConf;
  underlayInterface?: string;
  publicIP?: string;
  /** 0: the underlay's MTU − 50, decided by the agent. */
  mtu: number;
  ipMasq: boolean;
  ipMasqBackend?: BackendName;
  bridge: string;
  vxlan: string;
  dataDir: string;
  runDir: string;
  leaseTTL: number;
  txChecksumOffload: boolean;
  /** dnsname's run directory whose hosts files the agent shares across hosts; undefined: off. */
  namesRunDir?: string;
}

function invalid(msg: string, details = ''): CniError {
  return new CniError(ErrCode.InvalidConfig, msg, details);
}

/** `<prefix>-<name>` when that is a valid, short interface name, else `<prefix>-<hash of name>`. */
export function deviceName(prefix: string, network: string): string {
  const plain = `${prefix}-${network}`;
  if (plain.length <= 15 && /^[A-Za-z0-9_.-]+$/.test(plain)) return plain;
  return `${prefix}-${createHash('sha256').update(network).digest('hex').slice(0, 14 - prefix.length)}`;
}

/** flannel's default: /24 subnets, or prefix + 2 when the network is smaller than a /22. */
function defaultSubnetLen(prefix: number): number {
  return prefix < 22 ? 24 : prefix + 2;
}

function subnetAddr(s: string | undefined, what: string, network: Cidr, len: number): bigint | undefined {
  if (s === undefined || s === '') return undefined;
  const c = parseCidr(s.includes('/') ? s : `${s}/${len}`);
  if (!c || c.ip.family !== 4) throw invalid(`invalid ${what} "${s}": not an IPv4 address`);
  if (!contains(network, c.ip)) throw invalid(`invalid ${what} "${s}": outside the network ${formatIP(networkAddr(network))}/${network.prefix}`);
  const size = 1n << BigInt(32 - len);
  if (c.ip.value % size !== 0n) throw invalid(`invalid ${what} "${s}": not the start of a /${len} subnet`);
  return c.ip.value;
}

function checkEndpoint(e: string): void {
  let u: URL;
  try {
    u = new URL(e);
  } catch {
    throw invalid(`invalid etcd endpoint "${e}": not a URL`, 'endpoints look like http://10.0.0.1:2379 or https://etcd.example:2379');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid(`invalid etcd endpoint "${e}": the scheme must be http or https`);
}

export function loadNetConf(args: Pick<CmdArgs, 'conf'>): OverlayConf {
  const c = args.conf;
  validateConf(validateOverlay, c, 'overlay');
  const net = parseCidr(c.network);
  if (!net) throw invalid(`invalid network "${String(c.network)}": not a CIDR`);
  if (net.ip.family !== 4) throw invalid(`invalid network "${String(c.network)}": only IPv4 overlays are supported`);
  if (networkAddr(net).value !== net.ip.value) throw invalid(`invalid network "${String(c.network)}": host bits are set (did you mean ${formatIP(networkAddr(net))}/${net.prefix}?)`);
  const network: Cidr = { ip: networkAddr(net), prefix: net.prefix };

  const subnetLen = c.subnetLen ?? defaultSubnetLen(network.prefix);
  if (subnetLen <= network.prefix || subnetLen > 30) {
    throw invalid(`invalid subnetLen ${subnetLen}: must be longer than the network's /${network.prefix} and at most 30`, 'each host leases one subnet of this length and needs room for a gateway and containers');
  }
  const size = 1n << BigInt(bits(4) - subnetLen);
  const first = network.ip.value;
  const last = first + (1n << BigInt(32 - network.prefix)) - size;
  // flannel skips the first subnet by default (its .0 address is the network's own).
  const subnetMin = subnetAddr(c.subnetMin, 'subnetMin', network, subnetLen) ?? (last > first ? first + size : first);
  const subnetMax = subnetAddr(c.subnetMax, 'subnetMax', network, subnetLen) ?? last;
  if (subnetMin > subnetMax) throw invalid(`subnetMin ${formatIP(offset(network.ip, subnetMin - first))} is after subnetMax ${formatIP(offset(network.ip, subnetMax - first))}`);

  const vni = c.vni ?? DEFAULT_VNI;
  if (!Number.isInteger(vni) || vni < 1 || vni > MAX_VNI) throw invalid(`invalid vni ${vni}: must be between 1 and ${MAX_VNI}`);
  const port = c.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`invalid port ${port}: must be between 1 and 65535`);

  const e = c.etcd;
  e.endpoints.forEach(checkEndpoint);
  const prefix = (e.prefix ?? `/cni-overlay/${c.name}`).replace(/\/+$/, '');
  if (!prefix.startsWith('/')) throw invalid(`invalid etcd prefix "${e.prefix}": must start with /`);
  if ((e.certFile === undefined) !== (e.keyFile === undefined)) throw invalid('etcd certFile and keyFile go together');
  if ((e.username === undefined) !== (e.password === undefined)) throw invalid('etcd username and password go together');

  const publicIP = c.publicIP;
  if (publicIP !== undefined && parseIP(publicIP)?.family !== 4) throw invalid(`invalid publicIP "${publicIP}": not an IPv4 address`);
  const mtu = c.mtu ?? 0;
  if (mtu !== 0 && mtu < 68) throw invalid(`invalid MTU ${mtu}: must be at least 68`);
  if (c.ipam !== undefined) throw new CniError(ErrCode.UnsupportedField, 'unsupported field: ipam', 'overlay allocates from the subnet its host leased; set dataDir to choose where the leases are kept');
  // The name is a directory under dataDir and runDir. The skeleton checks it for plugin calls;
  // the agent reads its config from a file, so the same check runs here.
  if (!NETWORK_NAME_RE.test(c.name)) throw invalid('invalid characters found in network name', c.name);

  const names = c.names;
  return Object.freeze({
    raw: c,
    cniVersion: c.cniVersion,
    name: c.name,
    network,
    subnetLen,
    subnetMin,
    subnetMax,
    vni,
    port,
    etcd: Object.freeze({ ...e, endpoints: [...e.endpoints], prefix }),
    underlayInterface: c.underlayInterface || undefined,
    publicIP,
    mtu,
    ipMasq: c.ipMasq !== false,
    ipMasqBackend: c.ipMasqBackend || undefined,
    bridge: c.bridge ?? deviceName('ov', c.name),
    vxlan: deviceName('ovx', c.name),
    dataDir: c.dataDir ?? DEFAULT_DATA_DIR,
    runDir: c.runDir ?? `${DEFAULT_RUN_ROOT}/${c.name}`,
    leaseTTL: c.leaseTTL ?? DEFAULT_LEASE_TTL,
    txChecksumOffload: c.txChecksumOffload !== false,
    namesRunDir: names === false ? undefined : (typeof names === 'object' && names.runDir) || DEFAULT_NAMES_RUN_DIR,
  });
}

/** The part of a config the agent needs: what ADD writes to `<runDir>/config.json`. */
export function agentConfig(c: NetConf): NetConf {
  const { prevResult: _p, runtimeConfig: _r, args: _a, ...rest } = c;
  return rest as NetConf;
}

/** JSON with object keys sorted, so two configs compare by content, not by key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** True when two configs are the same network config (cniVersion aside: it changes nothing here). */
export function sameConfig(a: NetConf, b: NetConf): boolean {
  return canonical({ ...a, cniVersion: '' }) === canonical({ ...b, cniVersion: '' });
}
