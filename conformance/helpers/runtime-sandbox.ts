// A sandbox for running a whole container runtime (podman, containerd + ctr) on our plugins
// without touching the real host: one holder process owns a new network namespace and a new,
// private mount namespace; every runtime command runs in both (nsenter -t <holder> --net --mount).
//
// Inside the mount namespace:
//   /sys                 a sysfs of the sandbox netns (the host's cgroup mounts moved back under it),
//                        so /sys/class/net shows the sandbox's links, as `ip netns exec` arranges;
//   /run                 a private tmpfs: podman's /run/netns/<ctr> pins, runc/shim state, dnsname's
//                        /run/containers/cni/dnsname all vanish with the namespace;
//   /var/lib/cni         libcni's result cache: private (tmpfs), so the real /var/lib/cni is never
//   /var/lib/containers  written; the same for podman's blob cache;
//   /etc/cni/net.d       a temp dir of ours (ctr reads its conflist there and nowhere else);
//   /opt/cni/bin         our plugin dir (ctr's fixed CNI_PATH is /opt/cni/bin:/usr/lib/cni);
//   /usr/lib/cni         hidden (empty), so a plugin we have not built fails instead of silently
//                        running the reference binary.
// Paths that do not exist on the host get a tmpfs-backed overlay on their nearest existing parent,
// so nothing is created on the host either. Everything the sandbox holds dies with its processes:
// destroy() kills every process in the mount namespace and its descendants (container processes
// live in namespaces of their own under conmon / the shim), then the holder.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { exec, execOk, type ExecOptions, type ExecResult } from './exec';

export interface Background {
  child: ChildProcess;
  done: Promise<ExecResult>;
}

function procLink(pid: number, what: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/${what}`);
  } catch {
    return undefined;
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
}

/** A process's start time (field 22 of /proc/<pid>/stat), undefined once it is gone or a zombie. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' ? undefined : f[19];
  } catch {
    return undefined;
  }
}

function ppidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class RuntimeSandbox {
  /** Host temp dir: runtime state, conflists, leases; removed by destroy(). */
  readonly dir: string;
  /** Bound at /etc/cni/net.d inside the sandbox. */
  readonly netConfDir: string;
  private holder?: ChildProcess;
  private readonly background: Background[] = [];
  private mntNs?: string;

  private constructor(readonly tag: string) {
    this.dir = mkdtempSync(join(tmpdir(), `cni-client-${tag}-`));
    this.netConfDir = join(this.dir, 'net.d');
    mkdirSync(this.netConfDir);
  }

  /** A folder inside the sandbox's temp dir (made if missing); removed with it by destroy(). */
  subdir(path: string): string {
    const full = join(this.dir, path);
    mkdirSync(full, { recursive: true });
    return full;
  }

  get pid(): number {
    if (!this.holder?.pid) throw new Error('sandbox not started');
    return this.holder.pid;
  }

  /** The sandbox host's netns, usable as nsenter --net= / with the ip-json helpers. */
  get netnsPath(): string {
    return `/proc/${this.pid}/ns/net`;
  }

  /** Starts the holder and prepares the private mounts; destroy() undoes it even if this throws. */
  static async create(tag: string, pluginDir: string): Promise<RuntimeSandbox> {
    const sb = new RuntimeSandbox(tag);
    try {
      await sb.start(pluginDir);
    } catch (e) {
      await sb.destroy().catch(() => undefined);
      throw e;
    }
    return sb;
  }

  private destroyed = false;

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  private async start(pluginDir: string): Promise<void> {
    const holder = spawn('unshare', ['--net', '--mount', '--propagation', 'private', '--', 'sleep', 'infinity'], {
      stdio: 'ignore',
    });
    this.holder = holder;
    const ownNet = procLink(process.pid, 'ns/net');
    const ownMnt = procLink(process.pid, 'ns/mnt');
    for (let i = 0; ; i++) {
      const net = holder.pid ? procLink(holder.pid, 'ns/net') : undefined;
      const mnt = holder.pid ? procLink(holder.pid, 'ns/mnt') : undefined;
      if (net && mnt && net !== ownNet && mnt !== ownMnt && procLink(holder.pid!, 'exe')?.endsWith('/sleep')) break;
      if (holder.exitCode !== null || i > 100) throw new Error(`unshare holder did not start (exit ${holder.exitCode})`);
      await sleep(20);
    }
    this.mntNs = procLink(this.pid, 'ns/mnt');

    const scratch = join(this.dir, 'scratch');
    const cg = join(this.dir, 'cgroup');
    const empty = join(this.dir, 'empty');
    for (const d of [scratch, cg, empty]) mkdirSync(d);
    let n = 0;
    const script: string[] = [
      'set -e',
      // Scratch space that exists only inside the sandbox: overlay uppers, private dirs.
      `mount -t tmpfs -o mode=755 cni-client-scratch ${scratch}`,
      // sysfs of the sandbox netns; keep the host's cgroup tree (runc needs it) under it.
      `mount --rbind /sys/fs/cgroup ${cg}`,
      'mount -t sysfs sysfs /sys',
      `mount --move ${cg} /sys/fs/cgroup`,
      'mount -t tmpfs -o mode=755 cni-client-run /run',
      'ip link set lo up',
    ];
    // A mount point for path inside the sandbox without creating anything on the host.
    const mountPoint = (path: string): void => {
      if (existsSync(path)) return;
      let parent = dirname(path);
      while (!existsSync(parent)) parent = dirname(parent);
      const o = join(scratch, `ovl${n++}`);
      script.push(
        `mkdir -p ${o}/upper ${o}/work`,
        `mount -t overlay cni-client-ovl -o lowerdir=${parent},upperdir=${o}/upper,workdir=${o}/work ${parent}`,
        `mkdir -p ${path}`,
      );
    };
    for (const p of ['/var/lib/cni', '/var/lib/containers']) {
      mountPoint(p);
      script.push(`mount -t tmpfs -o mode=755 cni-client-private ${p}`);
    }
    mountPoint('/etc/cni/net.d');
    script.push(`mount --bind ${this.netConfDir} /etc/cni/net.d`);
    mountPoint('/opt/cni/bin');
    script.push(`mount --bind ${pluginDir} /opt/cni/bin`);
    if (existsSync('/usr/lib/cni') && resolve(pluginDir) !== '/usr/lib/cni') script.push(`mount --bind ${empty} /usr/lib/cni`);
    await execOk(this.argv(['sh', '-c', script.join('\n')]));
  }

  /**
   * A global address of the sandbox host (its "NIC address" for published-port checks). On lo,
   * /32: this VM's kernel has no dummy link type.
   */
  async addHostAddress(addr: string): Promise<void> {
    await this.runOk(['ip', 'addr', 'add', `${addr}/32`, 'dev', 'lo']);
  }

  /** argv run inside the sandbox's netns and mount namespace. */
  argv(argv: string[]): string[] {
    return ['nsenter', '-t', String(this.pid), '--net', '--mount', '--', ...argv];
  }

  run(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return exec(this.argv(argv), opts);
  }

  runOk(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return execOk(this.argv(argv), opts);
  }

  /** Starts a long-running command in the sandbox (a daemon, a foreground `ctr run`). */
  spawn(argv: string[], env?: NodeJS.ProcessEnv): Background {
    const full = this.argv(argv);
    const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const done = new Promise<ExecResult>((resolve) => {
      child.on('close', (code, signal) => resolve({ argv: full, code, signal, stdout, stderr, timedOut: false }));
      child.on('error', (e) => resolve({ argv: full, code: -1, signal: null, stdout, stderr: stderr + e.message, timedOut: false }));
    });
    const bg = { child, done };
    this.background.push(bg);
    return bg;
  }

  /** Pids in the sandbox's mount namespace (the holder included). */
  processesInside(): number[] {
    if (!this.mntNs) return [];
    return allPids().filter((p) => procLink(p, 'ns/mnt') === this.mntNs);
  }

  /** `<pid> <comm>` of every process of the sandbox except the holder. */
  processNames(): string[] {
    return this.processTree()
      .filter((p) => p !== this.holder?.pid)
      .map((p) => {
        try {
          return `${p} ${readFileSync(`/proc/${p}/comm`, 'utf8').trim()}`;
        } catch {
          return `${p} ?`;
        }
      });
  }

  /**
   * Stops the served-mode service (README "Served mode") that our stubs started inside the
   * sandbox when a runtime ran them, by the pid in its pid file (its /run is the sandbox's):
   * SIGTERM, then SIGKILL. Returns its pid and how many calls it served (its last log line), or
   * undefined when none ran (in-process plugins, the reference's).
   */
  async stopPluginService(): Promise<{ pid: number; calls: number } | undefined> {
    const dir = `/proc/${this.pid}/root/run/cni-ts`;
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, 'service.pid'), 'utf8').trim());
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('serve')) return undefined;
    } catch {
      return undefined;
    }
    const gone = (): boolean => {
      try {
        return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return true;
      }
    };
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && !gone(); i++) await sleep(50);
    if (!gone()) process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && !gone(); i++) await sleep(50);
    let log = '';
    try {
      log = readFileSync(join(dir, 'service.log'), 'utf8');
    } catch {
      /* no log */
    }
    const m = [...log.matchAll(/exiting \(.*?\) after (\d+) calls/g)].pop();
    return { pid, calls: m ? Number(m[1]) : 0 };
  }

  /** Every process of the sandbox: those in its mount namespace and all their descendants. */
  private processTree(): number[] {
    const pids = allPids();
    const parent = new Map(pids.map((p) => [p, ppidOf(p)] as const));
    const set = new Set(this.processesInside());
    for (let grew = true; grew; ) {
      grew = false;
      for (const p of pids) {
        const pp = parent.get(p);
        if (!set.has(p) && pp !== undefined && set.has(pp)) {
          set.add(p);
          grew = true;
        }
      }
    }
    return [...set];
  }

  /**
   * Kills what is left (runtime commands should have cleaned up first), lets the namespaces die
   * and removes the temp dir. Returns what had to be killed, for the report.
   */
  async destroy(): Promise<string[]> {
    if (this.destroyed) return [];
    this.destroyed = true;
    const killed: string[] = [];
    // Processes seen once stay victims: a container's init (PID 1 of its pid namespace, in a mount
    // namespace of its own) ignores SIGTERM and, once its shim has died of it, is re-parented
    // out of the sandbox's tree. Keyed by start time, so a reused pid is never hit. The tree is
    // read before the background commands die, for the same reason.
    const holderPid = this.holder?.pid;
    const seen = new Map<number, string | undefined>();
    const see = (): void => {
      for (const p of this.processTree()) if (p !== holderPid && !seen.has(p)) seen.set(p, startTime(p));
    };
    see();
    for (const bg of this.background) if (bg.child.exitCode === null && bg.child.signalCode === null) bg.child.kill('SIGKILL');
    for (let round = 0; round < 3; round++) {
      see();
      const victims = [...seen].filter(([p, t]) => t !== undefined && startTime(p) === t).map(([p]) => p);
      if (victims.length === 0) break;
      for (const p of victims) {
        let comm = '?';
        try {
          comm = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
        } catch {
          /* gone */
        }
        if (round === 0) killed.push(`${p} ${comm}`);
        try {
          process.kill(p, round === 0 ? 'SIGTERM' : 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      await sleep(round === 0 ? 1000 : 300);
    }
    if (this.holder && this.holder.exitCode === null && this.holder.signalCode === null) {
      const exited = new Promise((r) => this.holder!.once('exit', r));
      this.holder.kill('SIGKILL');
      await exited;
    }
    await Promise.all(this.background.map((b) => b.done));
    // The mount namespace is gone once its last process is; only then remove the temp dir, whose
    // host view never had any of the sandbox's mounts.
    for (let i = 0; i < 50 && this.processesInside().length > 0; i++) await sleep(100);
    const left = this.processesInside();
    if (left.length) throw new Error(`processes still in the sandbox mount namespace: ${left.join(' ')}`);
    rmSync(this.dir, { recursive: true, force: true });
    return killed;
  }
}

/** A busybox root filesystem from Debian's busybox-static: /bin/busybox and a symlink per applet. */
export async function busyboxRootfs(dir: string): Promise<void> {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run', 'var', 'root']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  const applets = (await execOk(['/bin/busybox', '--list'])).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(dir, 'bin', a));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\n');
}

/**
 * Removes the cgroup directory rel (relative to each hierarchy's root, e.g. "cni-ts-cri-1a2b3c")
 * from every cgroup hierarchy under /sys/fs/cgroup. runc removes a container's own cgroup but not
 * the parent a runtime made for it (ctr: /<namespace>, CRI: the pod's cgroup_parent), and cgroups
 * are not namespaced by the sandbox. Only empty directories go (rmdir); returns those still there.
 */
export function removeCgroupDirs(rel: string): string[] {
  const root = '/sys/fs/cgroup';
  const hierarchies = [root, ...readdirSync(root).map((e) => join(root, e))];
  const left: string[] = [];
  for (const h of hierarchies) {
    const dir = join(h, rel);
    if (!existsSync(dir)) continue;
    try {
      rmdirSync(dir);
    } catch {
      left.push(dir);
    }
  }
  return left;
}
