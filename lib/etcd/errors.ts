/**
 * The one error type of the etcd client, and the mapping from what the gRPC JSON gateway answers
 * (HTTP status + `{error, message, code}` or, on streams, `{error: {grpc_code, message}}`) to a
 * small set of kinds the caller can act on.
 */

export type EtcdErrorKind =
  /** No endpoint could be reached (refused, unreachable, no answer, TLS handshake failed) or etcd said it cannot serve (no leader). */
  | 'unavailable'
  /** A request that changes state was sent and got no answer in time: it may or may not have been applied. */
  | 'timeout'
  /** Authentication failed, a token was refused, or permission was denied. */
  | 'auth'
  | 'lease-not-found'
  /** The requested revision is older than etcd's compaction. */
  | 'compacted'
  /** Anything else etcd refused (bad request, unknown path, a callback that threw). */
  | 'request';

export class EtcdError extends Error {
  constructor(
    readonly kind: EtcdErrorKind,
    message: string,
    /** The endpoint that answered with this error, or the last one tried. */
    readonly endpoint?: string,
    /** gRPC status code etcd sent, when it sent one. */
    readonly grpcCode?: number,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

// google.golang.org/grpc/codes
const GRPC_UNAVAILABLE = 14;
const GRPC_UNAUTHENTICATED = 16;
const GRPC_PERMISSION_DENIED = 7;

/**
 * Kind of an error etcd reported. etcd's own messages are stable ("etcdserver: ..." strings in
 * api/v3rpc/rpctypes), and some auth failures come as InvalidArgument, so the message decides
 * first and the gRPC code second.
 */
export function kindOf(message: string, grpcCode: number | undefined): EtcdErrorKind {
  const m = message.toLowerCase();
  if (m.includes('requested lease not found')) return 'lease-not-found';
  if (m.includes('has been compacted')) return 'compacted';
  if (
    m.includes('invalid auth token') ||
    m.includes('authentication failed') ||
    m.includes('user name is empty') ||
    m.includes('permission denied') ||
    m.includes('revision of auth store is old') ||
    m.includes('authentication is not enabled') ||
    grpcCode === GRPC_UNAUTHENTICATED ||
    grpcCode === GRPC_PERMISSION_DENIED
  ) {
    return 'auth';
  }
  if (grpcCode === GRPC_UNAVAILABLE) return 'unavailable';
  return 'request';
}

/** Errors that a fresh token cures: the token expired, or etcd restarted and forgot simple tokens. */
export function isStaleToken(e: unknown): boolean {
  if (!(e instanceof EtcdError) || e.kind !== 'auth') return false;
  const m = e.message.toLowerCase();
  return m.includes('invalid auth token') || m.includes('revision of auth store is old') || m.includes('user name is empty');
}

/**
 * The EtcdError for a non-200 answer of the gateway. `body` is `{"error","message","code"}` for
 * unary calls; anything else (e.g. "404 page not found" for an unknown path) is quoted as text.
 */
export function errorFromResponse(what: string, endpoint: string, status: number, body: string): EtcdError {
  let message = body.trim().slice(0, 300);
  let code: number | undefined;
  try {
    const j = JSON.parse(body) as { error?: unknown; message?: unknown; code?: unknown };
    if (typeof j.message === 'string' || typeof j.error === 'string') message = String(j.message ?? j.error);
    if (typeof j.code === 'number') code = j.code;
  } catch {
    // not JSON: keep the text
  }
  const detail = `HTTP ${status}${message ? ` ${message}` : ''}${code !== undefined ? ` (grpc code ${code})` : ''}`;
  return new EtcdError(kindOf(message, code), `etcd ${what} at ${endpoint}: ${detail}`, endpoint, code);
}

/** The EtcdError for an `{"error": {...}}` message inside a stream (watch, keepalive). */
export function errorFromStream(what: string, endpoint: string, err: { grpc_code?: number; code?: number; message?: string }): EtcdError {
  const code = err.grpc_code ?? err.code;
  const message = err.message ?? 'unknown error';
  return new EtcdError(kindOf(message, code), `etcd ${what} at ${endpoint}: ${message}${code !== undefined ? ` (grpc code ${code})` : ''}`, endpoint, code);
}

/** Short text for a socket-level failure: Node's message, with the errno/TLS code when the message lacks it. */
export function describeCause(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const msg = err?.message ?? String(e);
  return err?.code && !msg.includes(err.code) ? `${msg} (${err.code})` : msg;
}
