/**
 * Attaching a container to a Linux bridge on the host, as the bridge plugin does it and the
 * overlay plugin reuses it: one end of a veth pair in the container, the other on the bridge
 * (created on first use), addresses from an IPAM, the gateway on the bridge, optional outbound
 * NAT. The IPAM is a parameter: bridge delegates to `ipam.type`, overlay allocates from its
 * host's subnet.
 *
 * Processes per ADD: the IPAM (none when in-process), one `ip -batch` on the host, one in the
 * container, one netfilter transaction when ipMasq is on; a second host batch only for the
 * first container (the gateway address).
 */
import { randomBytes } from 'node:crypto';
import type { CmdArgs } from '../skel/dispatch';
import { CniError, ErrCode, wrapError } from '../skel/errors';
import type { DNS, IPConfig, Result, Route } from '../types/result';
import { ipBatch, lineError, type BatchOutcome } from '../iproute/ip';
import type { IpAddr, IpLink, IpRoute } from '../iproute/json-types';
import { requireNetns, requirePrevResult } from '../skel/inputs';
import { runSteps, withRollback, type Rollback } from '../rollback';
import { FAILPOINTS, failpoint } from '../failpoint';
import { enableForwarding } from '../sysctl/forward';
import { CHECK_LINES, delLinkInNetns, verifyInterface } from '../iproute/iface';
import { parseCidr, networkAddr, nextIP, formatIP, canonicalIP } from '../ip/cidr';
import { selectDriver, teardownAll } from '../netfilter/select';
import type { BackendName, MasqSpec } from '../netfilter/driver';
import { setupMasqWithUndo } from '../netfilter/masq';
import { containerAddBatch, gatewayBatch, hostAddBatch } from './batch';

/** How the container is attached: the bridge plugin's keys, after defaults. */
export interface AttachConf {
  cniVersion: string;
  /** The network's name: the owner of its NAT rules. */
  name: string;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  ipMasqBackend?: BackendName;
  /**
   * Masquerade only traffic leaving this prefix around each container address (the overlay's
   * whole network); default: the address's own subnet, as the reference does.
   */
  masqPrefix?: number;
  mtu: number;
  hairpinMode: boolean;
  promiscMode: boolean;
  portIsolation: boolean;
  enableDad: boolean;
  /** The container interface's MAC, when asked for. */
  mac?: string;
  /** The config's dns (its schema describes it), put in the result instead of the IPAM's. */
  dns?: DNS;
}

/** The address side of an attachment; undefined for a layer-2 only one (bridge with no ipam). */
export interface AttachIpam {
  add(): Promise<Result>;
  del(): Promise<void>;
  check(): Promise<void>;
}

const randomHex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** A locally administered unicast MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

interface Gateways {
  /** CIDR of each gateway to put on the bridge ("10.1.0.1/24"). */
  onBridge: string[];
  gw4?: string;
  gw6?: string;
}

/**
 * Fills in gateways the IPAM left out (network+1, when isGateway) and the default route when
 * isDefaultGateway, as the reference's calcGateways does. Mutates the result's ips and routes.
 */
function calcGateways(conf: AttachConf, result: Result): Gateways {
  const gws: Gateways = { onBridge: [] };
  for (const ip of result.ips ?? []) {
    const c = parseCidr(ip.address);
    if (!c) throw new CniError(ErrCode.DecodeFailure, `IPAM returned an invalid address "${ip.address}"`);
    if (!ip.gateway && conf.isGateway) ip.gateway = formatIP(nextIP(networkAddr(c)));
    if (!ip.gateway) continue;
    const v6 = c.ip.family === 6;
    if (v6 ? gws.gw6 : gws.gw4) continue; // one gateway per family, the first one
    if (v6) gws.gw6 = ip.gateway;
    else gws.gw4 = ip.gateway;
    if (conf.isGateway) gws.onBridge.push(`${ip.gateway}/${c.prefix}`);
    if (conf.isDefaultGateway) {
      const dst = v6 ? '::/0' : '0.0.0.0/0';
      result.routes ??= [];
      const existing = result.routes.find((r) => r.dst === dst);
      if (existing) existing.gw ??= ip.gateway;
      else result.routes.push({ dst, gw: ip.gateway });
    }
  }
  return gws;
}

/** The masquerade rules' owner and addresses; with masqPrefix the "subnet" is the wider prefix. */
function masqSpec(conf: AttachConf, args: CmdArgs, ips: IPConfig[]): MasqSpec {
  const addresses = ips.map((i) => {
    if (conf.masqPrefix === undefined || i.address.includes(':')) return i.address;
    return `${i.address.split('/')[0]}/${conf.masqPrefix}`;
  });
  return { network: conf.name, containerID: args.containerID, ifName: args.ifName, addresses };
}

/**
 * The host batch: bridge (made if missing), veth pair with its peer born in the container netns,
 * hairpin/isolation, then reads of both. Judges its failures: some are normal under concurrency.
 */
async function setupHost(conf: AttachConf, args: CmdArgs, hostVeth: string, undo: Rollback): Promise<{ br: IpAddr; veth: IpLink }> {
  const plan = hostAddBatch({
    bridge: conf.bridge,
    bridgeMac: randomMac(),
    mtu: conf.mtu,
    promisc: conf.promiscMode,
    hostVeth,
    ifName: args.ifName,
    containerMac: conf.mac,
    netns: args.netns,
    hairpin: conf.hairpinMode,
    isolated: conf.portIsolation,
  });
  const out: BatchOutcome = await ipBatch(plan.lines, { force: true, details: true });
  const failed = new Set(out.errors.map((e) => e.line));
  if (!failed.has(plan.vethAdd)) undo.push(`delete host veth ${hostVeth}`, () => ipBatch([`link del dev ${hostVeth}`]));
  const [brList, vethLinks] = out.shows as [IpAddr[] | undefined, IpLink[] | undefined];
  const br = brList?.[0];
  if (br && br.linkinfo?.info_kind !== 'bridge') {
    throw new CniError(ErrCode.InvalidConfig, `"${conf.bridge}" already exists but is not a bridge`);
  }
  for (const e of out.errors) {
    // Another container made the bridge first.
    if (e.line === plan.bridgeAdd && /File exists/.test(e.message)) continue;
    if (e.line >= plan.shows) continue;
    if (e.line === plan.vethAdd && /File exists/.test(e.message)) {
      throw new CniError(ErrCode.InterfaceExists, `failed to create veth pair ${hostVeth}/${args.ifName}: an interface named "${args.ifName}" already exists in ${args.netns}`);
    }
    throw lineError(out, e, `failed to set up bridge ${conf.bridge} and veth ${hostVeth}: ${e.message} (ip ${plan.lines[e.line]})`);
  }
  if (!br || !vethLinks?.[0]) throw new CniError(ErrCode.Internal, `could not read back ${conf.bridge} or ${hostVeth}`);
  return { br, veth: vethLinks[0] };
}

/**
 * Puts the gateways on the bridge when they are not there yet (the first container of a
 * network; later ones find them and spawn nothing). The reference refuses a bridge that holds
 * another IPv4 address (or an overlapping IPv6 one) unless forceAddress, which replaces it.
 */
async function ensureGateways(conf: AttachConf, br: IpAddr, gws: Gateways, undo: Rollback): Promise<void> {
  const have = new Set(br.addr_info.map((a) => `${canonicalIP(a.local)}/${a.prefixlen}`));
  const missing = gws.onBridge.filter((g) => {
    const c = parseCidr(g)!;
    return !have.has(`${formatIP(c.ip)}/${c.prefix}`);
  });
  if (missing.length === 0) return;
  const dels: string[] = [];
  for (const want of missing) {
    const w = parseCidr(want)!;
    for (const a of br.addr_info) {
      if (a.scope === 'link') continue;
      const h = parseCidr(`${a.local}/${a.prefixlen}`)!;
      if (h.ip.family !== w.ip.family) continue;
      const p = Math.min(w.prefix, h.prefix);
      const overlaps = h.ip.family === 4 || networkAddr({ ip: w.ip, prefix: p }).value === networkAddr({ ip: h.ip, prefix: p }).value;
      if (!overlaps) continue;
      if (!conf.forceAddress) {
        throw new CniError(ErrCode.InvalidConfig, `"${conf.bridge}" already has an IP address different from ${want}`, `it has ${a.local}/${a.prefixlen}; set forceAddress to replace it`);
      }
      dels.push(`${a.local}/${a.prefixlen}`);
    }
  }
  const lines = gatewayBatch(conf.bridge, dels, missing, conf.enableDad);
  const out = await ipBatch(lines, { force: true });
  const failed = new Map(out.errors.map((e) => [e.line, e]));
  missing.forEach((g, i) => {
    const e = failed.get(dels.length + i);
    // ("File exists" / "Address already assigned": another container added it first.)
    if (e === undefined) undo.push(`remove ${g} from ${conf.bridge}`, () => ipBatch([`addr del ${g} dev ${conf.bridge}`], { force: true }));
    else if (!/File exists|already assigned/.test(e.message)) throw lineError(out, e, `failed to add ${g} to ${conf.bridge}: ${e.message}`);
  });
  const delFailure = out.errors.find((e) => e.line < dels.length && !/Cannot assign/.test(e.message));
  if (delFailure) throw lineError(out, delFailure, `failed to replace the address of ${conf.bridge}: ${delFailure.message}`);
}

/** ADD: the attachment, rolled back as a whole when any step fails. */
export async function attachAdd(conf: AttachConf, args: CmdArgs, ipam: AttachIpam | undefined): Promise<Result> {
  requireNetns(args.netns);
  return withRollback(async (undo) => {
    // 1. At once, as they do not depend on each other: the addresses from the IPAM, and on the
    //    host the bridge and the veth pair (its peer created straight in the container netns).
    const hostVeth = `veth${randomHex(4)}`;
    const [result, host] = await runSteps({ mode: 'first' }, [
      [
        'IPAM ADD',
        async (): Promise<Result> => {
          if (!ipam) return { cniVersion: conf.cniVersion, ips: [], routes: [] };
          const r = await ipam.add();
          undo.push('release the IPAM lease', () => ipam.del());
          return r;
        },
      ],
      ['set up the host side', () => setupHost(conf, args, hostVeth, undo)],
    ]);
    if (ipam && !result.ips?.length) throw new CniError(ErrCode.Internal, 'IPAM plugin returned missing IP config');
    const gws = calcGateways(conf, result);
    if (conf.isGateway) enableForwarding({ v4: Boolean(gws.gw4), v6: Boolean(gws.gw6) });

    // 2. At once again: the container's addresses and routes (reading its MAC back), the
    //    gateway on the bridge when missing, and the outbound NAT in one transaction.
    const ips = result.ips ?? [];
    const routes: Route[] = result.routes ?? [];
    const masq = conf.ipMasq && ips.length ? masqSpec(conf, args, ips) : undefined;
    const contLines = containerAddBatch({ ifName: args.ifName, addresses: ips.map((i) => i.address), routes, gw4: gws.gw4, gw6: gws.gw6, enableDad: conf.enableDad });
    const [cont] = await runSteps({ mode: 'first' }, [
      [
        'configure the container side',
        () =>
          ipBatch(contLines, { netns: args.netns }).catch((e) => {
            throw wrapError(`failed to configure ${args.ifName} in ${args.netns}`, e);
          }),
      ],
      ['put the gateways on the bridge', () => ensureGateways(conf, host.br, gws, undo)],
      masq && ['set up masquerade', () => setupMasqWithUndo(conf.ipMasqBackend, masq, undo)],
    ]);
    const contLink = (cont.shows[0] as IpLink[])[0]!;
    if (FAILPOINTS) failpoint('after-ipam');

    const out: Result = {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: conf.bridge, mac: host.br.address },
        { name: hostVeth, mac: host.veth.address },
        { name: args.ifName, mac: contLink.address, sandbox: args.netns },
      ],
      ips: ips.map((i) => ({ ...i, interface: 2 })),
      routes,
      dns: conf.dns && Object.keys(conf.dns).length ? conf.dns : result.dns ?? {},
    };
    if (conf.mtu) for (const i of out.interfaces!) i.mtu = conf.mtu;
    return out;
  });
}

/**
 * DEL is best-effort and idempotent: IPAM release, container link, NAT rules; every step runs and
 * the failures are reported together. With no netns (ctr sends none) the NAT rules are still
 * found from prevResult or, failing that, from the container's ID: plugins#810 is a leak here.
 */
export async function attachDel(plugin: string, conf: AttachConf, args: CmdArgs, ipam: AttachIpam | undefined): Promise<void> {
  const ips = (args.prevResult?.ips ?? []).filter((i) => i.interface === undefined || args.prevResult?.interfaces?.[i.interface]?.sandbox);
  await runSteps({ mode: 'all', label: `${plugin} DEL` }, [
    ipam && ['IPAM DEL', () => ipam.del()],
    ['delete the container interface', () => delLinkInNetns(args.netns, args.ifName)],
    conf.ipMasq && ['remove masquerade rules', () => teardownAll(masqSpec(conf, args, ips), ['masq'])],
  ]);
}

/** CHECK: the interface, its addresses and routes, the host veth on the bridge, lease, NAT rules. */
export async function attachCheck(conf: AttachConf, args: CmdArgs, ipam: AttachIpam | undefined): Promise<void> {
  const prev = requirePrevResult(args);
  if (ipam) await ipam.check();
  const ifaces = prev.interfaces ?? [];
  const contIdx = ifaces.findIndex((i) => i.name === args.ifName && i.sandbox);
  if (contIdx < 0) throw new CniError(ErrCode.Internal, `prevResult lists no interface ${args.ifName} in a sandbox`);

  const cont = await ipBatch(CHECK_LINES(args.ifName), { netns: args.netns, force: true });
  const [links, routes] = cont.shows as [IpAddr[] | undefined, IpRoute[] | undefined];
  verifyInterface(prev, contIdx, args.ifName, links?.[0], routes ?? []);
  const ips = (prev.ips ?? []).filter((i) => i.interface === contIdx);

  const hostVeth = ifaces.find((i, n) => n !== contIdx && !i.sandbox && i.name !== conf.bridge);
  const host = await ipBatch([`link show dev ${conf.bridge}`, ...(hostVeth ? [`link show dev ${hostVeth.name}`] : [])], { force: true, details: true });
  const br = (host.shows[0] as IpLink[] | undefined)?.[0];
  if (!br || br.linkinfo?.info_kind !== 'bridge') throw new CniError(ErrCode.Internal, `bridge ${conf.bridge} not found`);
  if (hostVeth) {
    const v = (host.shows[1] as IpLink[] | undefined)?.[0];
    if (!v) throw new CniError(ErrCode.Internal, `host veth ${hostVeth.name} not found`);
    if (v.master !== conf.bridge) throw new CniError(ErrCode.Internal, `host veth ${hostVeth.name} is not attached to ${conf.bridge}`);
  }
  if (conf.ipMasq && ips.length) {
    await selectDriver(conf.ipMasqBackend).check({ masq: masqSpec(conf, args, ips) });
  }
}
