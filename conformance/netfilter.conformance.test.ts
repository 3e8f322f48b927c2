// The masquerade backends applied for real, each inside a sandbox netns this suite creates. The
// backends run their tools in the current netns, as a plugin on the host does, so a small driver
// (bundled here with esbuild) runs them as `nsenter --net=<sandbox> node driver.js <op> <json>`;
// the machine's own ruleset is never touched, and the suite compares it before and after.
// iptables: a setup whose IPv6 restore fails (a failing ip6tables-restore first on PATH) leaves
// the IPv4 nat table as it was.
// Flow per backend: setup A and B -> rules there -> check passes -> teardown A with no
// addresses (plugins#810) -> B intact, A gone -> check A fails -> teardown again is fine.
// Interop: rules made by the reference bridge (/usr/lib/cni, iptables only in 1.1.1) are
// found and removed by ours, and ours by its DEL.
import { buildSync } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BackendName, MasqSpec } from '../lib/netfilter/driver';
import { chainName, nftComment } from '../lib/netfilter/names';
import { exec, execOk, inNetns } from './helpers/exec';
import { type Netns, Registry, randomHex, uniqueBridgeName, uniqueContainerId, uniqueNetName } from './helpers/netns';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

async function hostRuleset(): Promise<string> {
  const nft = await exec(['nft', 'list', 'ruleset']);
  const ipt = await exec(['iptables-save']);
  const ip6t = await exec(['ip6tables-save']);
  // Drop the timestamps iptables-save prints.
  return [nft.stdout, ipt.stdout, ip6t.stdout].join('\n').replace(/^# (Generated|Completed).*$/gm, '');
}

/** Rules of masq_checks in the sandbox, as "comment|saddr" strings. */
async function nftMasqRules(ns: Netns): Promise<string[]> {
  const r = await exec(inNetns(ns.path, ['nft', '-j', 'list', 'ruleset']));
  const doc = JSON.parse(r.stdout) as { nftables: { rule?: { chain: string; comment?: string; expr: unknown[] } }[] };
  return doc.nftables
    .filter((i) => i.rule?.chain === 'masq_checks')
    .map((i) => {
      const m = i.rule!.expr[0] as { match: { right: string } };
      return `${i.rule!.comment}|${m.match.right}`;
    });
}

async function iptSave(ns: Netns, v6 = false): Promise<string> {
  return (await execOk(inNetns(ns.path, [v6 ? 'ip6tables-save' : 'iptables-save', '-t', 'nat']))).stdout;
}

/** The driver: one backend operation per run, the outcome as one JSON line on stdout. */
const DRIVER_SOURCE = `
import { makeDriver, teardownAll } from './lib/netfilter/select';
const [op, backend, json] = process.argv.slice(2);
const spec = JSON.parse(json);
const both = { nftables: true, iptables: true };
const d = makeDriver(backend, {});
const ops = {
  setupMasq: () => d.setup({ masq: spec }),
  checkMasq: () => d.check({ masq: spec }),
  teardownMasq: () => d.teardown(spec, ['masq']),
  teardownAll: () => teardownAll(spec, ['masq'], { available: both }),
};
const go = ops[op];
go().then(
  () => console.log(JSON.stringify({ ok: true })),
  (e) => console.log(JSON.stringify({ ok: false, code: e.code, msg: e.message })),
);
`;

type Op = 'setupMasq' | 'teardownMasq' | 'checkMasq' | 'teardownAll';

/** Runs one backend operation inside the sandbox; rejects with the backend's message on failure. */
async function nf(driver: string, ns: Netns, op: Op, backend: BackendName, spec: MasqSpec): Promise<void> {
  const r = await execOk(inNetns(ns.path, [process.execPath, driver, op, backend, JSON.stringify(spec)]));
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; code?: number; msg?: string };
  if (!out.ok) throw new Error(`[${out.code}] ${out.msg}`);
}

maybe('netfilter masquerade backends (root, sandbox netns)', () => {
  const reg = new Registry();
  let before = '';
  let driver = '';
  beforeAll(async () => {
    before = await hostRuleset();
    driver = join(reg.tempDir(), 'driver.js');
    buildSync({
      stdin: { contents: DRIVER_SOURCE, resolveDir: resolve(__dirname, '..'), loader: 'ts' },
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outfile: driver,
      logLevel: 'error',
    });
  });
  afterAll(async () => {
    await reg.cleanup();
    // Nothing of this suite may reach the machine's own ruleset.
    expect(await hostRuleset()).toBe(before);
  });

  const net = uniqueNetName('nf');
  const A = (): MasqSpec => ({ network: net, containerID: `ctr-a-${randomHex(4)}`, ifName: 'eth0', addresses: ['10.99.0.5/24', 'fd99::5/64'] });

  describe.each(['nftables', 'iptables'] as const)('%s', (name) => {
    let ns: Netns;
    let a: MasqSpec;
    let b: MasqSpec;
    const be = {
      setupMasq: (s: MasqSpec) => nf(driver, ns, 'setupMasq', name, s),
      teardownMasq: (s: MasqSpec) => nf(driver, ns, 'teardownMasq', name, s),
      checkMasq: (s: MasqSpec) => nf(driver, ns, 'checkMasq', name, s),
    };
    beforeAll(async () => {
      ns = await reg.netns('nf');
      a = A();
      // Same network and subnet, another container.
      b = { network: net, containerID: `ctr-b-${randomHex(4)}`, ifName: 'eth0', addresses: ['10.99.0.6/24'] };
    });

    /** What of A and B is in the sandbox, per backend's own layout. */
    async function present(): Promise<{ a: number; b: number }> {
      if (name === 'nftables') {
        const rules = await nftMasqRules(ns);
        const ca = nftComment(a.network, a.ifName, a.containerID);
        const cb = nftComment(b.network, b.ifName, b.containerID);
        return { a: rules.filter((r) => r.startsWith(ca + '|')).length, b: rules.filter((r) => r.startsWith(cb + '|')).length };
      }
      const text = (await iptSave(ns)) + (await iptSave(ns, true));
      const count = (chain: string): number => text.split('\n').filter((l) => l.includes(chain)).length;
      return { a: count(chainName(a.network, a.containerID)), b: count(chainName(b.network, b.containerID)) };
    }
    // nft: one rule per address. iptables: per family a chain line, ACCEPT, MASQUERADE, jump.
    const full = name === 'nftables' ? { a: 2, b: 1 } : { a: 8, b: 4 };

    it('setup of two containers puts both rule sets in place', async () => {
      await be.setupMasq(a);
      await be.setupMasq(b);
      expect(await present()).toEqual(full);
      if (name === 'nftables') {
        const text = (await execOk(inNetns(ns.path, ['nft', 'list', 'table', 'inet', 'cni_plugins_masquerade']))).stdout;
        expect(text).toMatch(/type nat hook postrouting priority srcnat/);
        expect(text).toContain('ip saddr 10.99.0.5 ip daddr != 10.99.0.0/24 masquerade');
        expect(text).toContain('ip6 saddr fd99::5 ip6 daddr != fd99::/64 masquerade');
      } else {
        const v4 = await iptSave(ns);
        const c = chainName(a.network, a.containerID);
        expect(v4).toContain(`-A POSTROUTING -s 10.99.0.5/32 -m comment --comment "name: \\"${net}\\" id: \\"${a.containerID}\\"" -j ${c}`);
        expect(v4).toContain(`-A ${c} ! -d 224.0.0.0/4 -m comment`);
        expect(await iptSave(ns, true)).toContain(`-A ${c} ! -d ff00::/8 -m comment`);
      }
    });

    it('check passes for both; setup again changes nothing', async () => {
      await be.checkMasq(a);
      await be.checkMasq(b);
      await be.setupMasq(a);
      expect(await present()).toEqual(full);
    });

    it("teardown of A with no addresses removes A's rules and leaves B's", async () => {
      await be.teardownMasq({ ...a, addresses: [] });
      expect(await present()).toEqual({ a: 0, b: full.b });
      await expect(be.checkMasq(a)).rejects.toThrow(/incomplete/);
      await be.checkMasq(b);
    });

    it('teardown twice is fine; after B goes nothing of ours is left', async () => {
      await be.teardownMasq({ ...a, addresses: [] });
      await be.teardownMasq(a);
      await be.teardownMasq(b);
      expect(await present()).toEqual({ a: 0, b: 0 });
      const v4 = await iptSave(ns);
      expect(v4).not.toMatch(/CNI-/);
    });
  });

  it('iptables: a setup whose IPv6 restore fails leaves nothing in IPv4 (the inverse applied by the real iptables-restore)', async () => {
    const ns = await reg.netns('nf');
    const other = { ...A(), addresses: ['10.99.0.7/24'] };
    await nf(driver, ns, 'setupMasq', 'iptables', other);
    const before4 = await iptSave(ns);
    // An ip6tables-restore that fails, first on PATH; everything else is the real tool.
    const bin = reg.tempDir();
    writeFileSync(join(bin, 'ip6tables-restore'), '#!/bin/sh\ncat >/dev/null\necho "ip6tables-restore: injected failure" >&2\nexit 1\n', { mode: 0o755 });
    const x = A();
    const r = await execOk(inNetns(ns.path, ['env', `PATH=${bin}:${process.env.PATH}`, process.execPath, driver, 'setupMasq', 'iptables', JSON.stringify(x)]));
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ ok: false, msg: expect.stringMatching(/\(ip6tables\).*injected failure/) });
    const strip = (t: string): string => t.replace(/^#.*$/gm, '');
    expect(strip(await iptSave(ns))).toBe(strip(before4));
    expect(await iptSave(ns)).not.toContain(chainName(x.network, x.containerID));
    expect(await iptSave(ns)).toContain(chainName(other.network, other.containerID));
  });

  it('teardownMasqAll removes rules whichever backend made them', async () => {
    const ns = await reg.netns('nf');
    const x = A();
    const y = { ...A(), ifName: 'eth1' };
    await nf(driver, ns, 'setupMasq', 'iptables', x);
    await nf(driver, ns, 'setupMasq', 'nftables', y);
    await nf(driver, ns, 'teardownAll', 'nftables', { ...x, addresses: [] });
    await nf(driver, ns, 'teardownAll', 'nftables', { ...y, addresses: [] });
    expect(await iptSave(ns)).not.toMatch(/CNI-/);
    expect(await iptSave(ns, true)).not.toMatch(/CNI-/);
    expect(await nftMasqRules(ns)).toEqual([]);
  });

  it('nftables rules written as the reference (knftables) writes them are found and removed by owner', async () => {
    const ns = await reg.netns('nf');
    const cid = `ctr-ref-${randomHex(4)}`;
    // The reference's comment, computed here independently of lib/netfilter/names.ts.
    const h = (s: string): string => createHash('sha512').update(s).digest('hex').slice(0, 16);
    const comment = `${h(net)}-${h(`eth0:${cid}`)}, net: ${net}, if: eth0, id: ${cid}`;
    const t = 'inet cni_plugins_masquerade';
    const script = [
      `add table ${t} { comment "Masquerading for plugins from github.com/containernetworking/plugins" ; }`,
      `add chain ${t} masq_checks { comment "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet" ; }`,
      `add chain ${t} postrouting { type nat hook postrouting priority srcnat ; }`,
      `flush chain ${t} postrouting`,
      `add rule ${t} postrouting ip daddr == 224.0.0.0/4  return`,
      `add rule ${t} postrouting ip6 daddr == ff00::/8  return`,
      `add rule ${t} postrouting goto masq_checks`,
      `add rule ${t} masq_checks ip saddr == 10.97.0.5 ip daddr != 10.97.0.0/24 masquerade comment "${comment}"`,
      '',
    ].join('\n');
    await execOk(inNetns(ns.path, ['nft', '-f', '-']), { stdin: script });
    const spec: MasqSpec = { network: net, containerID: cid, ifName: 'eth0', addresses: ['10.97.0.5/24'] };
    await nf(driver, ns, 'checkMasq', 'nftables', spec);
    // Our setup over it replaces the rule rather than adding a second one.
    await nf(driver, ns, 'setupMasq', 'nftables', spec);
    expect(await nftMasqRules(ns)).toEqual([`${comment}|10.97.0.5`]);
    await nf(driver, ns, 'teardownAll', 'nftables', { ...spec, addresses: [] });
    expect(await nftMasqRules(ns)).toEqual([]);
  });

  // The reference bridge in /usr/lib/cni (Debian 1.1.1) knows only iptables.
  const refBridge = '/usr/lib/cni/bridge';
  const withRef = existsSync(refBridge) && existsSync('/usr/lib/cni/host-local') ? it : it.skip;
  withRef('interop with the reference bridge (iptables): each removes what the other made', async () => {
    const host = await reg.sandboxHost();
    const ctr = await reg.netns('nfctr');
    const dir = reg.tempDir();
    const cid = uniqueContainerId();
    const conf = JSON.stringify({
      cniVersion: '1.0.0',
      name: net,
      type: 'bridge',
      bridge: uniqueBridgeName(),
      isGateway: true,
      ipMasq: true,
      ipam: { type: 'host-local', subnet: '10.98.0.0/24', dataDir: join(dir, 'ipam') },
    });
    writeFileSync(join(dir, 'conf.json'), conf);
    const env = (cmd: string): NodeJS.ProcessEnv => ({
      PATH: process.env.PATH,
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: cid,
      CNI_NETNS: ctr.path,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
    });
    const add = await execOk(inNetns(host.path, [refBridge]), { stdin: conf, env: env('ADD') });
    const ip = (JSON.parse(add.stdout) as { ips: { address: string }[] }).ips[0]!.address;
    const spec: MasqSpec = { network: net, containerID: cid, ifName: 'eth0', addresses: [ip] };
    const ours = {
      setupMasq: (s: MasqSpec) => nf(driver, host, 'setupMasq', 'iptables', s),
      teardownMasq: (s: MasqSpec) => nf(driver, host, 'teardownMasq', 'iptables', s),
      checkMasq: (s: MasqSpec) => nf(driver, host, 'checkMasq', 'iptables', s),
    };
    const chain = chainName(net, cid);

    // The reference's rules pass our check and go with our owner-only teardown.
    expect(await iptSave(host)).toContain(`-A POSTROUTING -s ${ip.split('/')[0]}/32 -m comment --comment "name: \\"${net}\\" id: \\"${cid}\\"" -j ${chain}`);
    await ours.checkMasq(spec);
    await ours.teardownMasq({ ...spec, addresses: [] });
    expect(await iptSave(host)).not.toContain(chain);

    // Ours go with the reference's DEL.
    await ours.setupMasq(spec);
    expect(await iptSave(host)).toContain(chain);
    await execOk(inNetns(host.path, [refBridge]), { stdin: conf, env: env('DEL') });
    expect(await iptSave(host)).not.toContain(chain);
  });
});
