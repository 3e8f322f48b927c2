// What "the real host is as before" means for suites that run whole container runtimes: the
// host's named netns, links, nftables tables, iptables CNI rules, runtime daemons and the
// on-disk CNI state. Taken before and after a suite; the two must be equal.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from './exec';

export interface HostSnapshot {
  netns: string[];
  links: string[];
  nftTables: string[];
  iptablesCni: string[];
  processes: string[];
  files: string[];
}

/** Named netns of the other conformance suites and the bench, which may run at the same time on a dev box. */
const FOREIGN_NETNS = /^cni-(test|bench)-/;

function listTree(root: string): string[] {
  if (!existsSync(root)) return [`${root}: absent`];
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir).sort()) {
      const p = join(dir, e);
      out.push(p);
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return out.length ? out : [`${root}: empty`];
}

/** comm is cut at 15 characters: containerd-shim-runc-v2 shows as containerd-shim. */
const RUNTIME_COMMS = new Set(['containerd', 'containerd-shim', 'conmon', 'podman', 'ctr', 'runc', 'crun']);

/**
 * `<pid> <comm>` of runtime processes on the machine. Zombies are left out: an exited process
 * whose reaper (PID 1, for a daemonized conmon or shim) has not run yet.
 */
function runtimeProcesses(): string[] {
  const out: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (RUNTIME_COMMS.has(comm) && state !== 'Z') out.push(`${e} ${comm}`);
    } catch {
      /* exited meanwhile */
    }
  }
  return out.sort();
}

const lines = (s: string): string[] =>
  s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

export async function hostSnapshot(): Promise<HostSnapshot> {
  const [ns, link, nft, ipt, ipt6] = await Promise.all([
    exec(['ip', 'netns', 'list']),
    exec(['ip', '-o', 'link', 'show']),
    exec(['nft', 'list', 'tables']),
    exec(['iptables-save']),
    exec(['ip6tables-save']),
  ]);
  return {
    netns: lines(ns.stdout)
      .map((l) => l.split(' ')[0]!)
      .filter((n) => !FOREIGN_NETNS.test(n))
      .sort(),
    links: lines(link.stdout)
      .map((l) => l.split(':')[1]!.trim().split('@')[0]!)
      .sort(),
    nftTables: lines(nft.stdout).sort(),
    iptablesCni: [...lines(ipt.stdout), ...lines(ipt6.stdout)].filter((l) => /CNI/.test(l) && !l.startsWith('#')),
    processes: runtimeProcesses(),
    files: ['/var/lib/cni', '/etc/cni/net.d', '/opt/cni', '/run/containers/cni'].flatMap(listTree),
  };
}
