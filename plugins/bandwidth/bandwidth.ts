/**
 * bandwidth: a chained (meta) plugin that limits a container's traffic with tbf qdiscs on the
 * host end of its veth (ingressRate: traffic to the container) and on an ifb device fed by a
 * redirect from that veth's ingress (egressRate: traffic from the container). Drop-in for the
 * reference (containernetworking/plugins plugins/meta/bandwidth): same keys, same qdiscs and
 * filter, same ifb name, so either side's DEL removes the other's ifb.
 *
 * Processes per ADD with both limits: two reads at once (the container interface's veth peer
 * index, through nsenter; the host's links), one `ip -batch` (the ifb) and one `tc -batch`
 * (every qdisc and the filter). DEL: one `ip -batch` (delete the ifb by its name, read the host's
 * links) beside one read in the container, then one `tc -batch` when the veth is still there.
 */
import { readFileSync } from 'node:fs';
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import type { Result } from '../../lib/types/result';
import { BatchLineError, ipBatch, ipJson, tcBatch } from '../../lib/iproute/ip';
import type { IpLink } from '../../lib/iproute/json-types';
import { netnsExists } from '../../lib/iproute/netns';
import { validAttachments } from '../../lib/skel/gc';
import { runSteps, withRollback } from '../../lib/rollback';
import { FAILPOINTS, failpoint } from '../../lib/failpoint';
import { shapesEgress, shapesIngress, type BandwidthConf } from './config';
import { requireNetns, requirePrevResult } from '../../lib/skel/inputs';
import {
  checkLines,
  ifbAlias,
  ifbLines,
  ifbName,
  parseIfbAlias,
  redirectMismatch,
  shapeLines,
  tbfMismatch,
  tbfParams,
  tickInUsec,
  unshapeLines,
  type ShapePlan,
  type TcFilter,
  type TcQdisc,
} from './tc';

const notFound = (m: string): boolean => /Cannot find device|does not exist|No such device/.test(m);

function readTick(): number {
  try {
    return tickInUsec(readFileSync('/proc/net/psched', 'utf8'));
  } catch {
    return tickInUsec(undefined);
  }
}

type LinkWithAlias = IpLink & { ifalias?: string; qdisc?: string };

/**
 * The host end of the container interface's veth, as the reference finds it: the peer ifindex of
 * CNI_IFNAME in the container, then the host link with that index, which must be listed in
 * prevResult as a host interface (no sandbox). Reads both namespaces at once.
 */
async function hostVeth(args: CmdArgs, prev: Result, hostLinks?: Promise<LinkWithAlias[]>): Promise<LinkWithAlias> {
  if (!prev.interfaces?.length) throw new CniError(ErrCode.Internal, 'no interfaces provided');
  const [ctr, host] = await Promise.all([
    ipJson<IpLink>(['-details', 'link', 'show', 'dev', args.ifName], { netns: args.netns, missingOk: true }),
    hostLinks ?? ipJson<LinkWithAlias>(['link', 'show']),
  ]);
  const c = ctr[0];
  if (!c || c.linkinfo?.info_kind !== 'veth' || !c.link_index) {
    throw new CniError(ErrCode.Internal, `container interface ${args.ifName} has no veth peer${c ? '' : ': link not found'}`);
  }
  const h = host.find((l) => l.ifindex === c.link_index);
  if (!h) throw new CniError(ErrCode.Internal, `veth peer with index ${c.link_index} is not in host ns`);
  if (!prev.interfaces.some((i) => !i.sandbox && i.name === h.ifname)) throw new CniError(ErrCode.Internal, 'no veth peer of container interface found in host ns');
  return h;
}

function plan(conf: BandwidthConf, args: CmdArgs, veth: string, tick: number): ShapePlan {
  const b = conf.bandwidth!;
  return {
    hostVeth: veth,
    ingress: shapesIngress(b) ? tbfParams(b.ingressRate, b.ingressBurst, tick) : undefined,
    egress: shapesEgress(b) ? { ifb: ifbName(conf.name, args.containerID), tbf: tbfParams(b.egressRate, b.egressBurst, tick) } : undefined,
  };
}

export async function cmdAdd(args: CmdArgs, conf: BandwidthConf): Promise<Result> {
  const prev = requirePrevResult(args);
  const result: Result = { ...prev, cniVersion: conf.cniVersion };
  if (!conf.bandwidth) return result;
  requireNetns(args.netns);
  const veth = await hostVeth(args, prev);
  const p = plan(conf, args, veth.ifname, readTick());

  return withRollback(async (undo) => {
    // 1. The ifb (egress only), with the veth's MTU; a second ADD finds it and fails here.
    if (p.egress) {
      const ifb = p.egress.ifb;
      const delIfb = (): Promise<unknown> => ipBatch([`link del dev ${ifb}`]);
      const out = await ipBatch(ifbLines(ifb, veth.mtu, ifbAlias(conf.name, args.containerID))).catch((e: Error) => {
        // Line 0 made it: a later line failing leaves an ifb that is ours to remove.
        if (e instanceof BatchLineError && e.line > 0) undo.push(`delete ${ifb}`, delIfb);
        throw new CniError(ErrCode.Internal, `failed to create ifb ${ifb}: ${e.message}`);
      });
      undo.push(`delete ${ifb}`, delIfb);
      const mac = (out.byLine[2] as IpLink[] | undefined)?.[0]?.address;
      result.interfaces = [...(result.interfaces ?? []), { name: ifb, mac }];
    }
    // 2. Qdiscs and the redirect. The batch stops at the first failure: undo the lines before it.
    const lines = shapeLines(p);
    try {
      await tcBatch(lines);
    } catch (e) {
      if (e instanceof BatchLineError) {
        const undoLines = unshapeLines(lines, e.line, veth.ifname);
        undo.push(`remove qdiscs from ${veth.ifname}`, () => tcBatch(undoLines, { force: true }));
      }
      throw new CniError(ErrCode.Internal, `failed to shape ${veth.ifname}: ${(e as Error).message}`);
    }
    undo.push(`remove qdiscs from ${veth.ifname}`, () => tcBatch(unshapeLines(lines, lines.length, veth.ifname), { force: true }));
    if (FAILPOINTS) failpoint('after-apply');
    return result;
  });
}

/**
 * DEL: the ifb by its name (no netns or prevResult needed; gone already is success), and, when
 * the container's veth is still there, the qdiscs this config put on its host end (the veth's
 * own deletion by the main plugin would take them too).
 */
export async function cmdDel(args: CmdArgs, conf: BandwidthConf): Promise<void> {
  const ifb = ifbName(conf.name, args.containerID);
  const b = conf.bandwidth;
  const canFindVeth = !!b && !!args.prevResult?.interfaces?.length && !!args.netns && netnsExists(args.netns);
  // One ip process deletes the ifb and, when needed, reads the host links for the veth lookup.
  const hostOut = ipBatch([`link del dev ${ifb}`, ...(canFindVeth ? ['link show'] : [])], { force: true });
  await runSteps({ mode: 'all', label: 'bandwidth DEL' }, [
    [
      `delete ${ifb}`,
      async () => {
        const out = await hostOut;
        const bad = out.errors.find((e) => e.line === 0 && !notFound(e.message));
        if (bad) throw new Error(bad.message);
      },
    ],
    canFindVeth && [
      'remove qdiscs from the host veth',
      async () => {
        const links = hostOut.then((o) => (o.byLine[1] as LinkWithAlias[] | undefined) ?? []);
        const veth = await hostVeth(args, args.prevResult!, links).catch(() => undefined);
        if (!veth) return; // the container interface or its peer is gone, and the qdiscs with it
        const lines = [...(shapesIngress(b!) && veth.qdisc === 'tbf' ? [`qdisc del dev ${veth.ifname} root`] : []), ...(shapesEgress(b!) ? [`qdisc del dev ${veth.ifname} ingress`] : [])];
        const out = await tcBatch(lines, { force: true });
        const bad = out.errors.find((e) => !notFound(e.message) && !/Invalid handle|Cannot delete qdisc with handle of zero/.test(e.message));
        if (bad) throw new Error(`${lines[bad.line]}: ${bad.message}`);
      },
    ],
  ]);
}

/** CHECK: the veth's root tbf, its redirect to the ifb and the ifb's tbf match the config. */
export async function cmdCheck(args: CmdArgs, conf: BandwidthConf): Promise<void> {
  const prev = requirePrevResult(args);
  requireNetns(args.netns);
  const veth = await hostVeth(args, prev);
  if (!conf.bandwidth) return;
  const tick = readTick();
  const p = plan(conf, args, veth.ifname, tick);
  const lines = checkLines(p);
  const out = await tcBatch(lines, { json: true, raw: true, force: true });
  const fail = (msg: string): never => {
    throw new CniError(ErrCode.Internal, msg);
  };
  const vethQdiscs = out.byLine[0] as TcQdisc[] | undefined;
  if (p.ingress) {
    const bad = tbfMismatch(veth.ifname, vethQdiscs, p.ingress, tick);
    if (bad) fail(bad);
  }
  if (p.egress) {
    const ifbQdiscs = out.byLine[2] as TcQdisc[] | undefined;
    if (!ifbQdiscs) fail(`ifb device ${p.egress.ifb} not found`);
    const bad = redirectMismatch(veth.ifname, vethQdiscs, out.byLine[1] as TcFilter[] | undefined, p.egress.ifb) ?? tbfMismatch(p.egress.ifb, ifbQdiscs, p.egress.tbf, tick);
    if (bad) fail(bad);
  }
}

/**
 * GC (ours; the reference has none): removes the ifbs this network made for attachments that are
 * not in the valid list. Only ifbs carrying our alias for this network are candidates, so other
 * networks' ifbs (and the reference's, which carry no alias) are never touched.
 */
export async function cmdGc(args: CmdArgs, conf: BandwidthConf): Promise<void> {
  const valid = new Set(validAttachments(args.conf).map((a) => a.containerID));
  const ifbs = await ipJson<LinkWithAlias>(['link', 'show', 'type', 'ifb']);
  const stale = ifbs.filter((l) => {
    const o = parseIfbAlias(l.ifalias);
    return o && o.network === conf.name && !valid.has(o.containerID) && l.ifname === ifbName(o.network, o.containerID);
  });
  if (!stale.length) return;
  const out = await ipBatch(
    stale.map((l) => `link del dev ${l.ifname}`),
    { force: true },
  );
  const bad = out.errors.filter((e) => !notFound(e.message));
  if (bad.length) throw new CniError(ErrCode.Internal, `bandwidth GC: ${bad.map((e) => `${stale[e.line]!.ifname}: ${e.message}`).join('; ')}`);
}
