/**
 * The files the agent keeps in runDir and the plugin reads. The agent writes each one whole
 * (temp file + rename), so a reader never sees half of one.
 *
 *   config.json   the network config the agent runs with (written by ADD, or by the operator)
 *   state.json    this host's lease: subnet, gateway, MTU, VTEP; ADD allocates from it
 *   subnet.env    the same as flannel writes it (FLANNEL_NETWORK, FLANNEL_SUBNET, …), for tools
 *   health.json   whether the agent reaches etcd now (STATUS 51 when not), and its last error
 *   agent.pid / agent.log / agent.lock   the daemon's (lib/daemon)
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface HostState {
  network: string;
  /** This host's subnet, e.g. "10.40.3.0/24". */
  subnet: string;
  /** The bridge's address: the subnet's first host address. */
  gateway: string;
  /** The VTEP's address (the subnet's .0, as flannel does). */
  vtepAddress: string;
  mtu: number;
  vni: number;
  port: number;
  vxlan: string;
  vtepMac: string;
  publicIP: string;
  underlay: string;
  /** The registry key and the etcd lease it is bound to. */
  key: string;
  leaseId: string;
}

export interface Health {
  /** ok: etcd answers; lost: it did and does not now; never: not reached since the agent started. */
  etcd: 'ok' | 'lost' | 'never';
  since: string;
  error?: string;
}

export interface RunPaths {
  dir: string;
  config: string;
  state: string;
  subnetEnv: string;
  health: string;
}

export function runPaths(runDir: string): RunPaths {
  return { dir: runDir, config: join(runDir, 'config.json'), state: join(runDir, 'state.json'), subnetEnv: join(runDir, 'subnet.env'), health: join(runDir, 'health.json') };
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export const readState = (p: RunPaths): HostState | undefined => readJson<HostState>(p.state);
export const readHealth = (p: RunPaths): Health | undefined => readJson<Health>(p.health);

/** Writes `text` to `path` through a temp file and a rename. */
export function writeAtomic(path: string, text: string, mode = 0o644): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}

/** flannel's subnet.env for this lease. */
export function subnetEnv(s: HostState, ipMasq: boolean): string {
  const prefix = s.subnet.split('/')[1];
  return [`FLANNEL_NETWORK=${s.network}`, `FLANNEL_SUBNET=${s.gateway}/${prefix}`, `FLANNEL_MTU=${s.mtu}`, `FLANNEL_IPMASQ=${ipMasq}`, ''].join('\n');
}
