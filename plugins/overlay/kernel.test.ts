import { parseCidr } from '../../lib/ip/cidr';
import { peerBatches } from './kernel';
import type { Peer } from './registry';

const peer = (subnet: string, ip: string, mac: string): Peer => ({ key: `/p/subnets/${subnet.replace('/', '-')}`, subnet: parseCidr(subnet)!, publicIP: ip, vtepMac: mac });

describe('peerBatches', () => {
  it('replaces neighbour, then FDB, then route for a new peer; removes in the reverse order', () => {
    const a = peer('10.40.5.0/24', '192.168.7.3', '02:00:00:00:00:05');
    const b = peer('10.40.6.0/24', '192.168.7.4', '02:00:00:00:00:06');
    expect(peerBatches('ovx-n', { upsert: [a], remove: [b], staleFdb: [{ mac: '02:00:00:00:00:99', dst: '192.168.7.3' }] })).toEqual({
      ip1: ['route del 10.40.6.0/24 dev ovx-n', 'neigh replace 10.40.5.0 lladdr 02:00:00:00:00:05 dev ovx-n nud permanent'],
      fdb: [
        'fdb del 02:00:00:00:00:06 dev ovx-n dst 192.168.7.4 self',
        'fdb del 02:00:00:00:00:99 dev ovx-n dst 192.168.7.3 self',
        'fdb replace 02:00:00:00:00:05 dev ovx-n dst 192.168.7.3 self permanent',
      ],
      ip2: ['neigh del 10.40.6.0 dev ovx-n', 'route replace 10.40.5.0/24 via 10.40.5.0 dev ovx-n onlink'],
    });
  });

  it('has three batches whatever the number of peers', () => {
    const many = Array.from({ length: 50 }, (_, i) => peer(`10.40.${i + 1}.0/24`, `192.168.7.${i + 10}`, `02:00:00:00:01:${(i + 16).toString(16)}`));
    const w = peerBatches('v', { upsert: many, remove: [] });
    expect(Object.keys(w)).toHaveLength(3);
    expect(w.ip1).toHaveLength(50);
    expect(w.fdb).toHaveLength(50);
    expect(w.ip2).toHaveLength(50);
  });
});
