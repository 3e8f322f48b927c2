// Everything the benchmark changes lives in namespaces and temp dirs created here:
// `ip netns add cni-bench-<rand>-<role>`. Plugins run under `nsenter --net=<sandbox host>`, so
// bridges, veths, routes, iptables/nft rules and sysctls stay inside it and vanish with it.
// cleanup() runs from a finally block and from SIGINT/SIGTERM/SIGHUP handlers.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNetns, run, runOk } from './proc.mjs';

export class Sandbox {
  constructor() {
    this.tag = `cni-bench-${randomBytes(3).toString('hex')}`;
    this.netnses = new Set();
    this.dirs = new Set();
    this.cleaned = false;
    this.hooks = [];
  }

  /** Runs fn first at cleanup (stop processes a scenario started, before their netns goes). */
  onCleanup(fn) {
    this.hooks.push(fn);
  }

  /** Creates netns `<tag>-<role>`; returns its /run/netns path. */
  async netns(role) {
    if (this.cleaned) throw new Error('sandbox already removed (interrupted?)');
    const name = `${this.tag}-${role}`;
    this.netnses.add(name); // before creating, so an interrupted create is still cleaned up
    await runOk(['ip', 'netns', 'add', name]);
    return `/run/netns/${name}`;
  }

  /** A sandbox "host" netns: lo up, like a real host. */
  async host(role) {
    const path = await this.netns(role);
    await runOk(inNetns(path, ['ip', 'link', 'set', 'lo', 'up']));
    return path;
  }

  async deleteNetns(path) {
    const name = path.split('/').pop();
    await run(['ip', 'netns', 'del', name]);
    this.netnses.delete(name);
  }

  /** Temp dir /tmp/<tag>-<what>-XXXXXX, removed at cleanup. */
  tempDir(what) {
    const d = mkdtempSync(join(tmpdir(), `${this.tag}-${what}-`));
    this.dirs.add(d);
    return d;
  }

  /** Removes every netns and temp dir this sandbox made; returns a list of problems. */
  async cleanup() {
    if (this.cleaned) return [];
    this.cleaned = true;
    const problems = [];
    for (const fn of this.hooks.splice(0).reverse()) {
      try {
        await fn();
      } catch (e) {
        problems.push(e.message);
      }
    }
    // Containers first, host sandboxes last (deleting a host netns takes its bridges along).
    const names = [...this.netnses].sort((a, b) => Number(a.includes('-host')) - Number(b.includes('-host')));
    for (const name of names) {
      const r = await run(['ip', 'netns', 'del', name]);
      if (r.code !== 0 && existsSync(`/run/netns/${name}`)) problems.push(`ip netns del ${name}: ${r.stderr.trim()}`);
    }
    this.netnses.clear();
    for (const d of this.dirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch (e) {
        problems.push(`rm -r ${d}: ${e.message}`);
      }
    }
    this.dirs.clear();
    return problems;
  }

  /** Cleans up on SIGINT/SIGTERM/SIGHUP, then exits 130/143/129. */
  installSignalHandlers() {
    const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
    for (const [sig, code] of Object.entries(codes)) {
      process.once(sig, async () => {
        process.stderr.write(`\n${sig}: removing the sandbox ${this.tag} ...\n`);
        const p = await this.cleanup();
        for (const x of p) process.stderr.write(`cleanup: ${x}\n`);
        process.exit(code);
      });
    }
  }
}
