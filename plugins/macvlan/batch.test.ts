import { checkBatch, containerBatch, createBatch } from './batch';
import { routeVia } from '../../lib/iproute/iface';

describe('macvlan batch builders', () => {
  test('create in the host netns: read the master, then add straight into the container netns', () => {
    expect(createBatch({ master: 'eth0', tmpName: 'veth1a2b3c4d', mode: 'bridge', mtu: 0, netns: '/run/netns/c1' })).toEqual([
      'link show dev eth0',
      'link add link eth0 name veth1a2b3c4d netns /run/netns/c1 type macvlan mode bridge',
    ]);
  });

  test('mtu, mac and bcqueuelen go on the add line; no netns when run in the container', () => {
    expect(createBatch({ master: 'ens3', tmpName: 'tmp0', mode: 'vepa', mtu: 1400, mac: '02:00:00:00:00:01', bcqueuelen: 100 })[1]).toBe(
      'link add link ens3 name tmp0 mtu 1400 address 02:00:00:00:00:01 type macvlan mode vepa bcqueuelen 100',
    );
  });

  test('container batch: rename first, addresses, up, routes via the family gateway, read back last', () => {
    const lines = containerBatch({
      tmpName: 'tmp0',
      ifName: 'eth0',
      addresses: ['10.1.0.5/24', 'fd00::5/64'],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }, { dst: '192.168.0.0/16', gw: '10.1.0.254', priority: 5 }],
      gw4: '10.1.0.1',
      gw6: 'fd00::1',
    });
    expect(lines).toEqual([
      'link set dev tmp0 name eth0',
      'addr add 10.1.0.5/24 dev eth0',
      'addr add fd00::5/64 dev eth0 nodad',
      'link set dev eth0 up',
      'route append 0.0.0.0/0 via 10.1.0.1 dev eth0',
      'route append ::/0 via fd00::1 dev eth0',
      'route append 192.168.0.0/16 via 10.1.0.254 dev eth0 metric 5',
      'link show dev eth0',
    ]);
  });

  test('L2 only: rename, up, read back', () => {
    expect(containerBatch({ tmpName: 't', ifName: 'net1', addresses: [], routes: [] })).toEqual(['link set dev t name net1', 'link set dev net1 up', 'link show dev net1']);
  });

  test('routeVia prefers the route gateway, else the family gateway, else none', () => {
    expect(routeVia({ dst: '0.0.0.0/0', gw: '1.2.3.4' }, '9.9.9.9')).toBe('1.2.3.4');
    expect(routeVia({ dst: '::/0' }, '9.9.9.9')).toBeUndefined();
  });

  test('check batch reads the master too when it lives in the container', () => {
    expect(checkBatch('eth0', 'm0')).toEqual(['addr show dev eth0', 'route show table all', 'link show dev m0']);
    expect(checkBatch('eth0')).toHaveLength(2);
  });
});
