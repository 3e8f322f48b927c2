/**
 * The agent's data path in the host's netns: the VXLAN device, and per remote host the three
 * entries flannel programs — a permanent neighbour (the remote VTEP address → its MAC), an FDB
 * entry (that MAC → the remote public IP) and a route to the remote subnet via the VTEP
 * address, onlink. Always `replace` (an exclusive create that meets an old entry loses the peer,
 * moby#53663), in the order neighbour → FDB → route; removals in the reverse order.
 *
 * Processes: one wave of changes is three batches (ip, bridge, ip), whatever the number of peers.
 */
import { run } from '../../lib/exec/run';
import { ipBatch, ipJson } from '../../lib/iproute/ip';
import type { IpAddr } from '../../lib/iproute/json-types';
import { formatIP } from '../../lib/ip/cidr';
import type { Peer } from './registry';

export interface Underlay {
  dev: string;
  publicIP: string;
  mtu: number;
}

/** The underlay: the given interface, the one holding publicIP, or the default route's. */
export async function findUnderlay(dev: string | undefined, publicIP: string | undefined): Promise<Underlay> {
  let name = dev;
  if (!name && publicIP) {
    const all = await ipJson<IpAddr>(['addr', 'show']);
    name = all.find((l) => l.addr_info.some((a) => a.local === publicIP))?.ifname;
    if (!name) throw new Error(`no interface holds publicIP ${publicIP}`);
  }
  if (!name) {
    const routes = await ipJson<{ dev?: string }>(['route', 'show', 'default']);
    name = routes.find((r) => r.dev)?.dev;
    if (!name) throw new Error('no default route to take the underlay interface from: set underlayInterface or publicIP');
  }
  const [link] = await ipJson<IpAddr>(['addr', 'show', 'dev', name], { missingOk: true });
  if (!link) throw new Error(`underlay interface ${name} not found`);
  const ip = publicIP ?? link.addr_info.find((a) => a.family === 'inet' && a.scope === 'global')?.local;
  if (!ip) throw new Error(`underlay interface ${name} has no global IPv4 address: set publicIP`);
  return { dev: name, publicIP: ip, mtu: link.mtu ?? 1500 };
}

export interface VxlanSpec {
  name: string;
  vni: number;
  port: number;
  local: string;
  dev: string;
  mtu: number;
  /** The MAC to create it with (kept across restarts so peers' entries stay right). */
  mac: string;
  /** "10.40.3.0/32": the subnet's .0, as flannel does. */
  address: string;
  txChecksumOffload: boolean;
}

interface VxlanLink extends IpAddr {
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; link?: string; port?: number; learning?: boolean } };
}

/** The device as the spec wants it: kept when its identity matches, else re-created. Returns its MAC. */
export async function ensureVxlan(s: VxlanSpec, log: (m: string) => void): Promise<string> {
  const [have] = await ipJson<VxlanLink>(['-details', 'addr', 'show', 'dev', s.name], { missingOk: true });
  const d = have?.linkinfo?.info_data;
  const same = have?.linkinfo?.info_kind === 'vxlan' && d?.id === s.vni && d.port === s.port && d.local === s.local && d.link === s.dev && d.learning === false;
  const lines: string[] = [];
  if (have && !same) {
    lines.push(`link del dev ${s.name}`);
    log(`vxlan ${s.name}: re-creating (was id ${d?.id} port ${d?.port} local ${d?.local} dev ${d?.link})`);
  }
  if (!have || !same) {
    lines.push(`link add name ${s.name} address ${s.mac} mtu ${s.mtu} type vxlan id ${s.vni} dstport ${s.port} local ${s.local} dev ${s.dev} nolearning`);
    log(`vxlan ${s.name}: created (vni ${s.vni}, port ${s.port}, local ${s.local}, dev ${s.dev}, mtu ${s.mtu}, mac ${s.mac})`);
  }
  const addrs = same ? have!.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`) : [];
  if (addrs.length !== 1 || addrs[0] !== s.address) {
    if (addrs.length) lines.push(`addr flush dev ${s.name}`);
    lines.push(`addr add ${s.address} dev ${s.name}`);
  }
  lines.push(`link set dev ${s.name} mtu ${s.mtu} up`, `addr show dev ${s.name}`);
  const out = await ipBatch(lines);
  const mac = (out.shows.at(-1) as IpAddr[])[0]!.address!;
  if (!s.txChecksumOffload) {
    // flannel#1279, kubernetes#88986: some kernels and NICs corrupt the checksums of
    // encapsulated packets; computing them in software avoids it.
    const r = await run(['ethtool', '-K', s.name, 'tx-checksum-ip-generic', 'off'], { nothrow: true });
    if (r.exitCode !== 0) log(`vxlan ${s.name}: could not turn tx checksum offload off: ${r.stderr.trim() || 'ethtool failed'}`);
  }
  return mac;
}

const vtepOf = (p: Peer): string => formatIP(p.subnet.ip);
const dstOf = (p: Peer): string => `${formatIP(p.subnet.ip)}/${p.subnet.prefix}`;

export interface PeerChanges {
  /** New or changed peers: replaced. */
  upsert: Peer[];
  /** Peers gone: removed. */
  remove: Peer[];
  /** FDB entries no longer wanted although their peer stays (its MAC or IP changed). */
  staleFdb?: { mac: string; dst: string }[];
}

/** The three batches of one wave, pure (unit-tested line by line). */
export function peerBatches(vx: string, c: PeerChanges): Wave {
  const stale = [...c.remove.map((p) => ({ mac: p.vtepMac, dst: p.publicIP })), ...(c.staleFdb ?? [])];
  return {
    ip1: [...c.remove.map((p) => `route del ${dstOf(p)} dev ${vx}`), ...c.upsert.map((p) => `neigh replace ${vtepOf(p)} lladdr ${p.vtepMac} dev ${vx} nud permanent`)],
    fdb: [...stale.map((f) => `fdb del ${f.mac} dev ${vx} dst ${f.dst} self`), ...c.upsert.map((p) => `fdb replace ${p.vtepMac} dev ${vx} dst ${p.publicIP} self permanent`)],
    ip2: [...c.remove.map((p) => `neigh del ${vtepOf(p)} dev ${vx}`), ...c.upsert.map((p) => `route replace ${dstOf(p)} via ${vtepOf(p)} dev ${vx} onlink`)],
  };
}

/** Deleting what is already gone is fine; anything else is reported. */
const gone = /No such file or directory|Cannot find device|No such process|not found/i;

async function bridgeBatch(lines: string[]): Promise<string[]> {
  if (lines.length === 0) return [];
  const r = await run(['bridge', '-force', '-batch', '-'], { input: lines.join('\n') + '\n', nothrow: true });
  if (r.exitCode === 0) return [];
  return r.stderr.split('\n').filter((l) => l.trim() && !/^Command failed/.test(l) && !gone.test(l));
}

type Wave = { ip1: string[]; fdb: string[]; ip2: string[] };

/** Runs a wave's three batches in order; every line runs, and real failures are reported together. */
async function runWave(w: Wave, what: string): Promise<void> {
  const problems: string[] = [];
  const ip = async (lines: string[]): Promise<void> => {
    const out = await ipBatch(lines, { force: true });
    for (const e of out.errors) if (!gone.test(e.message)) problems.push(`${lines[e.line]}: ${e.message}`);
  };
  await ip(w.ip1);
  problems.push(...(await bridgeBatch(w.fdb)));
  await ip(w.ip2);
  if (problems.length) throw new Error(`${what}: ${problems.join('; ')}`);
}

/** Applies one wave: neighbour → FDB → route for upserts, the reverse for removals. */
export async function applyPeers(vx: string, c: PeerChanges): Promise<void> {
  await runWave(peerBatches(vx, c), `programming peers on ${vx}`);
}

interface KernelNeigh { dst: string; lladdr?: string; state?: string[] }
interface KernelFdb { mac: string; dst?: string; flags?: string[]; state?: string }
interface KernelRoute { dst: string; gateway?: string }

/**
 * Makes the kernel hold exactly `desired`: reads the device's neighbours, FDB and routes,
 * removes every entry that belongs to no desired peer (hosts the registry no longer has,
 * entries of an old MAC or address), and replaces every desired one. Returns what it removed.
 */
export async function syncPeers(vx: string, vtepAddress: string, desired: Peer[]): Promise<{ removed: string[] }> {
  const [neighs, routes, fdbOut] = await Promise.all([
    ipJson<KernelNeigh>(['neigh', 'show', 'dev', vx], { missingOk: true }),
    ipJson<KernelRoute>(['route', 'show', 'dev', vx], { missingOk: true }),
    run(['bridge', '-json', 'fdb', 'show', 'dev', vx], { nothrow: true }),
  ]);
  const fdbs: KernelFdb[] = fdbOut.exitCode === 0 && fdbOut.stdout.trim() ? (JSON.parse(fdbOut.stdout) as KernelFdb[]) : [];
  const wantNeigh = new Set(desired.map((p) => `${vtepOf(p)} ${p.vtepMac}`));
  const wantFdb = new Set(desired.map((p) => `${p.vtepMac} ${p.publicIP}`));
  const wantRoute = new Set(desired.map((p) => `${dstOf(p)} ${vtepOf(p)}`));
  const removed: string[] = [];
  const ip1: string[] = [];
  const fdb: string[] = [];
  const ip2: string[] = [];
  for (const r of routes) {
    // Only routes through a VTEP address (ours look like that); the device's own is kept.
    if (!r.gateway || wantRoute.has(`${r.dst} ${r.gateway}`)) continue;
    ip1.push(`route del ${r.dst} via ${r.gateway} dev ${vx}`);
    removed.push(`route ${r.dst}`);
  }
  for (const f of fdbs) {
    if (!f.dst || f.state !== 'permanent' || wantFdb.has(`${f.mac} ${f.dst}`)) continue;
    fdb.push(`fdb del ${f.mac} dev ${vx} dst ${f.dst} self`);
    removed.push(`fdb ${f.mac} ${f.dst}`);
  }
  for (const n of neighs) {
    if (n.dst === vtepAddress || !n.state?.includes('PERMANENT') || wantNeigh.has(`${n.dst} ${n.lladdr}`)) continue;
    ip2.push(`neigh del ${n.dst} dev ${vx}`);
    removed.push(`neigh ${n.dst}`);
  }
  const b = peerBatches(vx, { upsert: desired, remove: [] });
  await runWave({ ip1: [...ip1, ...b.ip1], fdb: [...fdb, ...b.fdb], ip2: [...ip2, ...b.ip2] }, `syncing peers on ${vx}`);
  return { removed };
}
