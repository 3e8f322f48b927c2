// Test-only entry, bundled by esbuild on the fly (helpers/etcd-remote.ts) and run with node under
// `nsenter --net=<etcd's netns>`: it drives lib/etcd's EtcdClient on behalf of the jest process,
// which cannot enter a netns. One JSON request per stdin line, one JSON answer per stdout line:
//   {"id":1,"op":"new","opts":{…}}                           → {"id":1,"ok":true,"value":"c1"}
//   {"id":2,"op":"call","client":"c1","method":"put","args":["k","v"]} → {"id":2,"ok":true,"value":5,"ms":3}
//   {"id":3,"op":"watch","client":"c1","args":["/p",1]}      → {"id":3,"ok":true,"value":"w1"}
//       then {"watch":"w1","created":true} / {"watch":"w1","events":[…],"revision":7} / {"watch":"w1","end":{…}}
//   {"id":4,"op":"endpoint","client":"c1"} → the endpoint tried first next
//   {"id":4,"op":"cancel","watch":"w1"}  {"id":5,"op":"close","client":"c1"}
// A failure answers {"id":…,"ok":false,"error":{"name","kind","message","endpoint"},"ms":…}.
// stdin closing closes every client and exits.
import { createInterface } from 'node:readline';
import { EtcdClient, EtcdError, type Watch } from '../../lib/etcd/client';

const clients = new Map<string, EtcdClient>();
const watches = new Map<string, Watch>();
let seq = 0;

function send(o: unknown): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

function errorJson(e: unknown) {
  if (e instanceof EtcdError) return { name: e.name, kind: e.kind, message: e.message, endpoint: e.endpoint };
  return { name: (e as Error)?.name ?? 'Error', message: (e as Error)?.message ?? String(e) };
}

type Req = { id: number; op: string; client?: string; method?: string; args?: unknown[]; opts?: unknown; watch?: string };

async function handle(r: Req): Promise<unknown> {
  switch (r.op) {
    case 'new': {
      const id = `c${++seq}`;
      clients.set(id, new EtcdClient(r.opts as ConstructorParameters<typeof EtcdClient>[0]));
      return id;
    }
    case 'call': {
      const c = clients.get(r.client!)!;
      const fn = (c as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[r.method!];
      if (typeof fn !== 'function') throw new Error(`no method ${r.method}`);
      return fn.apply(c, r.args ?? []);
    }
    case 'endpoint':
      return clients.get(r.client!)!.currentEndpoint;
    case 'watch': {
      const c = clients.get(r.client!)!;
      const id = `w${++seq}`;
      const [prefix, rev] = r.args as [string, number];
      const w = c.watch(prefix, rev, (events, revision) => send({ watch: id, events, revision }));
      watches.set(id, w);
      void w.created.then((created) => send({ watch: id, created }));
      void w.ended.then((end) => send({ watch: id, end: end.reason === 'error' ? { reason: 'error', error: errorJson(end.error) } : end }));
      return id;
    }
    case 'cancel':
      watches.get(r.watch!)?.cancel();
      return null;
    case 'close':
      clients.get(r.client!)?.close();
      clients.delete(r.client!);
      return null;
    default:
      throw new Error(`unknown op ${r.op}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const r = JSON.parse(line) as Req;
  const t0 = Date.now();
  handle(r).then(
    // JSON has no undefined: leaving `value` out keeps get()'s undefined an undefined.
    (value) => send({ id: r.id, ok: true, ...(value === undefined ? {} : { value }), ms: Date.now() - t0 }),
    (e: unknown) => send({ id: r.id, ok: false, error: errorJson(e), ms: Date.now() - t0 }),
  );
});
rl.on('close', () => {
  for (const c of clients.values()) c.close();
});
send({ ready: true });
