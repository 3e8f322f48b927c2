/**
 * Encoding of the etcd v3 JSON gateway: keys and values are base64 bytes, int64 fields are JSON
 * strings, and proto3 leaves out default values (0, false, empty), so every field is optional.
 */

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** Lease ID (int64 as a decimal string), "0" when none. */
  lease: string;
}

/** mvccpb.KeyValue as the gateway prints it. */
export interface RawKeyValue {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

export interface RawHeader {
  revision?: string;
}

export function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

export function unb64(s: string | undefined): string {
  return s ? Buffer.from(s, 'base64').toString('utf8') : '';
}

/** An int64 field (a string, or absent for 0) as a number; revisions and versions stay far below 2^53. */
export function int(s: string | number | undefined): number {
  if (s === undefined || s === '') return 0;
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new Error(`etcd: not an integer: ${JSON.stringify(s)}`);
  return n;
}

export function decodeKv(raw: RawKeyValue): KeyValue {
  return {
    key: unb64(raw.key),
    value: unb64(raw.value),
    createRevision: int(raw.create_revision),
    modRevision: int(raw.mod_revision),
    version: int(raw.version),
    lease: raw.lease && raw.lease !== '' ? raw.lease : '0',
  };
}

/**
 * The range_end that selects every key starting with `prefix` (base64): the prefix with its last
 * byte incremented, trailing 0xff bytes dropped first. An empty (or all-0xff) prefix gives "\0",
 * which etcd reads as "every key from `key` on".
 */
export function prefixRangeEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  let n = b.length;
  while (n > 0 && b[n - 1] === 0xff) n--;
  if (n === 0) return Buffer.from([0]).toString('base64');
  const end = Buffer.from(b.subarray(0, n));
  end[n - 1]! += 1;
  return end.toString('base64');
}

/** The key to send for a prefix: "\0" for the empty prefix (etcd rejects an empty key). */
export function prefixKey(prefix: string): string {
  return prefix === '' ? Buffer.from([0]).toString('base64') : b64(prefix);
}

/** Lease IDs are int64: kept as decimal strings (they exceed 2^53); "0" means no lease. */
export function leaseField(lease: string | undefined): { lease?: string } {
  if (lease === undefined || lease === '0' || lease === '') return {};
  if (!/^-?\d+$/.test(lease)) throw new Error(`etcd: invalid lease ID ${JSON.stringify(lease)}`);
  return { lease };
}

/**
 * Splits a newline-delimited JSON stream (the gateway's server-streaming answers) into objects,
 * whatever the chunk boundaries are. Feed it decoded text (setEncoding('utf8') keeps multi-byte
 * characters whole across chunks).
 */
export class JsonLines {
  private buf = '';

  push(chunk: string): unknown[] {
    this.buf += chunk;
    const out: unknown[] = [];
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) out.push(JSON.parse(line));
    }
    return out;
  }

  /** What is left at the end of the stream (a last message without a newline), if any. */
  end(): unknown[] {
    const line = this.buf.trim();
    this.buf = '';
    return line ? [JSON.parse(line)] : [];
  }
}
