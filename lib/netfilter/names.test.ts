import { chainName, chainNameWithPrefix, goQuote, hashWithPrefix, iptablesComment, nftComment, nftInstanceHash, nftNetworkHash } from './names';

describe('chain names (the reference utils_test.go values)', () => {
  it('is CNI- plus the sha512 of name+id, 28 characters', () => {
    expect(chainName('test', '1234')).toBe('CNI-2bbe0c48b91a7d1b8a6753a8');
    expect(chainName('testalongnamethatdoesnotmakesense', '1234')).toBe('CNI-374f33fe84ab0ed84dcdebe3');
    expect(chainName('testalongnamethatdoesnotmakesense', '1235')).not.toBe('CNI-374f33fe84ab0ed84dcdebe3');
  });
  it('puts a prefix after CNI-', () => {
    expect(chainNameWithPrefix('test', '1234', 'PREFIX-')).toBe('CNI-PREFIX-2bbe0c48b91a7d1b8');
    expect(chainNameWithPrefix('testalongnamethatdoesnotmakesense', '1234', 'PREFIX-')).toBe('CNI-PREFIX-374f33fe84ab0ed84');
    expect(() => chainNameWithPrefix('test', '1234', 'PREFIX-'.repeat(4))).toThrow('invalid length');
  });
  it('hashWithPrefix keeps the prefix and the length, and refuses impossible lengths', () => {
    expect(hashWithPrefix(10, 'AAA', 'some string')).toMatch(/^AAA[0-9a-f]{7}$/);
    expect(() => hashWithPrefix(3, 'AAA', 'x')).toThrow('invalid length');
    expect(() => hashWithPrefix(0, '', 'x')).toThrow('invalid length');
    expect(() => hashWithPrefix(129, '', 'x')).toThrow('invalid length');
    expect(hashWithPrefix(128, '', 'x')).toHaveLength(128);
  });
});

describe('comments', () => {
  it('iptables: name: "<net>" id: "<cid>" quoted like Go %q', () => {
    expect(iptablesComment('mynet', 'abc123')).toBe('name: "mynet" id: "abc123"');
    expect(goQuote('a"b\\c\n\x01')).toBe('"a\\"b\\\\c\\n\\x01"');
  });
  it('nft: instance hash, then net/if/id, quotes dropped, at most 128 bytes', () => {
    const h = nftInstanceHash('mynet', 'eth0', 'abc123');
    expect(h).toMatch(/^[0-9a-f]{16}-[0-9a-f]{16}$/);
    expect(h.startsWith(nftNetworkHash('mynet') + '-')).toBe(true);
    expect(nftComment('mynet', 'eth0', 'abc123')).toBe(`${h}, net: mynet, if: eth0, id: abc123`);
    expect(nftComment('my"net', 'eth0', 'x')).toContain('net: mynet,');
    const long = nftComment('n', 'eth0', 'c'.repeat(200));
    expect(long).toHaveLength(128);
    expect(long.startsWith(nftInstanceHash('n', 'eth0', 'c'.repeat(200)))).toBe(true);
  });
  it('nft instance hash differs by ifName and by container', () => {
    expect(nftInstanceHash('n', 'eth0', 'a')).not.toBe(nftInstanceHash('n', 'eth1', 'a'));
    expect(nftInstanceHash('n', 'eth0', 'a')).not.toBe(nftInstanceHash('n', 'eth0', 'b'));
  });
});
