/**
 * HTTP(S) to etcd's gRPC JSON gateway with node:http / node:https: one attempt per endpoint,
 * failover in order (the last endpoint that answered first), a timeout on every attempt.
 *
 * Why not the global fetch: Node 20's fetch (undici) takes no CA or client certificate without
 * undici internals, and its first use costs ~180 ms and ~10 MB here (see lib/etcd/README.md);
 * node:https costs ~20 ms.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { EtcdError, describeCause, errorFromResponse } from './errors';

export interface TransportOptions {
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  timeoutMs: number;
}

export interface Endpoint {
  /** As given, without a trailing slash: "http://10.0.0.1:2379". */
  url: string;
  secure: boolean;
  hostname: string;
  port: number;
}

/**
 * Why an attempt failed, for the failover decision:
 * - connect: nothing reached etcd (refused, unreachable, no connection in time, TLS refused);
 * - stale:   a reused keep-alive socket was already closed by the peer: the request never arrived;
 * - sent:    the request went out and the answer did not come (timeout, reset mid-answer).
 */
export type AttemptPhase = 'connect' | 'stale' | 'sent';

export class AttemptError extends Error {
  constructor(
    readonly phase: AttemptPhase,
    message: string,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

export interface RawResponse {
  status: number;
  body: string;
}

export function parseEndpoint(s: string): Endpoint {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new EtcdError('request', `etcd: invalid endpoint ${JSON.stringify(s)} (want http://host:port or https://host:port)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new EtcdError('request', `etcd: invalid endpoint ${JSON.stringify(s)}: scheme must be http or https`);
  }
  const secure = u.protocol === 'https:';
  return {
    url: `${u.protocol}//${u.host}`,
    secure,
    // URL keeps the brackets of an IPv6 literal; net.connect wants the bare address.
    hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : secure ? 443 : 80,
  };
}

export class Transport {
  readonly endpoints: Endpoint[];
  private preferred = 0;
  private readonly tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  private httpAgent?: http.Agent;
  private httpsAgent?: https.Agent;
  private closed = false;

  constructor(readonly opts: TransportOptions) {
    if (!opts.endpoints.length) throw new EtcdError('request', 'etcd: no endpoints given');
    this.endpoints = opts.endpoints.map(parseEndpoint);
    const read = (what: string, f?: string) => {
      if (!f) return undefined;
      try {
        return readFileSync(f);
      } catch (e) {
        throw new EtcdError('request', `etcd: cannot read ${what} ${f}: ${describeCause(e)}`);
      }
    };
    this.tls = { ca: read('CA file', opts.caFile), cert: read('certificate file', opts.certFile), key: read('key file', opts.keyFile) };
  }

  /** Endpoints in the order to try them: the last one that answered first, then the others as given. */
  order(): Endpoint[] {
    const p = this.preferred;
    return [this.endpoints[p]!, ...this.endpoints.filter((_, i) => i !== p)];
  }

  /** Remembers the endpoint that answered, so the next call starts there. */
  answered(ep: Endpoint): void {
    this.preferred = this.endpoints.indexOf(ep);
  }

  /** Moves off ep: the next call starts with the endpoint after it (ep left a request unanswered). */
  skip(ep: Endpoint): void {
    const i = this.endpoints.indexOf(ep);
    if (i === this.preferred) this.preferred = (i + 1) % this.endpoints.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private agent(ep: Endpoint): http.Agent {
    // keepAlive: the agent's keep-alive calls and the watcher's lists reuse one connection; idle
    // sockets in the pool are unref'd by Node, so they do not keep the process alive.
    if (ep.secure) return (this.httpsAgent ??= new https.Agent({ keepAlive: true, ...this.tls }));
    return (this.httpAgent ??= new http.Agent({ keepAlive: true }));
  }

  /**
   * Starts one POST to `path` on `ep`. The caller gets the request (to abort it) and the response
   * as soon as its headers arrive; onError gets every failure as an AttemptError.
   */
  open(
    ep: Endpoint,
    path: string,
    body: string,
    token: string | undefined,
    fresh: boolean,
    onResponse: (res: http.IncomingMessage, req: http.ClientRequest) => void,
    onError: (e: AttemptError) => void,
  ): http.ClientRequest {
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    };
    if (token) headers.authorization = token;
    const options: https.RequestOptions = {
      method: 'POST',
      hostname: ep.hostname,
      port: ep.port,
      path,
      headers,
      // fresh: a one-off connection (retry after a stale pooled socket).
      agent: fresh ? false : this.agent(ep),
      ...(ep.secure ? this.tls : {}),
    };
    let connected = false;
    let responded = false;
    let failed = false;
    const req = (ep.secure ? https : http).request(options, (res) => {
      responded = true;
      onResponse(res, req);
    });
    req.on('socket', (s) => {
      // A pooled socket is connected (and its TLS handshake done); a new one is once it says so.
      if (req.reusedSocket) connected = true;
      else s.once(ep.secure ? 'secureConnect' : 'connect', () => (connected = true));
    });
    req.on('error', (e) => {
      if (failed) return;
      failed = true;
      const err = e as NodeJS.ErrnoException;
      const timedOut = err.code === 'ETIMEDOUT_ETCD';
      let phase: AttemptPhase;
      // A TLS alert (client certificate refused) can arrive after the handshake looked done on our side.
      if (!connected || err.code?.startsWith('ERR_SSL_') || err.code?.startsWith('ERR_TLS_')) phase = 'connect';
      else if (req.reusedSocket && !responded && !timedOut && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) phase = 'stale';
      else phase = 'sent';
      const cause = timedOut ? (connected ? `no answer within ${this.opts.timeoutMs} ms` : `no connection within ${this.opts.timeoutMs} ms`) : describeCause(e);
      onError(new AttemptError(phase, cause, timedOut));
    });
    req.end(body);
    return req;
  }

  /** One unary POST with the per-request timeout; resolves with the status and the whole body. */
  once(ep: Endpoint, path: string, body: string, token: string | undefined, fresh = false): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      };
      const req = this.open(
        ep,
        path,
        body,
        token,
        fresh,
        (res) => {
          res.setEncoding('utf8');
          let text = '';
          res.on('data', (d: string) => (text += d));
          res.on('end', () => done(() => resolve({ status: res.statusCode ?? 0, body: text })));
          res.on('error', (e) => done(() => reject(new AttemptError('sent', describeCause(e)))));
        },
        (e) => done(() => reject(e)),
      );
      const timer = setTimeout(() => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT_ETCD' })), this.opts.timeoutMs);
    });
  }

  /**
   * POSTs to the endpoints in order until one answers. Connection failures always move on; a
   * request that went out and got no answer moves on only when `idempotent` (a put or txn might
   * have been applied: that is a 'timeout' error, the caller decides). Returns the parsed JSON of
   * a 200 answer; an etcd error answer is thrown as is (no failover: etcd did answer), except
   * 'unavailable' (no leader) for idempotent calls.
   */
  async call<T>(what: string, path: string, payload: object, token: string | undefined, idempotent: boolean): Promise<T> {
    if (this.closed) throw new EtcdError('request', `etcd ${what}: client is closed`);
    const body = JSON.stringify(payload);
    const tried: string[] = [];
    let last: EtcdError | undefined;
    for (const ep of this.order()) {
      if (this.closed) throw new EtcdError('request', `etcd ${what}: client is closed`);
      let r: RawResponse;
      try {
        r = await this.onceWithStaleRetry(ep, path, body, token);
      } catch (e) {
        if (!(e instanceof AttemptError)) throw e;
        tried.push(`${ep.url}: ${e.message}`);
        if (e.phase === 'sent' && !idempotent) {
          // The caller will retry: let that go to the next endpoint, not to the one that hung.
          this.skip(ep);
          throw new EtcdError(
            e.timedOut ? 'timeout' : 'unavailable',
            `etcd ${what} at ${ep.url}: ${e.message}; the request may have been applied (endpoints tried: ${tried.join('; ')})`,
            ep.url,
          );
        }
        continue;
      }
      if (r.status === 200) {
        this.answered(ep);
        try {
          return JSON.parse(r.body) as T;
        } catch {
          throw new EtcdError('request', `etcd ${what} at ${ep.url}: answer is not JSON: ${r.body.slice(0, 200)}`, ep.url);
        }
      }
      const err = errorFromResponse(what, ep.url, r.status, r.body);
      if (err.kind === 'unavailable' && idempotent) {
        tried.push(`${ep.url}: HTTP ${r.status} ${err.message.replace(/^.*?: HTTP \d+ /, '')}`);
        last = err;
        continue;
      }
      this.answered(ep);
      throw err;
    }
    throw new EtcdError('unavailable', `etcd ${what}: no endpoint answered (${tried.join('; ')})`, last?.endpoint ?? this.order().at(-1)!.url, last?.grpcCode);
  }

  private async onceWithStaleRetry(ep: Endpoint, path: string, body: string, token: string | undefined): Promise<RawResponse> {
    try {
      return await this.once(ep, path, body, token);
    } catch (e) {
      if (!(e instanceof AttemptError) || e.phase !== 'stale') throw e;
      return this.once(ep, path, body, token, true);
    }
  }

  /** Destroys pooled sockets; later calls fail with 'client is closed'. */
  close(): void {
    this.closed = true;
    this.httpAgent?.destroy();
    this.httpsAgent?.destroy();
  }
}
