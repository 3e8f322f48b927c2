/**
 * macvlan: the container gets a macvlan child of a host interface (`master`), with its own MAC
 * on the master's L2 segment; containers on one master in bridge mode reach each other
 * directly, as with `docker network create -d macvlan -o parent=eth0`. They cannot reach the
 * master itself (a macvlan property, not ours).
 *
 * Processes per ADD: one `ip -batch` where the master lives (read it + create the link straight
 * into the container netns), the IPAM (in-process when it is our host-local) in parallel with
 * one sysctl child (arp_notify/ndisc_notify, L3 only, as the reference), one `ip -batch` in the
 * container (rename, addresses, up, routes, read back). Plus one `ip` when `master` is unset,
 * to find the default-route interface.
 */
import { randomBytes } from 'node:crypto';
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode, wrapError } from '../../lib/skel/errors';
import type { Interface, IPConfig, Result, Route } from '../../lib/types/result';
import { ipBatch, type BatchOutcome } from '../../lib/iproute/ip';
import type { IpAddr, IpLink, IpRoute } from '../../lib/iproute/json-types';
import { ipamAdd, ipamExec } from '../../lib/ipam/exec';
import { netnsSysctlSetAll } from '../../lib/sysctl/netns';
import { runSteps, withRollback } from '../../lib/rollback';
import { FAILPOINTS, failpoint } from '../../lib/failpoint';
import { delLinkInNetns, gatewaysOf, verifyInterface } from '../../lib/iproute/iface';
import type { MacvlanConf } from './config';
import { requireNetns, requirePrevResult } from '../../lib/skel/inputs';
import { DEFAULT_ROUTE_LINES, checkBatch, containerBatch, createBatch } from './batch';

const errorAt = (out: BatchOutcome, line: number): string | undefined => out.errors.find((e) => e.line === line)?.message;

/**
 * The interface of the first default route in `netns` (the plugin's own when undefined), v4
 * before v6, like the reference's getDefaultRouteInterfaceName.
 */
export async function defaultRouteInterface(netns?: string): Promise<string> {
  const out = await ipBatch(DEFAULT_ROUTE_LINES, { netns, force: true });
  for (const routes of out.shows as IpRoute[][]) {
    const dev = routes.find((r) => r.dev)?.dev;
    if (dev) return dev;
  }
  throw new CniError(ErrCode.InvalidConfig, 'no default route interface found', netns ? `in ${netns}` : 'in the host netns');
}

async function resolveMaster(conf: MacvlanConf, args: CmdArgs): Promise<string> {
  return conf.master || defaultRouteInterface(conf.linkInContainer ? args.netns : undefined);
}

/**
 * Creates the macvlan under a random name, in the container netns. The reference does the same
 * ("due to kernel bug we have to create with tmpName"): kernels before the fix checked the new
 * name against the caller's netns, so creating `eth0` into a container failed whenever the host
 * had an eth0. The rename happens inside the container, where only its own names count.
 */
async function createMacvlan(conf: MacvlanConf, args: CmdArgs, master: string, tmpName: string): Promise<void> {
  const where = conf.linkInContainer ? args.netns : undefined;
  const lines = createBatch({ master, tmpName, mode: conf.mode, mtu: conf.mtu, mac: conf.mac, bcqueuelen: conf.bcqueuelen, netns: where ? undefined : args.netns });
  const out = await ipBatch(lines, { netns: where, force: true });
  const [masterLinks] = out.byLine as [IpLink[] | undefined];
  const masterErr = errorAt(out, 0);
  if (masterErr || !masterLinks?.[0]) {
    throw new CniError(ErrCode.InvalidConfig, `failed to lookup master "${master}": ${masterErr ?? 'not found'}`, where ? `in ${where}` : 'in the host netns');
  }
  const addErr = errorAt(out, 1);
  if (!addErr) return;
  const masterMtu = masterLinks[0].mtu;
  if (conf.mtu > masterMtu) {
    throw new CniError(ErrCode.InvalidConfig, `invalid MTU ${conf.mtu}, must be [0, master MTU(${masterMtu})]`);
  }
  throw new CniError(ErrCode.Internal, `failed to create macvlan: ${addErr}`, `ip ${lines[1]}`);
}

/** Deletes the link we made, whichever name it has by now (never a link we did not make). */
async function deleteCreated(args: CmdArgs, tmpName: string): Promise<void> {
  const byTmp = await ipBatch([`link del dev ${tmpName}`], { netns: args.netns, force: true });
  // Still under the temporary name: the rename never happened, so ifName (if any) is not ours.
  if (byTmp.errors.length === 0) return;
  const byName = await ipBatch([`link del dev ${args.ifName}`], { netns: args.netns, force: true });
  if (byName.errors.length) throw new Error(byName.errors[0]!.message);
}

export async function cmdAdd(args: CmdArgs, conf: MacvlanConf): Promise<Result> {
  requireNetns(args.netns);
  const master = await resolveMaster(conf, args);
  const tmpName = `veth${randomBytes(4).toString('hex')}`;
  return withRollback(async (undo) => {
    // 1. The link, in the container netns under its temporary name (validates master and mtu).
    await createMacvlan(conf, args, master, tmpName);
    undo.push(`delete macvlan ${args.ifName} in ${args.netns}`, () => deleteCreated(args, tmpName));

    // 2. Addresses, and meanwhile the announce sysctls (best-effort in the reference too).
    let ipam: Result | undefined;
    if (conf.hasIpam) {
      const [ipamRes] = await runSteps({ mode: 'first' }, [
        [
          'IPAM ADD',
          async () => {
            const r = await ipamAdd(args);
            undo.push('release the IPAM lease', () => ipamExec('DEL', args));
            return r;
          },
        ],
        ['announce', () => netnsSysctlSetAll(args.netns, [`/proc/sys/net/ipv4/conf/${tmpName}/arp_notify`, `/proc/sys/net/ipv6/conf/${tmpName}/ndisc_notify`], '1').catch(() => undefined)],
      ]);
      ipam = ipamRes;
      if (!ipam.ips?.length) throw new CniError(ErrCode.Internal, 'IPAM plugin returned missing IP config');
    }
    const ips: IPConfig[] = (ipam?.ips ?? []).map((i) => ({ ...i, interface: 0 }));
    const routes: Route[] = ipam?.routes ?? [];
    const { gw4, gw6 } = gatewaysOf(ips);

    // 3. The container side in one batch.
    const lines = containerBatch({ tmpName, ifName: args.ifName, addresses: ips.map((i) => i.address), routes, gw4, gw6 });
    const cont = await ipBatch(lines, { netns: args.netns }).catch((e: Error) => {
      if (e.message.includes(`name ${args.ifName}`) && /File exists/.test(e.message)) {
        throw new CniError(ErrCode.InterfaceExists, `failed to rename macvlan to "${args.ifName}": an interface with that name already exists in ${args.netns}`);
      }
      throw wrapError(`failed to configure ${args.ifName} in ${args.netns}`, e);
    });
    const link = (cont.shows[0] as IpLink[])[0]!;
    if (FAILPOINTS) failpoint('after-ipam');

    const iface: Interface = { name: args.ifName, mac: link.address, sandbox: args.netns };
    if (conf.mtu) iface.mtu = conf.mtu;
    const out: Result = { cniVersion: conf.cniVersion, interfaces: [iface] };
    if (ipam) {
      out.ips = ips;
      out.routes = routes;
    }
    out.dns = conf.dns && Object.keys(conf.dns).length ? conf.dns : ipam?.dns ?? {};
    return out;
  });
}

/**
 * DEL is best-effort and idempotent: IPAM release, then the link. A missing or empty netns only
 * skips the link (kubernetes#43014); a missing link is success. Failures are reported together.
 */
export async function cmdDel(args: CmdArgs, conf: MacvlanConf): Promise<void> {
  await runSteps({ mode: 'all', label: 'macvlan DEL' }, [
    conf.hasIpam && ['IPAM DEL', () => ipamExec('DEL', args)],
    ['delete the container interface', () => delLinkInNetns(args.netns, args.ifName)],
  ]);
}

function fail(msg: string): never {
  throw new CniError(ErrCode.Internal, msg);
}

/** CHECK: the link (kind, mode, MAC, master), its addresses and routes, the master, the lease. */
export async function cmdCheck(args: CmdArgs, conf: MacvlanConf): Promise<void> {
  const prev = requirePrevResult(args);
  if (conf.hasIpam) await ipamExec('CHECK', args);
  const idx = (prev.interfaces ?? []).findIndex((i) => i.name === args.ifName && i.sandbox === args.netns);
  if (idx < 0) fail(`sandbox in prevResult doesn't match configured netns: no interface ${args.ifName} in ${args.netns}`);
  const master = await resolveMaster(conf, args);

  const lines = checkBatch(args.ifName, conf.linkInContainer ? master : undefined);
  const [contOut, hostOut] = await Promise.all([
    ipBatch(lines, { netns: args.netns, force: true, details: true }),
    conf.linkInContainer ? undefined : ipBatch([`link show dev ${master}`], { force: true }),
  ]);
  const [addrs, routes, masterInCont] = contOut.byLine as [IpAddr[]?, IpRoute[]?, IpLink[]?];
  const masterLink = conf.linkInContainer ? masterInCont?.[0] : (hostOut!.byLine[0] as IpLink[] | undefined)?.[0];
  if (!masterLink) fail(`failed to lookup master "${master}"`);

  const link = addrs?.[0];
  if (!link) fail(`container interface name in prevResult: ${args.ifName} not found`);
  if (link.linkinfo?.info_kind !== 'macvlan') fail(`container interface ${args.ifName} not of type macvlan`);
  const mode = link.linkinfo.info_data?.mode;
  if (mode !== conf.mode) fail(`container macvlan mode ${String(mode)} does not match expected value: ${conf.mode}`);
  // The lower device: same ifindex as the master (seen from the container through link_netnsid).
  // The lower device: in another netns ip shows its ifindex (link_index), in the same one its name.
  const lowerOk = link.link_index !== undefined ? link.link_index === masterLink.ifindex : link.link === undefined || link.link === master;
  if (!lowerOk) fail(`container interface ${args.ifName} is not a macvlan of ${master}`);

  verifyInterface(prev, idx, args.ifName, link, routes ?? []);
}

/** GC and STATUS concern the addresses: forwarded to the IPAM. */
export async function cmdGc(args: CmdArgs, conf: MacvlanConf): Promise<void> {
  if (conf.hasIpam) await ipamExec('GC', args);
}

export async function cmdStatus(args: CmdArgs, conf: MacvlanConf): Promise<void> {
  if (conf.hasIpam) await ipamExec('STATUS', args);
}
