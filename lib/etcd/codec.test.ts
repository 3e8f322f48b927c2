import { JsonLines, b64, decodeKv, int, leaseField, prefixKey, prefixRangeEnd, unb64 } from './codec';
import { EtcdError, errorFromResponse, errorFromStream, isStaleToken, kindOf } from './errors';
import { decodeWatchMessage } from './watch';

const dec = (s: string) => Buffer.from(s, 'base64');

describe('codec', () => {
  test('keys and values are base64 of UTF-8', () => {
    expect(b64('/coreos.com/network/subnets/10.5.52.0-24')).toBe(Buffer.from('/coreos.com/network/subnets/10.5.52.0-24').toString('base64'));
    expect(unb64(b64('ünïcode ✓'))).toBe('ünïcode ✓');
    expect(unb64(undefined)).toBe('');
  });

  test('int64 fields come as strings, absent means 0, beyond 2^53 is refused', () => {
    expect(int('42')).toBe(42);
    expect(int(undefined)).toBe(0);
    expect(int('-1')).toBe(-1);
    expect(() => int('9223372036854775807')).toThrow(/not an integer/);
  });

  test('decodeKv fills proto3 defaults (a DELETE event kv has only key and mod_revision)', () => {
    expect(decodeKv({ key: b64('/k'), mod_revision: '9' })).toEqual({
      key: '/k', value: '', createRevision: 0, modRevision: 9, version: 0, lease: '0',
    });
    expect(decodeKv({ key: b64('/k'), value: b64('v'), create_revision: '3', mod_revision: '4', version: '2', lease: '7668682652464010253' })).toEqual({
      key: '/k', value: 'v', createRevision: 3, modRevision: 4, version: 2, lease: '7668682652464010253',
    });
  });

  test('prefixRangeEnd increments the last byte, dropping trailing 0xff; empty prefix = every key', () => {
    expect(dec(prefixRangeEnd('/coreos.com/network/subnets/')).toString()).toBe('/coreos.com/network/subnets0');
    expect(dec(prefixRangeEnd('a'))).toEqual(Buffer.from('b'));
    expect(dec(prefixRangeEnd('a\u00ff'))).toEqual(Buffer.from([0x61, 0xc3, 0xc0])); // UTF-8 of ÿ is c3 bf
    expect(dec(prefixRangeEnd(''))).toEqual(Buffer.from([0]));
    expect(dec(prefixKey(''))).toEqual(Buffer.from([0]));
    expect(dec(prefixKey('/p/')).toString()).toBe('/p/');
  });

  test('leaseField: "0" and undefined mean no lease; IDs stay exact strings', () => {
    expect(leaseField(undefined)).toEqual({});
    expect(leaseField('0')).toEqual({});
    expect(leaseField('7668682652464010253')).toEqual({ lease: '7668682652464010253' });
    expect(() => leaseField('12abc')).toThrow(/invalid lease ID/);
  });
});

describe('JsonLines: the gateway stream split anywhere', () => {
  const msgs = [
    { result: { header: { revision: '6' }, created: true } },
    { result: { header: { revision: '7' }, events: [{ kv: { key: b64('/a'), value: b64('ü✓'), mod_revision: '7' } }] } },
    { result: { header: { revision: '8' } } },
  ];
  const text = msgs.map((m) => JSON.stringify(m) + '\n').join('');

  test('every pair of cut points gives the same messages', () => {
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j += 7) {
        const p = new JsonLines();
        const out = [...p.push(text.slice(0, i)), ...p.push(text.slice(i, j)), ...p.push(text.slice(j)), ...p.end()];
        expect(out).toEqual(msgs);
      }
    }
  });

  test('one character at a time, blank lines ignored, a last line without newline kept at end()', () => {
    const p = new JsonLines();
    const out: unknown[] = [];
    for (const ch of '\n' + text + '\n{"result":{}}') out.push(...p.push(ch));
    expect(out).toEqual(msgs);
    expect(p.end()).toEqual([{ result: {} }]);
  });

  test('bad JSON throws (the watch ends with an error)', () => {
    expect(() => new JsonLines().push('{"result":\n')).toThrow();
  });
});

describe('decodeWatchMessage', () => {
  test('created, events (PUT has no type; DELETE with prev_kv), progress, canceled with compact_revision, error', () => {
    expect(decodeWatchMessage({ result: { header: { revision: '6' }, created: true } })).toEqual({ type: 'created', revision: 6 });
    const ev = decodeWatchMessage({
      result: {
        header: { revision: '9' },
        events: [
          { kv: { key: b64('/a'), value: b64('1'), create_revision: '8', mod_revision: '8', version: '1' } },
          { type: 'DELETE', kv: { key: b64('/a'), mod_revision: '9' }, prev_kv: { key: b64('/a'), value: b64('1'), create_revision: '8', mod_revision: '8', version: '1' } },
        ],
      },
    });
    expect(ev).toEqual({
      type: 'events',
      revision: 9,
      events: [
        { type: 'PUT', kv: { key: '/a', value: '1', createRevision: 8, modRevision: 8, version: 1, lease: '0' } },
        {
          type: 'DELETE',
          kv: { key: '/a', value: '', createRevision: 0, modRevision: 9, version: 0, lease: '0' },
          prevKv: { key: '/a', value: '1', createRevision: 8, modRevision: 8, version: 1, lease: '0' },
        },
      ],
    });
    expect(decodeWatchMessage({ result: { header: { revision: '12' } } })).toEqual({ type: 'progress', revision: 12 });
    expect(decodeWatchMessage({ result: { header: {}, canceled: true, compact_revision: '3' } })).toEqual({
      type: 'canceled', revision: 0, compactRevision: 3, reason: '',
    });
    // created and canceled on one message: canceled wins.
    expect(decodeWatchMessage({ result: { created: true, canceled: true, cancel_reason: 'etcdserver: permission denied' } })).toMatchObject({
      type: 'canceled', reason: 'etcdserver: permission denied',
    });
    expect(decodeWatchMessage({ error: { grpc_code: 16, message: 'etcdserver: invalid auth token' } })).toEqual({
      type: 'error', error: { grpc_code: 16, message: 'etcdserver: invalid auth token' },
    });
  });
});

describe('error mapping', () => {
  test('kindOf: etcd messages first, then the gRPC code', () => {
    expect(kindOf('etcdserver: requested lease not found', 5)).toBe('lease-not-found');
    expect(kindOf('etcdserver: mvcc: required revision has been compacted', 11)).toBe('compacted');
    expect(kindOf('etcdserver: authentication failed, invalid user ID or password', 3)).toBe('auth');
    expect(kindOf('etcdserver: user name is empty', 3)).toBe('auth');
    expect(kindOf('etcdserver: invalid auth token', 16)).toBe('auth');
    expect(kindOf('rpc error: code = PermissionDenied desc = etcdserver: permission denied', undefined)).toBe('auth');
    expect(kindOf('etcdserver: no leader', 14)).toBe('unavailable');
    expect(kindOf('etcdserver: key is not provided', 3)).toBe('request');
  });

  test('errorFromResponse quotes etcd, the status and the endpoint; text bodies are kept', () => {
    const e = errorFromResponse('put', 'http://10.0.0.1:2379', 404, '{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}');
    expect(e).toBeInstanceOf(EtcdError);
    expect(e.kind).toBe('lease-not-found');
    expect(e.endpoint).toBe('http://10.0.0.1:2379');
    expect(e.grpcCode).toBe(5);
    expect(e.message).toBe('etcd put at http://10.0.0.1:2379: HTTP 404 etcdserver: requested lease not found (grpc code 5)');
    const t = errorFromResponse('get', 'http://h:1', 404, 'Not Found\n');
    expect(t.kind).toBe('request');
    expect(t.message).toBe('etcd get at http://h:1: HTTP 404 Not Found');
  });

  test('isStaleToken: only errors a new token cures', () => {
    expect(isStaleToken(errorFromStream('watch', 'e', { grpc_code: 16, message: 'etcdserver: invalid auth token' }))).toBe(true);
    expect(isStaleToken(errorFromResponse('get', 'e', 400, '{"message":"etcdserver: revision of auth store is old","code":3}'))).toBe(true);
    expect(isStaleToken(errorFromResponse('get', 'e', 400, '{"message":"etcdserver: authentication failed, invalid user ID or password","code":3}'))).toBe(false);
    expect(isStaleToken(errorFromResponse('get', 'e', 403, '{"message":"etcdserver: permission denied","code":7}'))).toBe(false);
    expect(isStaleToken(new Error('invalid auth token'))).toBe(false);
  });
});
