import { containerAddBatch, gatewayBatch, hostAddBatch } from './batch';
import { routeVia } from '../iproute/iface';

describe('hostAddBatch', () => {
  const base = {
    bridge: 'cni0',
    bridgeMac: '02:00:00:00:00:01',
    mtu: 0,
    promisc: false,
    hostVeth: 'veth0011aabb',
    ifName: 'eth0',
    netns: '/run/netns/c1',
    hairpin: false,
    isolated: false,
  };

  test('creates bridge, veth with the peer in the netns, then reads back', () => {
    const b = hostAddBatch(base);
    expect(b.lines).toEqual([
      'link add name cni0 address 02:00:00:00:00:01 type bridge',
      'link set dev cni0 up',
      'link add name veth0011aabb type veth peer name eth0 netns /run/netns/c1',
      'link set dev veth0011aabb master cni0',
      'link set dev veth0011aabb up',
      'addr show dev cni0',
      'addr show dev veth0011aabb',
    ]);
    expect(b.bridgeAdd).toBe(0);
    expect(b.vethAdd).toBe(2);
    expect(b.shows).toBe(5);
  });

  test('mtu, mac, hairpin, isolation, promisc', () => {
    const b = hostAddBatch({ ...base, mtu: 1400, containerMac: '0e:00:00:00:00:05', hairpin: true, isolated: true, promisc: true });
    expect(b.lines).toContain('link add name cni0 address 02:00:00:00:00:01 mtu 1400 type bridge');
    expect(b.lines).toContain('link set dev cni0 promisc on');
    expect(b.lines).toContain('link add name veth0011aabb mtu 1400 type veth peer name eth0 address 0e:00:00:00:00:05 mtu 1400 netns /run/netns/c1');
    expect(b.lines).toContain('link set dev veth0011aabb type bridge_slave hairpin on isolated on');
  });
});

describe('gatewayBatch', () => {
  test('replaced addresses go first, then the gateways; v6 without DAD unless asked', () => {
    expect(gatewayBatch('cni0', ['10.9.0.1/24'], ['10.22.0.1/16', 'fd00::1/64'], false)).toEqual([
      'addr del 10.9.0.1/24 dev cni0',
      'addr add 10.22.0.1/16 dev cni0',
      'addr add fd00::1/64 dev cni0 nodad',
    ]);
    expect(gatewayBatch('cni0', [], ['fd00::1/64'], true)).toEqual(['addr add fd00::1/64 dev cni0']);
  });
});

describe('containerAddBatch', () => {
  test('addresses, link up, routes via the family gateway, read back', () => {
    expect(
      containerAddBatch({
        ifName: 'eth0',
        addresses: ['10.22.0.5/16', 'fd00::5/64'],
        routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }, { dst: '192.168.0.0/24', gw: '10.22.0.254' }],
        gw4: '10.22.0.1',
        gw6: 'fd00::1',
        enableDad: false,
      }),
    ).toEqual([
      'addr add 10.22.0.5/16 dev eth0',
      'addr add fd00::5/64 dev eth0 nodad',
      'link set dev eth0 up',
      'route append 0.0.0.0/0 via 10.22.0.1 dev eth0',
      'route append ::/0 via fd00::1 dev eth0',
      'route append 192.168.0.0/24 via 10.22.0.254 dev eth0',
      'link show dev eth0',
    ]);
  });

  test('a route without any gateway goes straight out of the device', () => {
    expect(routeVia({ dst: '10.0.0.0/8' })).toBeUndefined();
    expect(containerAddBatch({ ifName: 'eth0', addresses: [], routes: [{ dst: '10.0.0.0/8', mtu: 1300 }], enableDad: true })).toContain(
      'route append 10.0.0.0/8 dev eth0 mtu 1300',
    );
  });
});
