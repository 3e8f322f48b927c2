// Sandboxes for conformance tests. Every network change a test makes happens inside namespaces
// created here ("ip netns add cni-test-<role>-<random>"), so the real host is never touched:
// plugins run under `nsenter --net=<sandbox host>`, containers are further namespaces.
// The Registry records every netns and temp dir so cleanup runs even when a test fails.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec, execOk, inNetns } from './exec';
import { SERVED, serviceDirOf, stopServiceIn } from './served';

export interface Netns {
  name: string;
  /** Bind-mount path, usable as CNI_NETNS and with nsenter --net=. */
  path: string;
  role: string;
}

export function randomHex(bytes = 3): string {
  return randomBytes(bytes).toString('hex');
}

/** Tracks what a test created; cleanup() removes all of it (netns first, then temp dirs). */
export class Registry {
  private readonly netnses = new Map<string, Netns>();
  private readonly dirs = new Set<string>();
  private readonly links: { ns: Netns; name: string }[] = [];
  private readonly hooks: { what: string; fn: () => Promise<void> }[] = [];

  /** Creates a netns named cni-test-<role>-<random>; lo stays down (loopback tests need that). */
  async netns(role: string): Promise<Netns> {
    const name = `cni-test-${role}-${randomHex(4)}`;
    await execOk(['ip', 'netns', 'add', name]);
    const ns: Netns = { name, path: `/run/netns/${name}`, role };
    this.netnses.set(name, ns);
    return ns;
  }

  /**
   * A sandbox "host" netns for plugins to run in: lo up and ip_forward forced to 0, so a test of
   * "the plugin enabled forwarding" can fail (a new netns may inherit 1 from the real host).
   */
  async sandboxHost(): Promise<Netns> {
    const ns = await this.netns('host');
    await execOk(inNetns(ns.path, ['ip', 'link', 'set', 'lo', 'up']));
    await execOk(inNetns(ns.path, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0']));
    return ns;
  }

  /** A fresh temp dir /tmp/cni-test-<random>, removed at cleanup. */
  tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'cni-test-'));
    this.dirs.add(dir);
    return dir;
  }

  /** Records a link the test itself created inside ns (removed before the netns goes). */
  link(ns: Netns, name: string): void {
    this.links.push({ ns, name });
  }

  /**
   * Runs fn first at cleanup (latest registered first), before links and netns go: a process a
   * helper started inside a netns (e.g. etcd) keeps that netns alive until it is stopped.
   */
  onCleanup(what: string, fn: () => Promise<void>): void {
    this.hooks.push({ what, fn });
  }

  /** Deletes a netns early (e.g. "container died"); cleanup() will not complain later. */
  async deleteNetns(ns: Netns): Promise<void> {
    await execOk(['ip', 'netns', 'del', ns.name]);
    this.netnses.delete(ns.name);
  }

  /** Removes everything; collects errors and throws them together at the end. */
  async cleanup(): Promise<void> {
    const errors: string[] = [];
    for (const h of this.hooks.splice(0).reverse()) {
      try {
        await h.fn();
      } catch (e) {
        errors.push(`${h.what}: ${(e as Error).message}`);
      }
    }
    for (const l of this.links.splice(0)) {
      if (!existsSync(l.ns.path)) continue;
      await exec(inNetns(l.ns.path, ['ip', 'link', 'del', l.name]));
    }
    // A served run's service lives in its host's netns: stop it first (helpers/served.ts).
    if (SERVED) {
      for (const ns of this.netnses.values()) {
        try {
          await stopServiceIn(serviceDirOf(ns));
        } catch (e) {
          errors.push(`stop the service of ${ns.name}: ${(e as Error).message}`);
        }
      }
    }
    // Containers before hosts is not required (a veth dies with either end) but keeps it tidy.
    const all = [...this.netnses.values()].sort((a, b) => Number(a.role === 'host') - Number(b.role === 'host'));
    for (const ns of all) {
      const r = await exec(['ip', 'netns', 'del', ns.name]);
      if (r.code !== 0 && existsSync(ns.path)) errors.push(`ip netns del ${ns.name}: ${r.stderr.trim()}`);
      this.netnses.delete(ns.name);
    }
    for (const d of this.dirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch (e) {
        errors.push(`rm ${d}: ${(e as Error).message}`);
      }
    }
    this.dirs.clear();
    if (errors.length) throw new Error(`cleanup failed:\n${errors.join('\n')}`);
  }
}

/** Unique names/subnets so tests never collide even if they shared a namespace. */
let subnetCounter = 0;
const subnetBase = 100 + (process.pid % 100);
export function uniqueSubnet24(): { subnet: string; prefix: string; gateway: string } {
  const third = subnetCounter++ % 256;
  const prefix = `10.${subnetBase}.${third}`;
  return { subnet: `${prefix}.0/24`, prefix, gateway: `${prefix}.1` };
}

/** Bridge name ≤ 15 chars (IFNAMSIZ-1). */
export function uniqueBridgeName(): string {
  return `cnibr${randomHex(4)}`;
}

export function uniqueNetName(tag = 'net'): string {
  return `cnitest-${tag}-${randomHex(3)}`;
}

export function uniqueContainerId(): string {
  return `ctr-${randomHex(16)}`;
}
