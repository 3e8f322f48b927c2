/**
 * For unit tests only (no plugin imports this): a scripted stand-in for the process spawner
 * (lib/exec/run.ts setSpawnHook) that records every process a plugin starts, and a PATH holding
 * only the tools a test says are installed (the netfilter drivers look there, lib/netfilter/select.ts).
 * Nothing is spawned and no kernel is touched.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setSpawnHook, type RunOptions, type RunResult } from './run';
import { isShowLine } from '../iproute/ip';
import { nftComment } from '../netfilter/names';

/** One process the code under test started. */
export interface Spawned {
  argv: string[];
  /** argv joined by spaces, for readable expectations. */
  cmd: string;
  /** What it was given on stdin. */
  input?: string;
  opts: RunOptions;
}

/** The answer to one process: exit 0 with empty output unless said otherwise. */
export type Reply = Partial<RunResult> | undefined | void;
export type Script = (p: Spawned) => Reply | Promise<Reply>;

export interface FakeSpawn {
  /** Every process so far, in the order they were started. */
  readonly spawned: Spawned[];
  /** Their command lines (`cmd`). */
  commands(): string[];
  /** Answers from now on with `script`. */
  answer(script: Script): void;
  /** Forgets the processes so far (to count one verb after a setup). */
  clear(): void;
  /** Puts the real spawner back. */
  restore(): void;
}

/** Installs the fake spawner; call restore() (e.g. in afterEach) to put the real one back. */
export function fakeSpawn(script: Script = () => undefined): FakeSpawn {
  const spawned: Spawned[] = [];
  let current = script;
  setSpawnHook(async (argv, opts) => {
    const p: Spawned = { argv, cmd: argv.join(' '), input: opts.input, opts };
    spawned.push(p);
    return { stdout: '', stderr: '', exitCode: 0, ...((await current(p)) ?? {}) };
  });
  return {
    spawned,
    commands: () => spawned.map((p) => p.cmd),
    answer: (s) => {
      current = s;
    },
    clear: () => {
      spawned.length = 0;
    },
    restore: () => setSpawnHook(undefined),
  };
}

/**
 * Makes PATH a fresh directory holding empty executables of these names only (e.g. `nft`,
 * `iptables-save`), so what counts as installed does not depend on the machine running the
 * tests. Returns a function that puts PATH back and removes the directory.
 */
export function fakeTools(names: readonly string[]): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'cni-ts-tools-'));
  for (const n of names) {
    writeFileSync(join(dir, n), '#!/bin/false\n');
    chmodSync(join(dir, n), 0o755);
  }
  const saved = process.env.PATH;
  process.env.PATH = dir;
  return () => {
    process.env.PATH = saved;
    rmSync(dir, { recursive: true, force: true });
  };
}

/** The tools of both netfilter backends, as lib/netfilter/select.ts looks for them. */
export const NETFILTER_TOOLS = ['nft', 'iptables-save', 'iptables-restore', 'ip6tables-save', 'ip6tables-restore'] as const;

/** A link as `ip -json` prints it, for a fake kernel's answers. */
export function ipLink(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const index = 10 + [...name].reduce((n, c) => n + c.charCodeAt(0), 0) % 80;
  const mac = `02:00:00:00:00:${index.toString(16).padStart(2, '0')}`;
  return { ifindex: index, ifname: name, flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, operstate: 'UP', address: mac, addr_info: [], ...extra };
}

/**
 * The stdout of an `ip -json -batch -` (or `tc -json -batch -`) given `input`: one JSON line
 * per show line, from `answer(line)`; by default a link named by `dev <name>` for `link show` and
 * `addr show`, and `[]` for anything else shown.
 */
export function batchShows(input: string | undefined, answer: (line: string) => unknown = () => undefined): string {
  return (input ?? '')
    .split('\n')
    .filter((l) => isShowLine(l))
    .map((l) => {
      const own = answer(l);
      if (own !== undefined) return JSON.stringify(own);
      const dev = /^(?:link|addr) show dev (\S+)/.exec(l)?.[1];
      return JSON.stringify(dev ? [ipLink(dev)] : []);
    })
    .map((l) => `${l}\n`)
    .join('');
}

/**
 * A kernel that has every link a batch asks for and accepts every change: each `-batch` process
 * prints batchShows(input, answer), anything else exits 0 with no output.
 */
export function acceptingKernel(answer?: (line: string) => unknown): Script {
  return (p) => (p.argv.includes('-batch') ? { stdout: batchShows(p.input, answer) } : undefined);
}

/** One rule of a fake `nft -j list` answer. */
export interface FakeNftRule {
  family: string;
  table: string;
  chain: string;
  comment?: string;
  expr?: unknown[];
}

/** `nft -j list …` output holding these rules (and their tables), handles from 10 up. */
export function nftListing(rules: readonly FakeNftRule[]): string {
  const tables = [...new Set(rules.map((r) => `${r.family} ${r.table}`))].map((t, i) => {
    const [family, name] = t.split(' ');
    return { table: { family, name, handle: i + 1 } };
  });
  return JSON.stringify({ nftables: [...tables, ...rules.map((r, i) => ({ rule: { ...r, expr: r.expr ?? [], handle: 10 + i } }))] });
}

/**
 * `nft -j list table inet cni_plugins_masquerade` holding an attachment's masquerade rules as
 * our (and the reference's) setup leaves them: postrouting goes to masq_checks, which has one
 * rule per address of the owner (`addresses` as "ip/prefix", IPv4).
 */
export function nftMasqListing(owner: { network: string; containerID: string; ifName: string }, addresses: readonly string[]): string {
  const t = { family: 'inet', table: 'cni_plugins_masquerade' };
  return nftListing([
    { ...t, chain: 'postrouting', expr: [{ goto: { target: 'masq_checks' } }] },
    ...addresses.map((a) => {
      const [ip, len] = a.split('/') as [string, string];
      const net = ip.split('.').map((o, k) => (k < Math.floor(Number(len) / 8) ? o : '0')).join('.');
      return {
        ...t,
        chain: 'masq_checks',
        comment: nftComment(owner.network, owner.ifName, owner.containerID),
        expr: [
          { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: ip } },
          { match: { op: '!=', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: { prefix: { addr: net, len: Number(len) } } } },
          { masquerade: null },
        ],
      };
    }),
  ]);
}

/**
 * `commands` cut into phases as long as those of `want`, each phase sorted, with whatever is left
 * over as one more phase; and `want` sorted the same way. Steps that run at once (runSteps, a
 * Promise.all of reads) start in no fixed order, phases one after the other do:
 * `expect(got).toEqual(want)` pins the count, the argv and the order of the phases.
 */
export function inPhases(commands: readonly string[], want: readonly (readonly string[])[]): { got: string[][]; want: string[][] } {
  const got: string[][] = [];
  let at = 0;
  for (const p of want) {
    got.push(commands.slice(at, at + p.length).sort());
    at += p.length;
  }
  if (at < commands.length) got.push(commands.slice(at).sort());
  return { got, want: want.map((p) => [...p].sort()) };
}
