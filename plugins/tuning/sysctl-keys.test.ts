import { checkAllowlist, parseAllowlist, sameSysctlValue, sysctlPath } from './sysctl-keys';
import { codeOf } from '../../lib/skel/testing';

describe('sysctlPath', () => {
  test.each([
    ['net.core.somaxconn', 'eth0', '/proc/sys/net/core/somaxconn'],
    ['net.ipv4.conf.IFNAME.arp_filter', 'eth0', '/proc/sys/net/ipv4/conf/eth0/arp_filter'],
    ['net/ipv4/conf/IFNAME/arp_filter', 'eth0.100', '/proc/sys/net/ipv4/conf/eth0.100/arp_filter'],
    ['net.ipv4.conf.IFNAME.arp_filter', 'eth0.100', '/proc/sys/net/ipv4/conf/eth0.100/arp_filter'],
    ['net/ipv6/conf/eth0.5/accept_ra', 'x', '/proc/sys/net/ipv6/conf/eth0.5/accept_ra'],
    ['net.ipv4.conf.IFNAME.IFNAME', 'e$&1', '/proc/sys/net/ipv4/conf/e$&1/IFNAME'],
  ])('%s with ifName %s → %s', (key, ifName, path) => {
    expect(sysctlPath(key, ifName)).toBe(path);
  });

  test.each([
    'kernel.hostname',
    'kernel/hostname',
    'net/../../kernel/hostname',
    'net/../kernel',
    'net.core/../../../kernel/hostname',
    '../net/core/somaxconn',
    '/net/core/somaxconn',
    'net',
    'net..core',
    'net/core//somaxconn',
    'net/./core/somaxconn',
    'vm.overcommit_memory',
    'netfoo.bar',
    '',
  ])('%s is refused with code 7', (key) => {
    expect(codeOf(() => sysctlPath(key, 'eth0'))).toBe(7);
  });
});

describe('allowlist', () => {
  test('no file, no restriction; otherwise every key must match a line (unanchored, like Go)', () => {
    expect(() => checkAllowlist(['anything'], undefined)).not.toThrow();
    const list = parseAllowlist('\n ^net\\.core\\.somaxconn$ \n\n^net\\.ipv4\\.conf\\.IFNAME\\.\n');
    expect(list).toEqual(['^net\\.core\\.somaxconn$', '^net\\.ipv4\\.conf\\.IFNAME\\.']);
    expect(() => checkAllowlist(['net.core.somaxconn', 'net.ipv4.conf.IFNAME.arp_filter'], list)).not.toThrow();
    expect(codeOf(() => checkAllowlist(['net.core.rmem_max'], list))).toBe(7);
  });
});

test('sysctl values compare with whitespace normalised (the kernel prints tabs)', () => {
  expect(sameSysctlValue('4096 87380 6291456', '4096\t87380\t6291456')).toBe(true);
  expect(sameSysctlValue('1', '0')).toBe(false);
});
