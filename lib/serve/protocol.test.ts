import { encodeReply, parseEnviron, parseRequest, serviceMode, servicePaths } from './protocol';

describe('served-mode protocol', () => {
  test('a request line: pid, plugin, build id; anything else is refused', () => {
    expect(parseRequest('1234 host-local 0adb250fd772c215')).toEqual({ stubPid: 1234, plugin: 'host-local', buildId: '0adb250fd772c215' });
    for (const bad of ['', '0 bridge x', '12 bridge', '12 ../x abc', '12 bridge abc extra', '-1 bridge abc', '12 bri dge abc', '99999999999 bridge a']) {
      expect(parseRequest(bad)).toBeUndefined();
    }
  });
  test('replies end in NUL; a decline is D; a NUL inside the output cannot end it early', () => {
    expect(encodeReply({ code: 0, out: '{"a":1}' }).toString()).toBe('0 {"a":1}\0');
    expect(encodeReply({ code: 1, out: '' }).toString()).toBe('1 \0');
    expect(encodeReply('decline').toString()).toBe('D\0');
    expect(encodeReply({ code: 0, out: 'a\0b' }).toString()).toBe('0 ab\0');
  });
  test('environ: NUL-separated, values may hold = and be empty, the first of a duplicate wins', () => {
    const env = parseEnviron(Buffer.from('CNI_ARGS=A=1;B=2\0CNI_NETNS=\0X=1\0X=2\0junk\0'));
    expect(env.get('CNI_ARGS')).toBe('A=1;B=2');
    expect(env.get('CNI_NETNS')).toBe('');
    expect(env.get('X')).toBe('1');
    expect(env.has('junk')).toBe(false);
  });
  test('the switch: auto unless off/0/false/no, or use', () => {
    expect(serviceMode(() => undefined)).toBe('auto');
    for (const v of ['off', 'OFF', '0', 'false', 'no']) expect(serviceMode(() => v)).toBe('off');
    expect(serviceMode(() => 'use')).toBe('use');
  });
  test('paths', () => {
    const p = servicePaths('/run/cni-ts');
    expect([p.fifo(7), p.input(9), p.done(9), p.stdin(9)]).toEqual(['/run/cni-ts/requests.7', '/run/cni-ts/q/9.in', '/run/cni-ts/q/9.done', '/run/cni-ts/q/9.stdin']);
  });
});
