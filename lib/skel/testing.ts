/** Helpers for unit tests only (no plugin imports this). */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CmdArgs, NetConf } from './dispatch';
import type { CniError } from './errors';
import { BUNDLE_MARKER } from '../self/self';
import { acceptingKernel, fakeSpawn, fakeTools, NETFILTER_TOOLS, nftMasqListing, type FakeSpawn } from '../exec/testing';
import type { Result } from '../types/result';

/** The CNI error code `f` throws, or undefined when it does not throw. */
export function codeOf(f: () => unknown): number | undefined {
  try {
    f();
  } catch (e) {
    return (e as CniError).code;
  }
  return undefined;
}

/** A netns path that exists without entering anything: with the spawner faked, no process uses it. */
export const SELF_NETNS = '/proc/self/ns/net';

/**
 * What pluginMain hands a verb: `conf` (keys already as the plugin's schema spells them) over a
 * cniVersion 1.0.0 network "net1", container "ctr1", eth0 in SELF_NETNS; `extra` overrides.
 */
export function cmdArgs(conf: Partial<NetConf> & { type: string }, extra: Partial<CmdArgs> = {}): CmdArgs {
  const c = { cniVersion: '1.0.0', name: 'net1', ...conf } as NetConf;
  return { command: 'ADD', containerID: 'ctr1', netns: SELF_NETNS, ifName: 'eth0', args: '', argsMap: {}, path: [], stdin: Buffer.from(JSON.stringify(c)), conf: c, ...extra };
}

/**
 * A CNI_PATH directory where each of `names` is our own build as far as lib/ipam/exec.ts can
 * tell (the bundle marker on line 2), so a delegated IPAM runs in-process, as with dist/bin.
 * Returns the directory and a function that removes it.
 */
export function ourPluginDir(names: readonly string[]): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'cni-ts-plugins-'));
  for (const n of names) {
    writeFileSync(join(dir, n), `#!/bin/false\n${BUNDLE_MARKER}${n}\n`);
    chmodSync(join(dir, n), 0o755);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The fake host a plugin's processes test runs against (see fakeHost). */
export interface FakeHost extends FakeSpawn {
  /** What `nft -j list …` prints; empty (no rules) until a test sets it. */
  nft: string;
  /** A temp directory for the test's leases, state and backups; removed by restore(). */
  dir: string;
  /** CNI_PATH: our in-process host-local (ourPluginDir). */
  path: string[];
  /** Puts the spawner and PATH back and removes the directories. */
  restore(): void;
}

/**
 * The fake host for plugin tests: the spawner faked (lib/exec/testing.ts) with ip and tc batches
 * answered by acceptingKernel(answer) and `nft -j list` by `host.nft`; both netfilter backends
 * installed (so nftables is chosen for setup and both are torn down); a temp dir; our host-local.
 */
export function fakeHost(answer?: (line: string) => unknown): FakeHost {
  const restoreTools = fakeTools(NETFILTER_TOOLS);
  const plugins = ourPluginDir(['host-local']);
  const dir = mkdtempSync(join(tmpdir(), 'cni-ts-host-'));
  const kernel = acceptingKernel(answer);
  const spawn = fakeSpawn((p) => (p.argv[0] === 'nft' && p.argv.includes('list') ? { stdout: host.nft } : kernel(p)));
  const host: FakeHost = {
    ...spawn,
    nft: '',
    dir,
    path: [plugins.dir],
    restore: () => {
      spawn.restore();
      restoreTools();
      plugins.remove();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return host;
}

/**
 * What the netfilter steps spawn on that host (both backends installed, nftables chosen, the
 * container's rules in nftables): masquerade setup, check, and teardown when the container's
 * addresses are known (IPv4 only) or not (both families read, as GC does).
 */
export const MASQ = {
  read: 'nft -j list table inet cni_plugins_masquerade',
  setup: ['nft -j list table inet cni_plugins_masquerade', 'nft -f -'],
  check: ['nft -j list table inet cni_plugins_masquerade'],
  // The iptables driver first asks nft which tables exist; the fake host has no iptables table,
  // so it reads none (lib/netfilter/iptables/driver.ts tablesPresent).
  teardown: ['nft list tables', 'nft -j list table inet cni_plugins_masquerade', 'nft -f -'],
  teardownByOwner: ['nft list tables', 'nft -j list table inet cni_plugins_masquerade', 'nft -f -'],
} as const;

/** The flock every host-local verb but STATUS runs (lib/lock/flock.ts). */
export const FLOCK = 'flock --exclusive --timeout 30 3';

/** `steps` when ipMasq is on, else none: a verb's masquerade processes (MASQ) in an expectation. */
export const masqIf = (ipMasq: boolean, steps: readonly string[]): readonly string[] => (ipMasq ? steps : []);

/**
 * After a test's ADD of ctr1/eth0 on the fake host: the NAT rules it made are in `host.nft`
 * (when ipMasq) and its processes are forgotten, so the next verb's can be counted alone.
 */
export function afterAdd(host: FakeHost, r: Result, ipMasq: boolean): Result {
  if (ipMasq) host.nft = nftMasqListing({ network: 'net1', containerID: 'ctr1', ifName: 'eth0' }, (r.ips ?? []).map((i) => i.address));
  host.clear();
  return r;
}
