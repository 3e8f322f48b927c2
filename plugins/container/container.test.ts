// Pure parts of the container plugin: libcni cache entries, the target's precedence, and how a
// netns's `ip -json addr show` becomes a result. No root, no kernel.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError } from '../../lib/skel/errors';
import { mergeView, viewFromAddrs } from '../../lib/iproute/netns-view';
import type { IpAddr } from '../../lib/iproute/json-types';
import { cachedAttachments, parseCacheEntry } from './cache';
import { DEFAULT_CACHE_DIR, loadNetConf } from './config';

function cmdArgs(conf: Partial<NetConf>, argsMap: Record<string, string> = {}, containerID = 'joiner'): CmdArgs {
  return {
    command: 'ADD',
    containerID,
    netns: '/run/netns/x',
    ifName: 'eth0',
    args: '',
    argsMap,
    path: [],
    stdin: Buffer.alloc(0),
    conf: { cniVersion: '1.0.0', name: 'n', type: 'container', ...conf } as NetConf,
  };
}

describe('parseCacheEntry', () => {
  test('reads netns first, then result sandboxes, without duplicates', () => {
    const e = parseCacheEntry(
      JSON.stringify({
        kind: 'cniCacheV1',
        containerId: 'c1',
        ifName: 'eth0',
        networkName: 'net',
        netns: '/run/netns/a',
        result: { interfaces: [{ name: 'br' }, { name: 'eth0', sandbox: '/run/netns/a' }, { name: 'x', sandbox: '/proc/9/ns/net' }] },
      }),
      'f',
    );
    expect(e).toEqual({ file: 'f', containerId: 'c1', networkName: 'net', ifName: 'eth0', netnsPaths: ['/run/netns/a', '/proc/9/ns/net'] });
  });
  test('skips half-written JSON, other kinds and the legacy (bare result) format', () => {
    expect(parseCacheEntry('{"kind":"cniCacheV1","contai', 'f')).toBeUndefined();
    expect(parseCacheEntry(JSON.stringify({ kind: 'x', containerId: 'c' }), 'f')).toBeUndefined();
    expect(parseCacheEntry(JSON.stringify({ cniVersion: '0.4.0', interfaces: [] }), 'f')).toBeUndefined();
  });
});

describe('cachedAttachments', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cni-unit-'));
    mkdirSync(join(dir, 'results'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const put = (name: string, body: unknown) => writeFileSync(join(dir, 'results', name), JSON.stringify(body));

  test('matches the exact containerId, not a prefix of it', () => {
    put('net-abc-eth0', { kind: 'cniCacheV1', containerId: 'abc', ifName: 'eth0', networkName: 'net', netns: '/a' });
    put('net-abcd-eth0', { kind: 'cniCacheV1', containerId: 'abcd', ifName: 'eth0', networkName: 'net', netns: '/b' });
    put('net2-abc-eth1', { kind: 'cniCacheV1', containerId: 'abc', ifName: 'eth1', networkName: 'net2', netns: '/a' });
    expect(cachedAttachments(dir, 'abc').map((a) => `${a.networkName}/${a.ifName}`)).toEqual(['net/eth0', 'net2/eth1']);
    expect(cachedAttachments(dir, 'abcd').map((a) => a.netnsPaths)).toEqual([['/b']]);
  });
  test('a missing directory means no attachments', () => {
    expect(cachedAttachments(join(dir, 'nope'), 'abc')).toEqual([]);
  });
});

describe('loadNetConf', () => {
  test('defaults cacheDir to libcni\'s /var/lib/cni', () => {
    expect(loadNetConf(cmdArgs({ container: 't' }), true).cacheDir).toBe(DEFAULT_CACHE_DIR);
  });
  test('precedence: runtimeConfig > args.cni > CNI_ARGS > container', () => {
    const pick = (conf: Partial<NetConf>, env: Record<string, string> = {}) => loadNetConf(cmdArgs(conf, env), true).target;
    expect(pick({ container: 'a' })).toBe('a');
    expect(pick({ container: 'a' }, { CONTAINER: 'b' })).toBe('b');
    expect(pick({ container: 'a', args: { cni: { container: 'c' } } }, { CONTAINER: 'b' })).toBe('c');
    expect(pick({ container: 'a', args: { cni: { container: 'c' } }, runtimeConfig: { container: 'd' } }, { CONTAINER: 'b' })).toBe('d');
  });
  test('no target is code 7 for ADD/CHECK, fine for DEL', () => {
    expect(() => loadNetConf(cmdArgs({}), true)).toThrow(CniError);
    expect(loadNetConf(cmdArgs({}), false).target).toBe('');
  });
  test('joining itself is refused', () => {
    expect(() => loadNetConf(cmdArgs({ container: 'me' }, {}, 'me'), true)).toThrow(/its own/);
  });
});

describe('viewFromAddrs / mergeView', () => {
  const links = [
    { ifindex: 1, ifname: 'lo', flags: ['UP'], mtu: 65536, operstate: 'UNKNOWN', address: '00:00:00:00:00:00', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] },
    {
      ifindex: 2,
      ifname: 'eth0',
      flags: ['UP'],
      mtu: 1500,
      operstate: 'UP',
      address: '02:AA:00:00:00:01',
      addr_info: [
        { family: 'inet', local: '10.0.0.2', prefixlen: 24, scope: 'global' },
        { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
        { family: 'inet6', local: '2001:db8::2', prefixlen: 64, scope: 'global' },
      ],
    },
    { ifindex: 3, ifname: 'tun0', flags: [], mtu: 1480, operstate: 'DOWN', address: '0.0.0.0', addr_info: [] },
  ] as IpAddr[];

  test('lists every link with sandbox, only global addresses, MACs only when they are MACs', () => {
    const v = viewFromAddrs(links, '/ns');
    expect(v.interfaces).toEqual([
      { name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, sandbox: '/ns' },
      { name: 'eth0', mac: '02:aa:00:00:00:01', mtu: 1500, sandbox: '/ns' },
      { name: 'tun0', mtu: 1480, sandbox: '/ns' },
    ]);
    expect(v.ips).toEqual([
      { address: '10.0.0.2/24', interface: 1 },
      { address: '2001:db8::2/64', interface: 1 },
    ]);
  });

  test('merging keeps prevResult first and re-indexes, without repeating an interface', () => {
    const v = viewFromAddrs(links, '/ns');
    const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/ns' }], ips: [{ address: '10.0.0.2/24', interface: 0 }], dns: { domain: 'x' } };
    const m = mergeView(prev, v, '1.0.0');
    expect(m.interfaces!.map((i) => i.name)).toEqual(['eth0', 'lo', 'tun0']);
    expect(m.ips).toEqual([
      { address: '10.0.0.2/24', interface: 0 },
      { address: '2001:db8::2/64', interface: 0 },
    ]);
    expect(m.dns).toEqual({ domain: 'x' });
  });

  test('no global address → no ips key at all', () => {
    expect(mergeView(undefined, viewFromAddrs([links[0]!], '/ns'), '1.0.0')).not.toHaveProperty('ips');
  });
});
