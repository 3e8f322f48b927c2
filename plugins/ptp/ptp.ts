/**
 * ptp: a routed point-to-point attachment. The container gets one end of a veth pair with an
 * address from the delegated IPAM and reaches everything, its subnet included, via the
 * gateway; the host end carries the gateway as /32 (/128) and a host route to the container.
 * There is no bridge: the host routes between containers. kind's default network (ptp +
 * host-local + portmap).
 *
 * Processes per ADD: the IPAM (in-process when it is our host-local), then one `ip -batch` on
 * the host (veth pair with its peer born in the container netns, gateway, host route), then at
 * once one `ip -batch` in the container and, with ipMasq, one netfilter transaction.
 */
import { randomBytes } from 'node:crypto';
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode, wrapError } from '../../lib/skel/errors';
import type { IPConfig, Result } from '../../lib/types/result';
import { ipBatch } from '../../lib/iproute/ip';
import type { IpAddr, IpLink, IpRoute } from '../../lib/iproute/json-types';
import { netnsExists } from '../../lib/iproute/netns';
import { CHECK_LINES, delLinkInNetns, routeDst, verifyInterface } from '../../lib/iproute/iface';
import { ipamAdd, ipamExec } from '../../lib/ipam/exec';
import { runSteps, withRollback, type Rollback } from '../../lib/rollback';
import { FAILPOINTS, failpoint } from '../../lib/failpoint';
import { enableForwarding } from '../../lib/sysctl/forward';
import { canonicalIP, formatIP, networkAddr, parseCidr } from '../../lib/ip/cidr';
import { gcAll, selectDriver, teardownAll } from '../../lib/netfilter/select';
import { masqSpec, setupMasqWithUndo } from '../../lib/netfilter/masq';
import { validAttachments } from '../../lib/skel/gc';
import type { PtpConf } from './config';
import { requireNetns, requirePrevResult } from '../../lib/skel/inputs';
import { HOST_CHECK_LINES, containerAddBatch, hostAddBatch, type PtpAddr } from './batch';

/** Index of the container interface in ptp's result: `[host veth, container]`. */
const CONTAINER_IDX = 1;

/** The IPAM's addresses, each with the gateway ptp routes through (the reference needs one too). */
function ptpAddrs(ips: IPConfig[]): PtpAddr[] {
  return ips.map((i) => {
    const c = parseCidr(i.address);
    if (!c) throw new CniError(ErrCode.DecodeFailure, `IPAM returned an invalid address "${i.address}"`);
    if (!i.gateway) throw new CniError(ErrCode.InvalidConfig, `IPAM returned ${i.address} without a gateway: ptp routes through it`);
    return { address: i.address, gateway: i.gateway };
  });
}

/**
 * The host batch; judges its failures (an ifName already taken in the container is code 18).
 * The undo is pushed only when this call made the pair: a failed `link add` made nothing, and
 * the name might be another's.
 */
async function setupHost(conf: PtpConf, args: CmdArgs, hostVeth: string, addrs: PtpAddr[], undo: Rollback): Promise<IpLink> {
  const plan = hostAddBatch({ hostVeth, ifName: args.ifName, netns: args.netns, mtu: conf.mtu, ips: addrs });
  const out = await ipBatch(plan.lines, { force: true });
  const first = out.errors[0];
  if (first?.line !== plan.vethAdd) undo.push(`delete host veth ${hostVeth}`, () => delHostVeth(hostVeth));
  if (first?.line === plan.vethAdd && /File exists/.test(first.message)) {
    throw new CniError(ErrCode.InterfaceExists, `failed to create veth pair ${hostVeth}/${args.ifName}: an interface named "${args.ifName}" already exists in ${args.netns}`);
  }
  if (first) throw new CniError(ErrCode.Internal, `failed to set up host veth ${hostVeth}: ${first.message} (ip ${plan.lines[first.line]})`);
  const veth = (out.shows[0] as IpLink[] | undefined)?.[0];
  if (!veth) throw new CniError(ErrCode.Internal, `could not read back ${hostVeth}`);
  return veth;
}

/** Deletes the host end by name (its peer goes with it); a veth already gone is success. */
async function delHostVeth(name: string): Promise<void> {
  const out = await ipBatch([`link del dev ${name}`], { force: true });
  const real = out.errors.filter((e) => !/Cannot find device|does not exist|No such device/.test(e.message));
  if (real.length) throw new Error(`delete ${name}: ${real[0]!.message}`);
}

export async function cmdAdd(args: CmdArgs, conf: PtpConf): Promise<Result> {
  requireNetns(args.netns);
  return withRollback(async (undo) => {
    // 1. The addresses: the host side needs them (gateway, route to the container).
    const ipam = await ipamAdd(args);
    undo.push('release the IPAM lease', () => ipamExec('DEL', args));
    const ips = ipam.ips ?? [];
    if (!ips.length) throw new CniError(ErrCode.Internal, 'IPAM plugin returned missing IP config');
    const addrs = ptpAddrs(ips);
    const routes = ipam.routes ?? [];
    enableForwarding({ v4: addrs.some((a) => !a.address.includes(':')), v6: addrs.some((a) => a.address.includes(':')) });

    // 2. The host side in one batch: the pair (peer born in the container), gateway, route.
    const hostVeth = `veth${randomBytes(4).toString('hex')}`;
    const veth = await setupHost(conf, args, hostVeth, addrs, undo);

    // 3. At once: the container side in one batch, and the outbound NAT in one transaction.
    const masq = conf.ipMasq ? masqSpec(conf.name, args, ips) : undefined;
    const contLines = containerAddBatch({ ifName: args.ifName, ips: addrs, routes });
    const [cont] = await runSteps({ mode: 'first' }, [
      [
        'configure the container side',
        () =>
          ipBatch(contLines, { netns: args.netns }).catch((e) => {
            throw wrapError(`failed to configure ${args.ifName} in ${args.netns}`, e);
          }),
      ],
      masq && ['set up masquerade', () => setupMasqWithUndo(conf.ipMasqBackend, masq, undo)],
    ]);
    const contLink = (cont.shows[0] as IpLink[])[0]!;
    if (FAILPOINTS) failpoint('after-ipam');

    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: hostVeth, mac: veth.address },
        { name: args.ifName, mac: contLink.address, sandbox: args.netns },
      ],
      ips: ips.map((i) => ({ ...i, interface: CONTAINER_IDX })),
      routes,
      dns: conf.dns && Object.keys(conf.dns).length ? conf.dns : ipam.dns ?? {},
    };
  });
}

/** The host veth prevResult names: the interface outside any sandbox. */
function hostVethOf(prev: Result | undefined): string | undefined {
  return prev?.interfaces?.find((i) => !i.sandbox)?.name;
}

/**
 * DEL is best-effort and idempotent: IPAM release, the veth pair, NAT rules; every step runs and
 * the failures are reported together. The pair goes from the container side when there is a
 * netns (the host end, its gateway address and route go with it), else by the host end's name
 * from prevResult (a runtime may send no netns while the pair still exists). The NAT rules are
 * found from prevResult or from the container's ID alone, so an empty CNI_NETNS leaks nothing
 * (the reference reads the addresses from the container link: plugins#810).
 */
export async function cmdDel(args: CmdArgs, conf: PtpConf): Promise<void> {
  const prev = args.prevResult;
  const ips = (prev?.ips ?? []).filter((i) => i.interface === undefined || prev?.interfaces?.[i.interface]?.sandbox);
  const hostVeth = hostVethOf(prev);
  const inNetns = Boolean(args.netns) && netnsExists(args.netns);
  await runSteps({ mode: 'all', label: 'ptp DEL' }, [
    ['IPAM DEL', () => ipamExec('DEL', args)],
    inNetns ? ['delete the container interface', () => delLinkInNetns(args.netns, args.ifName)] : hostVeth !== undefined && ['delete the host veth', () => delHostVeth(hostVeth)],
    conf.ipMasq && ['remove masquerade rules', () => teardownAll(masqSpec(conf.name, args, ips), ['masq'])],
  ]);
}

function fail(msg: string): never {
  throw new CniError(ErrCode.Internal, msg);
}

const hostCidr = (ip: string): string => {
  const c = parseCidr(`${ip}/${ip.includes(':') ? 128 : 32}`);
  return c ? `${formatIP(c.ip)}/${c.prefix}` : ip;
};

/** The routes ptp adds in the container beside the IPAM's: gateway on-link, subnet via gateway. */
function verifyPtpRoutes(ifName: string, addrs: PtpAddr[], routes: IpRoute[]): void {
  const mine = routes.filter((r) => r.dev === ifName);
  for (const a of addrs) {
    const gw = hostCidr(a.gateway);
    if (!mine.some((r) => routeDst(r) === gw && !r.gateway)) fail(`route to the gateway ${a.gateway} not found on ${ifName}`);
    const c = parseCidr(a.address)!;
    const net = `${formatIP(networkAddr(c))}/${c.prefix}`;
    if (!mine.some((r) => routeDst(r) === net && canonicalIP(r.gateway ?? '') === canonicalIP(a.gateway))) {
      fail(`route to ${net} via ${a.gateway} not found on ${ifName}`);
    }
  }
}

/**
 * CHECK: the lease, the container interface (a veth; MAC, addresses, the IPAM's routes and
 * ptp's own), the host veth (gateway address, route to each container address), NAT rules.
 */
export async function cmdCheck(args: CmdArgs, conf: PtpConf): Promise<void> {
  const prev = requirePrevResult(args);
  requireNetns(args.netns);
  await ipamExec('CHECK', args);
  const idx = (prev.interfaces ?? []).findIndex((i) => i.name === args.ifName && i.sandbox === args.netns);
  if (idx < 0) fail(`sandbox in prevResult doesn't match configured netns: no interface ${args.ifName} in ${args.netns}`);
  const ips = (prev.ips ?? []).filter((i) => i.interface === undefined || i.interface === idx);
  const addrs = ptpAddrs(ips);
  const hostVeth = hostVethOf(prev);

  const [cont, host] = await Promise.all([
    ipBatch(CHECK_LINES(args.ifName), { netns: args.netns, force: true, details: true }),
    hostVeth ? ipBatch(HOST_CHECK_LINES(hostVeth), { force: true, details: true }) : undefined,
  ]);
  const [links, routes] = cont.shows as [IpAddr[] | undefined, IpRoute[] | undefined];
  const link = links?.[0];
  if (link && link.linkinfo?.info_kind !== 'veth') fail(`container interface ${args.ifName} is not a veth`);
  verifyInterface(prev, idx, args.ifName, link, routes ?? []);
  verifyPtpRoutes(args.ifName, addrs, routes ?? []);

  if (hostVeth && host) {
    const [hLinks, hRoutes] = host.shows as [IpAddr[] | undefined, IpRoute[] | undefined];
    const h = hLinks?.[0];
    if (!h || host.errors.length) fail(`host veth ${hostVeth} not found`);
    if (h.linkinfo?.info_kind !== 'veth') fail(`host interface ${hostVeth} is not a veth`);
    const have = new Set(h.addr_info.map((a) => `${canonicalIP(a.local)}/${a.prefixlen}`));
    for (const a of addrs) {
      if (!have.has(hostCidr(a.gateway))) fail(`gateway ${a.gateway} not found on host veth ${hostVeth}`);
      const to = hostCidr(a.address.split('/')[0]!);
      if (!(hRoutes ?? []).some((r) => (r.table ?? 'main') === 'main' && routeDst(r) === to && !r.gateway)) fail(`host route to ${to} via ${hostVeth} not found`);
    }
  }
  if (conf.ipMasq && ips.length) await selectDriver(conf.ipMasqBackend).check({ masq: masqSpec(conf.name, args, ips) });
}

/**
 * GC: forwarded to the IPAM, and with ipMasq the masquerade rules of this network whose
 * attachment is not in cni.dev/valid-attachments go, on every installed backend. Both steps
 * run; their failures are reported together.
 */
export async function cmdGc(args: CmdArgs, conf: PtpConf): Promise<void> {
  const valid = validAttachments(args.conf);
  await runSteps({ mode: 'all', label: 'ptp GC' }, [['IPAM GC', () => ipamExec('GC', args)], conf.ipMasq && ['masquerade GC', () => gcAll(conf.name, valid, ['masq'])]]);
}

/** STATUS concerns the addresses: forwarded to the IPAM. */
export async function cmdStatus(args: CmdArgs): Promise<void> {
  await ipamExec('STATUS', args);
}
