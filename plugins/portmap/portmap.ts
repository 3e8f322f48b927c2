/**
 * portmap: a chained meta plugin that publishes container ports on the host (Docker's -p):
 * DNAT from the host's local addresses (and 127.0.0.1) to the container address found in
 * prevResult, with masquerading for hairpin and localhost connections. The result is
 * prevResult, unchanged.
 *
 * Processes per verb: ADD without portMappings = 0 (plugins#464); ADD = 1 read + 1 write per
 * table family touched (nftables: 2 in all; iptables: 2 per address family); route_localnet is
 * written through /proc, no process. DEL = teardown on every installed backend, keyed on the
 * container ID only (no netns, prevResult or runtimeConfig needed): iptables-save ×2 and nft
 * list ×1, plus one write per place the container had rules. CHECK = 1 read per family of the
 * container's addresses (never IPv6 without an IPv6 address: plugins#819).
 */
import { writeFileSync, existsSync } from 'node:fs';
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import type { Result } from '../../lib/types/result';
import { gcAll, selectDriver, teardownAll } from '../../lib/netfilter/select';
import type { PortMapSpec } from '../../lib/netfilter/driver';
import { validAttachments } from '../../lib/skel/gc';
import { withRollback } from '../../lib/rollback';
import type { PortMapConf } from './config';
import { requirePrevResult } from '../../lib/skel/inputs';

function spec(conf: PortMapConf, args: CmdArgs): PortMapSpec {
  return {
    network: conf.name,
    containerID: args.containerID,
    ifName: args.ifName,
    mappings: conf.mappings,
    addresses: conf.addresses,
    snat: conf.snat,
    masqAll: conf.masqAll,
    markMasqBit: conf.markMasqBit,
    externalSetMarkChain: conf.externalSetMarkChain,
    conditionsV4: conf.conditionsV4,
    conditionsV6: conf.conditionsV6,
  };
}

/**
 * Lets 127.0.0.1-sourced packets DNATed to the container leave through the host interface
 * (the kernel drops 127/8 crossing a routing boundary otherwise); the reference does the same.
 * Written through /proc in our own netns: no process. Returns the previous value.
 */
function enableRouteLocalnet(ifName: string | undefined): string | undefined {
  if (!ifName || !/^[^/\s.][^/\s]{0,14}$/.test(ifName)) return undefined;
  const path = `/proc/sys/net/ipv4/conf/${ifName}/route_localnet`;
  if (!existsSync(path)) return undefined;
  try {
    writeFileSync(path, '1');
  } catch (e) {
    throw new CniError(ErrCode.Internal, `unable to enable route_localnet on ${ifName}: ${(e as Error).message}`);
  }
  return '1';
}

export async function cmdAdd(args: CmdArgs, conf: PortMapConf): Promise<Result> {
  const prev = requirePrevResult(args);
  // No mappings: nothing to do and nothing spawned (plugins#464).
  if (conf.mappings.length === 0 || conf.addresses.length === 0) return prev;
  const s = spec(conf, args);
  // The driver for ADD and CHECK: explicit, else the project's rule (lib/netfilter/select.ts).
  const nf = selectDriver(conf.backend);
  return withRollback(async (undo) => {
    await nf.setup({ ports: s });
    undo.push('remove port mappings', () => nf.teardown(s, ['ports']));
    if (conf.snat && conf.addresses.some((a) => !a.includes(':'))) enableRouteLocalnet(conf.hostIf);
    return prev;
  });
}

export async function cmdDel(args: CmdArgs, conf: PortMapConf): Promise<void> {
  // The config was checked (a broken one is still an error), but nothing from it is needed
  // beyond the network name: the owner alone finds the rules, on every installed backend.
  await teardownAll({ network: conf.name, containerID: args.containerID, ifName: args.ifName }, ['ports']);
}

export async function cmdCheck(args: CmdArgs, conf: PortMapConf): Promise<void> {
  requirePrevResult(args);
  if (conf.mappings.length === 0 || conf.addresses.length === 0) return;
  await selectDriver(conf.backend).check({ ports: spec(conf, args) });
}

/**
 * GC: removes, on every installed backend, the mappings of this network's containers that have
 * no attachment in cni.dev/valid-attachments (lib/netfilter/gc.ts says how the network is told).
 */
export async function cmdGc(args: CmdArgs, conf: PortMapConf): Promise<void> {
  await gcAll(conf.name, validAttachments(args.conf), ['ports']);
}
