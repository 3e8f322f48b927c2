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
