#!/usr/bin/env node
// The demo: Docker's bridge networking walkthrough, done with our CNI plugins the way a runtime
// drives them. Everything happens inside a sandbox "host" network namespace this script makes
// and removes; the machine's own interfaces and rules are never touched.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = process.env.CNI_PLUGIN_DIR ?? new URL('../dist/bin', import.meta.url).pathname;
const tag = Math.random().toString(16).slice(2, 6);
const HOST = `cni-demo-host-${tag}`;
const hostPath = `/run/netns/${HOST}`;
const dataDir = mkdtempSync(join(tmpdir(), 'cni-demo-'));
const made = [];

function sh(argv, { input, check = true } = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: 'utf8' });
  if (check && r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr || r.stdout}`);
  return r;
}
const inHost = (argv, opts) => sh(['nsenter', `--net=${hostPath}`, '--', ...argv], opts);
const say = (s = '') => console.log(s);
const step = (s) => say(`\n== ${s}`);

// The two networks of the walkthrough: Docker's default bridge and a user-defined one.
const networks = {
  bridge: { bridge: 'docker0', subnet: '172.17.0.0/16', gateway: '172.17.0.1', ipMasq: true },
  'alpine-net': { bridge: 'br-alpine', subnet: '172.18.0.0/16', gateway: '172.18.0.1', ipMasq: true },
};
const netConf = (name) => {
  const n = networks[name];
  return {
    cniVersion: '1.1.0',
    name,
    type: 'bridge',
    bridge: n.bridge,
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: n.ipMasq,
    ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: n.subnet, gateway: n.gateway }]] },
  };
};

/** One CNI call, as a runtime makes it: env vars, config on stdin, JSON on stdout. */
function cni(plugin, command, conf, { cid, netns, ifName }) {
  const env = { ...process.env, CNI_COMMAND: command, CNI_CONTAINERID: cid, CNI_NETNS: netns, CNI_IFNAME: ifName, CNI_PATH: BIN };
  const r = spawnSync('nsenter', [`--net=${hostPath}`, '--', join(BIN, plugin)], { input: JSON.stringify(conf), env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${plugin} ${command} failed: ${r.stdout || r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
}

const containers = [
  { name: 'alpine1', nets: ['alpine-net', 'bridge'] },
  { name: 'alpine2', nets: ['alpine-net'] },
  { name: 'alpine3', nets: ['bridge'] },
];
const attachments = [];

function cleanup() {
  for (const a of attachments.reverse()) {
    try {
      cni('bridge', 'DEL', { ...netConf(a.net), prevResult: a.result }, a);
    } catch (e) {
      say(`   (cleanup) ${e.message}`);
    }
  }
  for (const ns of made.reverse()) sh(['ip', 'netns', 'del', ns], { check: false });
  rmSync(dataDir, { recursive: true, force: true });
}

try {
  step('Setting up a sandbox host');
  sh(['ip', 'netns', 'add', HOST]);
  made.push(HOST);
  inHost(['ip', 'link', 'set', 'lo', 'up']);
  say(`   network namespace ${HOST} stands in for the host; leases go to ${dataDir}`);

  step('Starting three containers (each gets its own network namespace and lo)');
  for (const c of containers) {
    c.ns = `cni-demo-${c.name}-${tag}`;
    sh(['ip', 'netns', 'add', c.ns]);
    made.push(c.ns);
    c.path = `/run/netns/${c.ns}`;
    c.cid = `${c.name}-${tag}`;
    cni('loopback', 'ADD', { cniVersion: '1.1.0', name: 'lo', type: 'loopback' }, { cid: c.cid, netns: c.path, ifName: 'lo' });
    c.nets.forEach((net, i) => {
      const att = { net, cid: c.cid, netns: c.path, ifName: `eth${i}` };
      att.result = cni('bridge', 'ADD', netConf(net), att);
      attachments.push(att);
      const ip = att.result.ips[0].address;
      c[net] = { ip: ip.split('/')[0], cidr: ip, mac: att.result.interfaces[2].mac, ifName: att.ifName };
      say(`   ${c.name}: attached to ${net} (${networks[net].bridge}) as ${att.ifName}, got ${ip}`);
    });
  }

  step('Inspect: who is where');
  say('   CONTAINER  NETWORK     IFACE  MAC                IPV4');
  for (const c of containers) for (const net of c.nets) {
    const a = c[net];
    say(`   ${c.name.padEnd(10)} ${net.padEnd(11)} ${a.ifName.padEnd(6)} ${a.mac}  ${a.cidr}`);
  }
  for (const [name, n] of Object.entries(networks)) {
    const addrs = JSON.parse(inHost(['ip', '-json', 'addr', 'show', 'dev', n.bridge]).stdout)[0].addr_info.filter((x) => x.family === 'inet');
    say(`   bridge ${n.bridge} (${name}) holds the gateway ${addrs.map((x) => `${x.local}/${x.prefixlen}`).join(', ')}`);
  }

  step('Ping by IP within a network');
  const ping = (from, to, why) => {
    const r = sh(['ip', 'netns', 'exec', from.ns, 'ping', '-c', '1', '-W', '1', to], { check: false });
    say(`   ${from.name} -> ${to} (${why}): ${r.status === 0 ? 'reply received' : 'no reply'}`);
    if (r.status !== 0) throw new Error(`ping ${to} from ${from.name} failed`);
  };
  const [a1, a2, a3] = containers;
  ping(a1, a2['alpine-net'].ip, 'alpine2 on alpine-net');
  ping(a2, a1['alpine-net'].ip, 'alpine1 on alpine-net');
  ping(a3, a1.bridge.ip, 'alpine1 on the default bridge');
  ping(a3, networks.bridge.gateway, 'the docker0 gateway');

  step('Outbound NAT: the masquerade rules the plugin made (one set per container)');
  const nft = inHost(['nft', 'list', 'ruleset'], { check: false }).stdout.trim();
  const ipt = inHost(['iptables-save', '-t', 'nat'], { check: false }).stdout.split('\n').filter((l) => /CNI|MASQ/.test(l)).join('\n');
  say((nft || ipt || '   (none found)').split('\n').map((l) => `   ${l}`).join('\n'));

  step('Stopping the containers (DEL in reverse order, as a runtime does)');
  while (attachments.length) {
    const a = attachments.pop();
    cni('bridge', 'DEL', { ...netConf(a.net), prevResult: a.result }, a);
    say(`   ${a.cid}: detached from ${a.net}, lease released`);
  }
  for (const c of containers) cni('loopback', 'DEL', { cniVersion: '1.1.0', name: 'lo', type: 'loopback' }, { cid: c.cid, netns: c.path, ifName: 'lo' });

  step('What is left');
  const leases = Object.keys(networks).flatMap((n) => (existsSync(join(dataDir, n)) ? readdirSync(join(dataDir, n)).filter((f) => /^\d/.test(f)) : []));
  const veths = JSON.parse(inHost(['ip', '-json', 'link', 'show', 'type', 'veth']).stdout);
  const rulesLeft = (inHost(['nft', 'list', 'ruleset'], { check: false }).stdout.match(/masquerade/g) ?? []).length +
    inHost(['iptables-save', '-t', 'nat'], { check: false }).stdout.split('\n').filter((l) => l.startsWith('-A CNI-')).length;
  say(`   leases: ${leases.length}, veth interfaces: ${veths.length}, masquerade rules: ${rulesLeft}`);
  say('   (the bridges stay, as with the reference plugins; they go away with the sandbox)');
  if (leases.length || veths.length || rulesLeft) throw new Error('teardown left something behind');
  say('\nDone: three containers on two bridge networks, addresses from host-local, pings answered, NAT set up and removed.');
} catch (e) {
  console.error(`\ndemo failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
