/**
 * The project's etcd v3 client (etcd 3.4's gRPC JSON gateway, node:http/https only), for the
 * overlay agent's cluster registry. Plugins never import it.
 *
 * - Every call has a timeout (timeoutMs per attempt, per endpoint).
 * - Endpoints are tried in order; the one that last answered is tried first next time. A call that
 *   could not reach any endpoint fails with kind 'unavailable' naming every endpoint and cause.
 *   A state-changing call (put, txn, delete, grant) that was sent but not answered is not sent
 *   again elsewhere: it fails with 'timeout' (it may have been applied).
 * - With username/password, the client authenticates first and once more when etcd refuses the
 *   token (expired, or etcd restarted and forgot it).
 * - No retry loops, no sleeps: the caller owns backoff.
 */
import { type KeyValue, type RawHeader, type RawKeyValue, b64, decodeKv, int, leaseField, prefixKey, prefixRangeEnd } from './codec';
import { EtcdError, errorFromStream, isStaleToken } from './errors';
import { Transport } from './transport';
import { type Watch, type WatchEvent, startWatch } from './watch';

export type { KeyValue } from './codec';
export { EtcdError, type EtcdErrorKind } from './errors';
export type { Watch, WatchEnd, WatchEvent } from './watch';

export interface EtcdOptions {
  /** "http://10.0.0.1:2379", "https://…"; tried in order with failover, the last good one first next time. */
  endpoints: string[];
  /** TLS files, read once here. */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Auth: POST /v3/auth/authenticate gives the token sent in the Authorization header. */
  username?: string;
  password?: string;
  /** Per request and endpoint; default 3000. */
  timeoutMs?: number;
}

interface RangeResponse {
  header?: RawHeader;
  kvs?: RawKeyValue[];
}
interface TxnResponse {
  header?: RawHeader;
  succeeded?: boolean;
}

export class EtcdClient {
  private readonly transport: Transport;
  private token?: string;
  private authenticating?: Promise<string | undefined>;
  private readonly watches = new Set<{ abort(): void }>();

  constructor(private readonly opts: EtcdOptions) {
    if ((opts.username === undefined) !== (opts.password === undefined)) {
      throw new EtcdError('request', 'etcd: username and password go together');
    }
    this.transport = new Transport({ ...opts, timeoutMs: opts.timeoutMs ?? 3000 });
  }

  /** The endpoint the next call tries first (the last one that answered). */
  get currentEndpoint(): string {
    return this.transport.order()[0]!.url;
  }

  /** The value at key, or undefined. */
  async get(key: string): Promise<KeyValue | undefined> {
    const r = await this.call<RangeResponse>('get', 'kv/range', { key: b64(key) }, true);
    return r.kvs?.[0] ? decodeKv(r.kvs[0]) : undefined;
  }

  /** Every key under prefix, sorted by key, and the store revision they were read at (watch from revision + 1). */
  async list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const r = await this.call<RangeResponse>('list', 'kv/range', { key: prefixKey(prefix), range_end: prefixRangeEnd(prefix) }, true);
    return { kvs: (r.kvs ?? []).map(decodeKv), revision: int(r.header?.revision) };
  }

  /** Writes key (bound to lease when given); returns the store revision of the write. */
  async put(key: string, value: string, lease?: string): Promise<number> {
    const r = await this.call<{ header?: RawHeader }>('put', 'kv/put', { key: b64(key), value: b64(value), ...leaseField(lease) }, false);
    return int(r.header?.revision);
  }

  /** Deletes key; returns how many keys were deleted (0 or 1). */
  async delete(key: string): Promise<number> {
    const r = await this.call<{ deleted?: string }>('delete', 'kv/deleterange', { key: b64(key) }, false);
    return int(r.deleted);
  }

  /** txn: put only if the key does not exist (version == 0). True when this call created it. */
  async createIfAbsent(key: string, value: string, lease?: string): Promise<boolean> {
    return this.txnPut('createIfAbsent', { key: b64(key), target: 'VERSION', result: 'EQUAL', version: '0' }, key, value, lease);
  }

  /** txn: put only if the key's mod_revision is still `modRevision` (reclaiming one's own key). */
  async putIfUnchanged(key: string, value: string, modRevision: number, lease?: string): Promise<boolean> {
    return this.txnPut('putIfUnchanged', { key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(modRevision) }, key, value, lease);
  }

  private async txnPut(what: string, compare: object, key: string, value: string, lease?: string): Promise<boolean> {
    const r = await this.call<TxnResponse>(
      what,
      'kv/txn',
      { compare: [compare], success: [{ request_put: { key: b64(key), value: b64(value), ...leaseField(lease) } }] },
      false,
    );
    return r.succeeded === true;
  }

  /** A new lease; etcd may grant a longer TTL than asked (its minimum). */
  async grantLease(ttlSeconds: number): Promise<{ id: string; ttl: number }> {
    const r = await this.call<{ ID?: string; TTL?: string; error?: string }>('grantLease', 'lease/grant', { TTL: String(ttlSeconds) }, false);
    if (r.error) throw new EtcdError('request', `etcd grantLease: ${r.error}`);
    if (!r.ID) throw new EtcdError('request', 'etcd grantLease: no lease ID in the answer');
    return { id: r.ID, ttl: int(r.TTL) };
  }

  /** One keep-alive round trip; returns the remaining TTL, 0 when the lease no longer exists. */
  async keepAlive(id: string): Promise<number> {
    // A streaming RPC: the answer is one `{"result": …}` line for our one request line, or an
    // `{"error": …}` line with HTTP 200 (so a refused token shows up here, not as a 401).
    type Answer = { result?: { TTL?: string }; error?: { message?: string; grpc_code?: number } };
    let r = await this.call<Answer>('keepAlive', 'lease/keepalive', { ID: id }, true);
    if (r.error && isStaleToken(errorFromStream('keepAlive', '', r.error)) && this.opts.username !== undefined) {
      await this.authenticate();
      r = await this.call<Answer>('keepAlive', 'lease/keepalive', { ID: id }, true);
    }
    if (r.error) {
      const err = errorFromStream('keepAlive', this.currentEndpoint, r.error);
      if (err.kind === 'lease-not-found') return 0;
      throw err;
    }
    return int(r.result?.TTL);
  }

  /** Revokes a lease and deletes the keys bound to it; a lease already gone is not an error. */
  async revokeLease(id: string): Promise<void> {
    try {
      await this.call('revokeLease', 'lease/revoke', { ID: id }, true);
    } catch (e) {
      if (e instanceof EtcdError && e.kind === 'lease-not-found') return;
      throw e;
    }
  }

  /** Remaining TTL in seconds, -1 when the lease is gone. */
  async leaseTimeToLive(id: string): Promise<number> {
    const r = await this.call<{ TTL?: string }>('leaseTimeToLive', 'lease/timetolive', { ID: id }, true);
    return int(r.TTL);
  }

  /**
   * Streams events under `prefix` from `startRevision` (inclusive), with prev_kv. onEvents gets
   * each batch with the revision of the answer; progress notifications call it with no events.
   * The watch never resumes by itself: when `ended` settles, the caller lists and watches again.
   */
  watch(prefix: string, startRevision: number, onEvents: (evs: WatchEvent[], revision: number) => void): Watch {
    if (this.transport.isClosed) {
      const ended = Promise.resolve({ reason: 'error' as const, error: new EtcdError('request', 'etcd watch: client is closed') });
      return { cancel: () => undefined, created: Promise.resolve(false), ended };
    }
    const w = startWatch(
      this.transport,
      { key: prefixKey(prefix), rangeEnd: prefixRangeEnd(prefix), startRevision },
      onEvents,
      () => this.ensureToken(),
      () => this.authenticate(),
    );
    this.watches.add(w);
    void w.ended.then(() => this.watches.delete(w));
    return { cancel: () => w.cancel(), created: w.created, ended: w.ended };
  }

  /** Aborts every watch (they end 'cancelled') and closes pooled sockets; later calls fail. */
  close(): void {
    for (const w of [...this.watches]) w.abort();
    this.transport.close();
  }

  private async ensureToken(): Promise<string | undefined> {
    if (this.opts.username === undefined) return undefined;
    return this.token ?? this.authenticate();
  }

  /** Gets a fresh token (concurrent callers share one round trip). */
  private authenticate(): Promise<string | undefined> {
    if (this.opts.username === undefined) return Promise.resolve(undefined);
    this.token = undefined;
    this.authenticating ??= this.transport
      .call<{ token?: string }>('authenticate', '/v3/auth/authenticate', { name: this.opts.username, password: this.opts.password }, undefined, true)
      .then((r) => {
        if (!r.token) throw new EtcdError('auth', `etcd authenticate: no token in the answer (is auth enabled on ${this.currentEndpoint}?)`);
        this.token = r.token;
        return r.token;
      })
      .finally(() => (this.authenticating = undefined));
    return this.authenticating;
  }

  private async call<T>(what: string, method: string, payload: object, idempotent: boolean): Promise<T> {
    const path = `/v3/${method}`;
    const token = await this.ensureToken();
    try {
      return await this.transport.call<T>(what, path, payload, token, idempotent);
    } catch (e) {
      if (!isStaleToken(e) || this.opts.username === undefined) throw e;
      const fresh = await this.authenticate();
      return this.transport.call<T>(what, path, payload, fresh, idempotent);
    }
  }
}
