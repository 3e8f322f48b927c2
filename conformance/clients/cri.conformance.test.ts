// containerd 1.6's CRI plugin (the kubelet path) on our plugins: a CRI client of our own drives a
// private containerd the way the kubelet does (Status, RunPodSandbox with port mappings, DNS,
// labels and bandwidth annotations, StopPodSandbox, RemovePodSandbox, a hostNetwork pod, and
// containerd's TestSandboxRemoveWithoutIPLeakage), once per conflist of cri/networks.ts. Every
// plugin call containerd makes goes through a recording shim, so the suite can also assert on
// what containerd sent (PascalCase capability keys, CNI_ARGS, the two DELs). Each step is checked
// on the kernel (links, addresses, qdiscs, netfilter rules, lease files, netns mounts) and with
// packets (ping, HTTP through pod IPs and host ports). See clients/README.md.
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ensureDebs } from '../helpers/debian';
import { exec, inNetns } from '../helpers/exec';
import { hostSnapshot, type HostSnapshot } from '../helpers/host-snapshot';
import { randomHex } from '../helpers/netns';
import { eventually, link, links, netfilterDump, ping, rulesForContainer } from '../helpers/ip-json';
import { describeIfRoot, IMPL, knownReferenceBug, PLUGIN_DIR, versionGte } from '../helpers/plugin-dir';
import { removeCgroupDirs, RuntimeSandbox } from '../helpers/runtime-sandbox';
import { stopServiceOf } from '../helpers/served';
import type { PodSandboxConfig, SandboxInfo } from './cri/client';
import { ContainerdCri, type PluginCall } from './cri/containerd-cri';
import { NETWORKS, type NetworkCase } from './cri/networks';
import { HOSTNAME_PATH } from './cri/pause-image';

const DEBS = ['containerd', 'runc', 'busybox-static', 'iptables', 'nftables', 'tar'];
const POD_NAMESPACE = 'cni-ts';
const DNS = { servers: ['10.96.0.10'], searches: ['cni-ts.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] };
const BANDWIDTH = { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '5M' };
/** tc reports tbf rates in bytes/s. */
const INGRESS_BYTES = 10_000_000 / 8;
const EGRESS_BYTES = 5_000_000 / 8;
const HOST_LISTENER_PORT = 18990;

interface Pod {
  name: string;
  uid: string;
  hostPort: number;
  id: string;
  ip: string;
  pid: number;
  /** The pod's netns mount inside the sandbox (/var/run/netns/cni-<uuid>). */
  netnsPath: string;
  hostVeth: string;
  gateway: string;
}

/** The plugin calls recorded during one CRI request. */
type Phase = PluginCall[];

/**
 * The pods' cgroup parent (as the kubelet sets one): runc removes each pod's own cgroup, the suite
 * removes this parent, which cgroups (not namespaced by the sandbox) would otherwise keep.
 */
const CGROUP_PARENT = `cni-ts-cri-${randomHex(3)}`;
const linux = (network: 'POD' | 'NODE'): PodSandboxConfig['linux'] => ({
  cgroupParent: `/${CGROUP_PARENT}`,
  securityContext: { namespaceOptions: { network, pid: 'CONTAINER', ipc: 'POD' } },
});

function podConfig(p: Pick<Pod, 'name' | 'uid' | 'hostPort'>): PodSandboxConfig {
  return {
    metadata: { name: p.name, uid: p.uid, namespace: POD_NAMESPACE, attempt: 0 },
    hostname: p.name,
    dnsConfig: DNS,
    portMappings: [{ protocol: 'TCP', containerPort: 80, hostPort: p.hostPort }],
    labels: { app: 'cni-ts', 'io.kubernetes.pod.name': p.name },
    annotations: BANDWIDTH,
    linux: linux('POD'),
  };
}

function netnsOf(info: SandboxInfo): string {
  const spec = info.runtimeSpec as { linux?: { namespaces?: { type: string; path?: string }[] } } | undefined;
  return spec?.linux?.namespaces?.find((n) => n.type === 'network')?.path ?? '';
}

const stdinOf = (c: PluginCall): Record<string, unknown> => (typeof c.stdin === 'object' ? c.stdin : {});
const cniArgs = (c: PluginCall): Record<string, string> =>
  Object.fromEntries((c.env.CNI_ARGS ?? '').split(';').filter(Boolean).map((kv) => kv.split('=', 2) as [string, string]));

describeIfRoot(`containerd 1.6 CRI plugin (the kubelet path) on ${IMPL === 'ours' ? 'our' : 'the reference'} plugins`, () => {
  describe.each(NETWORKS)('$title', (net: NetworkCase) => {
    let before: HostSnapshot | undefined;
    let sb: RuntimeSandbox | undefined;
    let cri: ContainerdCri | undefined;
    let dataDir = '';
    const pods: Record<'a' | 'b', Pod> = {} as Record<'a' | 'b', Pod>;
    const phases: Record<string, Phase> = {};
    const leaseDir = (): string => join(dataDir, net.conflist('').name as string);
    const leases = (): string[] => (existsSync(leaseDir()) ? readdirSync(leaseDir()).filter((f) => !/^(last_reserved_ip\.\d+|lock)$/.test(f)) : []);
    /** Runs step and keeps the plugin calls it caused under phases[key]. */
    const phase = async <T>(key: string, step: () => Promise<T>): Promise<T> => {
      const from = cri!.calls().length;
      const r = await step();
      phases[key] = cri!.calls().slice(from);
      return r;
    };
    /**
     * HTTP GET path to addr:port from the sandbox host (or from inside netns): the body, or why
     * not. busybox nc, not busybox wget, which segfaults on this Debian build.
     */
    const http = async (addr: string, port: number, netns?: string, path = HOSTNAME_PATH): Promise<string> => {
      const argv = ['busybox', 'nc', '-w', '5', addr, String(port)];
      const r = await sb!.run(netns ? inNetns(netns, argv) : argv, { stdin: `GET ${path} HTTP/1.0\r\n\r\n`, timeoutMs: 15_000 });
      // The body follows the first empty line (busybox httpd's CGI replies end headers with a bare \n).
      const m = /\r?\n\r?\n/.exec(r.stdout);
      if (r.code !== 0 || !r.stdout.startsWith('HTTP/1.') || !m) return `no HTTP answer (nc exit ${r.code}): ${r.stderr.trim()}${r.stdout.slice(0, 200)}`;
      return r.stdout.slice(m.index + m[0].length).trim();
    };
    /** Netfilter rules in the sandbox host naming ip (as ip, ip/32 or ip:port; not a longer address). */
    const rulesNaming = async (ip: string): Promise<string[]> => {
      const re = new RegExp(`(^|[^0-9.])${ip.replace(/\./g, '\\.')}(?![0-9])`);
      return (await netfilterDump(sb!.netnsPath)).split('\n').filter((l) => re.test(l) && !l.startsWith('#'));
    };
    const sandboxNetnsMounts = async (): Promise<string[]> => (await sb!.run(['ls', '/var/run/netns'])).stdout.split('\n').filter(Boolean);
    const tcJson = async (args: string[]): Promise<{ kind: string; root?: boolean; options?: { rate?: number }; packets?: number }[]> => {
      const r = await exec(inNetns(sb!.netnsPath, ['tc', '-s', '-j', ...args]));
      return r.code === 0 && r.stdout.trim() ? JSON.parse(r.stdout) : [];
    };
    const ifbs = async (): Promise<string[]> => (await links(sb!.netnsPath)).filter((l) => l.linkinfo?.info_kind === 'ifb').map((l) => l.ifname);

    /** CRI_RECORD_DIR=<dir> keeps the recorded plugin calls as <dir>/cri-<main plugin>.jsonl. */
    const keepRecord = (): void => {
      const dir = process.env.CRI_RECORD_DIR;
      if (dir && cri && existsSync(cri.recordLog)) copyFileSync(cri.recordLog, join(dir, `cri-${net.main}.jsonl`));
    };

    beforeAll(async () => {
      await ensureDebs(DEBS);
      before = await hostSnapshot();
      sb = await RuntimeSandbox.create('cri', PLUGIN_DIR);
      dataDir = sb.subdir('leases');
      cri = await ContainerdCri.start(sb, PLUGIN_DIR, net.plugins);
    }, 300_000);

    afterAll(async () => {
      if (!sb || sb.isDestroyed) return;
      // A failed test may leave pods: remove them through CRI (the plugins' DEL), then stop containerd.
      try {
        for (const p of await cri!.client.listPodSandbox()) {
          await cri!.client.stopPodSandbox(p.id).catch(() => undefined);
          await cri!.client.removePodSandbox(p.id).catch(() => undefined);
        }
      } catch {
        /* containerd may be gone already */
      }
      keepRecord();
      await cri?.stop();
      await sb.destroy();
      removeCgroupDirs(CGROUP_PARENT);
    }, 180_000);

    test('Status: NetworkReady is false (NetworkPluginNotReady) with no conflist, true once the conflist is written', async () => {
      const v = await cri!.client.version();
      expect(v).toMatchObject({ runtimeName: 'containerd', runtimeApiVersion: 'v1' });
      const netReady = async () => (await cri!.client.status()).find((c) => c.type === 'NetworkReady');
      expect(await netReady()).toMatchObject({ status: false, reason: 'NetworkPluginNotReady' });
      // Written in place: containerd 1.6 watches conf_dir, and a file renamed into it is not noticed.
      writeFileSync(join(sb!.netConfDir, '10-net.conflist'), JSON.stringify(net.conflist(dataDir), null, 2));
      await eventually(async () => expect(await netReady()).toMatchObject({ status: true }), 15_000, 200);
      expect((await cri!.client.status()).find((c) => c.type === 'RuntimeReady')).toMatchObject({ status: true });
    });

    test('two pods with port mappings, DNS, labels and bandwidth annotations become READY with distinct pod IPs on eth0, each leased to its sandbox ID', async () => {
      const specs = { a: { name: 'pod-a', uid: randomUUID(), hostPort: 18081 }, b: { name: 'pod-b', uid: randomUUID(), hostPort: 18082 } };
      // The kubelet starts pods concurrently; so do we (host-local's lock, two ADDs at once).
      const ids = await phase('run', () => Promise.all([cri!.client.runPodSandbox(podConfig(specs.a)), cri!.client.runPodSandbox(podConfig(specs.b))]));
      for (const [k, i] of [['a', 0], ['b', 1]] as const) {
        const id = ids[i]!;
        const { status, info } = await cri!.client.podSandboxStatus(id);
        expect({ id, state: status.state }).toEqual({ id, state: 'SANDBOX_READY' });
        const ip = status.network?.ip ?? '';
        // The main plugin's ADD result (recorded): host-side veth and gateway.
        const add = phases.run!.find((c) => c.plugin === net.main && c.command === 'ADD' && c.env.CNI_CONTAINERID === id && c.rc === 0);
        expect(add).toBeDefined();
        const res = add!.stdout as { interfaces?: { name: string; sandbox?: string }[]; ips?: { address: string; gateway?: string }[] };
        const veth = (res.interfaces ?? []).find((x) => !x.sandbox && x.name !== 'cni0')?.name ?? '';
        pods[k] = { ...specs[k], id, ip, pid: info.pid, netnsPath: netnsOf(info), hostVeth: veth, gateway: res.ips?.[0]?.gateway ?? '' };
      }
      const { a, b } = pods;
      for (const p of [a, b]) {
        expect({ pod: p.name, ip: p.ip }).toEqual({ pod: p.name, ip: expect.stringMatching(new RegExp(`^${net.ipPrefix.replace(/\./g, '\\.')}`)) });
        expect(p.netnsPath).toMatch(/^\/var\/run\/netns\/cni-[0-9a-f-]{36}$/);
        // The kernel: eth0 in the pod's netns holds the pod IP; the host side of the veth exists.
        const eth0 = (await exec(inNetns(`/proc/${p.pid}/ns/net`, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']))).stdout;
        expect({ pod: p.name, eth0 }).toEqual({ pod: p.name, eth0: expect.stringContaining(`inet ${p.ip}/`) });
        expect(await link(sb!.netnsPath, p.hostVeth)).toMatchObject({ linkinfo: { info_kind: 'veth' } });
        // host-local's lease names the sandbox ID containerd sent as CNI_CONTAINERID.
        expect(readFileSync(join(leaseDir(), p.ip), 'utf8').split(/\r?\n/)[0]).toBe(p.id);
        // DNS config reaches resolv.conf (written by containerd, not by CNI).
        const resolv = readFileSync(`/proc/${p.pid}/root/etc/resolv.conf`, 'utf8');
        expect(resolv).toMatch(/nameserver 10\.96\.0\.10/);
        expect(resolv).toMatch(/search cni-ts\.svc\.cluster\.local svc\.cluster\.local/);
        expect(resolv).toMatch(/options ndots:5/);
      }
      expect(a.ip).not.toBe(b.ip);
      expect(a.ip).not.toBe('127.0.0.1');
    });

    test('the pods ping each other', async () => {
      expect(await ping(`/proc/${pods.a.pid}/ns/net`, pods.b.ip)).toBe(true);
      expect(await ping(`/proc/${pods.b.pid}/ns/net`, pods.a.ip)).toBe(true);
    });

    test('each pod answers HTTP on podIP:80, 127.0.0.1:hostPort and gateway:hostPort from the host', async () => {
      for (const p of [pods.a, pods.b]) {
        // READY means the pause process runs, not that its httpd listens yet.
        await eventually(async () => expect(await http(p.ip, 80)).toBe(p.name), 10_000, 200);
        for (const [addr, port] of [[p.ip, 80], ['127.0.0.1', p.hostPort], [p.gateway, p.hostPort]] as const) {
          expect({ to: `${addr}:${port}`, body: await http(addr, port) }).toEqual({ to: `${addr}:${port}`, body: p.name });
        }
      }
      // Pod to pod through the other's host port on the gateway (hairpin through the DNAT).
      const to = `${pods.b.gateway}:${pods.b.hostPort}`;
      expect({ to, body: await http(pods.b.gateway, pods.b.hostPort, `/proc/${pods.a.pid}/ns/net`) }).toEqual({ to, body: pods.b.name });
    });

    test('the bandwidth annotations shape the host veth (tbf 10 Mbit/s) and an ifb (tbf 5 Mbit/s), and the HTTP packets went through them', async () => {
      const bw = await ifbs();
      expect(bw).toHaveLength(2);
      const egressTbfs: { packets?: number }[] = [];
      for (const dev of bw) {
        const tbf = (await tcJson(['qdisc', 'show', 'dev', dev])).find((q) => q.kind === 'tbf');
        expect({ dev, rate: tbf?.options?.rate }).toEqual({ dev, rate: EGRESS_BYTES });
        egressTbfs.push(tbf!);
      }
      for (const p of [pods.a, pods.b]) {
        const qdiscs = await tcJson(['qdisc', 'show', 'dev', p.hostVeth]);
        const tbf = qdiscs.find((q) => q.kind === 'tbf' && q.root);
        expect({ pod: p.name, rate: tbf?.options?.rate }).toEqual({ pod: p.name, rate: INGRESS_BYTES });
        expect(tbf!.packets).toBeGreaterThan(0);
        expect(qdiscs.some((q) => q.kind === 'ingress' || q.kind === 'clsact')).toBe(true);
        // The pod's egress is redirected from the veth's ingress to one of the ifbs.
        const filters = (await exec(inNetns(sb!.netnsPath, ['tc', 'filter', 'show', 'dev', p.hostVeth, 'ingress']))).stdout;
        expect({ pod: p.name, redirectedTo: bw.filter((d) => filters.includes(d)) }).toEqual({ pod: p.name, redirectedTo: [expect.any(String)] });
      }
      for (const t of egressTbfs) expect(t.packets).toBeGreaterThan(0);
    });

    test('StopPodSandbox removes the veth, the DNAT rules, the ifb and the lease; RemovePodSandbox (second DEL) succeeds and leaves no netns mount; the other pod is untouched', async () => {
      const a = pods.a;
      expect(await rulesNaming(a.ip)).not.toEqual([]);
      const ifbBefore = await ifbs();
      await phase('stop-a', () => cri!.client.stopPodSandbox(a.id));
      expect(await link(sb!.netnsPath, a.hostVeth)).toBeUndefined();
      expect(await rulesNaming(a.ip)).toEqual([]);
      expect(await rulesForContainer(sb!.netnsPath, a.id)).toEqual([]);
      expect(await ifbs()).toHaveLength(ifbBefore.length - 1);
      expect(await http('127.0.0.1', a.hostPort)).toMatch(/^no HTTP answer/);
      // Stop's DEL already releases the lease; Remove's DEL must then find nothing and still exit 0.
      expect(leases()).not.toContain(a.ip);
      await phase('remove-a', () => cri!.client.removePodSandbox(a.id));
      expect(leases()).not.toContain(a.ip);
      expect(await sandboxNetnsMounts()).not.toContain(a.netnsPath.split('/').pop());
      expect((await cri!.client.listPodSandbox()).map((p) => p.id)).not.toContain(a.id);
      // pod-b still has its lease, veth, rules and port.
      expect(leases()).toContain(pods.b.ip);
      expect(await http('127.0.0.1', pods.b.hostPort)).toBe(pods.b.name);
    });

    knownReferenceBug(net.leakBug)(
      "the pause process killed and the netns unmounted, Stop and Remove still release lease, veth, rules and ifb (containerd's TestSandboxRemoveWithoutIPLeakage)",
      async () => {
        const b = pods.b;
        const ifbBefore = await ifbs();
        process.kill(b.pid, 'SIGKILL');
        await sb!.runOk(['umount', '--lazy', b.netnsPath]);
        // As containerd's test does: the netns counts as closed, the sandbox becomes NOTREADY
        // (Stop before containerd has handled the exit races with it), the IP is still leased.
        await eventually(
          async () => {
            const { status, info } = await cri!.client.podSandboxStatus(b.id);
            expect({ state: status.state, netNamespaceClosed: info.netNamespaceClosed }).toEqual({ state: 'SANDBOX_NOTREADY', netNamespaceClosed: true });
          },
          30_000,
          200,
        );
        expect(leases()).toContain(b.ip);
        await phase('stop-b', () => cri!.client.stopPodSandbox(b.id));
        await phase('remove-b', () => cri!.client.removePodSandbox(b.id));
        expect(leases()).not.toContain(b.ip);
        await eventually(async () => expect(await link(sb!.netnsPath, b.hostVeth)).toBeUndefined());
        expect(await ifbs()).toHaveLength(ifbBefore.length - 1);
        expect(await rulesForContainer(sb!.netnsPath, b.id)).toEqual([]);
        expect(await rulesNaming(b.ip)).toEqual([]);
        expect(await sandboxNetnsMounts()).not.toContain(b.netnsPath.split('/').pop());
      },
    );

    test('a hostNetwork pod makes no plugin call, shares the host netns and sees host listeners', async () => {
      const calls = cri!.calls().length;
      const leasesBefore = leases();
      const www = sb!.subdir('host-www');
      writeFileSync(join(www, 'index.html'), 'host-listener\n');
      const listener = sb!.spawn(['busybox', 'httpd', '-f', '-p', `127.0.0.1:${HOST_LISTENER_PORT}`, '-h', www]);
      let id: string | undefined;
      try {
        id = await cri!.client.runPodSandbox({
          // No hostname: runc refuses one without a private UTS namespace.
          metadata: { name: 'pod-host', uid: randomUUID(), namespace: POD_NAMESPACE, attempt: 0 },
          dnsConfig: DNS,
          labels: { app: 'cni-ts' },
          annotations: BANDWIDTH,
          linux: linux('NODE'),
        });
        const { status, info } = await cri!.client.podSandboxStatus(id);
        expect(status.state).toBe('SANDBOX_READY');
        expect(status.network?.ip ?? '').toBe('');
        expect(readlinkSync(`/proc/${info.pid}/ns/net`)).toBe(readlinkSync(sb!.netnsPath));
        // From inside the pod: the host's listener. From the host: the pod's httpd on port 80.
        expect(await http('127.0.0.1', HOST_LISTENER_PORT, `/proc/${info.pid}/ns/net`, '/')).toBe('host-listener');
        await eventually(async () => expect(await http('127.0.0.1', 80)).toBe(hostname()), 10_000, 200);
      } finally {
        if (id) {
          await cri!.client.stopPodSandbox(id);
          await cri!.client.removePodSandbox(id);
        }
        listener.child.kill('SIGTERM');
        await listener.done;
      }
      expect(cri!.calls().slice(calls)).toEqual([]);
      expect(leases()).toEqual(leasesBefore);
    });

    test('what containerd sent: CNI_ARGS, PascalCase portMappings and bandwidth, a loopback network, and two DELs (Stop: netns, prevResult from 0.4.0 on; Remove: empty netns, no prevResult)', () => {
      const { a, b } = pods;
      const failed = Object.values(phases)
        .flat()
        .filter((c) => c.rc !== 0);
      expect(failed.map((c) => `${c.plugin} ${c.command} rc=${c.rc}: ${JSON.stringify(c.stdout)}`)).toEqual([]);
      for (const p of [a, b]) {
        const adds = phases.run!.filter((c) => c.env.CNI_CONTAINERID === p.id && c.command === 'ADD');
        expect(adds.map((c) => `${c.plugin} ${c.env.CNI_IFNAME}`).sort()).toEqual(
          ['bandwidth eth0', 'host-local eth0', 'loopback lo', `${net.main} eth0`, 'portmap eth0'].sort(),
        );
        for (const c of adds) {
          expect(c.env.CNI_CONTAINERID).toMatch(/^[0-9a-f]{64}$/);
          expect(c.env.CNI_NETNS).toBe(p.netnsPath);
          expect(cniArgs(c)).toEqual({
            IgnoreUnknown: '1',
            K8S_POD_NAMESPACE: POD_NAMESPACE,
            K8S_POD_NAME: p.name,
            K8S_POD_INFRA_CONTAINER_ID: p.id,
            K8S_POD_UID: p.uid,
          });
        }
        const lo = adds.find((c) => c.plugin === 'loopback')!;
        expect(stdinOf(lo)).toMatchObject({ cniVersion: '0.3.1', name: 'cni-loopback' });
        const pm = adds.find((c) => c.plugin === 'portmap')!;
        expect(stdinOf(pm).runtimeConfig).toEqual({ portMappings: [{ HostPort: p.hostPort, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }] });
        const bw = adds.find((c) => c.plugin === 'bandwidth')!;
        expect(stdinOf(bw).runtimeConfig).toEqual({
          bandwidth: { IngressRate: 10_000_000, IngressBurst: expect.any(Number), EgressRate: 5_000_000, EgressBurst: expect.any(Number) },
        });
      }
      // Stop of a live pod: DEL with the netns and the cached result (libcni sends prevResult on DEL
      // from cniVersion 0.4.0 on only); Remove: DEL again with an empty netns and no prevResult
      // (libcni's cache went with the first DEL).
      const cached = versionGte(String(net.conflist('').cniVersion), '0.4.0');
      const chain = (calls: Phase) => calls.filter((c) => c.env.CNI_IFNAME === 'eth0' && c.plugin !== 'host-local');
      const delShape = (calls: Phase) =>
        chain(calls).map((c) => ({ plugin: c.plugin, command: c.command, netns: c.env.CNI_NETNS, prevResult: 'prevResult' in stdinOf(c) }));
      const expected = (netns: string, prevResult: boolean) =>
        ['bandwidth', 'portmap', net.main].map((plugin) => ({ plugin, command: 'DEL', netns, prevResult }));
      expect(delShape(phases['stop-a']!)).toEqual(expected(a.netnsPath, cached));
      expect(delShape(phases['remove-a']!)).toEqual(expected('', false));
      // The leak case: the netns is gone by Stop, so its DEL already has an empty netns (but still the cache).
      expect(delShape(phases['stop-b'] ?? [])).toEqual(expected('', cached));
      expect(delShape(phases['remove-b'] ?? [])).toEqual(expected('', false));
      // Capability args are sent on every DEL too, from the sandbox config.
      for (const c of [...chain(phases['stop-a']!), ...chain(phases['remove-a']!)].filter((x) => x.plugin === 'portmap')) {
        expect(stdinOf(c).runtimeConfig).toEqual({ portMappings: [{ HostPort: a.hostPort, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }] });
      }
    });

    /** Live processes of the sandbox (zombies awaiting their reaper left out). */
    const live = (): string[] =>
      sb!.processNames().filter((p) => {
        try {
          return !/\) Z /.test(readFileSync(`/proc/${p.split(' ')[0]}/stat`, 'utf8'));
        } catch {
          return false;
        }
      });

    // After the leak case, the reference's leaked NAT rules are still there.
    knownReferenceBug(net.leakBug)('at the end no pod, veth, ifb, lease, netfilter rule, netns mount or shim is left', async () => {
      expect(await cri!.client.listPodSandbox()).toEqual([]);
      const veths = (await links(sb!.netnsPath)).filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname);
      expect(veths).toEqual([]);
      expect(await ifbs()).toEqual([]);
      expect(leases()).toEqual([]);
      expect(await sandboxNetnsMounts()).toEqual([]);
      // Our stubs' per-host service (served mode, in the packaged run) is ours to stop, by pid.
      await stopServiceOf(sb!);
      expect(live().filter((p) => !p.endsWith(' containerd'))).toEqual([]);
      for (const p of Object.values(pods)) {
        expect({ pod: p.name, rules: await rulesNaming(p.ip) }).toEqual({ pod: p.name, rules: [] });
        expect({ pod: p.name, rules: await rulesForContainer(sb!.netnsPath, p.id) }).toEqual({ pod: p.name, rules: [] });
      }
    });

    test('containerd stops by pid leaving no process; after the sandbox is gone the real host is as before (the pods\' cgroup parent removed too)', async () => {
      keepRecord();
      await cri!.stop();
      expect(live()).toEqual([]);
      expect(await sb!.destroy()).toEqual([]);
      expect(removeCgroupDirs(CGROUP_PARENT)).toEqual([]);
      expect(await hostSnapshot()).toEqual(before);
    }, 120_000);
  });
});
