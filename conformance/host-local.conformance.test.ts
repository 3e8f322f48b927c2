// host-local IPAM, driven directly as a runtime's main plugin would delegate to it: leases on
// disk (`<dataDir>/<net>/<ip>` = "<cid>\r\n<ifname>", last_reserved_ip.<n>), round-robin,
// requested IPs, exhaustion, dual-stack, GC/STATUS (1.1.0), and the skel error contract.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { leaseFiles as leaseFilesIn } from './helpers/leases';
import { Registry, type Netns, uniqueContainerId, uniqueNetName, uniqueSubnet24 } from './helpers/netns';
import { IMPL, PLUGIN_DIR, SPEC_VERSIONS, knownReferenceBug, supportedVersions, versionGap, versionGte } from './helpers/plugin-dir';
import { type Json, type PluginResult, describeRun, expectCniError, expectOk, runPlugin } from './helpers/run-plugin';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

interface Net {
  conf: Json;
  dataDir: string;
  leaseDir: string;
}

maybe(`host-local [${IMPL}: ${PLUGIN_DIR}]`, () => {
  const reg = new Registry();
  let host: Netns;
  let ctr: Netns;
  beforeAll(async () => {
    host = await reg.sandboxHost();
    // host-local never enters the netns, but skel requires CNI_NETNS on ADD/DEL/CHECK.
    ctr = await reg.netns('ctr');
  });
  afterAll(() => reg.cleanup());

  function makeNet(v: string, ranges: Json[][], extra: Json = {}): Net {
    const dataDir = reg.tempDir();
    const name = uniqueNetName('hl');
    return {
      conf: { cniVersion: v, name, type: 'bridge', ipam: { type: 'host-local', dataDir, ranges, ...extra } },
      dataDir,
      leaseDir: join(dataDir, name),
    };
  }

  function call(command: 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS', conf: Json, containerId: string, opts: { ifname?: string; args?: string } = {}): Promise<PluginResult> {
    return runPlugin({ plugin: 'host-local', command, host, config: conf, containerId, netns: ctr.path, ifname: opts.ifname ?? 'eth0', args: opts.args });
  }

  const leaseFiles = (n: Net): string[] => leaseFilesIn(n.leaseDir);

  const ipOf = (cidr: string): string => cidr.split('/')[0]!;

  describe.each(SPEC_VERSIONS)('cniVersion %s', (v) => {
    const it = knownReferenceBug(versionGap('host-local', v));
    const legacy = !versionGte(v, '1.0.0');

    it('ADD → lease file "<cid>\\r\\n<ifname>" + last_reserved_ip.0 → CHECK → DEL → lease gone → DEL again', async () => {
      const s = uniqueSubnet24();
      const n = makeNet(v, [[{ subnet: s.subnet }]], { routes: [{ dst: '0.0.0.0/0' }] });
      const cid = uniqueContainerId();
      const r = expectOk(await call('ADD', n.conf, cid), 'ADD').json;

      expect(r.cniVersion).toBe(v);
      expect(r.ips).toHaveLength(1);
      const ip0 = r.ips[0];
      expect(ip0.address).toBe(`${s.prefix}.2/24`);
      expect(ip0.gateway).toBe(s.gateway);
      expect(ip0).not.toHaveProperty('interface'); // an IPAM result has no interfaces
      if (legacy) expect(ip0.version).toBe('4');
      else expect(ip0).not.toHaveProperty('version');
      expect(r.routes).toEqual([{ dst: '0.0.0.0/0' }]);
      expect(r.interfaces ?? []).toEqual([]);

      const ip = ipOf(ip0.address);
      expect(leaseFiles(n)).toEqual([ip]);
      expect(readFileSync(join(n.leaseDir, ip), 'utf8')).toBe(`${cid}\r\neth0`);
      expect(readFileSync(join(n.leaseDir, 'last_reserved_ip.0'), 'utf8').trim()).toBe(ip);

      if (versionGte(v, '0.4.0')) expectOk(await call('CHECK', { ...n.conf, prevResult: r }, cid), 'CHECK');

      expectOk(await call('DEL', n.conf, cid), 'DEL');
      expect(leaseFiles(n)).toEqual([]);
      expectOk(await call('DEL', n.conf, cid), 'second DEL');
      // containerd's second DEL: CNI_NETNS="" (host-local never needs the netns).
      expectOk(await runPlugin({ plugin: 'host-local', command: 'DEL', host, config: n.conf, containerId: cid, netns: '', ifname: 'eth0' }), 'DEL with an empty CNI_NETNS');

      if (versionGte(v, '0.4.0')) {
        const chk = await call('CHECK', { ...n.conf, prevResult: r }, cid);
        expect(chk.code).not.toBe(0); // no lease for this container any more
      }
    });

    it('dual-stack ranges give one IPv4 and one IPv6 address with a lease each', async () => {
      const s = uniqueSubnet24();
      const v6 = `fd00:${s.prefix.split('.')[1]}:${s.prefix.split('.')[2]}::`;
      const n = makeNet(v, [[{ subnet: s.subnet }], [{ subnet: `${v6}/64` }]]);
      const cid = uniqueContainerId();
      const r = expectOk(await call('ADD', n.conf, cid), 'ADD').json;
      expect(r.ips.map((i: Json) => i.address)).toEqual([`${s.prefix}.2/24`, `${v6}2/64`]);
      if (legacy) expect(r.ips.map((i: Json) => i.version)).toEqual(['4', '6']);
      expect(leaseFiles(n)).toEqual([`${s.prefix}.2`, `${v6}2`].sort());
      expect(readFileSync(join(n.leaseDir, 'last_reserved_ip.1'), 'utf8').trim()).toBe(`${v6}2`);
      expectOk(await call('DEL', n.conf, cid), 'DEL');
      expect(leaseFiles(n)).toEqual([]);
    });
  });

  describe('allocation policy (cniVersion 1.0.0)', () => {
    const v = '1.0.0';

    test('round-robin: after DEL of the first container, the next ADD gets the next address', async () => {
      const s = uniqueSubnet24();
      const n = makeNet(v, [[{ subnet: s.subnet }]]);
      const c1 = uniqueContainerId();
      const c2 = uniqueContainerId();
      expect(expectOk(await call('ADD', n.conf, c1)).json.ips[0].address).toBe(`${s.prefix}.2/24`);
      expectOk(await call('DEL', n.conf, c1));
      expect(expectOk(await call('ADD', n.conf, c2)).json.ips[0].address).toBe(`${s.prefix}.3/24`);
      expect(leaseFiles(n)).toEqual([`${s.prefix}.3`]);
      expect(readFileSync(join(n.leaseDir, 'last_reserved_ip.0'), 'utf8').trim()).toBe(`${s.prefix}.3`);
    });

    test('a second ADD for the same container and ifname is refused (no duplicate allocation)', async () => {
      const s = uniqueSubnet24();
      const n = makeNet(v, [[{ subnet: s.subnet }]]);
      const c1 = uniqueContainerId();
      expectOk(await call('ADD', n.conf, c1));
      const again = await call('ADD', n.conf, c1);
      const err = expectCniError(again);
      expect(`${err.msg} ${err.details ?? ''}`).toMatch(/duplicate allocation|already/i);
      expect(leaseFiles(n)).toEqual([`${s.prefix}.2`]);
    });

    test('rangeStart/rangeEnd bound the pool', async () => {
      const s = uniqueSubnet24();
      const n = makeNet(v, [[{ subnet: s.subnet, rangeStart: `${s.prefix}.100`, rangeEnd: `${s.prefix}.101` }]]);
      const a = expectOk(await call('ADD', n.conf, uniqueContainerId())).json.ips[0].address;
      const b = expectOk(await call('ADD', n.conf, uniqueContainerId())).json.ips[0].address;
      expect([a, b]).toEqual([`${s.prefix}.100/24`, `${s.prefix}.101/24`]);
      expectCniError(await call('ADD', n.conf, uniqueContainerId()));
    });

    test('requested IP via runtimeConfig.ips (the "ips" capability)', async () => {
      const s = uniqueSubnet24();
      const n = makeNet(v, [[{ subnet: s.subnet }]]);
      const conf = { ...n.conf, runtimeConfig: { ips: [`${s.prefix}.42/24`] } };
      const cid = uniqueContainerId();
      expect(expectOk(await call('ADD', conf, cid)).json.ips[0].address).toBe(`${s.prefix}.42/24`);
      expect(readFileSync(join(n.leaseDir, `${s.prefix}.42`), 'utf8')).toBe(`${cid}\r\neth0`);
      // Asking for a taken address fails and does not disturb the owner's lease.
      const clash = await call('ADD', conf, uniqueContainerId());
      expectCniError(clash);
      expect(readFileSync(join(n.leaseDir, `${s.prefix}.42`), 'utf8')).toBe(`${cid}\r\neth0`);
    });

    test('requested IP via CNI_ARGS IP= (deprecated convention)', async () => {
      const s = uniqueSubnet24();
      const n = makeNet(v, [[{ subnet: s.subnet }]]);
      const r = expectOk(await call('ADD', n.conf, uniqueContainerId(), { args: `IgnoreUnknown=1;IP=${s.prefix}.77` })).json;
      expect(r.ips[0].address).toBe(`${s.prefix}.77/24`);
      expect(leaseFiles(n)).toEqual([`${s.prefix}.77`]);
    });

    test('exhausted range: a /30 has one usable address after the gateway; the second ADD names the range', async () => {
      const s = uniqueSubnet24();
      const n = makeNet(v, [[{ subnet: `${s.prefix}.0/30` }]]);
      const c1 = uniqueContainerId();
      expect(expectOk(await call('ADD', n.conf, c1)).json.ips[0].address).toBe(`${s.prefix}.2/30`);
      const second = await call('ADD', n.conf, uniqueContainerId());
      const err = expectCniError(second);
      expect(`${err.msg} ${err.details ?? ''}`).toContain(`${s.prefix}.2`);
      expect(`${err.msg} ${err.details ?? ''}`).toMatch(/no IP addresses available/i);
      expect(leaseFiles(n)).toEqual([`${s.prefix}.2`]); // the failed ADD left nothing behind
    });
  });

  describe('GC and STATUS (cniVersion 1.1.0)', () => {
    const v = '1.1.0';

    knownReferenceBug(versionGap('host-local', v) ?? 'no-gc')('GC removes leases not in cni.dev/valid-attachments and keeps the rest', async () => {
      const s = uniqueSubnet24();
      const n = makeNet(v, [[{ subnet: s.subnet }]]);
      const keep = uniqueContainerId();
      const stale = uniqueContainerId();
      const keepIp = ipOf(expectOk(await call('ADD', n.conf, keep)).json.ips[0].address);
      const staleIp = ipOf(expectOk(await call('ADD', n.conf, stale)).json.ips[0].address);
      // A lease left by a crash (written the way the reference writes them).
      writeFileSync(join(n.leaseDir, `${s.prefix}.200`), `crashed-ctr\r\neth0`);
      const gcConf = { cniVersion: v, name: n.conf.name, type: n.conf.type, ipam: n.conf.ipam, 'cni.dev/valid-attachments': [{ containerID: keep, ifname: 'eth0' }] };
      const gc = await runPlugin({ plugin: 'host-local', command: 'GC', host, config: gcConf });
      if (gc.code !== 0) throw new Error(`GC failed:\n${describeRun(gc)}`);
      expect(leaseFiles(n)).toEqual([keepIp]);
      expect(existsSync(join(n.leaseDir, staleIp))).toBe(false);
    });

    knownReferenceBug(versionGap('host-local', v) ?? 'no-status')('STATUS succeeds with free addresses and returns code 50 once the range is exhausted', async () => {
      const s = uniqueSubnet24();
      const n = makeNet(v, [[{ subnet: `${s.prefix}.0/30` }]]);
      const ok = await runPlugin({ plugin: 'host-local', command: 'STATUS', host, config: n.conf });
      if (ok.code !== 0) throw new Error(`STATUS on a free range failed:\n${describeRun(ok)}`);
      expectOk(await call('ADD', n.conf, uniqueContainerId()));
      const full = await runPlugin({ plugin: 'host-local', command: 'STATUS', host, config: n.conf });
      expectCniError(full, 50);
    });
  });

  describe('error contract (skel)', () => {
    test('VERSION lists every spec version the suite exercises', () => {
      const sv = supportedVersions('host-local');
      for (const v of SPEC_VERSIONS) {
        if (v === '1.1.0' && IMPL === 'reference') continue; // known gap: no-spec-1.1.0
        expect(sv).toContain(v);
      }
    });

    test('invalid JSON → code 6 on stdout, non-zero exit', async () => {
      expectCniError(await call('ADD', '{"cniVersion":"1.0.0","name":', uniqueContainerId()), 6);
    });

    test('missing CNI_CONTAINERID and CNI_IFNAME → code 4 naming both', async () => {
      const n = makeNet('1.0.0', [[{ subnet: uniqueSubnet24().subnet }]]);
      const r = await runPlugin({ plugin: 'host-local', command: 'ADD', host, config: n.conf, netns: ctr.path });
      const err = expectCniError(r, 4);
      expect(err.msg).toContain('CNI_CONTAINERID');
      expect(err.msg).toContain('CNI_IFNAME');
      expect(leaseFiles(n)).toEqual([]);
    });

    test('unsupported cniVersion "0.9.9" → code 1 and no lease', async () => {
      const n = makeNet('0.9.9', [[{ subnet: uniqueSubnet24().subnet }]]);
      const err = expectCniError(await call('ADD', n.conf, uniqueContainerId()), 1);
      expect(`${err.msg} ${err.details ?? ''}`).toContain('0.9.9');
      expect(leaseFiles(n)).toEqual([]);
    });

    test('CHECK with cniVersion 0.3.1 → code 1 ("config version does not allow CHECK")', async () => {
      const n = makeNet('0.3.1', [[{ subnet: uniqueSubnet24().subnet }]]);
      const cid = uniqueContainerId();
      const r = expectOk(await call('ADD', n.conf, cid)).json;
      const err = expectCniError(await call('CHECK', { ...n.conf, prevResult: r }, cid), 1);
      expect(err.msg).toMatch(/CHECK/);
    });
  });
});
