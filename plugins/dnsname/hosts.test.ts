import { attachmentCount, entriesOf, formatHosts, hostnamesFor, parseHosts, removeEntries, setEntries } from './hosts';

const a = { containerID: 'ctr-a', ifname: 'eth0' };
const b = { containerID: 'ctr-b', ifname: 'eth0' };
const b1 = { containerID: 'ctr-b', ifname: 'eth1' };

describe('hosts file', () => {
  test('names: each name bare and under the domain, in order', () => {
    expect(hostnamesFor('alpine2', ['web'], 'dns.podman')).toEqual(['alpine2', 'alpine2.dns.podman', 'web', 'web.dns.podman']);
  });

  test('line format: ip, names, owner comment', () => {
    const text = formatHosts(setEntries([], a, ['10.0.0.2'], ['x', 'x.d']));
    expect(text).toBe('10.0.0.2\tx x.d\t# cni:ctr-a:eth0\n');
    expect(parseHosts(text)).toEqual([{ ip: '10.0.0.2', names: ['x', 'x.d'], owner: a, raw: '10.0.0.2\tx x.d\t# cni:ctr-a:eth0' }]);
  });

  test('one line per address (dual stack); a repeated ADD replaces, never duplicates', () => {
    let lines = setEntries([], a, ['10.0.0.2', 'fd00::2'], ['x']);
    lines = setEntries(lines, a, ['10.0.0.3'], ['x']);
    expect(formatHosts(lines)).toBe('10.0.0.3\tx\t# cni:ctr-a:eth0\n');
  });

  test('DEL removes exactly one attachment (same container on another interface stays)', () => {
    let lines = setEntries([], a, ['10.0.0.2'], ['a']);
    lines = setEntries(lines, b, ['10.0.0.3'], ['b']);
    lines = setEntries(lines, b1, ['10.0.1.3'], ['b']);
    const r = removeEntries(lines, (o) => o.containerID === 'ctr-b' && o.ifname === 'eth0');
    expect(r.removed).toBe(1);
    expect(r.lines.map((l) => l.ip)).toEqual(['10.0.0.2', '10.0.1.3']);
    expect(attachmentCount(r.lines)).toBe(2);
    expect(entriesOf(r.lines, b1)).toHaveLength(1);
  });

  test('removing something absent removes nothing', () => {
    const lines = setEntries([], a, ['10.0.0.2'], ['a']);
    expect(removeEntries(lines, (o) => o.containerID === 'zzz').removed).toBe(0);
  });

  test('foreign lines (no owner comment, comments, blank lines) are kept as they are and are no attachment', () => {
    const text = '# a comment\n\n192.168.1.1   router  # home office\n10.0.0.9 hand\n';
    const lines = parseHosts(text);
    expect(lines.filter((l) => l.owner)).toHaveLength(0);
    expect(attachmentCount(lines)).toBe(0);
    const after = removeEntries(setEntries(lines, a, ['10.0.0.2'], ['a']), (o) => o.containerID === 'ctr-a');
    expect(formatHosts(after.lines)).toBe('# a comment\n192.168.1.1   router  # home office\n10.0.0.9 hand\n');
  });

  test('attachments count distinct (container, interface) pairs, not lines', () => {
    const lines = setEntries(setEntries([], a, ['10.0.0.2', 'fd00::2'], ['a']), b, ['10.0.0.3'], ['b']);
    expect(lines).toHaveLength(3);
    expect(attachmentCount(lines)).toBe(2);
  });
});
