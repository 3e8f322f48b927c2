import { parseCidr } from '../../lib/ip/cidr';
import { loadNetConf } from './config';
import { configConflict, leaseValue, networkConfig, parsePeer, pickSubnet, subnetKey, subnetOfKey } from './registry';

const conf = (extra: Record<string, unknown> = {}) =>
  loadNetConf({ conf: { cniVersion: '1.1.0', name: 'ovl', type: 'overlay', network: '10.40.0.0/16', etcd: { endpoints: ['http://127.0.0.1:2379'] }, ...extra } });

describe('registry keys and values (flannel layout)', () => {
  it('names a subnet key as flannel does, and reads it back', () => {
    const s = parseCidr('10.40.3.0/24')!;
    expect(subnetKey('/coreos.com/network', s)).toBe('/coreos.com/network/subnets/10.40.3.0-24');
    expect(subnetOfKey('/coreos.com/network/subnets/10.40.3.0-24')).toEqual(s);
    expect(subnetOfKey('/x/subnets/garbage')).toBeUndefined();
  });

  it('writes the lease value with PublicIP, BackendType and BackendData {VNI, VtepMAC}', () => {
    expect(JSON.parse(leaseValue('192.168.1.2', 7, '02:00:00:00:00:01'))).toEqual({ PublicIP: '192.168.1.2', BackendType: 'vxlan', BackendData: { VNI: 7, VtepMAC: '02:00:00:00:00:01' } });
  });

  it('writes the network config with Network, SubnetLen, SubnetMin, SubnetMax and Backend', () => {
    expect(networkConfig(conf({ vni: 9, port: 8472 }))).toEqual({
      Network: '10.40.0.0/16',
      SubnetLen: 24,
      SubnetMin: '10.40.1.0',
      SubnetMax: '10.40.255.0',
      Backend: { Type: 'vxlan', VNI: 9, Port: 8472 },
    });
  });

  it('parses a peer, and says why one is unusable', () => {
    const { peer } = parsePeer('/p/subnets/10.40.5.0-24', leaseValue('192.168.1.3', 1, '02:AA:00:00:00:01'));
    expect(peer).toEqual({ key: '/p/subnets/10.40.5.0-24', subnet: parseCidr('10.40.5.0/24'), publicIP: '192.168.1.3', vtepMac: '02:aa:00:00:00:01' });
    expect(parsePeer('/p/subnets/10.40.5.0-24', '{"PublicIP":"1.2.3.4","BackendType":"udp"}').problem).toMatch(/not vxlan/);
    expect(parsePeer('/p/subnets/10.40.5.0-24', 'nope').problem).toMatch(/not JSON/);
    expect(parsePeer('/p/subnets/10.40.5.0-24', '{"PublicIP":"x","BackendType":"vxlan","BackendData":{"VtepMAC":"02:00:00:00:00:01"}}').problem).toMatch(/PublicIP/);
  });

  it('finds config conflicts field by field', () => {
    const want = networkConfig(conf());
    expect(configConflict(want, want)).toBeUndefined();
    expect(configConflict({ ...want, Network: '10.50.0.0/16' }, want)).toMatch(/Network 10.50.0.0\/16 \(this host: 10.40.0.0\/16\)/);
    expect(configConflict({ ...want, Backend: { Type: 'vxlan', VNI: 2, Port: 4789 } }, want)).toMatch(/VNI 2/);
  });
});

describe('pickSubnet', () => {
  it('takes the remembered subnet when it is free', () => {
    const c = conf();
    expect(pickSubnet(c, new Set(), parseCidr('10.40.7.0/24'))).toEqual(parseCidr('10.40.7.0/24'));
  });

  it('never picks a taken subnet, and gives up when all are taken', () => {
    const c = conf({ subnetMin: '10.40.1.0', subnetMax: '10.40.3.0' });
    const taken = new Set(['10.40.1.0-24', '10.40.3.0-24']);
    for (let i = 0; i < 20; i++) expect(pickSubnet(c, taken, parseCidr('10.40.1.0/24'))).toEqual(parseCidr('10.40.2.0/24'));
    taken.add('10.40.2.0-24');
    expect(pickSubnet(c, taken)).toBeUndefined();
  });

  it('stays within subnetMin and subnetMax', () => {
    const c = conf({ subnetMin: '10.40.10.0', subnetMax: '10.40.12.0' });
    for (let i = 0; i < 50; i++) {
      const s = pickSubnet(c, new Set(), parseCidr('10.40.99.0/24'))!;
      expect(s.ip.value >= c.subnetMin && s.ip.value <= c.subnetMax).toBe(true);
    }
  });
});
