// Several "hosts" for the overlay suite: network namespaces on one underlay bridge, plus a real
// etcd in a namespace of its own on that bridge. Everything lives in namespaces the Registry
// made; agents the plugin starts are stopped by pid at cleanup, before the namespaces go.
//
//   underlay netns:  bridge ulbr 192.168.77.1/24 (the hosts' default gateway: "outside")
//   etcd netns:      eth0 192.168.77.2, etcd on :2379
//   host i netns:    eth0 192.168.77.(10+i), default via .1; the plugin runs here
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execOk, inNetns } from './exec';
import { type Netns, type Registry, randomHex } from './netns';
import { startEtcd, type EtcdServer, type StartEtcdOptions } from './etcd';
import { runPlugin, type PluginResult, type CniCommand } from './run-plugin';

export const UNDERLAY_GW = '192.168.77.1';
const ETCD_IP = '192.168.77.2';

export interface Host {
  index: number;
  ns: Netns;
  ip: string;
  /** Per-host dirs, as a real host has its own /run and /var/lib. */
  runRoot: string;
  dataDir: string;
  namesDir: string;
}

export interface Container {
  id: string;
  host: Host;
  ns: Netns;
  ip: string;
  result: { ips: { address: string }[]; interfaces: { name: string; mtu?: number }[] };
  /** The network config it was added with (DEL/CHECK send the same). */
  config: Record<string, unknown>;
}

export class Cluster {
  readonly hosts: Host[] = [];
  private constructor(
    private readonly reg: Registry,
    readonly underlay: Netns,
    readonly etcd: EtcdServer,
    /** A fresh etcd key prefix root for this suite's networks. */
    readonly prefix: string,
  ) {}

  static async create(reg: Registry, hosts: number, etcdOpts: Pick<StartEtcdOptions, 'tls' | 'auth'> = {}): Promise<Cluster> {
    const ul = await reg.netns('ul');
    const inUl = (argv: string[]): string[] => inNetns(ul.path, argv);
    await execOk(inUl(['ip', 'link', 'set', 'lo', 'up']));
    await execOk(inUl(['ip', 'link', 'add', 'ulbr', 'type', 'bridge']));
    await execOk(inUl(['ip', 'addr', 'add', `${UNDERLAY_GW}/24`, 'dev', 'ulbr']));
    await execOk(inUl(['ip', 'link', 'set', 'ulbr', 'up']));
    const etcdNs = await reg.netns('etcd');
    await plug(ul, etcdNs, 'ule', `${ETCD_IP}/24`);
    const etcd = await startEtcd(reg, { netns: etcdNs, listenIP: ETCD_IP, ...etcdOpts });
    const c = new Cluster(reg, ul, etcd, `/cni-test-${randomHex(4)}`);
    for (let i = 0; i < hosts; i++) await c.addHost();
    return c;
  }

  async addHost(): Promise<Host> {
    const index = this.hosts.length + 1;
    const ns = await this.reg.netns(`h${index}`);
    const ip = `192.168.77.${10 + index}`;
    await plug(this.underlay, ns, `ulh${index}`, `${ip}/24`);
    await execOk(inNetns(ns.path, ['ip', 'route', 'add', 'default', 'via', UNDERLAY_GW]));
    await execOk(inNetns(ns.path, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0']));
    const root = this.reg.tempDir();
    const h: Host = { index, ns, ip, runRoot: join(root, 'run'), dataDir: join(root, 'lib'), namesDir: join(root, 'dnsname') };
    for (const d of [h.runRoot, h.dataDir, h.namesDir]) mkdirSync(d, { recursive: true });
    this.reg.onCleanup(`stop the agents of host ${index}`, () => stopAgents(h));
    this.hosts.push(h);
    return h;
  }

  /** An overlay network config as host h runs it (its own runDir, dataDir and dnsname dir). */
  netConf(h: Host, net: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const e = this.etcd;
    // A closed port first: every client call fails over to the live endpoint.
    const endpoints = [`${e.endpoint.split(':')[0]}://${ETCD_IP}:2381`, e.endpoint];
    const security = { ...(e.tls ? { caFile: e.tls.caFile, certFile: e.tls.certFile, keyFile: e.tls.keyFile } : {}), ...(e.auth ? { username: e.auth.user, password: e.auth.password } : {}) };
    return {
      cniVersion: '1.1.0',
      name: net,
      type: 'overlay',
      network: '10.40.0.0/16',
      etcd: { endpoints, prefix: `${this.prefix}/${net}`, ...security },
      runDir: join(h.runRoot, net),
      dataDir: h.dataDir,
      leaseTTL: 10,
      names: { runDir: h.namesDir },
      ...extra,
    };
  }

  run(h: Host, command: CniCommand, config: unknown, c: { id?: string; netns?: string; ifname?: string; timeoutMs?: number } = {}): Promise<PluginResult> {
    return runPlugin({ plugin: 'overlay', command, host: h.ns, config, containerId: c.id, netns: c.netns, ifname: c.ifname ?? 'eth0', timeoutMs: c.timeoutMs });
  }

  /** ADD of a new container on h; throws with the plugin's output on failure. */
  async addContainer(h: Host, net: string, extra: Record<string, unknown> = {}): Promise<Container> {
    const ns = await this.reg.netns(`c${h.index}`);
    const id = `ctr-${randomHex(8)}`;
    const config = this.netConf(h, net, extra);
    const r = await this.run(h, 'ADD', config, { id, netns: ns.path });
    if (r.code !== 0) throw new Error(`ADD on host ${h.index} failed: ${r.stdout} ${r.stderr}`);
    const result = r.json;
    return { id, host: h, ns, ip: result.ips[0].address.split('/')[0], result, config };
  }

  async delContainer(c: Container): Promise<PluginResult> {
    return this.run(c.host, 'DEL', { ...c.config, prevResult: c.result }, { id: c.id, netns: c.ns.path });
  }
}

/** A veth from the underlay bridge into ns, named eth0 there, with an address. */
async function plug(ul: Netns, ns: Netns, ulName: string, cidr: string): Promise<void> {
  await execOk(inNetns(ul.path, ['ip', 'link', 'add', ulName, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.path]));
  await execOk(inNetns(ul.path, ['ip', 'link', 'set', ulName, 'master', 'ulbr', 'up']));
  await execOk(inNetns(ns.path, ['ip', 'link', 'set', 'lo', 'up']));
  await execOk(inNetns(ns.path, ['ip', 'addr', 'add', cidr, 'dev', 'eth0']));
  await execOk(inNetns(ns.path, ['ip', 'link', 'set', 'eth0', 'up']));
}

/** The pid in a network's agent.pid, if that process is alive. */
export function agentPid(h: Host, net: string): number | undefined {
  const f = join(h.runRoot, net, 'agent.pid');
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  return Number.isInteger(pid) && pid > 1 && !isZombie(pid) ? pid : undefined;
}

/** Stops one agent by pid: SIGTERM, then SIGKILL after 3 s. */
export async function stopAgent(h: Host, net: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = agentPid(h, net);
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  for (let i = 0; i < 60 && !isZombie(pid); i++) await new Promise((r) => setTimeout(r, 50));
  if (!isZombie(pid)) process.kill(pid, 'SIGKILL');
}

/** True when pid is gone or a zombie (dead, not yet reaped). */
function isZombie(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** Stops what the plugins started on host h: each network's agent, and dnsname's dnsmasq. */
async function stopAgents(h: Host): Promise<void> {
  if (existsSync(h.runRoot)) for (const net of readdirSync(h.runRoot)) await stopAgent(h, net);
  for (const pid of processesUnder(h.namesDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
}

/** Every live process whose command line mentions dir (agents and dnsmasq of a host). */
export function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(dir) && !isZombie(Number(e))) out.push(Number(e));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}
