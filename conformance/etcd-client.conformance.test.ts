// lib/etcd against a real etcd 3.4 started by helpers/etcd.ts inside a netns the test made.
// The jest process cannot enter a netns, so the client runs in a small node process under
// `nsenter --net=` (helpers/etcd-driver.ts, bundled by esbuild on the fly) that the test drives
// over stdin/stdout.
import { existsSync } from 'node:fs';
import { exec, execOk, inNetns } from './helpers/exec';
import { type EtcdServer, startEtcd } from './helpers/etcd';
import { type RemoteClient, type RemoteClients, type RemoteError, startRemoteClients } from './helpers/etcd-remote';
import { Registry, randomHex, uniqueSubnet24 } from './helpers/netns';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

maybe('etcd test helper', () => {
  test('starts etcd in a fresh netns, keeps its data over stop/start, and cleanup leaves nothing', async () => {
    const reg = new Registry();
    let pids: number[] = [];
    let nsPath = '';
    let dataDir = '';
    try {
      const etcd = await startEtcd(reg);
      nsPath = etcd.netns.path;
      dataDir = etcd.dataDir;
      expect(etcd.endpoint).toBe('http://127.0.0.1:2379');
      pids.push(etcd.pid!);
      await etcd.etcdctlOk(['put', '/k', 'v1']);
      expect((await etcd.etcdctlOk(['get', '--print-value-only', '/k'])).stdout.trim()).toBe('v1');
      // Not reachable from the real host's loopback: it lives in its own netns.
      const outside = await exec(['etcdctl', '--endpoints=http://127.0.0.1:2379', '--dial-timeout=1s', '--command-timeout=1s', 'get', '/k'], {
        env: { ...process.env, ETCDCTL_API: '3' },
      });
      expect(outside.stdout).not.toContain('v1');
      await etcd.stop();
      expect(etcd.pid).toBeUndefined();
      expect(alive(pids[0]!)).toBe(false);
      expect((await etcd.etcdctl(['--command-timeout=1s', 'get', '/k'])).code).not.toBe(0);
      await etcd.start();
      pids.push(etcd.pid!);
      expect((await etcd.etcdctlOk(['get', '--print-value-only', '/k'])).stdout.trim()).toBe('v1');
      await etcd.kill();
      expect(alive(pids[1]!)).toBe(false);
      await etcd.start();
      pids.push(etcd.pid!);
    } finally {
      await reg.cleanup();
    }
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(existsSync(nsPath)).toBe(false);
    expect(existsSync(dataDir)).toBe(false);
  });

  test('TLS with a client certificate and auth with a non-root user', async () => {
    const reg = new Registry();
    try {
      const etcd = await startEtcd(reg, { tls: true, auth: { user: 'agent', password: 'secret' } });
      expect(etcd.endpoint).toBe('https://127.0.0.1:2379');
      await etcd.etcdctlOk(['put', '/k', 'v']);
      // Without credentials: refused (auth is on).
      const anon = await etcd.etcdctl(['get', '/k'], { noAuth: true });
      expect(anon.code).not.toBe(0);
      expect(anon.stderr).toMatch(/user name is empty|permission denied|invalid auth/i);
      // The non-root user can read and write anything.
      const asAgent = await etcd.etcdctl(['--user=agent:secret', 'put', '/other', 'x'], { noAuth: true });
      expect(asAgent.stderr).toBe('');
      expect(asAgent.code).toBe(0);
    } finally {
      await reg.cleanup();
    }
  });
});

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** The rejection of p (fails the test when p resolves). */
async function failure(p: Promise<unknown>): Promise<RemoteError> {
  try {
    await p;
  } catch (e) {
    return e as RemoteError;
  }
  throw new Error('expected a failure, got success');
}

/** etcdctl get as JSON: the kvs (key/value decoded) and lease as a decimal string. */
async function ctlGet(etcd: EtcdServer, key: string): Promise<{ value: string; lease: string } | undefined> {
  const r = await etcd.etcdctlOk(['get', '-w', 'json', key]);
  // etcdctl prints int64 as JSON numbers: keep the lease exact by reading it as text.
  const lease = /"lease":(\d+)/.exec(r.stdout)?.[1] ?? '0';
  const j = JSON.parse(r.stdout) as { kvs?: { value: string }[] };
  const kv = j.kvs?.[0];
  return kv ? { value: Buffer.from(kv.value, 'base64').toString(), lease } : undefined;
}

maybe('EtcdClient against etcd 3.4 (plain http, one netns)', () => {
  const reg = new Registry();
  let etcd: EtcdServer;
  let remote: RemoteClients;
  let c: RemoteClient;
  const pids: number[] = [];
  let nsPath = '';

  beforeAll(async () => {
    etcd = await startEtcd(reg);
    nsPath = etcd.netns.path;
    pids.push(etcd.pid!);
    remote = await startRemoteClients(reg, etcd.netns);
    pids.push(remote.pid);
    c = await remote.client({ endpoints: [etcd.endpoint] });
  });
  afterAll(async () => {
    await reg.cleanup();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(existsSync(nsPath)).toBe(false);
  });

  test('put / get / list / delete, checked with etcdctl', async () => {
    const r1 = await c.put('/t1/a', 'alpha');
    const r2 = await c.put('/t1/b', '{"PublicIP":"10.0.0.2"}');
    await c.put('/t1x', 'outside the prefix');
    expect(r2).toBe(r1 + 1);
    expect(await ctlGet(etcd, '/t1/a')).toEqual({ value: 'alpha', lease: '0' });
    await etcd.etcdctlOk(['put', '/t1/c', 'from etcdctl']);

    const a = await c.get('/t1/a');
    expect(a).toEqual({ key: '/t1/a', value: 'alpha', createRevision: r1, modRevision: r1, version: 1, lease: '0' });
    expect(await c.get('/t1/none')).toBeUndefined();

    const l = await c.list('/t1/');
    expect(l.kvs.map((kv) => [kv.key, kv.value])).toEqual([
      ['/t1/a', 'alpha'],
      ['/t1/b', '{"PublicIP":"10.0.0.2"}'],
      ['/t1/c', 'from etcdctl'],
    ]);
    expect(l.revision).toBe(r2 + 2);

    expect(await c.delete('/t1/a')).toBe(1);
    expect(await c.delete('/t1/a')).toBe(0);
    expect(await ctlGet(etcd, '/t1/a')).toBeUndefined();
  });

  test('createIfAbsent from two client processes racing: exactly one wins each key', async () => {
    const other = await startRemoteClients(reg, etcd.netns);
    pids.push(other.pid);
    const c2 = await other.client({ endpoints: [etcd.endpoint] });
    for (let i = 0; i < 10; i++) {
      const key = `/race/${i}`;
      const [one, two] = await Promise.all([c.createIfAbsent(key, 'one'), c2.createIfAbsent(key, 'two')]);
      expect([one, two].filter(Boolean)).toHaveLength(1);
      expect((await ctlGet(etcd, key))!.value).toBe(one ? 'one' : 'two');
    }
    expect(await c.createIfAbsent('/race/0', 'late')).toBe(false);
    await other.stop();
  });

  test('putIfUnchanged succeeds only on the mod_revision it was given', async () => {
    const rev = await c.put('/own/subnet', 'v1');
    expect(await c.putIfUnchanged('/own/subnet', 'v2', rev)).toBe(true);
    expect(await c.putIfUnchanged('/own/subnet', 'v3', rev)).toBe(false);
    expect((await c.get('/own/subnet'))!.value).toBe('v2');
    expect(await c.putIfUnchanged('/own/missing', 'v', 5)).toBe(false);
    expect(await c.get('/own/missing')).toBeUndefined();
  });

  test('lease: grant, bound keys, keepAlive keeps them, expiry (TTL 2 s) removes them, revoke deletes', async () => {
    const lease = await c.grantLease(2);
    expect(lease.ttl).toBe(2);
    expect(lease.id).toMatch(/^\d+$/);
    await c.put('/lease/a', 'A', lease.id);
    expect(await c.createIfAbsent('/lease/b', 'B', lease.id)).toBe(true);
    expect((await c.get('/lease/a'))!.lease).toBe(lease.id);
    expect((await ctlGet(etcd, '/lease/b'))!.lease).toBe(lease.id); // etcdctl agrees on the (int64) ID

    // Kept alive past its TTL.
    for (let i = 0; i < 4; i++) {
      await sleep(800);
      expect(await c.keepAlive(lease.id)).toBe(2);
    }
    expect(await c.leaseTimeToLive(lease.id)).toBeGreaterThanOrEqual(1);
    expect((await c.get('/lease/a'))?.value).toBe('A');

    // Left alone: expires with its keys.
    await sleep(3500);
    expect(await c.get('/lease/a')).toBeUndefined();
    expect(await ctlGet(etcd, '/lease/b')).toBeUndefined();
    expect(await c.keepAlive(lease.id)).toBe(0);
    expect(await c.leaseTimeToLive(lease.id)).toBe(-1);
    // A put on a lease that is gone says so.
    expect((await failure(c.put('/lease/c', 'C', lease.id))).kind).toBe('lease-not-found');

    const l2 = await c.grantLease(30);
    await c.put('/lease/d', 'D', l2.id);
    await c.revokeLease(l2.id);
    expect(await ctlGet(etcd, '/lease/d')).toBeUndefined();
    await c.revokeLease(l2.id); // already gone: fine
    expect(await c.leaseTimeToLive(l2.id)).toBe(-1);
  });

  test('watch: PUT, PUT with prevKv, DELETE with prevKv, in order, from another writer; cancel ends it', async () => {
    await c.put('/w/before', 'x');
    const { revision } = await c.list('/w/');
    const w = await c.watch('/w/', revision + 1);
    expect(await w.created).toBe(true);
    await etcd.etcdctlOk(['put', '/w/n1', '{"v":1}']);
    await c.put('/w/n1', '{"v":2}');
    await etcd.etcdctlOk(['del', '/w/n1']);
    await c.put('/wx', 'not under the prefix');
    await c.put('/w/n2', 'last');
    const evs = await w.waitForEvents(4);
    expect(evs.map((e) => [e.type, e.kv.key, e.kv.value, e.prevKv?.value])).toEqual([
      ['PUT', '/w/n1', '{"v":1}', undefined],
      ['PUT', '/w/n1', '{"v":2}', '{"v":1}'],
      ['DELETE', '/w/n1', '', '{"v":2}'],
      ['PUT', '/w/n2', 'last', undefined],
    ]);
    const revs = evs.map((e) => e.kv.modRevision);
    expect(revs).toEqual([...revs].sort((a, b) => a - b));
    expect(revs[0]).toBe(revision + 1);
    await w.cancel();
    expect(await w.ended).toEqual({ reason: 'cancelled' });
  });

  test('watch from the start revision includes history; from a compacted revision ends "compacted"', async () => {
    const first = await c.put('/h/k', '1');
    await c.put('/h/k', '2');
    const last = await c.put('/h/k', '3');
    const replay = await c.watch('/h/', first);
    expect((await replay.waitForEvents(3)).map((e) => e.kv.value)).toEqual(['1', '2', '3']);
    await replay.cancel();

    await etcd.etcdctlOk(['compact', String(last)]);
    const w = await c.watch('/h/', first);
    expect(await w.ended).toEqual({ reason: 'compacted', compactRevision: last });
    expect(w.events()).toEqual([]);
    // From the compaction point on it works again.
    const ok = await c.watch('/h/', last);
    expect((await ok.waitForEvents(1))[0]!.kv.value).toBe('3');
    await ok.cancel();
  });

  test('failover: a dead endpoint is skipped, and the live one is tried first next time', async () => {
    const dead = 'http://127.0.0.1:2390'; // nothing listens there in this netns
    const f = await remote.client({ endpoints: [dead, etcd.endpoint], timeoutMs: 1000 });
    expect(await f.currentEndpoint()).toBe(dead);
    await f.put('/fo/k', 'v');
    expect(await f.currentEndpoint()).toBe(etcd.endpoint);
    expect((await f.get('/fo/k'))!.value).toBe('v');

    // A hung endpoint (a second etcd, frozen): reads move on after the timeout; the next call
    // starts with the endpoint that answered, so it is fast.
    const hung = await startEtcd(reg, { netns: etcd.netns, clientPort: 2479, peerPort: 2480 });
    pids.push(hung.pid!);
    hung.pause();
    const h = await remote.client({ endpoints: [hung.endpoint, etcd.endpoint], timeoutMs: 1000 });
    const t0 = Date.now();
    expect((await h.get('/fo/k'))!.value).toBe('v');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    const t1 = Date.now();
    expect((await h.get('/fo/k'))!.value).toBe('v');
    expect(Date.now() - t1).toBeLessThan(1000); // trying the hung one first would take >= 1000 ms

    // A write left unanswered is not sent again elsewhere (it may have been applied): 'timeout',
    // and the caller's retry goes to the next endpoint.
    const h2 = await remote.client({ endpoints: [hung.endpoint, etcd.endpoint], timeoutMs: 1000 });
    const e = await failure(h2.put('/fo/w', 'v'));
    expect(e.kind).toBe('timeout');
    expect(e.message).toContain(hung.endpoint);
    expect(e.message).toMatch(/no answer within 1000 ms; the request may have been applied/);
    expect(await h2.currentEndpoint()).toBe(etcd.endpoint);
    expect(await h2.put('/fo/w', 'v')).toBeGreaterThan(0);
    await hung.stop();
  });

  test('unreachable etcd: "unavailable" within the timeout, naming every endpoint and its cause', async () => {
    const u = await remote.client({ endpoints: ['http://127.0.0.1:2390', 'http://127.0.0.1:2391'], timeoutMs: 1000 });
    const e = await failure(u.get('/x'));
    expect(e.kind).toBe('unavailable');
    expect(e.message).toMatch(/no endpoint answered \(http:\/\/127\.0\.0\.1:2390: connect ECONNREFUSED 127\.0\.0\.1:2390; http:\/\/127\.0\.0\.1:2391: connect ECONNREFUSED/);
    expect(e.ms).toBeLessThan(1000);
    // A write that never left is 'unavailable' too (nothing was sent).
    expect((await failure(u.put('/x', 'v'))).kind).toBe('unavailable');
    const w = await u.watch('/x/', 1);
    const end = await w.ended;
    expect(end.reason).toBe('error');
    expect(end.reason === 'error' && end.error.kind).toBe('unavailable');

    // A frozen etcd: the read gives up after timeoutMs.
    etcd.pause();
    try {
      const p = await remote.client({ endpoints: [etcd.endpoint], timeoutMs: 1000 });
      const e2 = await failure(p.get('/x'));
      expect(e2.kind).toBe('unavailable');
      expect(e2.message).toContain(`${etcd.endpoint}: no answer within 1000 ms`);
      expect(e2.ms).toBeGreaterThanOrEqual(1000);
      expect(e2.ms).toBeLessThan(2500);
    } finally {
      etcd.resume();
    }
  });

  test('a watch whose connection drops ends with an error (etcd killed); after a restart the data is there', async () => {
    const w = await c.watch('/drop/', (await c.list('/drop/')).revision + 1);
    expect(await w.created).toBe(true);
    await c.put('/drop/k', 'v');
    await w.waitForEvents(1);
    await etcd.kill();
    const end = await w.ended;
    expect(end.reason).toBe('error');
    expect(end.reason === 'error' && end.error.kind).toBe('unavailable');
    const down = await failure(c.get('/drop/k'));
    expect(down.kind).toBe('unavailable');
    expect(down.message).toContain('ECONNREFUSED');
    await etcd.start();
    pids.push(etcd.pid!);
    expect((await c.get('/drop/k'))!.value).toBe('v');
  });
});

maybe('etcd on an underlay address, reached from another netns (the multi-host layout)', () => {
  test('etcd in netns A on a veth address with TLS; the client in netns B connects over the veth', async () => {
    const reg = new Registry();
    try {
      const a = await reg.netns('host');
      const b = await reg.netns('host');
      const { prefix } = uniqueSubnet24();
      const [va, vb] = [`etA${randomHex(3)}`, `etB${randomHex(3)}`];
      await execOk(inNetns(a.path, ['ip', 'link', 'add', va, 'type', 'veth', 'peer', 'name', vb, 'netns', b.path]));
      await execOk(inNetns(a.path, ['ip', 'addr', 'add', `${prefix}.1/24`, 'dev', va]));
      await execOk(inNetns(a.path, ['ip', 'link', 'set', va, 'up']));
      await execOk(inNetns(b.path, ['ip', 'addr', 'add', `${prefix}.2/24`, 'dev', vb]));
      await execOk(inNetns(b.path, ['ip', 'link', 'set', vb, 'up']));
      const etcd = await startEtcd(reg, { netns: a, listenIP: `${prefix}.1`, tls: true });
      expect(etcd.endpoint).toBe(`https://${prefix}.1:2379`);
      const remote = await startRemoteClients(reg, b);
      const { caFile, certFile, keyFile } = etcd.tls!;
      const c = await remote.client({ endpoints: [etcd.endpoint], caFile, certFile, keyFile });
      await c.put('/coreos.com/network/subnets/10.5.52.0-24', '{"PublicIP":"' + prefix + '.2"}');
      expect((await ctlGet(etcd, '/coreos.com/network/subnets/10.5.52.0-24'))!.value).toContain(`${prefix}.2`);
    } finally {
      await reg.cleanup();
    }
  });
});

maybe('EtcdClient with TLS (CA + client certificate)', () => {
  const reg = new Registry();
  let etcd: EtcdServer;
  let remote: RemoteClients;
  afterAll(() => reg.cleanup());
  beforeAll(async () => {
    etcd = await startEtcd(reg, { tls: true });
    remote = await startRemoteClients(reg, etcd.netns);
  });

  test('with CA, certificate and key: put, get, watch', async () => {
    const { caFile, certFile, keyFile } = etcd.tls!;
    const c = await remote.client({ endpoints: [etcd.endpoint], caFile, certFile, keyFile });
    const w = await c.watch('/tls/', 1);
    await c.put('/tls/k', 'secure');
    expect((await c.get('/tls/k'))!.value).toBe('secure');
    expect((await w.waitForEvents(1))[0]!.kv.value).toBe('secure');
    expect((await ctlGet(etcd, '/tls/k'))!.value).toBe('secure');
    await w.cancel();
  });

  test('without a client certificate, or without the CA: a clear TLS error', async () => {
    const noCert = await remote.client({ endpoints: [etcd.endpoint], caFile: etcd.tls!.caFile, timeoutMs: 2000 });
    const e1 = await failure(noCert.get('/tls/k'));
    expect(e1.kind).toBe('unavailable');
    expect(e1.message).toMatch(/certificate required|bad certificate|handshake failure/i);
    expect(e1.message).toContain(etcd.endpoint);
    const noCa = await remote.client({ endpoints: [etcd.endpoint], certFile: etcd.tls!.certFile, keyFile: etcd.tls!.keyFile });
    const e2 = await failure(noCa.get('/tls/k'));
    expect(e2.kind).toBe('unavailable');
    expect(e2.message).toMatch(/self[- ]signed certificate|unable to (get|verify)/i);
    // A missing file is reported at construction.
    await expect(remote.client({ endpoints: [etcd.endpoint], caFile: '/nonexistent/ca.crt' })).rejects.toMatchObject({
      message: expect.stringContaining('cannot read CA file /nonexistent/ca.crt'),
    });
  });
});

maybe('EtcdClient with auth (username/password)', () => {
  const reg = new Registry();
  let etcd: EtcdServer;
  let remote: RemoteClients;
  afterAll(() => reg.cleanup());
  beforeAll(async () => {
    etcd = await startEtcd(reg, { auth: { user: 'agent', password: 's3cret' } });
    remote = await startRemoteClients(reg, etcd.netns);
  });

  test('right password works; wrong password and no credentials give "auth" errors', async () => {
    const c = await remote.client({ endpoints: [etcd.endpoint], username: 'agent', password: 's3cret' });
    await c.put('/auth/k', 'v');
    expect((await c.get('/auth/k'))!.value).toBe('v');
    const lease = await c.grantLease(10);
    expect(await c.keepAlive(lease.id)).toBe(10);

    const bad = await remote.client({ endpoints: [etcd.endpoint], username: 'agent', password: 'wrong' });
    const e = await failure(bad.get('/auth/k'));
    expect(e.kind).toBe('auth');
    expect(e.message).toMatch(/authenticate at http:\/\/127\.0\.0\.1:2379: HTTP \d+ etcdserver: authentication failed, invalid user ID or password/);

    const anon = await remote.client({ endpoints: [etcd.endpoint] });
    const e2 = await failure(anon.get('/auth/k'));
    expect(e2.kind).toBe('auth');
    expect(e2.message).toMatch(/user name is empty/);
  });

  test('a token etcd forgot (restart) is replaced once, transparently, for calls, keepAlive and watch', async () => {
    const c = await remote.client({ endpoints: [etcd.endpoint], username: 'agent', password: 's3cret' });
    await c.put('/auth/r', 'before');
    const lease = await c.grantLease(60);
    await etcd.stop();
    await etcd.start();
    expect((await c.get('/auth/r'))!.value).toBe('before');
    await etcd.stop();
    await etcd.start();
    expect(await c.keepAlive(lease.id)).toBeGreaterThan(0);
    await etcd.stop();
    await etcd.start();
    const w = await c.watch('/auth/r', 1);
    expect(await w.created).toBe(true);
    expect((await w.waitForEvents(1))[0]!.kv.value).toBe('before');
    await w.cancel();
  });

  test('an expired token (auth-token-ttl 2 s, idle 3 s) is replaced once, for a call and for a watch', async () => {
    const short = await startEtcd(reg, {
      netns: etcd.netns,
      clientPort: 2479,
      peerPort: 2480,
      auth: { password: 'pw' },
      extraArgs: ['--auth-token-ttl=2'],
    });
    const c = await remote.client({ endpoints: [short.endpoint], username: 'root', password: 'pw' });
    await c.put('/exp/k', 'v');
    await sleep(3000);
    // etcd 3.4 cancels a watch with an unknown token as "permission denied".
    const w = await c.watch('/exp/', 1);
    expect(await w.created).toBe(true);
    expect((await w.waitForEvents(1))[0]!.kv.value).toBe('v');
    await w.cancel();
    await sleep(3000);
    expect((await c.get('/exp/k'))!.value).toBe('v');
    // A real permission problem is not retried forever: the non-root user has no role here.
    await short.etcdctlOk(['user', 'add', 'nobody', '--new-user-password=pw']);
    const n = await remote.client({ endpoints: [short.endpoint], username: 'nobody', password: 'pw' });
    const e = await failure(n.get('/exp/k'));
    expect(e.kind).toBe('auth');
    expect(e.message).toMatch(/permission denied/);
    const nw = await n.watch('/exp/', 1);
    const end = await nw.ended;
    expect(end).toMatchObject({ reason: 'error', error: { kind: 'auth' } });
    expect(end.reason === 'error' && end.error.message).toMatch(/cancelled by etcd: .*etcdserver: permission denied/);
    await short.stop();
  });
});
