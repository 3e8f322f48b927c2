import { HOST_CHECK_LINES, containerAddBatch, hostAddBatch } from './batch';

describe('hostAddBatch', () => {
  const base = { hostVeth: 'veth0011aabb', ifName: 'eth0', netns: '/run/netns/c1', mtu: 0 };

  test('veth with the peer in the netns, up, gateway /32, host route /32 (scope host), read back', () => {
    const b = hostAddBatch({ ...base, ips: [{ address: '10.1.2.5/24', gateway: '10.1.2.1' }] });
    expect(b.lines).toEqual([
      'link add name veth0011aabb type veth peer name eth0 netns /run/netns/c1',
      'link set dev veth0011aabb up',
      'addr add 10.1.2.1/32 dev veth0011aabb',
      'route replace 10.1.2.5/32 dev veth0011aabb scope host',
      'link show dev veth0011aabb',
    ]);
    expect(b.vethAdd).toBe(0);
  });

  test('mtu on both ends; dual stack: /128 without DAD; one gateway address per distinct gateway', () => {
    const b = hostAddBatch({
      ...base,
      mtu: 1400,
      ips: [
        { address: '10.1.2.5/24', gateway: '10.1.2.1' },
        { address: '10.1.2.6/24', gateway: '10.1.2.1' },
        { address: 'fd00::5/64', gateway: 'fd00::1' },
      ],
    });
    expect(b.lines).toEqual([
      'link add name veth0011aabb mtu 1400 type veth peer name eth0 mtu 1400 netns /run/netns/c1',
      'link set dev veth0011aabb up',
      'addr add 10.1.2.1/32 dev veth0011aabb',
      'addr add fd00::1/128 dev veth0011aabb nodad',
      'route replace 10.1.2.5/32 dev veth0011aabb scope host',
      'route replace 10.1.2.6/32 dev veth0011aabb scope host',
      'route replace fd00::5/128 dev veth0011aabb scope host',
      'link show dev veth0011aabb',
    ]);
  });
});

describe('containerAddBatch', () => {
  test('address with its prefix but no prefix route, gateway on-link, IPAM routes, subnet via gateway, read back', () => {
    expect(containerAddBatch({ ifName: 'eth0', ips: [{ address: '10.1.2.5/24', gateway: '10.1.2.1' }], routes: [{ dst: '0.0.0.0/0' }] })).toEqual([
      'addr add 10.1.2.5/24 dev eth0 noprefixroute',
      'link set dev eth0 up',
      'route add 10.1.2.1/32 dev eth0 scope link src 10.1.2.5',
      'route append 0.0.0.0/0 via 10.1.2.1 dev eth0',
      'route add 10.1.2.0/24 via 10.1.2.1 dev eth0 src 10.1.2.5',
      'link show dev eth0',
    ]);
  });

  test('dual stack: v6 without DAD, each route via its family gateway or its own gw', () => {
    const lines = containerAddBatch({
      ifName: 'eth0',
      ips: [
        { address: '10.1.2.5/24', gateway: '10.1.2.1' },
        { address: 'fd00::5/64', gateway: 'fd00::1' },
      ],
      routes: [{ dst: '::/0' }, { dst: '192.168.0.0/16', gw: '10.1.2.254' }],
    });
    expect(lines).toEqual([
      'addr add 10.1.2.5/24 dev eth0 noprefixroute',
      'addr add fd00::5/64 dev eth0 noprefixroute nodad',
      'link set dev eth0 up',
      'route add 10.1.2.1/32 dev eth0 scope link src 10.1.2.5',
      'route add fd00::1/128 dev eth0 scope link src fd00::5',
      'route append ::/0 via fd00::1 dev eth0',
      'route append 192.168.0.0/16 via 10.1.2.254 dev eth0',
      'route add 10.1.2.0/24 via 10.1.2.1 dev eth0 src 10.1.2.5',
      'route add fd00::/64 via fd00::1 dev eth0 src fd00::5',
      'link show dev eth0',
    ]);
  });

  test('a subnet the IPAM already routes, or a second address in it, gets no second subnet route', () => {
    const lines = containerAddBatch({
      ifName: 'net1',
      ips: [
        { address: '10.1.2.5/24', gateway: '10.1.2.1' },
        { address: '10.1.2.6/24', gateway: '10.1.2.1' },
        { address: '10.9.0.5/16', gateway: '10.9.0.1' },
      ],
      routes: [{ dst: '10.9.0.0/16' }],
    });
    expect(lines.filter((l) => l.startsWith('route add'))).toEqual([
      'route add 10.1.2.1/32 dev net1 scope link src 10.1.2.5',
      'route add 10.9.0.1/32 dev net1 scope link src 10.9.0.5',
      'route add 10.1.2.0/24 via 10.1.2.1 dev net1 src 10.1.2.5',
    ]);
    expect(lines).toContain('route append 10.9.0.0/16 via 10.1.2.1 dev net1');
  });
});

test('HOST_CHECK_LINES reads the host veth and its routes of both families', () => {
  expect(HOST_CHECK_LINES('veth01')).toEqual(['addr show dev veth01', 'route show table all dev veth01']);
});
