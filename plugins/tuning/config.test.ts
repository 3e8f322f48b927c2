import type { NetConf } from '../../lib/skel/dispatch';
import { hasLinkChanges, loadNetConf } from './config';
import { codeOf } from '../../lib/skel/testing';

const load = (extra: Record<string, unknown> = {}, argsMap: Record<string, string> = {}, allowlist?: string[]) =>
  loadNetConf({ conf: { cniVersion: '1.0.0', name: 'n', type: 'tuning', ...extra } as NetConf, argsMap, ifName: 'eth0' }, allowlist);
describe('tuning loadNetConf', () => {
  test('defaults: /run/cni/tuning, nothing to do', () => {
    const c = load();
    expect(c.dataDir).toBe('/run/cni/tuning');
    expect(c.sysctls).toEqual([]);
    expect(hasLinkChanges(c.link)).toBe(false);
  });

  test('MAC: mac < CNI_ARGS MAC < runtimeConfig.mac < args.cni.mac', () => {
    expect(load({ mac: '02:00:00:00:00:01' }).link.mac).toBe('02:00:00:00:00:01');
    expect(load({ mac: '02:00:00:00:00:01' }, { MAC: '02:00:00:00:00:02' }).link.mac).toBe('02:00:00:00:00:02');
    expect(load({ runtimeConfig: { mac: '02:00:00:00:00:03' } }, { MAC: '02:00:00:00:00:02' }).link.mac).toBe('02:00:00:00:00:03');
    expect(load({ runtimeConfig: { mac: '02:00:00:00:00:03' }, args: { cni: { mac: '02:00:00:00:00:04' } } }).link.mac).toBe('02:00:00:00:00:04');
    expect(codeOf(() => load({ mac: 'zz' }))).toBe(7);
  });

  test('args.cni overrides sysctl entries and attributes', () => {
    const c = load({ sysctl: { 'net.core.somaxconn': '1', 'net.core.rmem_max': '2' }, mtu: 1400, args: { cni: { sysctl: { 'net.core.somaxconn': '9' }, mtu: 1300, allmulti: true, promisc: true, txQLen: 7 } } });
    expect(c.sysctls).toEqual([
      ['net.core.somaxconn', '/proc/sys/net/core/somaxconn', '9'],
      ['net.core.rmem_max', '/proc/sys/net/core/rmem_max', '2'],
    ]);
    expect(c.link).toEqual({ mtu: 1300, promisc: true, allmulti: true, txQLen: 7 });
  });

  test('promisc:false does nothing (reference); allmulti:false turns it off', () => {
    expect(load({ promisc: false }).link).toEqual({});
    expect(load({ allmulti: false }).link).toEqual({ allmulti: false });
  });

  test('forbidden keys, non-string values and a tiny mtu are refused before anything runs', () => {
    expect(codeOf(() => load({ sysctl: { 'kernel.hostname': 'x' } }))).toBe(7);
    expect(codeOf(() => load({ sysctl: { 'net.core.somaxconn': 5 } }))).toBe(7);
    expect(codeOf(() => load({ mtu: 10 }))).toBe(7);
  });

  test('the allowlist applies to keys as written', () => {
    expect(codeOf(() => load({ sysctl: { 'net.core.somaxconn': '1' } }, {}, ['^net\\.ipv4\\.']))).toBe(7);
    expect(load({ sysctl: { 'net.ipv4.conf.IFNAME.arp_filter': '1' } }, {}, ['^net\\.ipv4\\.']).sysctls[0]![1]).toBe('/proc/sys/net/ipv4/conf/eth0/arp_filter');
  });
});
