// loadIpamConf: schema, defaults, requested-address sources, range-set checks.
import { formatIP } from '../../lib/ip/cidr';
import { CniError, ErrCode } from '../../lib/skel/errors';
import type { NetConf } from '../../lib/skel/dispatch';
import { rangeSetString } from './allocator/range-set';
import { loadIpamConf } from './config';
import { codeOf } from '../../lib/skel/testing';

const conf = (ipam: Record<string, unknown>, extra: Record<string, unknown> = {}): NetConf => ({
  cniVersion: '1.1.0',
  name: 'net1',
  type: 'bridge',
  ipam: { type: 'host-local', ...ipam },
  ...extra,
});

describe('loadIpamConf', () => {
  it('reads the legacy top-level range and defaults dataDir', () => {
    const c = loadIpamConf(conf({ subnet: '10.1.2.0/24', rangeStart: '10.1.2.9', gateway: '10.1.2.254' }));
    expect(c.ranges.map(rangeSetString)).toEqual(['10.1.2.9-10.1.2.254']);
    expect(formatIP(c.ranges[0][0].gateway)).toBe('10.1.2.254');
    expect(c.dataDir).toBe('/var/lib/cni/networks');
    expect(c.name).toBe('net1');
  });

  it('puts runtimeConfig.ipRanges first, then the legacy range, then ranges (as the reference)', () => {
    const c = loadIpamConf(
      conf({ subnet: '10.1.0.0/24', ranges: [[{ subnet: 'fd00::/120' }]] }, { runtimeConfig: { ipRanges: [[{ subnet: '10.2.0.0/24' }]] } }),
    );
    expect(c.ranges.map(rangeSetString)).toEqual(['10.2.0.1-10.2.0.254', '10.1.0.1-10.1.0.254', 'fd00::1-fd00::ff']);
  });

  it('supports dual-stack ranges', () => {
    const c = loadIpamConf(conf({ ranges: [[{ subnet: '10.1.0.0/24' }, { subnet: '10.9.0.0/24' }], [{ subnet: 'fd00::/64' }]] }));
    expect(c.ranges).toHaveLength(2);
    expect(c.ranges[0]).toHaveLength(2);
  });

  it('gathers requested IPs: args.cni.ips supersedes CNI_ARGS IP, runtimeConfig.ips added, CIDR form accepted', () => {
    const base = { ranges: [[{ subnet: '10.1.0.0/24' }], [{ subnet: 'fd00::/64' }]] };
    expect(loadIpamConf(conf(base), { IP: '10.1.0.7', K8S_POD_NAME: 'x' }).ipArgs.map(formatIP)).toEqual(['10.1.0.7']);
    const c = loadIpamConf(conf(base, { args: { cni: { ips: ['10.1.0.8'] } }, runtimeConfig: { ips: ['fd00::8/64', '10.1.0.8/24'] } }), {
      IP: '10.1.0.7',
    });
    expect(c.ipArgs.map(formatIP)).toEqual(['10.1.0.8', 'fd00::8']);
    expect(codeOf(() => loadIpamConf(conf(base), { IP: 'bogus' }))).toBe(ErrCode.InvalidConfig);
  });

  it('canonicalizes routes and keeps their 1.1 fields', () => {
    const c = loadIpamConf(conf({ subnet: '10.1.0.0/24', routes: [{ dst: '0.0.0.0/0' }, { dst: 'FD00:0::/8', gw: 'fd00:0::1', priority: 5 }] }));
    expect(c.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: 'fd00::/8', gw: 'fd00::1', priority: 5 }]);
  });

  it.each([
    ['no ipam', { cniVersion: '1.1.0', name: 'n', type: 't' }, "IPAM config missing 'ipam' key"],
    ['no range', conf({}), 'no IP ranges specified'],
    ['bad CIDR', conf({ subnet: '10.1.0.0/40' }), 'invalid range set 0: invalid CIDR address: 10.1.0.0/40'],
    ['start outside', conf({ subnet: '10.1.0.0/24', rangeStart: '10.2.0.1' }), 'invalid range set 0: RangeStart 10.2.0.1 not in network 10.1.0.0/24'],
    ['too small', conf({ ranges: [[{ subnet: '10.1.0.0/31' }]] }), 'invalid range set 0: Network 10.1.0.0/31 too small to allocate from'],
    ['overlap', conf({ ranges: [[{ subnet: '10.1.0.0/24' }], [{ subnet: '10.1.0.0/16' }]] }), 'range set 0 overlaps with 1'],
    ['schema', conf({ subnet: 42 }), 'invalid host-local configuration: conf.ipam.subnet must be string'],
    ['schema ranges', conf({ ranges: [{ subnet: '10.0.0.0/8' }] }), 'conf.ipam.ranges/0 must be array'.replace('/', '.')],
    ['path in name', { ...conf({ subnet: '10.1.0.0/24' }), name: '../x' }, 'invalid network name'],
  ])('rejects %s with code 7', (_n, c, msg) => {
    let err: CniError | undefined;
    try {
      loadIpamConf(c as NetConf);
    } catch (e) {
      err = e as CniError;
    }
    expect(err).toBeInstanceOf(CniError);
    expect(err!.code).toBe(ErrCode.InvalidConfig);
    expect(err!.message).toContain(msg);
  });

  it('leaves unknown keys alone', () => {
    expect(() => loadIpamConf(conf({ subnet: '10.1.0.0/24', somethingElse: 1 }, { bridge: 'cni0', mtu: 1400 }))).not.toThrow();
  });
});

