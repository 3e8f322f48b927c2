import { loadNetConf } from './config';
import { codeOf } from '../../lib/skel/testing';
import type { NetConf } from '../../lib/skel/dispatch';

const base = { cniVersion: '1.0.0', name: 'net', type: 'bandwidth' };
const load = (extra: Record<string, unknown>) => loadNetConf({ conf: { ...base, ...extra } as NetConf });

describe('bandwidth config', () => {
  test('top-level limits', () => {
    expect(load({ ingressRate: 8000, ingressBurst: 800, egressRate: 16000, egressBurst: 1600 }).bandwidth).toEqual({ ingressRate: 8000, ingressBurst: 800, egressRate: 16000, egressBurst: 1600 });
  });

  test('runtimeConfig.bandwidth when no limit key is at the top level', () => {
    const c = load({ runtimeConfig: { bandwidth: { egressRate: 1000000, egressBurst: 4294967295 } } });
    expect(c.bandwidth).toEqual({ ingressRate: 0, ingressBurst: 0, egressRate: 1000000, egressBurst: 4294967295 });
  });

  test('any top-level limit key wins over runtimeConfig (Go allocates the embedded entry), even zero', () => {
    expect(load({ ingressRate: 0, runtimeConfig: { bandwidth: { egressRate: 8000, egressBurst: 800 } } }).bandwidth).toBeUndefined();
  });

  test('no limits, or all zero: nothing to shape', () => {
    expect(load({}).bandwidth).toBeUndefined();
    expect(load({ ingressRate: 0, ingressBurst: 0 }).bandwidth).toBeUndefined();
  });

  test.each([
    [{ ingressRate: 8000 }, 'if rate is set, burst must also be set'],
    [{ egressBurst: 8000 }, 'if burst is set, rate must also be set'],
    [{ egressRate: 8000, egressBurst: 8 * 4294967295 }, 'burst cannot be more than 4GB'],
    [{ ingressRate: 7, ingressBurst: 800 }, 'rate 7 bit/s is below the smallest tbf rate (8 bit/s, one byte per second)'],
    [{ runtimeConfig: { bandwidth: { ingressRate: 8000 } } }, 'if rate is set, burst must also be set'],
  ])('%j → code 7: %s', (extra, msg) => {
    expect(() => load(extra)).toThrow(msg);
    expect(codeOf(() => load(extra))).toBe(7);
  });

  test.each([[{ ingressRate: -1, ingressBurst: 8 }], [{ ingressRate: '1000', ingressBurst: 8 }], [{ egressRate: 1.5, egressBurst: 8 }], [{ runtimeConfig: { bandwidth: { egressRate: 'x' } } }]])(
    'not a non-negative integer: %j → code 7',
    (extra) => expect(codeOf(() => load(extra))).toBe(7),
  );

  test('the largest burst the reference takes is accepted', () => {
    expect(load({ egressRate: 8000, egressBurst: 8 * 4294967294 + 7 }).bandwidth?.egressBurst).toBe(8 * 4294967294 + 7);
  });

  test.each([[{ unshapedSubnets: ['10.0.0.0/8'] }], [{ shapedSubnets: ['10.0.0.0/8'] }], [{ runtimeConfig: { bandwidth: { unshapedSubnets: ['10.0.0.0/8'], egressRate: 8, egressBurst: 8 } } }]])(
    'per-subnet shaping (plugins v1.5 only) is refused with code 2 naming the key: %j',
    (extra) => {
      expect(codeOf(() => load(extra))).toBe(2);
      expect(() => load(extra)).toThrow(/unsupported field "(un)?shapedSubnets": \["10.0.0.0\/8"\]/);
    },
  );

  test('empty subnet lists are no request at all', () => {
    expect(load({ unshapedSubnets: [], ingressRate: 8000, ingressBurst: 800 }).bandwidth?.ingressRate).toBe(8000);
  });
});
