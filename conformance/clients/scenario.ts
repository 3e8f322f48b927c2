// The scenario both runtime suites run (podman, containerd): network A (bridge + host-local, then
// portmap, firewall, tuning and, for podman, dnsname, as podman's own conflist has them) and
// network B; c1 and c2 on A, c3 on B. Each runtime file provides a ScenarioCtx (how to exec in a
// container, the container IDs libcni sees, how to remove everything) and calls defineScenario.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecResult } from '../helpers/exec';
import { hostSnapshot, type HostSnapshot } from '../helpers/host-snapshot';
import { links, natRulesFor, rulesForContainer } from '../helpers/ip-json';
import { knownReferenceBug, PLUGIN_DIR, pluginPath, type ReferenceBug } from '../helpers/plugin-dir';
import { removeCgroupDirs, type RuntimeSandbox } from '../helpers/runtime-sandbox';
import { stopServiceOf } from '../helpers/served';

export type Ctr = 'c1' | 'c2' | 'c3';
export const CONTAINERS: Ctr[] = ['c1', 'c2', 'c3'];

export interface NetSpec {
  name: string;
  bridge: string;
  prefix: string; // "10.x.y" of a /24
  gateway: string;
}

/** Plugins of network A besides bridge: only those built, so a missing one is a pending test, not a failed run. */
export const HAVE = {
  portmap: existsSync(pluginPath('portmap')),
  firewall: existsSync(pluginPath('firewall')),
  tuning: existsSync(pluginPath('tuning')),
  dnsname: existsSync(pluginPath('dnsname')),
};

export const HOST_PORT = 18080;
/** An address of the sandbox host (not the bridge gateway), for the published-port check. */
export const UPLINK_ADDR = '198.51.100.1';

/**
 * A conflist in the shape podman 4.3 writes (see /work/shared/clients/podman-generated.conflist),
 * plus what the test needs: host-local's dataDir in our temp dir (never /var/lib/cni/networks),
 * firewall's ingressPolicy same-bridge (Docker-style isolation between networks), and, for ctr,
 * a static runtimeConfig.portMappings (ctr 1.6 has no flag to publish ports; libcni passes a
 * static runtimeConfig through when the runtime injects no capability args).
 */
export function conflist(
  net: NetSpec,
  o: { cniVersion: string; dataDir: string; dnsname: boolean; staticPorts?: { hostPort: number; containerPort: number; protocol: string }[] },
): string {
  const plugins: Record<string, unknown>[] = [
    {
      type: 'bridge',
      bridge: net.bridge,
      isGateway: true,
      ipMasq: true,
      hairpinMode: true,
      ipam: {
        type: 'host-local',
        dataDir: o.dataDir,
        routes: [{ dst: '0.0.0.0/0' }],
        ranges: [[{ subnet: `${net.prefix}.0/24`, gateway: net.gateway }]],
      },
      capabilities: { ips: true },
    },
  ];
  if (HAVE.portmap) {
    plugins.push({
      type: 'portmap',
      capabilities: { portMappings: true },
      ...(o.staticPorts ? { runtimeConfig: { portMappings: o.staticPorts } } : {}),
    });
  }
  if (HAVE.firewall) plugins.push({ type: 'firewall', backend: '', ingressPolicy: 'same-bridge' });
  if (HAVE.tuning) plugins.push({ type: 'tuning' });
  if (o.dnsname && HAVE.dnsname) plugins.push({ type: 'dnsname', domainName: 'dns.podman', capabilities: { aliases: true } });
  return JSON.stringify({ cniVersion: o.cniVersion, name: net.name, plugins }, null, 2);
}

export interface ScenarioCtx {
  sb: RuntimeSandbox;
  before: HostSnapshot;
  netA: NetSpec;
  netB: NetSpec;
  dataDir: string;
  /** Runs argv inside a container (busybox applets by absolute path). */
  exec(c: Ctr, argv: string[]): Promise<ExecResult>;
  /** CNI_CONTAINERID as the runtime sends it. */
  cid: Record<Ctr, string>;
  /** Removes every container (the runtime's own teardown: CNI DEL). */
  removeAll(): Promise<void>;
  /** Processes allowed to remain in the sandbox after removeAll (e.g. the containerd daemon). */
  daemons: string[];
  /** Set when the runtime cannot run containers in this VM at all (not a plugin problem). */
  blocked?: string;
  /** The cgroup parent the runtime made for its containers (removed and checked at the end). */
  cgroupParent?: string;
}

const logged = new Set<string>();
function logOnce(msg: string): void {
  if (logged.has(msg)) return;
  logged.add(msg);
  // eslint-disable-next-line no-console
  console.info(msg);
}

/** `test`, or `test.skip` with the reason logged (a plugin not built yet). */
function pendingUnless(ok: boolean, reason: string): jest.It {
  if (ok) return test;
  logOnce(`[clients] pending: ${reason}`);
  return test.skip as unknown as jest.It;
}

export function ipOf(out: string): { ip: string; len: number } | undefined {
  const m = /inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(out);
  return m ? { ip: m[1]!, len: Number(m[2]) } : undefined;
}

/**
 * dns: the runtime sends container names (podman: K8S_POD_NAME and the aliases capability; ctr
 * sends neither). removalBug: a known reference bug this runtime's teardown hits (test.failing
 * when CNI_PLUGIN_DIR is the reference).
 */
export function defineScenario(
  runtime: string,
  get: () => ScenarioCtx | undefined,
  opts: { dns: boolean; removalBug?: ReferenceBug },
): void {
  const ips: Partial<Record<Ctr, string>> = {};
  const netOf = (ctx: ScenarioCtx, c: Ctr): NetSpec => (c === 'c3' ? ctx.netB : ctx.netA);
  /** The context, or undefined (logged) when the runtime is blocked in this VM. */
  const ctxOrSkip = (): ScenarioCtx | undefined => {
    const ctx = get();
    if (!ctx) throw new Error(`${runtime}: setup failed (see beforeAll)`);
    if (ctx.blocked) {
      if (process.env.CONFORMANCE_CLIENTS_STRICT === '1') throw new Error(`${runtime} blocked: ${ctx.blocked}`);
      logOnce(`[clients] ${runtime} SKIPPED, cannot run containers here: ${ctx.blocked}`);
      return undefined;
    }
    return ctx;
  };
  const ipOfCtr = async (ctx: ScenarioCtx, c: Ctr): Promise<string> => {
    if (ips[c]) return ips[c]!;
    const r = await ctx.exec(c, ['/bin/ip', '-4', '-o', 'addr', 'show', 'eth0']);
    const a = ipOf(r.stdout);
    if (!a) throw new Error(`${c}: no IPv4 address on eth0: ${r.stdout}${r.stderr}`);
    ips[c] = a.ip;
    return a.ip;
  };

  test('each container has an address in its network, recorded as a host-local lease for its container ID', async () => {
    const ctx = ctxOrSkip();
    if (!ctx) return;
    for (const c of CONTAINERS) {
      const net = netOf(ctx, c);
      const r = await ctx.exec(c, ['/bin/ip', '-4', '-o', 'addr', 'show', 'eth0']);
      const a = ipOf(r.stdout);
      expect({ c, addr: a && `${a.ip}/${a.len}` }).toEqual({ c, addr: expect.stringMatching(new RegExp(`^${net.prefix.replace(/\./g, '\\.')}\\.\\d+/24$`)) });
      ips[c] = a!.ip;
      const lease = join(ctx.dataDir, net.name, a!.ip);
      expect(existsSync(lease)).toBe(true);
      expect(readFileSync(lease, 'utf8').split(/\r?\n/)[0]).toBe(ctx.cid[c]);
    }
  });

  test('c1 pings c2 on the same network', async () => {
    const ctx = ctxOrSkip();
    if (!ctx) return;
    const r = await ctx.exec('c1', ['/bin/ping', '-c', '1', '-W', '3', await ipOfCtr(ctx, 'c2')]);
    expect({ code: r.code, out: r.stdout + r.stderr }).toEqual({ code: 0, out: expect.stringContaining('1 packets received') });
  });

  pendingUnless(HAVE.portmap, `published port: ${PLUGIN_DIR}/portmap is not built yet`)(
    `the published port ${HOST_PORT} answers a TCP connect from the sandbox host (a host address, the bridge gateway, 127.0.0.1)`,
    async () => {
      const ctx = ctxOrSkip();
      if (!ctx) return;
      for (const addr of [UPLINK_ADDR, ctx.netA.gateway, '127.0.0.1']) {
        const r = await ctx.sb.run(['busybox', 'nc', '-w', '3', addr, String(HOST_PORT)], { timeoutMs: 10_000 });
        expect({ addr, out: r.stdout.trim() }).toEqual({ addr, out: 'hello' });
      }
    },
  );

  pendingUnless(HAVE.firewall, `isolation between networks: ${PLUGIN_DIR}/firewall (ingressPolicy same-bridge) is not built yet`)(
    'c1 cannot reach c3 on network B (firewall ingressPolicy same-bridge), though B is routed',
    async () => {
      const ctx = ctxOrSkip();
      if (!ctx) return;
      const c3 = await ipOfCtr(ctx, 'c3');
      // Routed: B's gateway (an address of the sandbox host) answers c1.
      const gw = await ctx.exec('c1', ['/bin/ping', '-c', '1', '-W', '2', ctx.netB.gateway]);
      expect(gw.code).toBe(0);
      const r = await ctx.exec('c1', ['/bin/ping', '-c', '1', '-W', '2', c3]);
      expect({ code: r.code, out: r.stdout }).toEqual({ code: 1, out: expect.stringContaining('0 packets received') });
      // And c3 can still reach its own gateway: isolation, not breakage.
      expect((await ctx.exec('c3', ['/bin/ping', '-c', '1', '-W', '2', ctx.netB.gateway])).code).toBe(0);
    },
  );

  if (opts.dns) {
    pendingUnless(HAVE.dnsname, `name resolution: ${PLUGIN_DIR}/dnsname is not built yet`)(
      'c1 resolves c2 by name through dnsname (nslookup c2 and c2.dns.podman)',
      async () => {
        const ctx = ctxOrSkip();
        if (!ctx) return;
        const ip = await ipOfCtr(ctx, 'c2');
        for (const name of ['c2', 'c2.dns.podman']) {
          const r = await ctx.exec('c1', ['/bin/nslookup', name]);
          expect({ name, code: r.code, out: r.stdout }).toEqual({ name, code: 0, out: expect.stringContaining(`Address: ${ip}`) });
        }
      },
    );
  }

  knownReferenceBug(opts.removalBug)('removing the containers leaves no veth, lease, netfilter rule, libcni cache entry or helper process', async () => {
    const ctx = ctxOrSkip();
    if (!ctx) return;
    for (const c of CONTAINERS) await ipOfCtr(ctx, c).catch(() => undefined);
    await ctx.removeAll();
    const veths = (await links(ctx.sb.netnsPath)).filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname);
    expect(veths).toEqual([]);
    for (const net of [ctx.netA, ctx.netB]) {
      const dir = join(ctx.dataDir, net.name);
      const leases = existsSync(dir) ? readdirSync(dir).filter((f) => !/^(last_reserved_ip\.\d+|lock)$/.test(f)) : [];
      expect({ net: net.name, leases }).toEqual({ net: net.name, leases: [] });
    }
    for (const c of CONTAINERS) {
      const ip = ips[c];
      if (ip) expect({ c, ip, rules: await natRulesFor(ctx.sb.netnsPath, ip) }).toEqual({ c, ip, rules: [] });
      expect({ c, rules: await rulesForContainer(ctx.sb.netnsPath, ctx.cid[c]) }).toEqual({ c, rules: [] });
    }
    // libcni's cache (/var/lib/cni inside the sandbox: a private tmpfs).
    const cache = await ctx.sb.run(['find', '/var/lib/cni', '-type', 'f']);
    const entries = cache.stdout.split('\n').filter((l) => CONTAINERS.some((c) => l.includes(ctx.cid[c])));
    expect(entries).toEqual([]);
    // Our stubs' per-host service (served mode, in the packaged run) is ours to stop, by pid.
    await stopServiceOf(ctx.sb);
    // No conmon, shim, dnsmasq or container process left behind (zombies awaiting their reaper excepted).
    const left = ctx.sb.processNames().filter((p) => !ctx.daemons.includes(p.split(' ')[1]!));
    const live = left.filter((p) => {
      try {
        return !/\) Z /.test(readFileSync(`/proc/${p.split(' ')[0]}/stat`, 'utf8'));
      } catch {
        return false;
      }
    });
    expect(live).toEqual([]);
  }, 120_000);

  test('after the sandbox is gone, the real host is as before (netns, links, nft tables, iptables CNI rules, runtime processes, /var/lib/cni)', async () => {
    const ctx = get();
    if (!ctx) throw new Error(`${runtime}: setup failed (see beforeAll)`);
    const killed = await ctx.sb.destroy();
    if (killed.length) logOnce(`[clients] ${runtime}: destroy() had to kill: ${killed.join(', ')}`);
    if (ctx.cgroupParent) expect(removeCgroupDirs(ctx.cgroupParent)).toEqual([]);
    expect(await hostSnapshot()).toEqual(ctx.before);
  }, 60_000);
}
