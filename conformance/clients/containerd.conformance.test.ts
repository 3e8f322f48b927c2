// containerd 1.6 (Debian) with `ctr run --cni`, on our plugins: the scenario of scenario.ts.
// A private containerd (root, state, sockets under a temp dir; cri disabled) runs inside a
// RuntimeSandbox. ctr 1.6 cannot be told where CNI lives: it loads the first conflist in
// /etc/cni/net.d and runs plugins from CNI_PATH=/opt/cni/bin:/usr/lib/cni (Debian's build), so the
// sandbox's private mount namespace binds our conf dir and dist/bin there (and hides /usr/lib/cni).
// What ctr sends (see /work/shared/clients/traces/ctr-1.6.20.jsonl): no VERSION, cniVersion as in
// the conflist, CNI_CONTAINERID <namespace>-<id>, CNI_NETNS /proc/<pid>/ns/net on ADD and an EMPTY
// CNI_NETNS on DEL (after the task is gone), the cached result as prevResult. Containers use
// `--rootfs <busybox dir>`, so no image or snapshotter is involved.
import { writeFileSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeContainerdConfig } from '../helpers/containerd-config';
import { ensureDebs } from '../helpers/debian';
import { within, type ExecResult } from '../helpers/exec';
import { hostSnapshot } from '../helpers/host-snapshot';
import { randomHex, uniqueBridgeName, uniqueSubnet24 } from '../helpers/netns';
import { describeIfRoot, IMPL, PLUGIN_DIR } from '../helpers/plugin-dir';
import { busyboxRootfs, RuntimeSandbox, type Background } from '../helpers/runtime-sandbox';
import { conflist, CONTAINERS, defineScenario, HOST_PORT, UPLINK_ADDR, type Ctr, type NetSpec, type ScenarioCtx } from './scenario';

const DEBS = ['containerd', 'runc', 'busybox-static', 'iptables', 'nftables'];

let ctx: ScenarioCtx | undefined;
let sandbox: RuntimeSandbox | undefined;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describeIfRoot(`containerd 1.6 (ctr run --cni) on ${IMPL === 'ours' ? 'our' : 'the reference'} plugins`, () => {
  beforeAll(async () => {
    await ensureDebs(DEBS);
    const before = await hostSnapshot();
    const sb = await RuntimeSandbox.create('containerd', PLUGIN_DIR);
    sandbox = sb;
    const dataDir = sb.subdir('leases');
    const sock = join(sb.dir, 'containerd.sock');
    const config = writeContainerdConfig(sb, sock, { cri: false });
    const daemon = sb.spawn(['containerd', '--config', config]);
    const ns = `cnits${randomHex(3)}`;
    const ctr = (args: string[], timeoutMs = 30_000): Promise<ExecResult> => sb.run(['ctr', '--address', sock, '-n', ns, ...args], { timeoutMs });
    for (let i = 0; ; i++) {
      if ((await ctr(['version'])).code === 0) break;
      if (daemon.child.exitCode !== null || i > 100) throw new Error(`containerd did not start:\n${(await daemon.done).stderr}`);
      await sleep(100);
    }

    await sb.addHostAddress(UPLINK_ADDR);
    const rootfs = sb.subdir('rootfs');
    await busyboxRootfs(rootfs);

    const tag = randomHex(3);
    const mk = (x: string): NetSpec => {
      const s = uniqueSubnet24();
      return { name: `cnits-${tag}-${x}`, bridge: uniqueBridgeName(), prefix: s.prefix, gateway: s.gateway };
    };
    const netA = mk('a');
    const netB = mk('b');
    // ctr puts each container's cgroup under /<namespace>, which runc leaves behind.
    const base: Omit<ScenarioCtx, 'cid' | 'exec' | 'removeAll'> = { sb, before, netA, netB, dataDir, daemons: ['containerd'], cgroupParent: ns };
    const cid = Object.fromEntries(CONTAINERS.map((c) => [c, `${ns}-${c}`])) as Record<Ctr, string>;

    // Can containerd run a container here at all? (cgroups, OCI runtime: not our plugins.)
    const probe = await ctr(['run', '--rm', '--null-io', '--rootfs', rootfs, 'probe', '/bin/true']);
    if (probe.code !== 0) {
      ctx = { ...base, blocked: `ctr run without --cni fails: ${probe.stderr.trim()}`, cid, exec: () => Promise.reject(new Error('blocked')), removeAll: async () => undefined };
      return;
    }

    // ctr reads the conflist once, when `ctr run` starts, and keeps it for DEL; so each
    // container's network is the conflist present in /etc/cni/net.d at its start.
    const netFor: Record<Ctr, { net: NetSpec; ports: boolean }> = { c1: { net: netA, ports: true }, c2: { net: netA, ports: false }, c3: { net: netB, ports: false } };
    const cmd: Record<Ctr, string[]> = {
      c1: ['/bin/nc', '-ll', '-p', '80', '-e', '/bin/echo', 'hello'],
      c2: ['/bin/sleep', '600'],
      c3: ['/bin/sleep', '600'],
    };
    // Foreground `ctr run --rm`: when the task ends, this same process calls CNI DEL (with an
    // empty CNI_NETNS) and deletes the container; -d would skip the DEL altogether.
    const runs = {} as Record<Ctr, Background>;
    for (const c of CONTAINERS) {
      for (const f of readdirSync(sb.netConfDir)) rmSync(join(sb.netConfDir, f));
      const { net, ports } = netFor[c];
      writeFileSync(
        join(sb.netConfDir, '10-cnits.conflist'),
        conflist(net, { cniVersion: '1.0.0', dataDir, dnsname: false, staticPorts: ports ? [{ hostPort: HOST_PORT, containerPort: 80, protocol: 'tcp' }] : undefined }),
      );
      runs[c] = sb.spawn(['ctr', '--address', sock, '-n', ns, 'run', '--rm', '--cni', '--null-io', '--rootfs', rootfs, c, ...cmd[c]]);
      // RUNNING means ctr has done the CNI ADD (it sets up the network before starting the task).
      for (let i = 0; ; i++) {
        const r = await ctr(['task', 'ls']);
        if (new RegExp(`^${c}\\s+\\d+\\s+RUNNING`, 'm').test(r.stdout)) break;
        if (runs[c].child.exitCode !== null || i > 150) {
          const out = await within(runs[c].done, 2000);
          throw new Error(`ctr run ${c} did not reach RUNNING (exit ${runs[c].child.exitCode}):\n${out?.stderr ?? ''}${out?.stdout ?? ''}`);
        }
        await sleep(100);
      }
    }
    rmSync(join(sb.netConfDir, '10-cnits.conflist'));

    let execN = 0;
    ctx = {
      ...base,
      cid,
      exec: (c, argv) => ctr(['task', 'exec', '--exec-id', `e${execN++}`, c, ...argv]),
      removeAll: async () => {
        const problems: string[] = [];
        for (const c of CONTAINERS) {
          if (runs[c].child.exitCode !== null || runs[c].child.signalCode !== null) continue;
          await ctr(['task', 'kill', '-s', 'SIGKILL', c]);
          const r = await within(runs[c].done, 30_000);
          // Killed task → exit 137; a failed CNI DEL would make ctr print "ctr: ..." and exit 1.
          if (!r) problems.push(`${c}: ctr run did not return within 30 s after the task was killed`);
          else if (r.code !== 137 || r.stderr.trim()) problems.push(`${c}: ctr run exit ${r.code}: ${r.stderr.trim()}`);
        }
        const left = await ctr(['container', 'ls', '-q']);
        if (left.stdout.trim()) problems.push(`containers left: ${left.stdout.trim()}`);
        if (problems.length) throw new Error(problems.join('\n'));
      },
    };
  }, 900_000);

  afterAll(async () => {
    if (sandbox && !sandbox.isDestroyed) {
      await ctx?.removeAll().catch(() => undefined);
      await sandbox.destroy();
    }
  }, 120_000);

  // The reference bridge skips its ipMasq teardown when CNI_NETNS is empty, which is what ctr sends.
  defineScenario('containerd', () => ctx, { dns: false, removalBug: 'del-empty-netns-leaks-masq' });
});
