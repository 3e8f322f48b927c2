/**
 * overlay: Docker's multi-host overlay network, the flannel way. The network's CIDR is cut into
 * one subnet per host, leased in etcd by the host's agent (agent.ts); a container is attached to
 * the host's overlay bridge exactly as the bridge plugin attaches it (lib/bridge/attach.ts),
 * with an address from the host's subnet (our host-local, in-process), the overlay MTU, a route
 * to the whole overlay network, and masquerade only for traffic leaving it. Remote subnets are
 * reached through the VXLAN device the agent programs.
 *
 * ADD never waits on etcd once the host holds a lease: it reads the agent's state file. Only
 * when there is none yet does it start the agent and wait a few seconds, then answer 11 (try
 * again later) with the reason. DEL needs neither etcd nor the netns.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import type { Result } from '../../lib/types/result';
import { attachAdd, attachCheck, attachDel, type AttachConf, type AttachIpam } from '../../lib/bridge/attach';
import { runSteps } from '../../lib/rollback';
import { gcAll } from '../../lib/netfilter/select';
import { validAttachments } from '../../lib/skel/gc';
import { ensureRunning, livePid, stopDaemon, type DaemonSpec } from '../../lib/daemon/daemon';
import { inProcessIpam } from '../../lib/ipam/exec';
import { plugin as hostLocal } from '../../ipam/host-local/main';
import { requireNetns } from '../../lib/skel/inputs';
import { formatIP } from '../../lib/ip/cidr';
import { selfArgv } from '../../lib/self/self';
import { agentConfig, sameConfig, type OverlayConf } from './config';
import { type HostState, readHealth, readState, runPaths, writeAtomic } from './state';

/** How long the first ADD on a host waits for the agent to lease a subnet. */
const FIRST_LEASE_WAIT_MS = 5000;

const networkText = (c: OverlayConf): string => `${formatIP(c.network.ip)}/${c.network.prefix}`;

/** The agent as lib/daemon runs it: this same executable in its `agent` mode. */
export function agentSpec(conf: OverlayConf): DaemonSpec {
  const paths = runPaths(conf.runDir);
  return {
    name: `overlay agent for ${conf.name}`,
    dir: conf.runDir,
    // This same program in its agent mode, bundle or binary (lib/self).
    argv: selfArgv(['agent', '--config', paths.config]),
    pidFile: join(conf.runDir, 'agent.pid'),
    logFile: join(conf.runDir, 'agent.log'),
    lockFile: join(conf.runDir, 'agent.lock'),
    // Any overlay agent whose pid is in this runDir's pid file: also one run by an operator
    // under systemd with another config path (the agent writes its pid file itself).
    // The multi-call bundle runs as `node .../cni-ts overlay agent ...`, the rest as `.../overlay agent ...`.
    matches: (argv) => {
      const at = argv.findIndex((a, i) => i >= 1 && /(^|\/)overlay$/.test(a));
      return at >= 1 && argv[at + 1] === 'agent' && argv[at + 2] === '--config';
    },
    ready: () => usableState(conf) !== undefined,
  };
}

/** The agent's state when it is for this config's network. */
/** Our host-local, always in-process: overlay allocates from the subnet its host leased. */
const hostLocalIpam = inProcessIpam(hostLocal);

function usableState(conf: OverlayConf): HostState | undefined {
  const s = readState(runPaths(conf.runDir));
  return s && s.network === networkText(conf) && s.vxlan === conf.vxlan ? s : undefined;
}

/**
 * Makes sure the agent runs with this config and returns the host's lease. Starts the agent when
 * none runs (restarts it when the config changed); waits only when there is no lease yet.
 */
export async function ensureAgent(conf: OverlayConf): Promise<HostState> {
  const paths = runPaths(conf.runDir);
  const spec = agentSpec(conf);
  const want = agentConfig(conf.raw);
  let old: NetConf | undefined;
  try {
    old = JSON.parse(readFileSync(paths.config, 'utf8')) as NetConf;
  } catch {
    /* first ADD on this host */
  }
  if (!old || !sameConfig(old, want)) {
    writeAtomic(paths.config, JSON.stringify(want, null, 2) + '\n', 0o600);
    // The agent runs with another config: restart it with this one.
    if (old && livePid(spec) !== undefined) await stopDaemon(spec);
  }
  // Code 11 with the agent's own reason (etcd unreachable, auth refused, config conflict).
  const noLease = (cause: string): CniError => {
    const h = readHealth(paths);
    return new CniError(ErrCode.TryAgainLater, `overlay network ${conf.name}: this host has no subnet lease yet${h?.error ? `: ${h.error}` : ''}`, `${cause}the agent keeps trying (log: ${spec.logFile})`);
  };
  try {
    await ensureRunning(spec, { readyTimeoutMs: FIRST_LEASE_WAIT_MS });
  } catch (e) {
    const state = usableState(conf);
    if (state) return state; // the agent is in trouble, but the lease we hold still serves ADD
    throw noLease(`${e instanceof Error ? e.message : String(e)}; `);
  }
  const state = usableState(conf);
  if (!state) throw noLease('');
  return state;
}

function attachConf(conf: OverlayConf, mtu: number): AttachConf {
  const mac = conf.raw.runtimeConfig?.mac;
  return {
    cniVersion: conf.cniVersion,
    name: conf.name,
    bridge: conf.bridge,
    isGateway: true,
    isDefaultGateway: true,
    // A host that had to lease another subnet puts its new gateway on the bridge.
    forceAddress: true,
    ipMasq: conf.ipMasq,
    ipMasqBackend: conf.ipMasqBackend,
    masqPrefix: conf.network.prefix,
    mtu,
    hairpinMode: false,
    promiscMode: false,
    portIsolation: false,
    enableDad: false,
    mac: typeof mac === 'string' && mac ? mac.toLowerCase() : undefined,
    dns: conf.raw.dns,
  };
}

/**
 * host-local, in-process, on the host's subnet, with a route to the whole overlay network.
 * Without a lease (DEL, GC after the agent's state is gone) the range is the whole network: host-
 * local releases by container ID, so only the network's name and dataDir matter then.
 */
function ipamArgs(conf: OverlayConf, args: CmdArgs, state: HostState | undefined): CmdArgs {
  const { runtimeConfig, ...rest } = conf.raw;
  const rt: Record<string, unknown> = { ...runtimeConfig };
  delete rt.ipRanges;
  const ipamConf: NetConf = {
    ...rest,
    runtimeConfig: rt,
    ipam: {
      type: 'host-local',
      ranges: [[state ? { subnet: state.subnet, gateway: state.gateway } : { subnet: networkText(conf) }]],
      routes: [{ dst: networkText(conf) }],
      dataDir: conf.dataDir,
    },
  };
  return { ...args, conf: ipamConf, stdin: Buffer.from(JSON.stringify(ipamConf)) };
}

function overlayIpam(conf: OverlayConf, args: CmdArgs, state: HostState | undefined): AttachIpam {
  const a = ipamArgs(conf, args, state);
  return {
    add: () => hostLocalIpam.add(a),
    del: () => hostLocalIpam.del(a),
    check: () => hostLocalIpam.check(a),
  };
}

export async function cmdAdd(args: CmdArgs, conf: OverlayConf): Promise<Result> {
  requireNetns(args.netns);
  const state = await ensureAgent(conf);
  return attachAdd(attachConf(conf, state.mtu), args, overlayIpam(conf, args, state));
}

/** DEL: lease, container link, NAT rules; no etcd, no netns needed, idempotent. */
export async function cmdDel(args: CmdArgs, conf: OverlayConf): Promise<void> {
  const state = usableState(conf);
  await attachDel('overlay', attachConf(conf, state?.mtu ?? 0), args, overlayIpam(conf, args, state));
}

export async function cmdCheck(args: CmdArgs, conf: OverlayConf): Promise<void> {
  const state = usableState(conf);
  if (!state) throw new CniError(ErrCode.Internal, `overlay network ${conf.name}: this host holds no subnet lease (no ${runPaths(conf.runDir).state})`);
  await attachCheck(attachConf(conf, state.mtu), args, overlayIpam(conf, args, state));
}

/** GC: leases and masquerade rules of attachments not in cni.dev/valid-attachments. */
export async function cmdGc(args: CmdArgs, conf: OverlayConf): Promise<void> {
  const valid = validAttachments(args.conf);
  const a = ipamArgs(conf, args, usableState(conf));
  await runSteps({ mode: 'all', label: 'overlay GC' }, [['IPAM GC', () => hostLocalIpam.gc(a)], conf.ipMasq && ['masquerade GC', () => gcAll(conf.name, valid, ['masq'])]]);
}

/**
 * STATUS: 50 when this host holds no subnet lease or its agent is not running; 51 when the agent
 * has lost etcd (containers still start and talk, but membership may be stale); else the
 * IPAM's (50 when the host's subnet is full).
 */
export async function cmdStatus(args: CmdArgs, conf: OverlayConf): Promise<void> {
  const paths = runPaths(conf.runDir);
  const state = usableState(conf);
  if (!state) throw new CniError(ErrCode.NotAvailable, `overlay network ${conf.name}: this host holds no subnet lease yet`, existsSync(paths.health) ? readHealth(paths)?.error ?? '' : 'the agent has not run here');
  if (livePid(agentSpec(conf)) === undefined) throw new CniError(ErrCode.NotAvailable, `overlay network ${conf.name}: the agent is not running`, 'the next ADD starts it');
  const h = readHealth(paths);
  if (h && h.etcd !== 'ok') {
    throw new CniError(ErrCode.LimitedConnectivity, `overlay network ${conf.name}: the agent cannot reach etcd${h.error ? `: ${h.error}` : ''}`, `since ${h.since}; existing containers are unaffected, hosts that join or leave meanwhile are not seen`);
  }
  await hostLocalIpam.status(ipamArgs(conf, args, state));
}
