#!/usr/bin/env node
// What matching config keys case-insensitively (lib/schema/keys.ts) costs a plugin start:
// canonicalKeys on the config containerd sends to portmap, timed in fresh Node processes (the
// first call is the one a plugin pays: no JIT, the fold index built on the way), and warm.
//
//   node build.mjs && node bench/keys.mjs [--runs N]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 30;

// A portmap config as containerd 1.6 writes it after bridge: PascalCase capability arguments
// and a prevResult with three interfaces.
const CONF = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'containerd-net',
  type: 'portmap',
  capabilities: { portMappings: true },
  runtimeConfig: { portMappings: [{ HostPort: 18080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }, { HostPort: 18443, ContainerPort: 443, Protocol: 'tcp', HostIP: '' }] },
  prevResult: {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'cni0', mac: '0a:58:0a:58:00:01' }, { name: 'veth1234', mac: '0a:58:0a:58:00:02' }, { name: 'eth0', mac: '0a:58:0a:58:00:03', sandbox: '/var/run/netns/cni-1' }],
    ips: [{ interface: 2, address: '10.88.0.5/16', gateway: '10.88.0.1' }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.88.0.1' }],
    dns: {},
  },
});

const probe = `
import { canonicalKeys } from './lib/schema/keys';
import { portmap } from './lib/generated/keys';
const conf = JSON.parse(process.env.CONF);
const t0 = process.hrtime.bigint();
const c = canonicalKeys(conf, portmap);
const cold = Number(process.hrtime.bigint() - t0) / 1e3;
if (c.runtimeConfig.portMappings[0].hostPort !== 18080) throw new Error('not canonical');
const n = 20000;
const t1 = process.hrtime.bigint();
for (let i = 0; i < n; i++) canonicalKeys(conf, portmap);
const warm = Number(process.hrtime.bigint() - t1) / 1e3 / n;
console.log(JSON.stringify({ cold, warm }));
`;

const dir = mkdtempSync(join(tmpdir(), 'bench-keys-'));
try {
  const out = join(dir, 'probe.cjs');
  await build({ stdin: { contents: probe, resolveDir: REPO, loader: 'ts' }, bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'warning' });
  writeFileSync(join(dir, 'conf.json'), CONF);
  const cold = [];
  const warm = [];
  for (let i = 0; i < runs; i++) {
    const r = JSON.parse(execFileSync(process.execPath, [out], { env: { ...process.env, CONF } }).toString());
    cold.push(r.cold);
    warm.push(r.warm);
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(`canonicalKeys on containerd's portmap config (${CONF.length} bytes), ${runs} fresh processes:`);
  console.log(`  first call (what a plugin start pays): median ${median(cold).toFixed(0)} µs, max ${Math.max(...cold).toFixed(0)} µs`);
  console.log(`  warm call: median ${median(warm).toFixed(2)} µs`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
