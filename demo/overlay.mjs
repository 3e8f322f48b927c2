// The overlay part of the demo: `docker network create -d overlay` across three "hosts" (network
// namespaces on one underlay bridge) with a real etcd as the registry, in its own namespace.
// Containers on different hosts ping each other by address and by name; a fourth host joins
// late; the registry's contents are shown. Everything is made in a Sandbox of its own and
// removed at the end: containers (DEL), agents and dnsmasq (stopped by pid), etcd, namespaces.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { NetworkList, Sandbox, dnsmasqUnder, indent, ping, say, withResolvConf } from './lib.mjs';

const ETCD_IP = '192.168.77.2';
const GW = '192.168.77.1';

/** Runs the overlay scenes with the demo's scene/note/expect helpers; failures go into `failed`. */
export async function overlayScenes({ scene, note, expect, failed }) {
  const sb = new Sandbox();
  const ul = sb.netns('underlay');
  const hosts = [];
  const attachments = [];
  let etcd;
  const prefix = `/cni-demo-${sb.tag}/ovl`;

  const plug = (ns, ulName, cidr) => {
    sb.run(ul, ['ip', 'link', 'add', ulName, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.path]);
    sb.run(ul, ['ip', 'link', 'set', ulName, 'master', 'ulbr', 'up']);
    sb.run(ns, ['ip', 'link', 'set', 'lo', 'up']);
    sb.run(ns, ['ip', 'addr', 'add', cidr, 'dev', 'eth0']);
    sb.run(ns, ['ip', 'link', 'set', 'eth0', 'up']);
  };
  const addHost = () => {
    const i = hosts.length + 1;
    const ns = sb.netns(`ovhost${i}`);
    plug(ns, `ulh${i}`, `192.168.77.${10 + i}/24`);
    sb.run(ns, ['ip', 'route', 'add', 'default', 'via', GW]);
    const dir = sb.tempDir(`ovhost${i}`);
    const h = { i, ns, ip: `192.168.77.${10 + i}`, run: join(dir, 'run'), lib: join(dir, 'lib'), dns: join(dir, 'dnsname'), cache: join(dir, 'cache') };
    for (const d of [h.run, h.lib, h.dns, h.cache]) mkdirSync(d, { recursive: true, mode: 0o755 });
    // The network, as `docker network create -d overlay --subnet 10.40.0.0/16 ovl` would make it.
    h.net = new NetworkList(ns, h.cache, {
      cniVersion: '1.1.0',
      name: 'ovl',
      plugins: [
        { type: 'overlay', network: '10.40.0.0/16', etcd: { endpoints: [`http://${ETCD_IP}:2379`], prefix }, runDir: join(h.run, 'ovl'), dataDir: h.lib, leaseTTL: 15, names: { runDir: h.dns } },
        { type: 'dnsname', domainName: 'ovl.internal', runDir: h.dns },
      ],
    });
    hosts.push(h);
    return h;
  };
  const state = (h) => JSON.parse(readFileSync(join(h.run, 'ovl', 'state.json'), 'utf8'));
  const run = (h, name) => {
    const ns = sb.netns(name);
    const a = h.net.add({ cid: `${name}-${sb.tag}`, netns: ns.path, ifName: 'eth0', args: `IgnoreUnknown=1;K8S_POD_NAME=${name}` });
    attachments.push(a);
    const ip = a.result.ips[0].address.split('/')[0];
    note(`${name} on host${h.i}: ${a.result.ips[0].address} (host${h.i} leased ${state(h).subnet})`);
    return { name, ns, ip, a, h };
  };
  const etcdctl = (args) => sb.run(sb.etcdNs, ['etcdctl', `--endpoints=http://${ETCD_IP}:2379`, ...args], { check: false });

  try {
    await scene('Overlay across hosts: three hosts and etcd on one underlay', async () => {
      sb.run(ul, ['ip', 'link', 'add', 'ulbr', 'type', 'bridge']);
      sb.run(ul, ['ip', 'addr', 'add', `${GW}/24`, 'dev', 'ulbr']);
      sb.run(ul, ['ip', 'link', 'set', 'ulbr', 'up']);
      sb.etcdNs = sb.netns('etcd');
      plug(sb.etcdNs, 'ule', `${ETCD_IP}/24`);
      const dir = sb.tempDir('etcd');
      const log = openSync(join(dir, 'etcd.log'), 'a');
      etcd = spawn('nsenter', [`--net=${sb.etcdNs.path}`, '--', 'etcd', '--name', 'demo', '--data-dir', join(dir, 'data'),
        '--listen-client-urls', `http://${ETCD_IP}:2379`, '--advertise-client-urls', `http://${ETCD_IP}:2379`,
        '--listen-peer-urls', `http://${ETCD_IP}:2380`, '--initial-advertise-peer-urls', `http://${ETCD_IP}:2380`,
        '--initial-cluster', `demo=http://${ETCD_IP}:2380`], { stdio: ['ignore', log, log] });
      sb.children.push(etcd);
      for (let i = 0; i < 100 && etcdctl(['endpoint', 'health']).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(etcdctl(['endpoint', 'health']).status === 0, 'etcd did not start');
      for (let i = 0; i < 3; i++) addHost();
      note(`underlay bridge ${GW}/24; etcd ${ETCD_IP}:2379 in its own namespace; hosts ${hosts.map((h) => h.ip).join(', ')}`);
      note('each host runs the plugins in its own namespace with its own /run and /var/lib (temp dirs);');
      note('the network on every host: overlay → dnsname, network 10.40.0.0/16, one /24 per host.');
    });

    let c1, c2, c3;
    await scene('docker run on three hosts (the first ADD on a host starts its agent, which leases a subnet)', () => {
      c1 = run(hosts[0], 'alpine1');
      c2 = run(hosts[1], 'alpine2');
      c3 = run(hosts[2], 'alpine3');
      const s = state(hosts[0]);
      note(`VXLAN device ${s.vxlan} on host1: VNI ${s.vni}, UDP ${s.port}, MTU ${s.mtu} (underlay 1500 − 50), VTEP ${s.vtepAddress} ${s.vtepMac}`);
    });

    await scene('Ping across hosts, by address and by name', () => {
      for (const [a, b] of [[c1, c2], [c2, c3], [c3, c1]]) {
        const ok = ping(sb, a.ns, b.ip, { wait: 2 });
        note(`${a.name}@host${a.h.i} -> ${b.name}@host${b.h.i} ${b.ip}: ${ok ? 'reply received' : 'no reply'}`);
        expect(ok, `${a.name} -> ${b.name}`);
      }
      const dns = c1.a.result.dns;
      let byName;
      for (let i = 0; i < 30; i++) {
        byName = withResolvConf(sb, c1.ns, dns, ['busybox', 'ping', '-c', '1', '-W', '2', 'alpine2']);
        if (byName.status === 0) break;
        spawnSleep(200);
      }
      note(`alpine1$ ping -c 1 alpine2   -> ${(byName.stdout.split('\n')[0] ?? '').trim()} ... ${byName.status === 0 ? 'reply received' : 'no reply'}`);
      note('(host1\'s dnsmasq serves alpine2 from the names host2\'s agent published in etcd)');
      expect(byName.status === 0 && byName.stdout.includes(c2.ip), 'alpine1 could not ping alpine2 by name');
    });

    await scene('The registry in etcd (flannel\'s layout)', () => {
      const out = etcdctl(['get', '--prefix', `${prefix}/`]).stdout.trim().split('\n');
      for (let i = 0; i + 1 < out.length; i += 2) note(`${out[i]}\n     ${out[i + 1]}`);
    });

    await scene('The data path on host1: one neighbour, FDB entry and route per remote host', () => {
      const vx = state(hosts[0]).vxlan;
      say(indent(sb.run(hosts[0].ns, ['ip', 'neigh', 'show', 'dev', vx]).stdout.trim(), '     neigh | '));
      say(indent(sb.run(hosts[0].ns, ['bridge', 'fdb', 'show', 'dev', vx]).stdout.trim(), '     fdb   | '));
      say(indent(sb.run(hosts[0].ns, ['ip', 'route', 'show', 'dev', vx]).stdout.trim(), '     route | '));
    });

    await scene('A fourth host joins late', async () => {
      const h4 = addHost();
      const t0 = Date.now();
      const c4 = run(h4, 'alpine4');
      let ok = false;
      while (!ok && Date.now() - t0 < 10_000) ok = ping(sb, c1.ns, c4.ip) && ping(sb, c4.ns, c1.ip);
      note(`alpine1@host1 <-> alpine4@host4: ${ok ? `both ways after ${Date.now() - t0} ms (ADD, agent start and lease included)` : 'NOT REACHABLE'}`);
      expect(ok, 'host4 not reachable');
      const log = readFileSync(join(hosts[0].run, 'ovl', 'agent.log'), 'utf8').trim().split('\n').filter((l) => /peer:/.test(l)).slice(-1);
      note('host1\'s agent log:');
      say(indent(log.join('\n'), '     | '));
    });
  } finally {
    say('\n== Overlay teardown: docker rm everywhere, then the agents and etcd');
    for (const a of attachments.reverse()) {
      try {
        a.net.del(a);
      } catch (e) {
        failed.push(`overlay DEL ${a.cid}`);
        note(`DEL FAILED: ${e.message}`);
      }
    }
    let agents = 0;
    for (const h of hosts) {
      const pidFile = join(h.run, 'ovl', 'agent.pid');
      if (!existsSync(pidFile)) continue;
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
        agents++;
      } catch {
        /* already gone */
      }
      for (const pid of dnsmasqUnder(h.dns)) process.kill(pid, 'SIGTERM');
    }
    note(`all containers removed; ${agents} agents stopped by pid (SIGTERM leaves the data path, which goes with the namespaces)`);
    spawnSleep(500);
    const left = hosts.flatMap((h) => [...dnsmasqUnder(h.dns), ...livingUnder(h.run)]);
    note(`processes left: ${left.length}`);
    if (left.length) failed.push('overlay left processes');
    sb.destroy();
  }
}

function spawnSleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** pids whose command line mentions dir (the agents), zombies aside. */
function livingUnder(dir) {
  const out = [];
  for (const pid of readdirProc()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) out.push(pid);
    } catch {
      /* gone */
    }
  }
  return out;
}

function readdirProc() {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
}
