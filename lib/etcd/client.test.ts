// EtcdClient against tiny fake gateways on 127.0.0.1 (no etcd, no root): request encoding,
// failover order, timeouts, error mapping, re-authentication, and the watch stream.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EtcdClient, type EtcdError, type WatchEvent } from './client';
import { b64 } from './codec';

type Handler = (path: string, body: any, req: http.IncomingMessage, res: http.ServerResponse) => void;

interface Fake {
  url: string;
  calls: { path: string; body: any; auth?: string }[];
  close(): Promise<void>;
}

const servers: http.Server[] = [];

async function fake(handler: Handler): Promise<Fake> {
  const calls: Fake['calls'] = [];
  const srv = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      const body = text ? JSON.parse(text) : undefined;
      calls.push({ path: req.url!, body, auth: req.headers.authorization });
      handler(req.url!, body, req, res);
    });
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    calls,
    close: () => new Promise((r) => (srv.closeAllConnections(), srv.close(() => r()))),
  };
}

/** An endpoint that refuses connections: port 1 on a loopback address (nothing listens there). */
function deadUrl(i = 1): string {
  return `http://127.0.0.${i}:1`;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const header = (rev: number) => ({ header: { cluster_id: '1', member_id: '2', revision: String(rev), raft_term: '2' } });

let clients: EtcdClient[] = [];
function client(opts: ConstructorParameters<typeof EtcdClient>[0]): EtcdClient {
  const c = new EtcdClient(opts);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients) c.close();
  clients = [];
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function rejection(p: Promise<unknown>): Promise<EtcdError> {
  try {
    await p;
  } catch (e) {
    return e as EtcdError;
  }
  throw new Error('expected a rejection');
}

describe('requests as the JSON gateway wants them', () => {
  test('get, list, put with lease, delete, txns, leases', async () => {
    const f = await fake((path, body, _req, res) => {
      switch (path) {
        case '/v3/kv/range':
          if (body.range_end) {
            return json(res, 200, { ...header(12), kvs: [{ key: b64('/p/a'), value: b64('1'), create_revision: '3', mod_revision: '4', version: '2' }], count: '1' });
          }
          return json(res, 200, header(12)); // no kvs: not found
        case '/v3/kv/put':
          return json(res, 200, header(13));
        case '/v3/kv/deleterange':
          return json(res, 200, { ...header(14), deleted: '1' });
        case '/v3/kv/txn':
          return json(res, 200, body.compare[0].target === 'VERSION' ? { ...header(15), succeeded: true } : header(15));
        case '/v3/lease/grant':
          return json(res, 200, { ...header(15), ID: '7668682652464010253', TTL: '10' });
        case '/v3/lease/keepalive':
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ result: { ...header(15), ID: body.ID, ...(body.ID === '1' ? { TTL: '9' } : {}) } }) + '\n');
        case '/v3/lease/timetolive':
          return json(res, 200, { ...header(15), ID: body.ID, TTL: '-1' });
        case '/v3/lease/revoke':
          return json(res, 404, { error: 'etcdserver: requested lease not found', message: 'etcdserver: requested lease not found', code: 5 });
      }
      json(res, 404, {});
    });
    const c = client({ endpoints: [f.url] });
    expect(await c.get('/missing')).toBeUndefined();
    expect(await c.list('/p/')).toEqual({ kvs: [{ key: '/p/a', value: '1', createRevision: 3, modRevision: 4, version: 2, lease: '0' }], revision: 12 });
    expect(await c.put('/k', 'v', '7668682652464010253')).toBe(13);
    expect(await c.put('/k2', 'v', '0')).toBe(13);
    expect(await c.delete('/k')).toBe(1);
    expect(await c.createIfAbsent('/k', 'v', '5')).toBe(true);
    expect(await c.putIfUnchanged('/k', 'v', 42)).toBe(false);
    expect(await c.grantLease(10)).toEqual({ id: '7668682652464010253', ttl: 10 });
    expect(await c.keepAlive('1')).toBe(9);
    expect(await c.keepAlive('2')).toBe(0); // gone: etcd answers without TTL
    expect(await c.leaseTimeToLive('2')).toBe(-1);
    await expect(c.revokeLease('2')).resolves.toBeUndefined(); // already gone is fine

    expect(f.calls.map((x) => [x.path, x.body])).toEqual([
      ['/v3/kv/range', { key: b64('/missing') }],
      ['/v3/kv/range', { key: b64('/p/'), range_end: b64('/p0') }],
      ['/v3/kv/put', { key: b64('/k'), value: b64('v'), lease: '7668682652464010253' }],
      ['/v3/kv/put', { key: b64('/k2'), value: b64('v') }],
      ['/v3/kv/deleterange', { key: b64('/k') }],
      ['/v3/kv/txn', {
        compare: [{ key: b64('/k'), target: 'VERSION', result: 'EQUAL', version: '0' }],
        success: [{ request_put: { key: b64('/k'), value: b64('v'), lease: '5' } }],
      }],
      ['/v3/kv/txn', {
        compare: [{ key: b64('/k'), target: 'MOD', result: 'EQUAL', mod_revision: '42' }],
        success: [{ request_put: { key: b64('/k'), value: b64('v') } }],
      }],
      ['/v3/lease/grant', { TTL: '10' }],
      ['/v3/lease/keepalive', { ID: '1' }],
      ['/v3/lease/keepalive', { ID: '2' }],
      ['/v3/lease/timetolive', { ID: '2' }],
      ['/v3/lease/revoke', { ID: '2' }],
    ]);
    expect(f.calls.every((x) => x.auth === undefined)).toBe(true);
  });

  test('etcd errors map to kinds and name the endpoint', async () => {
    const f = await fake((path, _b, _r, res) => {
      if (path === '/v3/kv/range') return json(res, 400, { error: 'etcdserver: mvcc: required revision has been compacted', message: 'etcdserver: mvcc: required revision has been compacted', code: 11 });
      if (path === '/v3/kv/put') return json(res, 404, { message: 'etcdserver: requested lease not found', code: 5 });
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not Found');
    });
    const c = client({ endpoints: [f.url] });
    const e1 = await rejection(c.get('/k'));
    expect([e1.name, e1.kind, e1.endpoint]).toEqual(['EtcdError', 'compacted', f.url]);
    expect(e1.message).toBe(`etcd get at ${f.url}: HTTP 400 etcdserver: mvcc: required revision has been compacted (grpc code 11)`);
    expect((await rejection(c.put('/k', 'v', '99'))).kind).toBe('lease-not-found');
    const e3 = await rejection(c.delete('/k'));
    expect(e3.kind).toBe('request');
    expect(e3.message).toBe(`etcd delete at ${f.url}: HTTP 404 Not Found`);
  });

  test('bad options are refused at construction', () => {
    expect(() => new EtcdClient({ endpoints: [] })).toThrow(/no endpoints/);
    expect(() => new EtcdClient({ endpoints: ['10.0.0.1:2379'] })).toThrow(/invalid endpoint/);
    expect(() => new EtcdClient({ endpoints: ['unix:///run/etcd.sock'] })).toThrow(/scheme must be http or https/);
    expect(() => new EtcdClient({ endpoints: ['http://h:1'], username: 'u' })).toThrow(/username and password go together/);
    expect(() => new EtcdClient({ endpoints: ['https://h:1'], caFile: '/nonexistent/ca.pem' })).toThrow(/cannot read CA file \/nonexistent\/ca.pem: .*ENOENT/);
  });
});

describe('failover and timeouts', () => {
  test('refused endpoints are skipped in order; the one that answered is tried first next time', async () => {
    const dead = deadUrl();
    const live = await fake((_p, _b, _r, res) => json(res, 200, header(3)));
    const c = client({ endpoints: [dead, live.url], timeoutMs: 1000 });
    expect(c.currentEndpoint).toBe(dead);
    expect(await c.put('/k', 'v')).toBe(3);
    expect(c.currentEndpoint).toBe(live.url);
  });

  test('a hanging endpoint: reads move on after the timeout; writes stop with "timeout" and move the next call on', async () => {
    const hang = await fake(() => undefined); // accepts, never answers
    const live = await fake((_p, _b, _r, res) => json(res, 200, header(5)));
    const c = client({ endpoints: [hang.url, live.url], timeoutMs: 200 });
    const t0 = Date.now();
    expect(await c.get('/k')).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(c.currentEndpoint).toBe(live.url);
    await c.get('/k');
    expect(hang.calls).toHaveLength(1); // the second get went to the live endpoint first
    expect(live.calls).toHaveLength(2);

    const w = client({ endpoints: [hang.url, live.url], timeoutMs: 200 });
    const e = await rejection(w.put('/k', 'v'));
    expect(e.kind).toBe('timeout');
    expect(e.endpoint).toBe(hang.url);
    expect(e.message).toBe(`etcd put at ${hang.url}: no answer within 200 ms; the request may have been applied (endpoints tried: ${hang.url}: no answer within 200 ms)`);
    expect(live.calls.filter((x) => x.path === '/v3/kv/put')).toHaveLength(0);
    expect(w.currentEndpoint).toBe(live.url); // the caller's retry goes elsewhere
    expect(await w.put('/k', 'v')).toBe(5);
  });

  test('nothing reachable: "unavailable" naming every endpoint and its cause, no waiting on refusals', async () => {
    const d1 = deadUrl(1);
    const d2 = deadUrl(2);
    const hang = await fake(() => undefined);
    const c = client({ endpoints: [d1, hang.url, d2], timeoutMs: 300 });
    const t0 = Date.now();
    const e = await rejection(c.get('/k'));
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(e.kind).toBe('unavailable');
    expect(e.message).toBe(
      `etcd get: no endpoint answered (${d1}: connect ECONNREFUSED 127.0.0.1:1; ${hang.url}: no answer within 300 ms; ${d2}: connect ECONNREFUSED 127.0.0.2:1)`,
    );
    // A write that reached no endpoint was never sent: 'unavailable', not 'timeout'.
    const w = client({ endpoints: [d1, d2] });
    expect((await rejection(w.put('/k', 'v'))).kind).toBe('unavailable');
  });

  test('an idempotent call moves on when etcd says it cannot serve (no leader)', async () => {
    const noLeader = await fake((_p, _b, _r, res) => json(res, 503, { error: 'etcdserver: no leader', message: 'etcdserver: no leader', code: 14 }));
    const live = await fake((_p, _b, _r, res) => json(res, 200, header(8)));
    const c = client({ endpoints: [noLeader.url, live.url] });
    expect(await c.list('/p/')).toEqual({ kvs: [], revision: 8 });
    const w = client({ endpoints: [noLeader.url, live.url] });
    const e = await rejection(w.put('/k', 'v'));
    expect(e.kind).toBe('unavailable');
    expect(e.message).toContain('no leader');
  });

  test('an answer that starts and then stalls still times out', async () => {
    const stall = await fake((_p, _b, _r, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"header":');
    });
    const c = client({ endpoints: [stall.url], timeoutMs: 200 });
    const e = await rejection(c.get('/k'));
    expect(e.kind).toBe('unavailable');
    expect(e.message).toBe(`etcd get: no endpoint answered (${stall.url}: no answer within 200 ms)`);
  });

  test('close() during a call stops it without trying the other endpoints', async () => {
    const hang = await fake(() => undefined);
    const other = await fake((_p, _b, _r, res) => json(res, 200, header(1)));
    const c = client({ endpoints: [hang.url, other.url], timeoutMs: 5000 });
    const p = rejection(c.get('/k'));
    while (hang.calls.length === 0) await new Promise((r) => setTimeout(r, 5));
    c.close();
    expect((await p).message).toBe('etcd get: client is closed');
    expect(other.calls).toHaveLength(0);
  });

  test('close() makes later calls fail without touching the network', async () => {
    const live = await fake((_p, _b, _r, res) => json(res, 200, header(1)));
    const c = client({ endpoints: [live.url] });
    c.close();
    expect((await rejection(c.get('/k'))).message).toBe('etcd get: client is closed');
    expect(live.calls).toHaveLength(0);
  });
});

describe('auth', () => {
  test('authenticates first, sends the token, re-authenticates once when etcd forgot it', async () => {
    let n = 0;
    let valid = '';
    const f = await fake((path, body, req, res) => {
      if (path === '/v3/auth/authenticate') {
        if (body.password !== 'pw') return json(res, 400, { message: 'etcdserver: authentication failed, invalid user ID or password', code: 3 });
        valid = `tok${++n}`;
        return json(res, 200, { ...header(1), token: valid });
      }
      if (req.headers.authorization !== valid) return json(res, 401, { message: 'etcdserver: invalid auth token', code: 16 });
      json(res, 200, header(2));
    });
    const c = client({ endpoints: [f.url], username: 'root', password: 'pw' });
    await c.put('/a', '1');
    await c.put('/b', '2');
    valid = 'forgotten'; // etcd restarted
    await c.put('/c', '3');
    expect(f.calls.map((x) => `${x.path} ${x.auth ?? '-'}`)).toEqual([
      '/v3/auth/authenticate -',
      '/v3/kv/put tok1',
      '/v3/kv/put tok1',
      '/v3/kv/put tok1',
      '/v3/auth/authenticate -',
      '/v3/kv/put tok2',
    ]);
    expect(f.calls[0]!.body).toEqual({ name: 'root', password: 'pw' });

    // Refused again right after a fresh token: no loop, the auth error comes out.
    const loop = await fake((path, _b, _r, res) =>
      path === '/v3/auth/authenticate' ? json(res, 200, { token: 't' }) : json(res, 401, { message: 'etcdserver: invalid auth token', code: 16 }),
    );
    const l = client({ endpoints: [loop.url], username: 'root', password: 'pw' });
    const e = await rejection(l.get('/k'));
    expect(e.kind).toBe('auth');
    expect(loop.calls.map((x) => x.path)).toEqual(['/v3/auth/authenticate', '/v3/kv/range', '/v3/auth/authenticate', '/v3/kv/range']);

    const bad = client({ endpoints: [f.url], username: 'root', password: 'nope' });
    const e2 = await rejection(bad.get('/k'));
    expect(e2.kind).toBe('auth');
    expect(e2.message).toBe(`etcd authenticate at ${f.url}: HTTP 400 etcdserver: authentication failed, invalid user ID or password (grpc code 3)`);
  });

  test('concurrent calls share one authentication', async () => {
    const f = await fake((path, _b, _r, res) => (path === '/v3/auth/authenticate' ? setTimeout(() => json(res, 200, { token: 't' }), 50) : json(res, 200, header(2))));
    const c = client({ endpoints: [f.url], username: 'u', password: 'p' });
    await Promise.all([c.get('/a'), c.get('/b'), c.get('/c')]);
    expect(f.calls.filter((x) => x.path === '/v3/auth/authenticate')).toHaveLength(1);
  });
});

describe('watch', () => {
  const line = (o: unknown) => JSON.stringify(o) + '\n';
  const put = (key: string, value: string, rev: number, prev?: string) => ({
    kv: { key: b64(key), value: b64(value), create_revision: '5', mod_revision: String(rev), version: '1' },
    ...(prev ? { prev_kv: { key: b64(key), value: b64(prev), create_revision: '5', mod_revision: String(rev - 1), version: '1' } } : {}),
  });

  /** A gateway that answers /v3/watch with 200 and lets `script` write the stream. */
  async function watchServer(script: (res: http.ServerResponse) => Promise<unknown>) {
    return fake((path, _b, _r, res) => {
      if (path !== '/v3/watch') return json(res, 404, {});
      res.writeHead(200, { 'content-type': 'application/json' });
      void script(res);
    });
  }
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  async function writeCut(res: http.ServerResponse, text: string, piece: number) {
    for (let i = 0; i < text.length; i += piece) {
      res.write(text.slice(i, i + piece));
      await sleep(1);
    }
  }

  test('created, events split anywhere, progress, then canceled with compact_revision', async () => {
    const f = await watchServer(async (res) => {
      const text =
        line({ result: { ...header(10), created: true } }) +
        line({ result: { ...header(11), events: [put('/p/a', 'ü1', 11)] } }) +
        line({ result: { ...header(13), events: [put('/p/a', '2', 12, 'ü1'), { type: 'DELETE', kv: { key: b64('/p/a'), mod_revision: '13' }, prev_kv: put('/p/a', '2', 12).kv }] } }) +
        line({ result: header(20) }) +
        line({ result: { header: {}, canceled: true, compact_revision: '15' } });
      await writeCut(res, text, 13);
      // The gateway keeps the stream open after a cancel: the client must close it.
    });
    const c = client({ endpoints: [f.url] });
    const got: [string, string, string | undefined, number][] = [];
    const w = c.watch('/p/', 11, (evs: WatchEvent[], rev) => {
      if (!evs.length) got.push(['progress', '', undefined, rev]);
      for (const e of evs) got.push([e.type, e.kv.value, e.prevKv?.value, rev]);
    });
    expect(await w.created).toBe(true);
    expect(await w.ended).toEqual({ reason: 'compacted', compactRevision: 15 });
    expect(got).toEqual([
      ['PUT', 'ü1', undefined, 11],
      ['PUT', '2', 'ü1', 13],
      ['DELETE', '', '2', 13],
      ['progress', '', undefined, 20],
    ]);
    expect(f.calls[0]!.body).toEqual({ create_request: { key: b64('/p/'), range_end: b64('/p0'), start_revision: '11', prev_kv: true, progress_notify: true } });
  });

  test('a dropped connection after created ends with an error naming the endpoint', async () => {
    const f = await watchServer(async (res) => {
      res.write(line({ result: { ...header(10), created: true } }));
      await sleep(20);
      res.socket!.destroy();
    });
    const c = client({ endpoints: [f.url] });
    const w = c.watch('/p/', 1, () => undefined);
    const end = await w.ended;
    expect(end.reason).toBe('error');
    if (end.reason !== 'error') return;
    expect(end.error.kind).toBe('unavailable');
    expect(end.error.message).toMatch(new RegExp(`^etcd watch at ${f.url}: stream broke: `));
  });

  test('no created within the timeout moves to the next endpoint; all failing ends "unavailable"', async () => {
    const silent = await watchServer(async () => undefined);
    const good = await watchServer(async (res) => res.write(line({ result: { ...header(3), created: true } })));
    const c = client({ endpoints: [silent.url, good.url], timeoutMs: 150 });
    const w = c.watch('/p/', 1, () => undefined);
    expect(await w.created).toBe(true);
    expect(c.currentEndpoint).toBe(good.url);
    w.cancel();
    expect(await w.ended).toEqual({ reason: 'cancelled' });

    const dead = deadUrl();
    const c2 = client({ endpoints: [dead, silent.url], timeoutMs: 150 });
    const w2 = c2.watch('/p/', 1, () => undefined);
    const end = await w2.ended;
    expect(await w2.created).toBe(false);
    expect(end).toMatchObject({ reason: 'error', error: { kind: 'unavailable' } });
    expect(end.reason === 'error' && end.error.message).toMatch(/^etcd watch: no endpoint answered \(.*ECONNREFUSED.*; .*: no answer within 150 ms\)$/);
  });

  test('a stream error message and a throwing handler end the watch with an error', async () => {
    const f = await watchServer(async (res) => res.write(line({ error: { grpc_code: 7, http_code: 403, message: 'etcdserver: permission denied', http_status: 'Forbidden' } })));
    const c = client({ endpoints: [f.url] });
    const end = await c.watch('/p/', 1, () => undefined).ended;
    expect(end).toMatchObject({ reason: 'error', error: { kind: 'auth', message: `etcd watch at ${f.url}: etcdserver: permission denied (grpc code 7)` } });

    const g = await watchServer(async (res) => res.write(line({ result: { ...header(2), created: true } }) + line({ result: { ...header(3), events: [put('/p/a', '1', 3)] } })));
    const c2 = client({ endpoints: [g.url] });
    const end2 = await c2.watch('/p/', 1, () => {
      throw new Error('boom');
    }).ended;
    expect(end2).toMatchObject({ reason: 'error', error: { kind: 'request', message: 'etcd watch: the event handler threw: boom' } });
  });

  test('close() ends open watches as cancelled and closes their connections', async () => {
    let closed = false;
    const f = await watchServer(async (res) => {
      res.on('close', () => (closed = true));
      res.write(line({ result: { ...header(2), created: true } }));
    });
    const c = client({ endpoints: [f.url] });
    const w = c.watch('/p/', 1, () => undefined);
    await w.created;
    c.close();
    expect(await w.ended).toEqual({ reason: 'cancelled' });
    for (let i = 0; i < 50 && !closed; i++) await sleep(10);
    expect(closed).toBe(true);
  });
});
