// Result conversion between spec versions: parseResult (any version in) and resultForVersion (one out).
import { parseResult, resultForVersion, type Result } from './result';
import { SUPPORTED_VERSIONS } from '../skel/versions';

const CURRENT: Result = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'cni0', mac: '0a:58:0a:00:00:01' },
    { name: 'eth0', mac: '0a:58:0a:00:00:03', sandbox: '/run/netns/x', mtu: 9000, socketPath: '/s', pciID: '0000:00:01.0' },
  ],
  ips: [
    { address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 1 },
    { address: '2001:db8::2/64', interface: 1 },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.0.0.1', mtu: 1400, advmss: 1360, priority: 5, table: 100, scope: 0 },
    { dst: '::/0' },
  ],
  dns: { nameservers: ['10.0.0.1'], domain: 'example.org', search: ['example.org'], options: ['ndots:2'] },
};

/** What the same result looks like in a version without the 1.1 additions. */
function without11(r: Result): Result {
  return {
    ...r,
    interfaces: r.interfaces!.map(({ mtu: _m, socketPath: _s, pciID: _p, ...i }) => i),
    routes: r.routes!.map(({ dst, gw }) => (gw ? { dst, gw } : { dst })),
  };
}

describe('resultForVersion / parseResult round trips', () => {
  it.each(SUPPORTED_VERSIONS.map((v) => [v]))('%s', (v) => {
    const wire = resultForVersion(CURRENT, v);
    expect(wire.cniVersion).toBe(v);
    // Must survive JSON (what actually crosses the process boundary).
    const back = parseResult(JSON.parse(JSON.stringify(wire)), v);
    const expected = v === '1.1.0' ? CURRENT : without11(CURRENT);
    expect(back).toEqual({ ...expected, cniVersion: v });
    // Rendering again in the same version is stable.
    expect(resultForVersion(back, v)).toEqual(wire);
  });

  it.each(['0.3.0', '0.3.1', '0.4.0'])('%s ips carry version "4"/"6"', (v) => {
    const wire = resultForVersion(CURRENT, v) as { ips: { version: string }[] };
    expect(wire.ips.map((i) => i.version)).toEqual(['4', '6']);
  });

  it.each(['1.0.0', '1.1.0'])('%s ips carry no version', (v) => {
    const wire = resultForVersion(CURRENT, v) as { ips: Record<string, unknown>[] };
    for (const ip of wire.ips) expect(ip).not.toHaveProperty('version');
  });

  it('does not modify its input', () => {
    const copy = JSON.parse(JSON.stringify(CURRENT));
    resultForVersion(CURRENT, '0.3.0');
    expect(CURRENT).toEqual(copy);
  });
});

describe('dns', () => {
  it.each(SUPPORTED_VERSIONS.map((v) => [v]))('defaults to {} in %s', (v) => {
    expect(resultForVersion({ cniVersion: '1.1.0' }, v)).toEqual({ cniVersion: v, dns: {} });
  });

  it('is absent after parsing a result without one', () => {
    expect(parseResult({ cniVersion: '1.0.0', ips: [] }, '1.0.0')).toEqual({ cniVersion: '1.0.0', ips: [] });
  });
});

describe('parseResult', () => {
  it('reads an IPAM result (no interfaces, no ips[].interface)', () => {
    const r = parseResult({ cniVersion: '0.4.0', ips: [{ version: '4', address: '10.1.0.5/16', gateway: '10.1.0.1' }], dns: {} }, '0.4.0');
    expect(r).toEqual({ cniVersion: '0.4.0', ips: [{ address: '10.1.0.5/16', gateway: '10.1.0.1' }], dns: {} });
  });

  it('takes the surrounding version when the result has none', () => {
    expect(parseResult({ ips: [] }, '1.0.0').cniVersion).toBe('1.0.0');
  });

  it('drops an empty gateway', () => {
    expect(parseResult({ ips: [{ address: '10.0.0.2/24', gateway: '' }] }, '1.0.0').ips).toEqual([{ address: '10.0.0.2/24' }]);
  });

  it.each([
    ['not an object', 'x'],
    ['null', null],
    ['a 0.2.0 result', { cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24' } }],
    ['interfaces not a list', { interfaces: {} }],
    ['an interface without a name', { interfaces: [{ mac: 'x' }] }],
    ['ips not a list', { ips: 'x' }],
    ['an ip without an address', { ips: [{ gateway: '10.0.0.1' }] }],
    ['routes not a list', { routes: 1 }],
    ['a route without dst', { routes: [{ gw: '10.0.0.1' }] }],
    ['dns not an object', { dns: [] }],
  ])('rejects %s with code 6', (_what, raw) => {
    expect(() => parseResult(raw, '1.0.0')).toThrow(expect.objectContaining({ code: 6 }));
  });
});
