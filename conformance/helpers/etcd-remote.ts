// Runs lib/etcd's EtcdClient inside a netns for a test: helpers/etcd-driver.ts is bundled with
// esbuild into the Registry's temp dir and started as `nsenter --net=<ns> node driver.js`; the
// test calls the client's methods through it (JSON lines over stdin/stdout). Stopped by pid.
//
//   const remote = await startRemoteClients(reg, etcd.netns);
//   const c = await remote.client({ endpoints: [etcd.endpoint] });
//   await c.put('/k', 'v');  const w = await c.watch('/p/', rev);  await w.ended;
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { build } from 'esbuild';
import type { EtcdOptions, KeyValue, WatchEnd, WatchEvent } from '../../lib/etcd/client';
import { inNetns } from './exec';
import type { Netns, Registry } from './netns';

/** An EtcdError as it crossed the process boundary. */
export interface RemoteError extends Error {
  kind?: string;
  endpoint?: string;
  /** How long the failed call took, in ms (measured in the driver). */
  ms: number;
}

export interface RemoteWatch {
  /** Every batch received so far (progress notifications have no events). */
  readonly batches: { events: WatchEvent[]; revision: number }[];
  /** All events received so far, in order. */
  events(): WatchEvent[];
  created: Promise<boolean>;
  ended: Promise<WatchEnd>;
  /** Resolves once at least n events arrived (or rejects when the watch ends first / after timeoutMs). */
  waitForEvents(n: number, timeoutMs?: number): Promise<WatchEvent[]>;
  cancel(): Promise<void>;
}

export interface RemoteClient {
  get(key: string): Promise<KeyValue | undefined>;
  list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }>;
  put(key: string, value: string, lease?: string): Promise<number>;
  delete(key: string): Promise<number>;
  createIfAbsent(key: string, value: string, lease?: string): Promise<boolean>;
  putIfUnchanged(key: string, value: string, modRevision: number, lease?: string): Promise<boolean>;
  grantLease(ttlSeconds: number): Promise<{ id: string; ttl: number }>;
  keepAlive(id: string): Promise<number>;
  revokeLease(id: string): Promise<void>;
  leaseTimeToLive(id: string): Promise<number>;
  watch(prefix: string, startRevision: number): Promise<RemoteWatch>;
  /** The endpoint the client tries first next (EtcdClient.currentEndpoint). */
  currentEndpoint(): Promise<string>;
  close(): Promise<void>;
}

export interface RemoteClients {
  readonly pid: number;
  client(opts: EtcdOptions): Promise<RemoteClient>;
  /** Closes stdin (the driver closes its clients and exits), SIGKILL after 5 s. */
  stop(): Promise<void>;
}

const METHODS = ['get', 'list', 'put', 'delete', 'createIfAbsent', 'putIfUnchanged', 'grantLease', 'keepAlive', 'revokeLease', 'leaseTimeToLive'] as const;

/** Bundles the driver and starts it in ns; the Registry stops it at cleanup. */
export async function startRemoteClients(reg: Registry, ns: Netns): Promise<RemoteClients> {
  const out = join(reg.tempDir(), 'etcd-driver.js');
  await build({
    entryPoints: [join(__dirname, 'etcd-driver.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
  });
  const [cmd, ...rest] = inNetns(ns.path, [process.execPath, out]);
  const child = spawn(cmd!, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
  const remote = new Driver(child);
  reg.onCleanup(`stop etcd client driver ${child.pid}`, () => remote.stop());
  await remote.ready;
  return remote;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: unknown) => void };

class Driver implements RemoteClients {
  readonly ready: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private readonly watchSinks = new Map<string, (m: Record<string, unknown>) => void>();
  private readonly orphans = new Map<string, Record<string, unknown>[]>();
  private seq = 0;
  private stderr = '';
  private readonly exited: Promise<void>;

  constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((r) => child.on('close', () => r()));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-4000)));
    child.stdin!.on('error', () => undefined);
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise((res, rej) => ((readyResolve = res), (readyReject = rej)));
    child.on('close', (code) => {
      const err = new Error(`etcd client driver exited (code ${code}): ${this.stderr}`);
      readyReject(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as Record<string, unknown>;
      if (m.ready) return readyResolve();
      if (typeof m.watch === 'string') {
        const sink = this.watchSinks.get(m.watch);
        if (sink) return sink(m);
        this.orphans.set(m.watch, [...(this.orphans.get(m.watch) ?? []), m]);
        return;
      }
      const p = this.pending.get(m.id as number);
      if (!p) return;
      this.pending.delete(m.id as number);
      if (m.ok) p.resolve(m.value);
      else {
        const e = m.error as { name: string; kind?: string; message: string; endpoint?: string };
        p.reject(Object.assign(new Error(e.message), { name: e.name, kind: e.kind, endpoint: e.endpoint, ms: m.ms }));
      }
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  private request(o: Record<string, unknown>): Promise<unknown> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(JSON.stringify({ id, ...o }) + '\n');
    });
  }

  async client(opts: EtcdOptions): Promise<RemoteClient> {
    const client = (await this.request({ op: 'new', opts })) as string;
    const c: Record<string, unknown> = {};
    for (const m of METHODS) c[m] = (...args: unknown[]) => this.request({ op: 'call', client, method: m, args });
    c.watch = (prefix: string, rev: number) => this.watch(client, prefix, rev);
    c.close = () => this.request({ op: 'close', client });
    c.currentEndpoint = () => this.request({ op: 'endpoint', client });
    return c as unknown as RemoteClient;
  }

  private async watch(client: string, prefix: string, rev: number): Promise<RemoteWatch> {
    const batches: { events: WatchEvent[]; revision: number }[] = [];
    let createdResolve!: (b: boolean) => void;
    let endResolve!: (e: WatchEnd) => void;
    const created = new Promise<boolean>((r) => (createdResolve = r));
    const ended = new Promise<WatchEnd>((r) => (endResolve = r));
    const waiters = new Set<() => void>();
    const sink = (m: Record<string, unknown>) => {
      if ('created' in m) createdResolve(m.created as boolean);
      if ('events' in m) batches.push({ events: m.events as WatchEvent[], revision: m.revision as number });
      if ('end' in m) endResolve(m.end as WatchEnd);
      for (const w of waiters) w();
    };
    const id = (await this.request({ op: 'watch', client, args: [prefix, rev] })) as string;
    this.watchSinks.set(id, sink);
    // Messages that arrived before the answer was handled.
    (this.orphans.get(id) ?? []).forEach(sink);
    this.orphans.delete(id);
    const events = () => batches.flatMap((b) => b.events);
    let isEnded: WatchEnd | undefined;
    void ended.then((e) => (isEnded = e));
    return {
      batches,
      events,
      created,
      ended,
      cancel: async () => {
        await this.request({ op: 'cancel', watch: id });
      },
      waitForEvents: (n, timeoutMs = 10_000) =>
        new Promise((resolve, reject) => {
          const check = () => {
            if (events().length >= n) return done(() => resolve(events()));
            if (isEnded) return done(() => reject(new Error(`watch ended (${JSON.stringify(isEnded)}) after ${events().length} of ${n} events`)));
          };
          const timer = setTimeout(() => done(() => reject(new Error(`only ${events().length} of ${n} events after ${timeoutMs} ms`))), timeoutMs);
          const done = (f: () => void) => {
            clearTimeout(timer);
            waiters.delete(check);
            f();
          };
          waiters.add(check);
          void ended.then(() => setImmediate(check));
          check();
        }),
    };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin!.end();
    const gone = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
    if (!gone) {
      process.kill(this.child.pid!, 'SIGKILL');
      await this.exited;
    }
  }
}
