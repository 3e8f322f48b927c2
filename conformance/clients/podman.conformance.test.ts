// podman 4.3 (Debian), rootful, CNI backend, on our plugins: the scenario of scenario.ts.
// podman runs inside a RuntimeSandbox (own netns + private mount namespace) with a private
// containers.conf (network_backend cni, cni_plugin_dirs = our dist/bin, network_config_dir = a
// temp dir holding conflists we write in podman's format) and private vfs storage. What podman
// sends (see /work/shared/clients/traces/podman-4.3.1.jsonl): VERSION to every plugin first,
// then ADD/DEL with cniVersion 0.4.0, CNI_ARGS IgnoreUnknown=1;K8S_POD_NAME=<name>, the
// portMappings and aliases capabilities, and the cached result as prevResult on DEL.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execOk } from '../helpers/exec';
import { ensureDebs } from '../helpers/debian';
import { hostSnapshot } from '../helpers/host-snapshot';
import { randomHex, uniqueBridgeName, uniqueSubnet24 } from '../helpers/netns';
import { describeIfRoot, IMPL, PLUGIN_DIR } from '../helpers/plugin-dir';
import { busyboxRootfs, RuntimeSandbox } from '../helpers/runtime-sandbox';
import { conflist, CONTAINERS, defineScenario, HOST_PORT, UPLINK_ADDR, type Ctr, type NetSpec, type ScenarioCtx } from './scenario';

const DEBS = ['podman', 'runc', 'conmon', 'golang-github-containers-common', 'busybox-static', 'dnsmasq-base', 'iptables', 'nftables', 'tar'];
const IMAGE = 'localhost/cni-ts-busybox:latest';

let ctx: ScenarioCtx | undefined;
let sandbox: RuntimeSandbox | undefined;

describeIfRoot(`podman 4.3 (CNI backend) on ${IMPL === 'ours' ? 'our' : 'the reference'} plugins`, () => {
  beforeAll(async () => {
    await ensureDebs(DEBS);
    const before = await hostSnapshot();
    const sb = await RuntimeSandbox.create('podman', PLUGIN_DIR);
    sandbox = sb;
    const netDir = sb.subdir('podman-net.d');
    const dataDir = sb.subdir('leases');
    // runc, not crun: crun 1.8 refuses cgroup v1 hosts whose cgroup2 "unified" mount has
    // controllers ("cgroups in hybrid mode not supported"). Ulimits: podman lowers its own
    // RLIMIT_NPROC to 32768, so its root default (the current hard limit) fails setrlimit
    // without CAP_SYS_RESOURCE; small explicit values always fit.
    writeFileSync(
      join(sb.dir, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        'runtime = "runc"',
        `tmp_dir = "${sb.subdir('podman-tmp')}"`,
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${PLUGIN_DIR}"]`,
        `network_config_dir = "${netDir}"`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(sb.dir, 'storage.conf'),
      ['[storage]', 'driver = "vfs"', `graphroot = "${sb.subdir('podman-root')}"`, `runroot = "${sb.subdir('podman-runroot')}"`, ''].join('\n'),
    );
    const env = [
      'env',
      `CONTAINERS_CONF=${join(sb.dir, 'containers.conf')}`,
      `CONTAINERS_STORAGE_CONF=${join(sb.dir, 'storage.conf')}`,
      `TMPDIR=${sb.subdir('tmp')}`,
    ];
    const podman = (args: string[], timeoutMs = 60_000) => sb.run([...env, 'podman', ...args], { timeoutMs });
    const podmanOk = async (args: string[]): Promise<string> => {
      const r = await podman(args);
      if (r.code !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.code}):\n${r.stderr}${r.stdout}`);
      return r.stdout.trim();
    };

    await sb.addHostAddress(UPLINK_ADDR);

    const rootfs = sb.subdir('rootfs');
    await busyboxRootfs(rootfs);
    await execOk(['tar', '-C', rootfs, '-cf', join(sb.dir, 'rootfs.tar'), '.']);
    await podmanOk(['import', join(sb.dir, 'rootfs.tar'), IMAGE]);

    const tag = randomHex(3);
    const mk = (x: string): NetSpec => {
      const s = uniqueSubnet24();
      return { name: `cnits-${tag}-${x}`, bridge: uniqueBridgeName(), prefix: s.prefix, gateway: s.gateway };
    };
    const netA = mk('a');
    const netB = mk('b');
    const base: Omit<ScenarioCtx, 'cid' | 'exec' | 'removeAll'> = { sb, before, netA, netB, dataDir, daemons: [] };

    // Can podman run a container here at all? (cgroups, storage, OCI runtime: not our plugins.)
    const probe = await podman(['run', '--rm', '--network', 'none', IMAGE, '/bin/true']);
    if (probe.code !== 0) {
      ctx = { ...base, blocked: `podman run --network none fails: ${probe.stderr.trim()}`, cid: { c1: '', c2: '', c3: '' }, exec: () => Promise.reject(new Error('blocked')), removeAll: async () => undefined };
      return;
    }

    for (const net of [netA, netB]) {
      writeFileSync(join(netDir, `${net.name}.conflist`), conflist(net, { cniVersion: '0.4.0', dataDir, dnsname: true }));
    }
    const runArgs: Record<Ctr, string[]> = {
      c1: ['--network', netA.name, '-p', `${HOST_PORT}:80`, IMAGE, '/bin/nc', '-ll', '-p', '80', '-e', '/bin/echo', 'hello'],
      c2: ['--network', netA.name, IMAGE, '/bin/sleep', '600'],
      c3: ['--network', netB.name, IMAGE, '/bin/sleep', '600'],
    };
    const cid = {} as Record<Ctr, string>;
    for (const c of CONTAINERS) {
      // NET_RAW: podman 4 drops it by default and busybox ping wants a raw socket.
      cid[c] = await podmanOk(['run', '-d', '--name', c, '--cap-add', 'NET_RAW', ...runArgs[c]]);
    }
    ctx = {
      ...base,
      cid,
      exec: (c, argv) => podman(['exec', c, ...argv], 30_000),
      removeAll: async () => {
        await podmanOk(['rm', '-f', '-t', '0', ...CONTAINERS]);
      },
    };
  }, 900_000);

  afterAll(async () => {
    // Normally the last test already destroyed it; after a failure, podman's own teardown first.
    if (sandbox && !sandbox.isDestroyed) {
      await ctx?.removeAll().catch(() => undefined);
      await sandbox.destroy();
    }
  }, 120_000);

  defineScenario('podman', () => ctx, { dns: true });
});
