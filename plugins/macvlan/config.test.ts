import type { NetConf } from '../../lib/skel/dispatch';
import { CniError } from '../../lib/skel/errors';
import { loadNetConf, pickMac } from './config';

const base = (extra: Record<string, unknown> = {}): NetConf => ({ cniVersion: '1.0.0', name: 'n', type: 'macvlan', ...extra });
const load = (extra: Record<string, unknown> = {}, argsMap: Record<string, string> = {}) => loadNetConf({ conf: base(extra), argsMap });

function codeOf(f: () => unknown): number | undefined {
  try {
    f();
  } catch (e) {
    return (e as CniError).code;
  }
  return undefined;
}

describe('macvlan loadNetConf', () => {
  test('defaults: bridge mode, master from the default route, no mtu, no ipam', () => {
    const c = load();
    expect(c).toMatchObject({ mode: 'bridge', master: '', mtu: 0, linkInContainer: false, hasIpam: false });
  });

  test('empty mode means bridge, like the reference', () => {
    expect(load({ mode: '' }).mode).toBe('bridge');
  });

  test.each(['private', 'vepa', 'passthru', 'bridge'])('mode %s is accepted', (m) => {
    expect(load({ mode: m }).mode).toBe(m);
  });

  test('unknown mode, bad master name, negative or tiny mtu are config errors (7)', () => {
    expect(codeOf(() => load({ mode: 'source' }))).toBe(7);
    expect(codeOf(() => load({ master: 'a/b' }))).toBe(7);
    expect(codeOf(() => load({ master: 'x'.repeat(16) }))).toBe(7);
    expect(codeOf(() => load({ mtu: -1 }))).toBe(7);
    expect(codeOf(() => load({ mtu: 60 }))).toBe(7);
  });

  test('ipam with a type makes it layer 3', () => {
    expect(load({ ipam: { type: 'host-local' } }).hasIpam).toBe(true);
    expect(load({ ipam: {} }).hasIpam).toBe(false);
  });
});

describe('macvlan MAC sources', () => {
  test('conf < CNI_ARGS MAC < runtimeConfig.mac', () => {
    expect(pickMac(base({ mac: '02:00:00:00:00:01' }), {})).toBe('02:00:00:00:00:01');
    expect(pickMac(base({ mac: '02:00:00:00:00:01' }), { MAC: '02:00:00:00:00:02' })).toBe('02:00:00:00:00:02');
    expect(pickMac(base({ mac: '02:00:00:00:00:01', runtimeConfig: { mac: '02:00:00:00:00:03' } }), { MAC: '02:00:00:00:00:02' })).toBe('02:00:00:00:00:03');
  });

  test('dashes and upper case are normalised; garbage and multicast are refused', () => {
    expect(pickMac(base({ mac: '02-AB-00-00-00-01' }), {})).toBe('02:ab:00:00:00:01');
    expect(codeOf(() => pickMac(base({ mac: 'nope' }), {}))).toBe(7);
    expect(codeOf(() => pickMac(base({ mac: '01:00:5e:00:00:01' }), {}))).toBe(7);
  });
});
