import { CniError } from '../../lib/skel/errors';
import { deviceName, loadNetConf } from './config';

const base = { cniVersion: '1.1.0', name: 'ovl', type: 'overlay', network: '10.40.0.0/16', etcd: { endpoints: ['http://127.0.0.1:2379'] } };
const codeOf = (extra: Record<string, unknown>): number | undefined => {
  try {
    loadNetConf({ conf: { ...base, ...extra } });
    return undefined;
  } catch (e) {
    return (e as CniError).code;
  }
};

describe('overlay loadNetConf', () => {
  it('fills the defaults', () => {
    const c = loadNetConf({ conf: { ...base } });
    expect(c).toMatchObject({ subnetLen: 24, vni: 1, port: 4789, mtu: 0, ipMasq: true, bridge: 'ov-ovl', vxlan: 'ovx-ovl', dataDir: '/var/lib/cni/networks', runDir: '/run/cni/overlay/ovl', leaseTTL: 60 });
    expect(c.etcd.prefix).toBe('/cni-overlay/ovl');
    expect(c.namesRunDir).toBe('/run/containers/cni/dnsname');
  });

  it('takes flannel\'s subnet length for small networks (prefix + 2 beyond /22)', () => {
    expect(loadNetConf({ conf: { ...base, network: '10.40.0.0/24' } }).subnetLen).toBe(26);
  });

  it.each([
    ['a bad CIDR', { network: '10.40.0.0/33' }],
    ['host bits set', { network: '10.40.0.1/16' }],
    ['IPv6', { network: 'fd00::/64' }],
    ['subnetLen not longer than the network', { subnetLen: 16 }],
    ['subnetLen too long', { subnetLen: 31 }],
    ['vni 0', { vni: 0 }],
    ['vni beyond 24 bits', { vni: 16777216 }],
    ['port 0', { port: 0 }],
    ['a non-URL endpoint', { etcd: { endpoints: ['10.0.0.1:2379'] } }],
    ['no endpoints', { etcd: { endpoints: [] } }],
    ['certFile without keyFile', { etcd: { endpoints: ['https://e:2379'], certFile: '/x' } }],
    ['subnetMin outside the network', { subnetMin: '10.41.0.0' }],
    ['subnetMin not aligned', { subnetMin: '10.40.1.7' }],
    ['subnetMin after subnetMax', { subnetMin: '10.40.9.0', subnetMax: '10.40.2.0' }],
    ['a wrong type', { mtu: 'big' }],
    ['a bad publicIP', { publicIP: '300.1.1.1' }],
    ['a name that leaves the run dir', { name: '../x' }],
  ])('refuses %s with code 7', (_what, extra) => {
    expect(codeOf(extra)).toBe(7);
  });

  it('refuses an ipam section with code 2: overlay allocates from the host\'s lease', () => {
    expect(codeOf({ ipam: { type: 'host-local' } })).toBe(2);
  });

  it('derives short device names, hashing long network names', () => {
    expect(deviceName('ov', 'net1')).toBe('ov-net1');
    const long = deviceName('ovx', 'a-very-long-network-name');
    expect(long).toMatch(/^ovx-[0-9a-f]{11}$/);
    expect(long.length).toBeLessThanOrEqual(15);
  });
});
