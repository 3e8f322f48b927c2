// The benchmark scenarios. Each has several sides compared in the same run (our packagings, in-process
// and served, and the reference), prepared in separate sandbox host netns with identical configs,
// and an iterate() that performs one timed iteration for one side and returns
// {samples: {verb: ms}, failures, cpu?: {verb: {tree, svcOwn, svcChildren}}} (CPU in clock ticks:
// the caller's process tree, and a served side's service with the processes it reaped).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addList, delList, describe, invoke } from './cni.mjs';
import { inNetns, run, runOk } from './proc.mjs';
import { cpuTicks } from './service.mjs';

export const CNI_VERSION = '1.0.0'; // highest version the reference (plugins v1.1.1) supports
const PORT_MAPPINGS = [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }];

function hostLocal(dataDir, subnet) {
  return { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir };
}

function bridgeConf(side, bridge, subnet, extra = {}) {
  return { type: 'bridge', bridge, isGateway: true, ipam: hostLocal(side.dataDir, subnet), ...extra };
}

/** What every invocation of a side is given: its sandbox host, environment and service (served sides). */
function sideOpts(side, opts) {
  return { ...opts, host: side.host, env: side.env, service: side.service };
}

/**
 * A CPU mark: the bench's reaped children (getrusage RUSAGE_CHILDREN as /proc/self/stat shows it:
 * sides run one at a time, so between two marks that is exactly the side's callers: nsenter, the
 * plugin or stub, and everything they spawned) and the served side's service (its own CPU, and its
 * reaped children's: the ip/nft/nsenter it ran for the calls).
 */
function cpuMark(side) {
  return { tree: cpuTicks().children, svc: side.service?.cpu() };
}

function cpuDelta(a, b) {
  return {
    tree: b.tree - a.tree,
    ...(a.svc && b.svc ? { svcOwn: b.svc.own - a.svc.own, svcChildren: b.svc.children - a.svc.children } : {}),
  };
}

/** The ADD result must carry an address (bridge/macvlan); loopback only needs to succeed. */
function hasAddress(result) {
  return Array.isArray(result?.ips) && result.ips.length > 0;
}

/**
 * A network list run ADD then DEL against one container netns per side, like a runtime
 * creating and removing a pod. The container netns is reused (DEL removes what ADD made).
 */
function listScenario({ id, title, plugins, list, capabilityArgs, needsAddress = true, setup }) {
  return {
    id,
    title,
    plugins,
    verbs: ['ADD', 'DEL'],
    rssAndProcs: true,
    async setup(side, sb) {
      side.dataDir = sb.tempDir(`${id}-${side.key}`);
      side.ctr = await sb.netns(`c-${id}-${side.key}`);
      side.list = list(side);
      if (setup) await setup(side, sb);
    },
    async iterate(side, i, opts) {
      const att = { containerId: `bench-${id}-${side.key}-${i}`, netns: side.ctr, ifname: 'eth0', capabilityArgs };
      const c0 = cpuMark(side);
      const add = await addList(side.impl, side.list, att, sideOpts(side, opts));
      const c1 = cpuMark(side);
      let error = add.ok ? undefined : add.error;
      if (add.ok && needsAddress && !hasAddress(add.result)) error = `ADD result has no ips: ${JSON.stringify(add.result).slice(0, 300)}`;
      // DEL runs even after a failed ADD, as libcni's callers do.
      const del = await delList(side.impl, side.list, att, add.result, sideOpts(side, opts));
      const c2 = cpuMark(side);
      if (!error && !del.ok) error = del.error;
      return {
        samples: error ? {} : { ADD: add.ms, DEL: del.ms },
        cpu: error ? undefined : { ADD: cpuDelta(c0, c1), DEL: cpuDelta(c1, c2) },
        failures: error ? 1 : 0,
        error,
        steps: { ADD: add.steps, DEL: del.steps },
      };
    },
  };
}

export function scenarios({ parallel = 32, leases = 60_000 } = {}) {
  return [
    listScenario({
      id: 'loopback',
      title: 'loopback ADD/DEL',
      plugins: ['loopback'],
      needsAddress: false,
      list: () => ({ cniVersion: CNI_VERSION, name: 'bench-lo', plugins: [{ type: 'loopback' }] }),
    }),
    listScenario({
      id: 'bridge',
      title: 'bridge+host-local ADD/DEL',
      plugins: ['bridge', 'host-local'],
      list: (side) => ({ cniVersion: CNI_VERSION, name: 'bench-br', plugins: [bridgeConf(side, 'cnibench0', '10.77.1.0/24')] }),
    }),
    listScenario({
      id: 'bridge-masq',
      title: 'bridge+host-local, ipMasq ADD/DEL',
      plugins: ['bridge', 'host-local'],
      list: (side) => ({
        cniVersion: CNI_VERSION,
        name: 'bench-brmasq',
        plugins: [bridgeConf(side, 'cnibench1', '10.77.2.0/24', { ipMasq: true })],
      }),
    }),
    listScenario({
      id: 'macvlan',
      title: 'macvlan+host-local ADD/DEL',
      plugins: ['macvlan', 'host-local'],
      list: (side) => ({
        cniVersion: CNI_VERSION,
        name: 'bench-macvlan',
        plugins: [{ type: 'macvlan', master: 'benchm0', mode: 'bridge', ipam: hostLocal(side.dataDir, '10.77.3.0/24') }],
      }),
      // The master: one end of a veth pair in the sandbox host (never a real NIC; a veth
      // rather than a dummy link because not every kernel has the dummy module).
      async setup(side) {
        await runOk(inNetns(side.host, ['ip', 'link', 'add', 'benchm0', 'type', 'veth', 'peer', 'name', 'benchm0p']));
        await runOk(inNetns(side.host, ['ip', 'link', 'set', 'benchm0', 'up']));
        await runOk(inNetns(side.host, ['ip', 'link', 'set', 'benchm0p', 'up']));
      },
    }),
    listScenario({
      id: 'ptp',
      title: 'ptp+host-local, ipMasq ADD/DEL',
      plugins: ['ptp', 'host-local'],
      list: (side) => ({
        cniVersion: CNI_VERSION,
        name: 'bench-ptp',
        plugins: [{ type: 'ptp', ipMasq: true, ipam: hostLocal(side.dataDir, '10.77.7.0/24') }],
      }),
    }),
    listScenario({
      id: 'chain',
      title: 'chain bridge+host-local → portmap → firewall → tuning',
      plugins: ['bridge', 'host-local', 'portmap', 'firewall', 'tuning'],
      capabilityArgs: { portMappings: PORT_MAPPINGS },
      // nerdctl's default network shape (containerd/nerdctl docs/cni.md).
      list: (side) => ({
        cniVersion: CNI_VERSION,
        name: 'bench-chain',
        plugins: [
          bridgeConf(side, 'cnibench2', '10.77.4.0/24', { ipMasq: true, hairpinMode: true }),
          { type: 'portmap', capabilities: { portMappings: true } },
          { type: 'firewall' },
          { type: 'tuning', dataDir: join(side.dataDir, 'tuning') },
        ],
      }),
    }),
    overlayScenario(),
    parallelScenario({ id: 'parallel', n: parallel }),
    parallelScenario({ id: 'parallel-masq', n: parallel, ipMasq: true }),
    leasesScenario(leases),
    caScenario(),
  ];
}

/**
 * N parallel ADDs then N parallel DELs on one bridge network; wall time for each wave. With
 * ipMasq (id parallel-masq) only the DEL wave is timed: the ADDs prepare it (each DEL then has a
 * masquerade rule of its own to remove, as when a node drains).
 */
function parallelScenario({ id, n, ipMasq = false }) {
  const timeAdd = !ipMasq;
  return {
    id,
    title: ipMasq ? `${n} bridge+host-local ipMasq ADDs (untimed), then ${n} parallel DELs` : `${n} parallel bridge+host-local ADDs, then ${n} parallel DELs`,
    plugins: ['bridge', 'host-local'],
    verbs: timeAdd ? ['ADD', 'DEL'] : ['DEL'],
    wall: true,
    rssAndProcs: false,
    iterationsFactor: 1 / 6,
    async setup(side, sb) {
      side.dataDir = sb.tempDir(`${id}-${side.key}`);
      side.ctrs = await Promise.all(Array.from({ length: n }, (_, k) => sb.netns(`c-${id}-${side.key}-${k}`)));
      side.list = {
        cniVersion: CNI_VERSION,
        name: ipMasq ? 'bench-parmasq' : 'bench-par',
        plugins: [bridgeConf(side, ipMasq ? 'cnibench6' : 'cnibench3', ipMasq ? '10.77.8.0/24' : '10.77.5.0/24', ipMasq ? { ipMasq: true } : {})],
      };
      side.distinct = [];
    },
    async iterate(side, i, opts) {
      const atts = side.ctrs.map((netns, k) => ({ containerId: `bench-${id}-${side.key}-${i}-${k}`, netns, ifname: 'eth0' }));
      const o = sideOpts(side, opts);
      const c0 = cpuMark(side);
      let t0 = process.hrtime.bigint();
      const adds = await Promise.all(atts.map((a) => addList(side.impl, side.list, a, o)));
      const addMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const c1 = cpuMark(side);
      t0 = process.hrtime.bigint();
      const dels = await Promise.all(atts.map((a, k) => delList(side.impl, side.list, a, adds[k].result, o)));
      const delMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const c2 = cpuMark(side);
      const addrs = new Set(adds.filter((a) => a.ok).flatMap((a) => (a.result?.ips ?? []).map((x) => x.address)));
      const failed = adds.filter((a) => !a.ok || !hasAddress(a.result)).length + dels.filter((d) => !d.ok).length;
      side.distinct.push(addrs.size);
      const firstErr = adds.find((a) => !a.ok)?.error ?? dels.find((d) => !d.ok)?.error;
      return {
        samples: timeAdd ? { ADD: addMs, DEL: delMs } : { DEL: delMs },
        cpu: timeAdd ? { ADD: cpuDelta(c0, c1), DEL: cpuDelta(c1, c2) } : { DEL: cpuDelta(c1, c2) },
        failures: failed,
        error: firstErr,
        extra: { distinctAddresses: addrs.size, okAdds: adds.filter((a) => a.ok).length },
      };
    },
  };
}

/**
 * host-local alone (as a delegating plugin calls it) in a /16 whose dataDir already holds
 * `count` leases in the reference's format: `<dataDir>/<net>/<ip>` = `<id>\r\n<ifname>`, taken
 * from the start of the range, with last_reserved_ip.0 at the last one (as round-robin leaves it).
 */
function writeLeases(dir, net, count) {
  const d = join(dir, net);
  mkdirSync(d, { recursive: true });
  let last;
  for (let k = 0; k < count; k++) {
    const n = k + 2; // 10.78.0.1 is the gateway
    last = `10.78.${n >> 8}.${n & 255}`;
    writeFileSync(join(d, last), `bench-lease-${k}\r\neth0`, { mode: 0o600 });
  }
  if (last) writeFileSync(join(d, 'last_reserved_ip.0'), last, { mode: 0o600 });
}

function leasesScenario(big) {
  const id = 'host-local-leases';
  const sizes = [10, big];
  return {
    id,
    title: `host-local allocation in a /16 with ${sizes.join(' vs ')} existing leases`,
    plugins: ['host-local'],
    verbs: sizes.flatMap((s) => [`ADD ${s}`, `DEL ${s}`]),
    rssAndProcs: true,
    async setup(side, sb) {
      side.ctr = await sb.netns(`c-${id}-${side.key}`);
      side.dirs = {};
      for (const s of sizes) {
        side.dirs[s] = sb.tempDir(`${id}-${s}-${side.key}`);
        writeLeases(side.dirs[s], 'bench-hl', s);
      }
    },
    async iterate(side, i, opts) {
      const samples = {};
      let failures = 0;
      let error;
      const order = i % 2 ? [...sizes].reverse() : sizes;
      for (const s of order) {
        const conf = {
          cniVersion: CNI_VERSION,
          name: 'bench-hl',
          type: 'bridge',
          ipam: { type: 'host-local', ranges: [[{ subnet: '10.78.0.0/16' }]], dataDir: side.dirs[s] },
        };
        const o = { ...sideOpts(side, opts), containerId: `bench-hl-${side.key}-${s}-${i}`, netns: side.ctr, ifname: 'eth0' };
        const add = await invoke(side.impl, 'host-local', 'ADD', conf, o);
        const del = await invoke(side.impl, 'host-local', 'DEL', conf, o);
        const err = !add.ok ? describe(add) : !hasAddress(add.json) ? 'ADD result has no ips' : !del.ok ? describe(del) : undefined;
        if (err) {
          failures++;
          error ??= err;
        } else {
          samples[`ADD ${s}`] = add.ms;
          samples[`DEL ${s}`] = del.ms;
        }
      }
      return { samples, failures, error };
    },
  };
}

/**
 * Our bridge ADD/DEL with NODE_EXTRA_CA_CERTS set (runtimes pass their environment on, and Node
 * loads that bundle at startup) vs without. Both sides are ours; the reference is not involved.
 */
function caScenario() {
  const base = listScenario({
    id: 'bridge-ca',
    title: 'ours: bridge+host-local with NODE_EXTRA_CA_CERTS vs without',
    plugins: ['bridge', 'host-local'],
    list: (side) => ({ cniVersion: CNI_VERSION, name: 'bench-brca', plugins: [bridgeConf(side, 'cnibench4', '10.77.6.0/24')] }),
  });
  return { ...base, sidesKind: 'ca', rssAndProcs: false };
}

/**
 * ours: overlay ADD/DEL in each of our packagings beside bridge ADD/DEL with the same masquerade
 * (there is no reference overlay). Each overlay side's host has an underlay link to a real etcd
 * in a netns of its own (a served side also has its own service in that host); the warm-up ADD
 * starts the host's agent (served: the service starts it) and takes the lease, so the timed ADDs
 * are what a container start costs on a host that holds its subnet.
 */
function overlayScenario() {
  const base = listScenario({
    id: 'overlay',
    title: 'ours: overlay (VXLAN, etcd) ADD/DEL beside bridge+host-local with ipMasq',
    plugins: ['overlay', 'bridge', 'host-local'],
    list: (side) =>
      side.overlay
        ? {
            cniVersion: CNI_VERSION,
            name: 'bench-ovl',
            plugins: [{ type: 'overlay', network: '10.79.0.0/16', etcd: { endpoints: ['http://192.168.79.2:2379'], prefix: `/cni-bench-${side.key}` }, runDir: join(side.dataDir, 'run'), dataDir: side.dataDir, names: false }],
          }
        : { cniVersion: CNI_VERSION, name: 'bench-ovlbr', plugins: [bridgeConf(side, 'cnibench5', '10.77.7.0/24', { ipMasq: true, isDefaultGateway: true })] },
    async setup(side, sb) {
      if (!side.overlay) return;
      // One etcd per overlay side, in a netns of its own behind the side's host (same addresses:
      // the hosts are separate namespaces).
      const etcdNs = await sb.netns(`ovl-etcd-${side.key}`);
      await runOk(inNetns(side.host, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', etcdNs]));
      for (const [ns, ip] of [[side.host, '192.168.79.1'], [etcdNs, '192.168.79.2']]) {
        await runOk(inNetns(ns, ['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']));
        await runOk(inNetns(ns, ['ip', 'link', 'set', 'eth0', 'up']));
        await runOk(inNetns(ns, ['ip', 'link', 'set', 'lo', 'up']));
      }
      await runOk(inNetns(side.host, ['ip', 'route', 'add', 'default', 'via', '192.168.79.2']));
      const dir = sb.tempDir(`ovl-etcd-${side.key}`);
      const url = 'http://192.168.79.2:2379';
      const etcd = spawn('nsenter', [`--net=${etcdNs}`, '--', 'etcd', '--name', 'bench', '--data-dir', join(dir, 'data'), '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', 'http://192.168.79.2:2380', '--initial-advertise-peer-urls', 'http://192.168.79.2:2380', '--initial-cluster', 'bench=http://192.168.79.2:2380'], { stdio: 'ignore' });
      const runDir = join(side.dataDir, 'run');
      sb.onCleanup(async () => {
        // The agent the first ADD started, then etcd: both by pid.
        try {
          process.kill(Number(readFileSync(join(runDir, 'agent.pid'), 'utf8')), 'SIGTERM');
        } catch {
          /* not started */
        }
        etcd.kill('SIGTERM');
        await new Promise((r) => (etcd.exitCode === null ? etcd.once('exit', r) : r()));
      });
      for (let i = 0; i < 100; i++) {
        if ((await run(inNetns(etcdNs, ['etcdctl', `--endpoints=${url}`, 'endpoint', 'health']))).code === 0) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('etcd did not start');
    },
  });
  // After each ADD the host's agent must be running (it renews the lease and keeps the other
  // hosts' routes): lib/daemon kills an agent whose cmdline its spec does not recognize, and the
  // ADD still succeeds on the lease the agent left, so only this check sees it.
  const iterate = async (side, i, opts) => {
    const r = await base.iterate(side, i, opts);
    if (!side.overlay) return r;
    let alive = false;
    try {
      const pid = Number(readFileSync(join(side.dataDir, 'run', 'agent.pid'), 'utf8'));
      alive = pid > 1 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('agent');
    } catch {
      /* no pid file, or that process is gone */
    }
    return { ...r, extra: { agentAlive: alive } };
  };
  return { ...base, iterate, sidesKind: 'overlay' };
}
