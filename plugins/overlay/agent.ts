/**
 * `overlay agent --config FILE`: the per-network, per-host agent. ADD starts it (lib/daemon) when
 * none runs; an operator may run it under systemd instead. It:
 *  1. takes this host's subnet lease in etcd (flannel's layout, registry.ts): its own entry
 *     (same PublicIP) first, then the subnet it remembers, then a random free one; each key
 *     bound to an etcd lease with a TTL and created by a transaction that fails when the key
 *     exists, retried with another subnet when another host wins;
 *  2. creates the VXLAN device and writes state.json (what ADD allocates from) and subnet.env;
 *  3. lists the registry, makes the kernel hold exactly the listed peers (removing entries of
 *     hosts the registry no longer has), then watches from the listed revision + 1 and programs
 *     each change as it comes; after a compaction or a lost connection it lists and diffs again;
 *  4. renews the lease every TTL/3; a lease that is gone is taken again (same subnet if free);
 *  5. with dnsname, shares container names across hosts (names.ts).
 * etcd errors back off (0.5 s doubling to 15 s) and never touch the data path; SIGTERM ends it
 * and leaves the data path as it is. One log line per change.
 */
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EtcdClient, type KeyValue, type Watch, type WatchEvent } from '../../lib/etcd/client';
import { logLine } from '../../lib/daemon/daemon';
import { randomMac } from '../../lib/bridge/attach';
import { type Cidr, formatIP, nextIP, parseCidr } from '../../lib/ip/cidr';
import type { NetConf } from '../../lib/skel/dispatch';
import { agentConfig, loadNetConf, type OverlayConf } from './config';
import { applyPeers, ensureVxlan, findUnderlay, syncPeers, type Underlay } from './kernel';
import {
  configConflict,
  configKey,
  leaseValue,
  namesPrefix,
  networkConfig,
  parsePeer,
  pickSubnet,
  subnetKey,
  subnetsPrefix,
  takenKey,
  type NetworkConfig,
  type Peer,
} from './registry';
import { type HostState, type Health, readState, runPaths, subnetEnv, writeAtomic, type RunPaths } from './state';
import { NameSync } from './names';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Reads a config file: a network config, or a conflist whose overlay plugin is taken. */
export function readAgentConfig(path: string): NetConf {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as NetConf & { plugins?: NetConf[] };
  if (!Array.isArray(raw.plugins)) return raw;
  const p = raw.plugins.find((x) => x.type === 'overlay');
  if (!p) throw new Error(`${path}: no plugin of type overlay in the list`);
  return { ...p, name: raw.name, cniVersion: raw.cniVersion };
}

interface Lease {
  id: string;
  key: string;
  subnet: Cidr;
}

/** Exponential backoff with jitter; reset after a success. */
class Backoff {
  private ms = 0;
  reset(): void {
    this.ms = 0;
  }
  async wait(): Promise<void> {
    this.ms = Math.min(this.ms ? this.ms * 2 : 500, 15_000);
    await sleep(this.ms / 2 + Math.random() * (this.ms / 2));
  }
}

export class Agent {
  private readonly paths: RunPaths;
  private readonly etcd: EtcdClient;
  private underlay?: Underlay;
  private mtu = 0;
  private lease?: Lease;
  private state?: HostState;
  private peers = new Map<string, Peer>();
  private watch?: Watch;
  private health: Health = { etcd: 'never', since: new Date().toISOString() };
  private stopping = false;
  private kernel: Promise<void> = Promise.resolve();
  private readonly names?: NameSync;

  constructor(
    private readonly conf: OverlayConf,
    private readonly log: (m: string) => void = logLine,
  ) {
    this.paths = runPaths(conf.runDir);
    const e = conf.etcd;
    this.etcd = new EtcdClient({ endpoints: e.endpoints, caFile: e.caFile, certFile: e.certFile, keyFile: e.keyFile, username: e.username, password: e.password });
    if (conf.namesRunDir) this.names = new NameSync(conf, this.etcd, log);
  }

  stop(): void {
    this.stopping = true;
    this.watch?.cancel();
    this.names?.stop();
    this.etcd.close();
  }

  private setHealth(ok: boolean, error?: unknown): void {
    const etcd: Health['etcd'] = ok ? 'ok' : this.health.etcd === 'never' ? 'never' : 'lost';
    const msg = error instanceof Error ? error.message : error === undefined ? undefined : String(error);
    if (etcd === this.health.etcd && msg === this.health.error) return;
    if (etcd !== this.health.etcd) this.log(ok ? 'etcd: reachable' : `etcd: unreachable: ${msg}`);
    this.health = { etcd, since: etcd === this.health.etcd ? this.health.since : new Date().toISOString(), ...(msg ? { error: msg } : {}) };
    writeAtomic(this.paths.health, JSON.stringify(this.health) + '\n');
  }

  /** Runs until stop(). */
  async run(): Promise<void> {
    mkdirSync(this.paths.dir, { recursive: true, mode: 0o755 });
    this.setHealth(false);
    const backoff = new Backoff();
    void this.keepAliveLoop();
    while (!this.stopping) {
      try {
        this.underlay ??= await findUnderlay(this.conf.underlayInterface, this.conf.publicIP);
        this.mtu = this.conf.mtu || this.underlay.mtu - 50;
        if (!this.lease) await this.acquire();
        const { kvs, revision } = await this.etcd.list(`${this.conf.etcd.prefix}/`);
        this.setHealth(true);
        if (!kvs.some((kv) => kv.key === this.lease!.key)) {
          this.log(`lease: ${this.lease!.key} is gone from the registry; taking a subnet again`);
          this.lease = undefined;
          continue;
        }
        await this.resync(kvs);
        backoff.reset();
        const end = await this.watchFrom(revision + 1);
        if (this.stopping) break;
        if (end.reason === 'compacted') this.log(`watch: revision ${revision + 1} was compacted (now ${end.compactRevision}); listing again`);
        else if (end.reason === 'error') throw end.error;
      } catch (e) {
        if (this.stopping) break;
        this.setHealth(false, e);
        await backoff.wait();
      }
    }
  }

  /** The registry's network config: created when missing; a different one is an error. */
  private async ensureNetworkConfig(): Promise<void> {
    const want = networkConfig(this.conf);
    const key = configKey(this.conf.etcd.prefix);
    const have = await this.etcd.get(key);
    if (!have) {
      if (await this.etcd.createIfAbsent(key, JSON.stringify(want))) this.log(`registry: wrote ${key} ${JSON.stringify(want)}`);
      return this.ensureNetworkConfig();
    }
    let parsed: NetworkConfig;
    try {
      parsed = JSON.parse(have.value) as NetworkConfig;
    } catch {
      throw new Error(`${key} is not JSON`);
    }
    const conflict = configConflict(parsed, want);
    if (conflict) throw new Error(conflict);
  }

  /** Takes this host's subnet (see the order above) and sets up the device and state files. */
  private async acquire(): Promise<void> {
    await this.ensureNetworkConfig();
    const u = this.underlay!;
    const prev = this.state ?? readState(this.paths);
    const mac = prev?.vtepMac && prev.vxlan === this.conf.vxlan ? prev.vtepMac : randomMac();
    const value = leaseValue(u.publicIP, this.conf.vni, mac);
    const { kvs } = await this.etcd.list(subnetsPrefix(this.conf.etcd.prefix));
    const grant = await this.etcd.grantLease(this.conf.leaseTTL);
    let lease: Lease | undefined;
    // 1. Our own entry (same PublicIP): take it over under the new lease, unless it changed meanwhile.
    for (const kv of kvs) {
      const { peer } = parsePeer(kv.key, kv.value);
      if (peer?.publicIP !== u.publicIP || peer.subnet.prefix !== this.conf.subnetLen) continue;
      if (await this.etcd.putIfUnchanged(kv.key, value, kv.modRevision, grant.id)) {
        lease = { id: grant.id, key: kv.key, subnet: peer.subnet };
        this.log(`lease: reclaimed ${kv.key} (same PublicIP ${u.publicIP}), lease ${grant.id} TTL ${grant.ttl}s`);
        break;
      }
    }
    // 2. The subnet we remember, 3. a random free one; another host may win each race.
    const taken = new Set(kvs.map((kv) => kv.key.slice(kv.key.lastIndexOf('/') + 1)));
    let remembered = prev && prev.network === networkConfig(this.conf).Network ? parseCidr(prev.subnet) : undefined;
    for (let i = 0; !lease && i < 32; i++) {
      const s = pickSubnet(this.conf, taken, remembered);
      if (!s) {
        await this.etcd.revokeLease(grant.id);
        throw new Error(`no free subnet of /${this.conf.subnetLen} left in ${networkConfig(this.conf).Network}`);
      }
      const key = subnetKey(this.conf.etcd.prefix, s);
      if (await this.etcd.createIfAbsent(key, value, grant.id)) {
        lease = { id: grant.id, key, subnet: s };
        this.log(`lease: acquired ${key}${remembered && s === remembered ? ' (remembered)' : ''}, lease ${grant.id} TTL ${grant.ttl}s`);
      } else {
        this.log(`lease: ${key} was taken by another host first; trying another`);
        taken.add(takenKey(s));
      }
      remembered = undefined;
    }
    if (!lease) throw new Error('could not win a subnet after 32 tries');
    await this.setupDevice(lease, mac);
    this.lease = lease;
    this.names?.setLease(lease.id, lease.key);
  }

  private async setupDevice(lease: Lease, mac: string): Promise<void> {
    const u = this.underlay!;
    const vtepAddress = formatIP(lease.subnet.ip);
    const gotMac = await ensureVxlan(
      { name: this.conf.vxlan, vni: this.conf.vni, port: this.conf.port, local: u.publicIP, dev: u.dev, mtu: this.mtu, mac, address: `${vtepAddress}/32`, txChecksumOffload: this.conf.txChecksumOffload },
      this.log,
    );
    const state: HostState = {
      network: networkConfig(this.conf).Network,
      subnet: `${vtepAddress}/${lease.subnet.prefix}`,
      gateway: formatIP(nextIP(lease.subnet.ip)),
      vtepAddress,
      mtu: this.mtu,
      vni: this.conf.vni,
      port: this.conf.port,
      vxlan: this.conf.vxlan,
      vtepMac: gotMac,
      publicIP: u.publicIP,
      underlay: u.dev,
      key: lease.key,
      leaseId: lease.id,
    };
    writeAtomic(this.paths.subnetEnv, subnetEnv(state, this.conf.ipMasq));
    writeAtomic(this.paths.state, JSON.stringify(state, null, 2) + '\n');
    this.state = state;
  }

  /** The peers a listing names (every subnet key but ours). */
  private peersOf(kvs: KeyValue[]): Map<string, Peer> {
    const out = new Map<string, Peer>();
    for (const kv of kvs) {
      if (!kv.key.startsWith(subnetsPrefix(this.conf.etcd.prefix)) || kv.key === this.lease?.key) continue;
      const { peer, problem } = parsePeer(kv.key, kv.value);
      if (peer) out.set(kv.key, peer);
      else this.log(`registry: ignoring ${problem}`);
    }
    return out;
  }

  /** After a (re)list: the kernel is made to hold exactly the listed peers. */
  private async resync(kvs: KeyValue[]): Promise<void> {
    const desired = this.peersOf(kvs);
    await this.queue(async () => {
      const { removed } = await syncPeers(this.conf.vxlan, this.state!.vtepAddress, [...desired.values()]);
      for (const r of removed) this.log(`sync: removed stale ${r}`);
      for (const [k, p] of desired) {
        const old = this.peers.get(k);
        if (!old || old.vtepMac !== p.vtepMac || old.publicIP !== p.publicIP) this.log(`peer: ${describe(p)} (sync)`);
      }
      for (const [k, p] of this.peers) if (!desired.has(k)) this.log(`peer: removed ${formatIP(p.subnet.ip)}/${p.subnet.prefix} (sync)`);
      this.peers = desired;
    });
    this.names?.resync(kvs);
  }

  /** Kernel changes run one at a time, in the order they were asked for. */
  private queue(fn: () => Promise<void>): Promise<void> {
    const next = this.kernel.then(fn);
    this.kernel = next.catch(() => undefined);
    return next;
  }

  private async watchFrom(revision: number): Promise<{ reason: 'compacted'; compactRevision: number } | { reason: 'error'; error: Error } | { reason: 'cancelled' }> {
    const w = this.etcd.watch(`${this.conf.etcd.prefix}/`, revision, (evs) => this.onEvents(evs));
    this.watch = w;
    const end = await w.ended;
    this.watch = undefined;
    await this.kernel;
    return end;
  }

  private onEvents(evs: WatchEvent[]): void {
    const upsert: Peer[] = [];
    const remove: Peer[] = [];
    const staleFdb: { mac: string; dst: string }[] = [];
    const sp = subnetsPrefix(this.conf.etcd.prefix);
    for (const ev of evs) {
      const key = ev.kv.key;
      if (key.startsWith(namesPrefix(this.conf.etcd.prefix))) {
        this.names?.onEvent(ev);
        continue;
      }
      if (!key.startsWith(sp)) {
        if (key === configKey(this.conf.etcd.prefix)) this.log(`registry: ${key} changed (${ev.type}); hosts keep the config they started with`);
        continue;
      }
      if (key === this.lease?.key) {
        if (ev.type === 'DELETE') {
          this.log(`lease: ${key} was deleted (lease revoked or expired); taking a subnet again`);
          this.lease = undefined;
          this.watch?.cancel();
        }
        continue;
      }
      const old = this.peers.get(key);
      if (ev.type === 'DELETE') {
        if (!old) continue;
        this.peers.delete(key);
        remove.push(old);
        this.log(`peer: removed ${formatIP(old.subnet.ip)}/${old.subnet.prefix} (${old.publicIP})`);
        continue;
      }
      const { peer, problem } = parsePeer(key, ev.kv.value);
      if (!peer) {
        this.log(`registry: ignoring ${problem}`);
        continue;
      }
      if (old && old.vtepMac === peer.vtepMac && old.publicIP === peer.publicIP) continue; // a lease renewal
      if (old) staleFdb.push({ mac: old.vtepMac, dst: old.publicIP });
      this.peers.set(key, peer);
      upsert.push(peer);
      this.log(`peer: ${describe(peer)}${old ? ` (was ${old.vtepMac} at ${old.publicIP})` : ''}`);
    }
    if (upsert.length + remove.length === 0) return;
    void this.queue(() => applyPeers(this.conf.vxlan, { upsert, remove, staleFdb })).catch((e: Error) => {
      // The kernel refused something: list and sync again rather than guess.
      this.log(`kernel: ${e.message}; resyncing`);
      this.watch?.cancel();
    });
  }

  private async keepAliveLoop(): Promise<void> {
    while (!this.stopping) {
      await sleep(Math.max(1000, (this.conf.leaseTTL * 1000) / 3));
      const lease = this.lease;
      if (!lease || this.stopping) continue;
      try {
        const ttl = await this.etcd.keepAlive(lease.id);
        this.setHealth(true);
        if (ttl <= 0 && this.lease === lease) {
          this.log(`lease: ${lease.id} for ${lease.key} has expired; taking a subnet again`);
          this.lease = undefined;
          this.watch?.cancel();
        }
        await this.names?.publishIfChanged();
      } catch (e) {
        if (this.stopping) continue;
        this.setHealth(false, e);
        // A watch does not notice a silent partition for minutes; a failed renewal does. End
        // the watch so the main loop lists again (and backs off while etcd stays away).
        this.watch?.cancel();
      }
    }
  }
}

function describe(p: Peer): string {
  return `${formatIP(p.subnet.ip)}/${p.subnet.prefix} via ${p.publicIP} mac ${p.vtepMac}`;
}

/** The agent's entry point: runs until SIGTERM/SIGINT, which leave the data path in place. */
export async function agentMain(argv: string[]): Promise<void> {
  const i = argv.indexOf('--config');
  const path = i >= 0 ? argv[i + 1] : undefined;
  if (!path) {
    process.stderr.write('usage: overlay agent --config FILE\n');
    process.exit(2);
  }
  let conf: OverlayConf;
  try {
    conf = loadNetConf({ conf: readAgentConfig(path) });
  } catch (e) {
    process.stderr.write(`overlay agent: ${path}: ${(e as Error).message}${(e as { details?: string }).details ? `: ${(e as { details: string }).details}` : ''}\n`);
    process.exit(2);
  }
  // The files ADD looks at: our pid (also when an operator started us, not lib/daemon), and
  // the config we run with (so ADD restarts us only when its config differs).
  const paths = runPaths(conf.runDir);
  mkdirSync(paths.dir, { recursive: true, mode: 0o755 });
  writeAtomic(join(conf.runDir, 'agent.pid'), `${process.pid}\n`);
  writeAtomic(paths.config, JSON.stringify(agentConfig(conf.raw), null, 2) + '\n', 0o600);
  const agent = new Agent(conf);
  const stop = (sig: string): void => {
    logLine(`agent: ${sig}: stopping; the data path stays as it is`);
    agent.stop();
    // Give the log line and any in-flight kernel batch a moment, then go.
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Node's default for SIGHUP is to exit; an agent keeps running (a terminal closing, a reload).
  process.on('SIGHUP', () => logLine('agent: SIGHUP ignored'));
  logLine(`agent: starting for network ${conf.name} (pid ${process.pid}, etcd ${conf.etcd.endpoints.join(',')}, prefix ${conf.etcd.prefix})`);
  await agent.run();
}
