/**
 * One etcd watch over the JSON gateway: `POST /v3/watch` with a create_request, answered by a
 * never-ending chunked stream of newline-separated `{"result": WatchResponse}` objects (or one
 * `{"error": {...}}`). The first result has `created: true`; a start revision older than the
 * compaction comes back as `canceled` with `compact_revision`; progress notifications are results
 * without events. The stream does not end on its own after a cancel, so we close it.
 */
import type * as http from 'node:http';
import { type KeyValue, JsonLines, type RawHeader, type RawKeyValue, decodeKv, int } from './codec';
import { EtcdError, errorFromResponse, errorFromStream, isStaleToken, kindOf } from './errors';
import { AttemptError, type Endpoint, type Transport } from './transport';

export interface WatchEvent {
  type: 'PUT' | 'DELETE';
  /** For a DELETE, only key and modRevision are set (the rest is 0/""); see prevKv. */
  kv: KeyValue;
  prevKv?: KeyValue;
}

export type WatchEnd = { reason: 'compacted'; compactRevision: number } | { reason: 'error'; error: EtcdError } | { reason: 'cancelled' };

export interface Watch {
  cancel(): void;
  /** True once etcd confirmed the watch (`created`), false if it ended before. */
  created: Promise<boolean>;
  /** Settles when the stream ends: compacted (with compactRevision), error, or cancelled. Never rejects. */
  ended: Promise<WatchEnd>;
}

/** One message of the watch stream, decoded. */
export type WatchMessage =
  | { type: 'created'; revision: number }
  | { type: 'events'; revision: number; events: WatchEvent[] }
  | { type: 'progress'; revision: number }
  | { type: 'canceled'; revision: number; compactRevision: number; reason: string }
  | { type: 'error'; error: { grpc_code?: number; code?: number; message?: string } };

interface RawWatchResponse {
  header?: RawHeader;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: string;
  cancel_reason?: string;
  events?: { type?: string; kv?: RawKeyValue; prev_kv?: RawKeyValue }[];
}

/** Decodes one object of the watch stream. */
export function decodeWatchMessage(o: unknown): WatchMessage {
  const m = o as { result?: RawWatchResponse; error?: { grpc_code?: number; code?: number; message?: string } };
  if (m.error) return { type: 'error', error: m.error };
  const r = m.result ?? {};
  const revision = int(r.header?.revision);
  // canceled first: etcd may set created and canceled on one message.
  if (r.canceled) return { type: 'canceled', revision, compactRevision: int(r.compact_revision), reason: r.cancel_reason ?? '' };
  if (r.created) return { type: 'created', revision };
  if (!r.events?.length) return { type: 'progress', revision };
  return {
    type: 'events',
    revision,
    events: r.events.map((e) => ({
      type: e.type === 'DELETE' ? 'DELETE' : 'PUT',
      kv: decodeKv(e.kv ?? {}),
      ...(e.prev_kv ? { prevKv: decodeKv(e.prev_kv) } : {}),
    })),
  };
}

export interface WatchRequest {
  /** base64 key and range_end */
  key: string;
  rangeEnd: string;
  startRevision: number;
}

/**
 * Runs one watch: connects to the endpoints in order (connection failures move on), waits up to
 * timeoutMs for `created`, then streams until cancelled, compacted, or the connection drops.
 * `getToken` gives the current auth token; `refreshToken` is called once when etcd refuses it
 * before the watch was created.
 */
export function startWatch(
  transport: Transport,
  req: WatchRequest,
  onEvents: (evs: WatchEvent[], revision: number) => void,
  getToken: () => Promise<string | undefined>,
  refreshToken: () => Promise<string | undefined>,
): Watch & { abort(): void } {
  const body = JSON.stringify({
    create_request: { key: req.key, range_end: req.rangeEnd, start_revision: String(req.startRevision), prev_kv: true, progress_notify: true },
  });
  let endResolve!: (e: WatchEnd) => void;
  let createdResolve!: (b: boolean) => void;
  const ended = new Promise<WatchEnd>((r) => (endResolve = r));
  const created = new Promise<boolean>((r) => (createdResolve = r));
  let finished = false;
  let current: http.ClientRequest | undefined;
  let timer: NodeJS.Timeout | undefined;

  const finish = (e: WatchEnd) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    current?.destroy();
    createdResolve(false);
    endResolve(e);
  };
  const fail = (kind: EtcdError['kind'], msg: string, ep?: string) => finish({ reason: 'error', error: new EtcdError(kind, msg, ep) });

  const attempt = (eps: Endpoint[], tried: string[], token: string | undefined, reauthed: boolean, fresh = false) => {
    if (finished) return;
    const ep = eps[0];
    if (!ep) return fail('unavailable', `etcd watch: no endpoint answered (${tried.join('; ')})`, transport.order().at(-1)?.url);
    let isCreated = false;
    let seenEvents = false;
    // Set when this attempt is replaced by a new one: its late callbacks are ignored.
    let superseded = false;
    const parser = new JsonLines();
    const retryWithFreshToken = () => {
      superseded = true;
      clearTimeout(timer);
      const old = current;
      current = undefined;
      old?.destroy();
      refreshToken().then(
        (t) => attempt(eps, tried, t, true),
        (e: unknown) => finish({ reason: 'error', error: e instanceof EtcdError ? e : new EtcdError('auth', String(e), ep.url) }),
      );
    };
    const onMessage = (o: unknown): boolean => {
      const m = decodeWatchMessage(o);
      switch (m.type) {
        case 'error': {
          const err = errorFromStream('watch', ep.url, m.error);
          if (!isCreated && !reauthed && isStaleToken(err)) {
            retryWithFreshToken();
            return false;
          }
          finish({ reason: 'error', error: err });
          return false;
        }
        case 'canceled': {
          if (m.compactRevision > 0) {
            finish({ reason: 'compacted', compactRevision: m.compactRevision });
            return false;
          }
          // etcd 3.4 answers a watch with an unknown/expired token by cancelling it with
          // "permission denied" (the watch server cannot tell the two apart): one fresh token, then give up.
          const err = new EtcdError(kindOf(m.reason, undefined), `etcd watch at ${ep.url}: cancelled by etcd${m.reason ? `: ${m.reason}` : ''}`, ep.url);
          if (err.kind === 'auth' && !reauthed && token !== undefined && !seenEvents) {
            retryWithFreshToken();
            return false;
          }
          finish({ reason: 'error', error: err });
          return false;
        }
        case 'created':
          isCreated = true;
          clearTimeout(timer);
          transport.answered(ep);
          createdResolve(true);
          return true;
        case 'progress':
        case 'events':
          seenEvents ||= m.type === 'events';
          try {
            onEvents(m.type === 'events' ? m.events : [], m.revision);
          } catch (e) {
            fail('request', `etcd watch: the event handler threw: ${(e as Error)?.message ?? String(e)}`, ep.url);
            return false;
          }
          return true;
      }
    };
    const onError = (e: AttemptError) => {
      if (finished || superseded) return;
      superseded = true;
      clearTimeout(timer);
      if (isCreated) return fail('unavailable', `etcd watch at ${ep.url}: stream broke: ${e.message}`, ep.url);
      if (e.phase === 'stale') return attempt(eps, tried, token, reauthed, true); // the pooled socket was dead: a new connection
      attempt(eps.slice(1), [...tried, `${ep.url}: ${e.message}`], token, reauthed);
    };
    current = transport.open(
      ep,
      '/v3/watch',
      body,
      token,
      fresh,
      (res) => {
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (d: string) => (text += d));
          res.on('end', () => finish({ reason: 'error', error: errorFromResponse('watch', ep.url, res.statusCode ?? 0, text) }));
          return;
        }
        const handle = (objs: unknown[]) => {
          for (const o of objs) if (finished || superseded || !onMessage(o)) return;
        };
        res.on('data', (d: string) => {
          if (finished || superseded) return;
          let objs: unknown[];
          try {
            objs = parser.push(d);
          } catch (e) {
            return fail('request', `etcd watch at ${ep.url}: bad stream data: ${(e as Error).message}`, ep.url);
          }
          handle(objs);
        });
        res.on('end', () => {
          if (finished || superseded) return;
          try {
            handle(parser.end());
          } catch {
            // a torn last line: the stream ended anyway
          }
          fail('unavailable', `etcd watch at ${ep.url}: stream ended by the server`, ep.url);
        });
        res.on('error', (e) => onError(new AttemptError('sent', e.message)));
        // Whatever else ends the socket (a reset without an 'error', a close without the last chunk).
        res.on('close', () => {
          if (!finished && !superseded) onError(new AttemptError('sent', 'connection closed'));
        });
        // A long-lived stream: TCP keep-alive probes after 30 s idle, so a peer that vanished is noticed
        // (after the kernel's probe count); the caller's lease keep-alive usually notices first.
        res.socket?.setKeepAlive(true, 30_000);
      },
      onError,
    );
    timer = setTimeout(() => {
      if (finished || isCreated) return;
      current?.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT_ETCD' }));
    }, transport.opts.timeoutMs);
  };

  getToken().then(
    (t) => attempt(transport.order(), [], t, false),
    (e: unknown) => finish({ reason: 'error', error: e instanceof EtcdError ? e : new EtcdError('auth', String(e)) }),
  );

  return {
    created,
    ended,
    cancel: () => finish({ reason: 'cancelled' }),
    abort: () => finish({ reason: 'cancelled' }),
  };
}
