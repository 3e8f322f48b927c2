#!/usr/bin/env node
// The demo: Docker's networking walkthrough, done with our CNI plugins the way a runtime drives
// them (network lists run as libcni runs them). Docker's default `bridge` network and a
// user-defined `alpine-net`, three containers, name resolution, isolation between the networks,
// a published port, and the other modes: --network none, host, container:<name>, macvlan, and an
// overlay across three hosts with etcd (demo/overlay.mjs).
// Everything happens inside a sandbox "host" network namespace (plus container namespaces and a
// "LAN neighbour" beside it) that this script makes and removes; temp dirs live under /tmp.
// The machine's own interfaces, firewall, /var/lib/cni and /run/containers are never touched.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  NetworkList, PluginError, Sandbox, cniCall, dnsmasqUnder, filesUnder, indent, ping, say, startTcpServer, tcpConnect, withResolvConf,
} from './lib.mjs';
import { overlayScenes } from './overlay.mjs';

const step = (s) => say(`\n== ${s}`);
const note = (s) => say(`   ${s}`);
const failed = [];
const expect = (ok, what) => {
  if (!ok) throw new Error(what);
};

/** A scene: its failure is printed and counted, and the demo goes on with the next one. */
async function scene(title, fn) {
  step(title);
  try {
    await fn();
  } catch (e) {
    failed.push(title);
    say(`   SCENE FAILED: ${e.message}`);
  }
}

const sb = new Sandbox();
const host = sb.host;
const dataDir = sb.tempDir('leases'); // host-local's leases (instead of /var/lib/cni/networks)
const cacheDir = sb.tempDir('cache'); // libcni's result cache (instead of /var/lib/cni)
const runDir = sb.tempDir('dnsname'); // dnsname's dnsmasq files (instead of /run/containers/cni/dnsname)
const tuningDir = sb.tempDir('tuning'); // tuning's backups (instead of /run/cni/tuning)
const LAN = { host: '192.168.100.2', neighbour: '192.168.100.1', subnet: '192.168.100.0/24' };
const DOMAIN = 'alpine-net.internal';
const HOST_PORT = 8080;

// ---- The networks, as conflists (what `docker network create` would make) -----------------
const bridgeNet = (name, br, prefix, withDns) => {
  const plugins = [
    {
      type: 'bridge', bridge: br, isGateway: true, isDefaultGateway: true, ipMasq: true, hairpinMode: true,
      ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: `${prefix}.0.0/16`, gateway: `${prefix}.0.1` }]] },
    },
    { type: 'portmap', capabilities: { portMappings: true } },
    { type: 'firewall', ingressPolicy: 'same-bridge' },
    // Docker sets this in every container so a non-root process may listen on port 80.
    { type: 'tuning', sysctl: { 'net.ipv4.ip_unprivileged_port_start': '0' }, dataDir: tuningDir },
  ];
  if (withDns) plugins.push({ type: 'dnsname', domainName: DOMAIN, runDir, capabilities: { aliases: true } });
  return new NetworkList(host, cacheDir, { cniVersion: '1.1.0', name, plugins });
};
const nets = {
  bridge: bridgeNet('bridge', 'docker0', '172.17', false),
  'alpine-net': bridgeNet('alpine-net', 'br-alpine', '172.18', true),
  'lan-net': new NetworkList(host, cacheDir, {
    cniVersion: '1.1.0',
    name: 'lan-net',
    plugins: [{
      type: 'macvlan', master: 'eth0', mode: 'bridge',
      ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: LAN.subnet, rangeStart: '192.168.100.200', gateway: LAN.neighbour }]], routes: [{ dst: '0.0.0.0/0' }] },
    }],
  }),
};

const attachments = []; // every live attachment, in ADD order; teardown runs them in reverse
const containers = {};
const lo = { cniVersion: '1.1.0', name: 'lo', type: 'loopback' };

/** `docker run --name <name>`: a netns, lo up (loopback plugin), then each network list. */
function run(name, { networks = [], ports, aliases, loopback = true } = {}) {
  const c = { name, cid: `${name}-${sb.tag}`, ns: sb.netns(name), nets: {} };
  containers[name] = c;
  if (loopback) {
    const r = cniCall(host, 'loopback', 'ADD', lo, { cid: c.cid, netns: c.ns.path, ifName: 'lo' });
    if (r.code !== 0) throw new PluginError('loopback', 'ADD', r);
    c.loopback = true;
  }
  networks.forEach((netName, i) => {
    const att = {
      cid: c.cid, netns: c.ns.path, ifName: `eth${i}`,
      // What podman sends: the container's name, which dnsname registers.
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=${name}`,
      capabilityArgs: { ...(ports ? { portMappings: ports } : {}), ...(aliases ? { aliases: { [netName]: aliases } } : {}) },
    };
    const a = attach(c, nets[netName], att);
    const ifc = a.result.interfaces.findIndex((x) => x.name === att.ifName && x.sandbox);
    const ip = a.result.ips.find((x) => x.interface === ifc);
    c.nets[netName] = { ...a, ip: ip.address.split('/')[0], cidr: ip.address, mac: a.result.interfaces[ifc].mac };
    const chain = nets[netName].list.plugins.map((p) => p.type).join(' → ');
    note(`${name}: joined ${netName} as ${att.ifName}, got ${ip.address}   (${chain})`);
  });
  return c;
}

/** ADD a network list and remember the attachment for the teardown. */
function attach(c, net, att) {
  const a = net.add(att);
  attachments.push(a);
  return a;
}

/** DEL of one attachment (network list in reverse, with the cached result). */
function detach(a) {
  attachments.splice(attachments.indexOf(a), 1);
  a.net.del(a);
}

const pingLine = (from, to, why, want = true) => {
  const ok = ping(sb, from.ns, to);
  note(`${from.name} -> ${to} (${why}): ${ok ? 'reply received' : 'no reply'}${ok === want ? '' : '   <-- UNEXPECTED'}`);
  expect(ok === want, `${from.name} -> ${to}: expected ${want ? 'a reply' : 'no reply'}`);
};
const brief = (ns, what) => sb.run(ns, ['ip', '-br', what]).stdout.trim();

let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const pid of dnsmasqUnder(runDir)) process.kill(pid, 'SIGKILL'); // only there if a DEL failed
  sb.destroy();
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => {
  cleanup();
  process.exit(130);
});

try {
let setupOk = false;
try {
  step('Setting up the sandbox host');
  sb.run(host, ['ip', 'link', 'set', 'lo', 'up']);
  // Its "physical" NIC eth0 on a LAN, with one neighbour on the other end (a veth pair: this
  // kernel has no dummy module). The macvlan network uses eth0 as its parent.
  const lan = sb.netns('lan');
  sb.run(host, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lan.path]);
  sb.run(host, ['ip', 'addr', 'add', `${LAN.host}/24`, 'dev', 'eth0']);
  sb.run(host, ['ip', 'link', 'set', 'eth0', 'up']);
  sb.run(lan, ['ip', 'link', 'set', 'lo', 'up']);
  sb.run(lan, ['ip', 'addr', 'add', `${LAN.neighbour}/24`, 'dev', 'eth0']);
  sb.run(lan, ['ip', 'link', 'set', 'eth0', 'up']);
  containers.neighbour = { name: 'LAN neighbour', ns: lan };
  note(`network namespace ${host.name} stands in for the host; its eth0 is ${LAN.host}/24 on a LAN`);
  note(`whose other machine (${lan.name}) is ${LAN.neighbour}. Temp dirs: leases ${dataDir},`);
  note(`libcni cache ${cacheDir}, dnsmasq files ${runDir}.`);
  note('Networks (each a conflist, run as libcni runs it: ADD in order with prevResult, DEL in reverse):');
  for (const n of Object.values(nets)) note(`  ${n.name.padEnd(11)} ${n.list.plugins.map((p) => p.type).join(' → ')}`);

  step('docker run: three containers on the two bridge networks');
  note('alpine1 on alpine-net and the default bridge; alpine2 on alpine-net with -p 8080:80 and the alias "web";');
  note('alpine3 on the default bridge only.');
  run('alpine1', { networks: ['alpine-net', 'bridge'] });
  run('alpine2', { networks: ['alpine-net'], ports: [{ hostPort: HOST_PORT, containerPort: 80, protocol: 'tcp' }], aliases: ['web'] });
  run('alpine3', { networks: ['bridge'] });
  setupOk = true;
} catch (e) {
  failed.push('setup');
  say(`   SETUP FAILED: ${e.message}`);
}

const { alpine1: a1, alpine2: a2, alpine3: a3 } = containers;
if (setupOk) {
  await scene('docker network inspect: who is where', () => {
    note('CONTAINER  NETWORK     IFACE  MAC                IPV4');
    for (const c of [a1, a2, a3]) for (const [net, a] of Object.entries(c.nets)) {
      note(`${c.name.padEnd(10)} ${net.padEnd(11)} ${a.ifName.padEnd(6)} ${a.mac}  ${a.cidr}`);
    }
    for (const n of [nets.bridge, nets['alpine-net']]) {
      const b = n.list.plugins[0].bridge;
      const addrs = JSON.parse(sb.run(host, ['ip', '-json', 'addr', 'show', 'dev', b]).stdout)[0].addr_info.filter((x) => x.family === 'inet');
      note(`bridge ${b} (${n.name}) holds the gateway ${addrs.map((x) => `${x.local}/${x.prefixlen}`).join(', ')}`);
    }
    const v = sb.run(a2.ns, ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start']).stdout.trim();
    note(`tuning set net.ipv4.ip_unprivileged_port_start=${v} in each container (as Docker does; a new netns has 1024)`);
    expect(v === '0', 'tuning did not set ip_unprivileged_port_start');
  });

  await scene('Ping by IP within a network', () => {
    pingLine(a1, a2.nets['alpine-net'].ip, 'alpine2 on alpine-net');
    pingLine(a2, a1.nets['alpine-net'].ip, 'alpine1 on alpine-net');
    pingLine(a3, a1.nets.bridge.ip, 'alpine1 on the default bridge');
    pingLine(a3, '172.17.0.1', 'the docker0 gateway');
  });

  await scene('Name resolution on the user-defined network (dnsname)', () => {
    note('Docker resolves container names on user-defined networks only. dnsname runs one dnsmasq for');
    note('alpine-net on its gateway and registers each container under its name (K8S_POD_NAME in CNI_ARGS)');
    note('and aliases (runtimeConfig.aliases). The runtime writes the ADD result\'s dns into resolv.conf:');
    const dns = a1.nets['alpine-net'].result.dns ?? {};
    note(`  alpine1's resolv.conf: nameserver ${(dns.nameservers ?? []).join(', ')}; search ${(dns.search ?? []).join(' ')}`);
    const hosts = readFileSync(join(runDir, 'alpine-net', 'addnhosts'), 'utf8').trim();
    note('  the names dnsmasq serves (its addnhosts file):');
    say(indent(hosts, '     | '));
    const first = (r) => (r.stdout + r.stderr).trim().split('\n')[0];
    const byName = withResolvConf(sb, a1.ns, dns, ['busybox', 'ping', '-c', '1', '-W', '2', 'alpine2']);
    note(`alpine1$ ping -c 1 alpine2      -> ${first(byName)} ... ${byName.status === 0 ? 'reply received' : 'no reply'}`);
    expect(byName.status === 0 && byName.stdout.includes(a2.nets['alpine-net'].ip), 'alpine1 could not ping alpine2 by name');
    const alias = withResolvConf(sb, a1.ns, dns, ['busybox', 'nslookup', 'web']);
    const aliasAddr = /Name:\s*\S+\s*\nAddress:\s*(\S+)/.exec(alias.stdout)?.[1];
    note(`alpine1$ nslookup web          -> ${aliasAddr ?? alias.stdout.trim()} (alias of alpine2)`);
    expect(aliasAddr === a2.nets['alpine-net'].ip, 'the alias "web" did not resolve to alpine2');
    const full = withResolvConf(sb, a1.ns, dns, ['busybox', 'nslookup', `alpine2.${DOMAIN}`]);
    note(`alpine1$ nslookup alpine2.${DOMAIN} -> ${/Name:\s*\S+\s*\nAddress:\s*(\S+)/.exec(full.stdout)?.[1] ?? full.stdout.trim()}`);
    const three = withResolvConf(sb, a1.ns, dns, ['busybox', 'ping', '-c', '1', '-W', '1', 'alpine3']);
    note(`alpine1$ ping -c 1 alpine3      -> ${first(three)}   (alpine3 is on the default bridge: no name there)`);
    expect(three.status !== 0 && /bad address/.test(three.stdout + three.stderr), 'alpine3 resolved from alpine-net');
    const nx = withResolvConf(sb, a1.ns, dns, ['busybox', 'nslookup', 'alpine3']);
    note(`alpine1$ nslookup alpine3       -> ${(nx.stdout + nx.stderr).split('\n').find((l) => /NXDOMAIN|can't find/.test(l))?.trim() ?? nx.stdout.trim()}`);
    expect(/NXDOMAIN/.test(nx.stdout + nx.stderr), 'expected NXDOMAIN for alpine3');
  });

  await scene('Isolation between networks (firewall ingressPolicy: same-bridge on both)', () => {
    note('Docker isolates its networks from each other. The host routes between docker0 and br-alpine,');
    note('so alpine3 reaches the alpine-net gateway (an address of the host), but the firewall drops');
    note('forwarded traffic from one bridge to another:');
    pingLine(a3, '172.18.0.1', 'alpine-net\'s gateway, on the host');
    pingLine(a3, a2.nets['alpine-net'].ip, 'alpine2 on alpine-net', false);
    pingLine(a3, a1.nets['alpine-net'].ip, 'alpine1 on alpine-net', false);
    pingLine(a1, a2.nets['alpine-net'].ip, 'alpine2, same network');
    pingLine(a1, a3.nets.bridge.ip, 'alpine3, through alpine1\'s own docker0 interface');
    const nft = sb.run(host, ['nft', 'list', 'table', 'inet', 'cni_ts_firewall'], { check: false }).stdout;
    const iso = nft.split('\n').filter((l) => /drop|isolation_stage_2/.test(l) && !/chain/.test(l)).map((l) => l.trim());
    note('the isolation rules the firewall plugin made (nftables, table inet cni_ts_firewall):');
    say(indent(iso.join('\n'), '     | '));
  });

  await scene(`Published port: docker run -p ${HOST_PORT}:80 alpine2 (portmap)`, async () => {
    await startTcpServer(sb, a2.ns, 80, 'hello from alpine2');
    note('a tiny python3 server listens on port 80 in alpine2; portmap got runtimeConfig.portMappings');
    note(`[{hostPort: ${HOST_PORT}, containerPort: 80, protocol: tcp}] and forwards the host's port ${HOST_PORT} to it:`);
    for (const [from, addr, who] of [
      [host, LAN.host, 'the sandbox host, to its own eth0 address'],
      [host, '127.0.0.1', 'the sandbox host, to localhost'],
      [containers.neighbour.ns, LAN.host, 'the LAN neighbour, over the LAN'],
    ]) {
      const got = tcpConnect(sb, from, addr, HOST_PORT);
      note(`connect ${addr}:${HOST_PORT} from ${who}: ${got ? `"${got}"` : 'no answer'}`);
      expect(got?.startsWith('hello from alpine2'), `no answer on ${addr}:${HOST_PORT}`);
    }
  });

  await scene('The NAT rules behind it (outbound masquerade per container, and the published port)', () => {
    const nat = sb.run(host, ['nft', 'list', 'chain', 'inet', 'cni_plugins_masquerade', 'masq_checks'], { check: false }).stdout.trim();
    const hp = sb.run(host, ['nft', 'list', 'chain', 'ip', 'cni_hostport', 'hostports'], { check: false }).stdout.trim();
    const ipt = sb.run(host, ['iptables-save', '-t', 'nat'], { check: false }).stdout.split('\n').filter((l) => /^-A .*(CNI|MASQ)/.test(l)).join('\n');
    const rulesOf = (table) => table.split('\n').filter((l) => /^\s+\S/.test(l) && !/^\s*(table|chain|type|comment|})/.test(l)).map((l) => l.trim()).join('\n');
    note('bridge (ipMasq), nftables table inet cni_plugins_masquerade: one rule per container address,');
    note('masquerading what leaves its subnet (outbound traffic takes the host\'s address):');
    say(indent(rulesOf(nat) || '(none)', '     | '));
    note(`portmap, nftables table ip cni_hostport: the published port, DNAT to alpine2:80`);
    say(indent(rulesOf(hp) || '(none)', '     | '));
    if (ipt) say(indent(ipt, '     | '));
    expect(/masquerade/.test(nat) && /dnat to/.test(hp), 'NAT rules missing');
  });

  await scene('docker run --network none', () => {
    const c = { name: 'nonet', cid: `nonet-${sb.tag}`, ns: sb.netns('nonet') };
    containers.nonet = c;
    const r = cniCall(host, 'none', 'ADD', { cniVersion: '1.1.0', name: 'none', type: 'none' }, { cid: c.cid, netns: c.ns.path, ifName: 'eth0' });
    if (r.code !== 0) throw new PluginError('none', 'ADD', r);
    c.none = true;
    note('the none plugin only brings lo up. Inside the container:');
    say(indent(brief(c.ns, 'addr'), '     $ '));
    note(`plugin result: interfaces ${JSON.stringify(r.json.interfaces.map((i) => i.name))}, ips ${JSON.stringify(r.json.ips ?? [])}`);
    const links = JSON.parse(sb.run(c.ns, ['ip', '-json', 'link']).stdout);
    expect(links.length === 1 && links[0].ifname === 'lo' && links[0].flags.includes('UP'), 'expected only lo, up');
    const out = sb.run(c.ns, ['ping', '-n', '-c', '1', '-W', '1', '172.17.0.1'], { check: false });
    note(`and it reaches nothing outside: ping 172.17.0.1 -> ${(out.stderr || out.stdout).trim().split('\n')[0]}`);
    expect(out.status !== 0, 'a none container reached docker0');
  });

  await scene('docker run --network host', () => {
    const conf = { cniVersion: '1.1.0', name: 'host', type: 'host' };
    const att = { cid: `hostnet-${sb.tag}`, ifName: 'eth0' };
    const r = cniCall(host, 'host', 'ADD', conf, { ...att, netns: host.path });
    if (r.code !== 0) throw new PluginError('host', 'ADD', r);
    note(`CNI_NETNS = ${host.path}, the host's own netns: the container shares the host's network stack.`);
    note(`the host plugin reports the host's interfaces: ${r.json.interfaces.map((i) => i.name).join(', ')}`);
    note(`and its addresses: ${r.json.ips.map((i) => `${i.address} (${r.json.interfaces[i.interface].name})`).join(', ')}`);
    expect(r.json.ips.some((i) => i.address === `${LAN.host}/24`), 'host result lacks the host address');
    const del = cniCall(host, 'host', 'DEL', conf, { ...att, netns: host.path });
    if (del.code !== 0) throw new PluginError('host', 'DEL', del);
    const bad = cniCall(host, 'host', 'ADD', conf, { ...att, netns: a3.ns.path });
    note(`with any other netns (here alpine3's) it refuses: exit ${bad.code}, code ${bad.json?.code}: ${bad.json?.msg}`);
    expect(bad.code !== 0 && bad.json?.code === 103, 'host accepted a foreign netns');
  });

  await scene('docker run --network container:alpine1', () => {
    note('The runtime starts the joiner in alpine1\'s netns. The container plugin finds alpine1 in libcni\'s');
    note(`result cache, which the runtime wrote at each ADD (${cacheDir}/results):`);
    for (const f of filesUnder(join(cacheDir, 'results'))) note(`  ${f}`);
    const join1 = new NetworkList(host, cacheDir, { cniVersion: '1.1.0', name: 'join-alpine1', plugins: [{ type: 'container', cacheDir, capabilities: { container: true } }] });
    const before = brief(a1.ns, 'addr');
    const j = join1.add({ cid: `sidecar-${sb.tag}`, netns: a1.ns.path, ifName: 'eth0', capabilityArgs: { container: a1.cid } });
    note(`joiner "sidecar" ADD (CNI_NETNS = alpine1's netns, runtimeConfig.container = ${a1.cid}):`);
    note(`  it sees alpine1's addresses: ${j.result.ips.map((i) => `${i.address} (${j.result.interfaces[i.interface].name})`).join(', ')}`);
    expect(j.result.ips.some((i) => i.address === a1.nets['alpine-net'].cidr), 'the joiner does not see alpine1\'s address');
    pingLine({ name: 'sidecar', ns: a1.ns }, a2.nets['alpine-net'].ip, 'alpine2, over alpine1\'s eth0');
    const other = sb.netns('stranger');
    const bad = cniCall(host, 'container', 'ADD', join1.pluginConf(join1.list.plugins[0], { capabilityArgs: { container: a1.cid } }), { cid: `stranger-${sb.tag}`, netns: other.path, ifName: 'eth0' });
    note(`a joiner in some other netns is refused: code ${bad.json?.code}: ${bad.json?.msg}`);
    expect(bad.code !== 0 && bad.json?.code === 103, 'container accepted a foreign netns');
    join1.del(j);
    const after = brief(a1.ns, 'addr');
    note(`joiner DEL: alpine1 ${after === before ? 'is unchanged' : 'CHANGED'}:`);
    say(indent(after, '     $ '));
    expect(after === before, 'the joiner\'s DEL changed alpine1');
    pingLine(a1, a2.nets['alpine-net'].ip, 'alpine2, after the joiner left');
  });

  await scene('docker network create -d macvlan -o parent=eth0 lan-net', () => {
    note('Two containers get macvlan children of the host\'s eth0: their own MACs and addresses on the LAN.');
    run('mv1', { networks: ['lan-net'] });
    run('mv2', { networks: ['lan-net'] });
    const { mv1, mv2 } = containers;
    note(`mv1 inside: ${brief(mv1.ns, 'addr').split('\n').find((l) => l.startsWith('eth0'))}`);
    pingLine(mv1, mv2.nets['lan-net'].ip, 'mv2, same macvlan parent');
    pingLine(mv2, mv1.nets['lan-net'].ip, 'mv1');
    pingLine(mv1, LAN.neighbour, 'the LAN neighbour, straight over the wire');
    pingLine(mv1, LAN.host, 'the host\'s own eth0: macvlan children cannot talk to their parent (kernel design)', false);
  });
}

// ---- Teardown: docker rm of everything, in reverse, then what is left --------------------
step('docker rm: every container, DEL in reverse order (each network list in reverse, with the cached result)');
while (attachments.length) {
  const a = attachments[attachments.length - 1];
  try {
    detach(a);
    note(`${a.cid}: left ${a.net.name}`);
  } catch (e) {
    failed.push(`DEL ${a.cid} ${a.net.name}`);
    note(`DEL FAILED: ${a.cid} ${a.net.name}: ${e.message}`);
  }
}
for (const c of Object.values(containers)) {
  const r = c.loopback ? cniCall(host, 'loopback', 'DEL', lo, { cid: c.cid, netns: c.ns.path, ifName: 'lo' })
    : c.none ? cniCall(host, 'none', 'DEL', { cniVersion: '1.1.0', name: 'none', type: 'none' }, { cid: c.cid, netns: c.ns.path, ifName: 'eth0' }) : { code: 0 };
  if (r.code !== 0) {
    failed.push(`DEL lo ${c.name}`);
    note(`DEL FAILED: ${new PluginError(c.loopback ? 'loopback' : 'none', 'DEL', r).message}`);
  }
}

step('What is left');
try {
  const nft = sb.run(host, ['nft', 'list', 'ruleset'], { check: false }).stdout;
  const ipt = sb.run(host, ['iptables-save'], { check: false }).stdout;
  const fwContainers = /chain containers \{([^}]*)\}/.exec(nft)?.[1].split('\n').filter((l) => /accept/.test(l)) ?? [];
  const macvlans = ['mv1', 'mv2'].filter((n) => containers[n]).flatMap((n) => JSON.parse(sb.run(containers[n].ns, ['ip', '-json', 'link']).stdout).filter((l) => l.ifname !== 'lo'));
  const left = {
    'leases': filesUnder(dataDir).filter((f) => /^[^/.]+\/[0-9a-f.:]+$/.test(f)), // <net>/<ip>
    'veths (besides the uplink eth0)': JSON.parse(sb.run(host, ['ip', '-json', 'link', 'show', 'type', 'veth']).stdout).map((l) => l.ifname).filter((n) => n !== 'eth0'),
    'macvlan links': macvlans.map((l) => l.ifname),
    'masquerade rules': [...nft.split('\n').filter((l) => /\smasquerade\b/.test(l) && !/^\s*table/.test(l)), ...ipt.split('\n').filter((l) => /^-A CNI-[0-9a-f]/.test(l))],
    'portmap rules': [...nft.split('\n').filter((l) => /dnat to/.test(l)), ...ipt.split('\n').filter((l) => /CNI-DN-/.test(l))],
    'firewall container rules': [...fwContainers, ...ipt.split('\n').filter((l) => /^-A CNI-FORWARD .*id:/.test(l))],
    'dnsmasq processes': dnsmasqUnder(runDir).map(String),
    // The lock and dnsmasq.log stay by design (plugins/dnsname/README.md, Files).
    'dnsname hosts files': filesUnder(runDir).filter((f) => !f.endsWith('/lock') && !f.endsWith('/dnsmasq.log')),
    'libcni cache entries': filesUnder(cacheDir),
    'tuning backups': filesUnder(tuningDir),
  };
  for (const [what, list] of Object.entries(left)) note(`${what.padEnd(32)} ${list.length}${list.length ? `   ${list.join(' | ')}` : ''}`);
  note('(the bridges and their isolation rules stay, as with the reference plugins; they go with the sandbox)');
  if (Object.values(left).some((l) => l.length)) {
    failed.push('teardown left something behind');
    say('   TEARDOWN LEFT SOMETHING BEHIND');
  }
} catch (e) {
  failed.push('what is left');
  say(`   CHECK FAILED: ${e.message}`);
}
await overlayScenes({ scene, note, expect, failed });
} catch (e) {
  failed.push('unexpected error');
  say(`   UNEXPECTED ERROR: ${e.stack}`);
} finally {
  cleanup();
}

if (failed.length) {
  console.error(`\ndemo FAILED: ${failed.join('; ')}`);
  process.exitCode = 1;
} else {
  say('\nDone: Docker\'s bridge, user-defined, none, host, container:, macvlan and multi-host overlay networks,');
  say('names, a published port and isolation between networks, all on our CNI plugins; everything removed again.');
}
