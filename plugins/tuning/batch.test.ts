import { applyBatch, backupFileName, formatBackup, mergeBackup, parseBackup, restoreBatch, savedValues } from './batch';

describe('tuning link batches', () => {
  test('apply: read, one line per attribute in the reference order, read back', () => {
    expect(applyBatch('eth0', { txQLen: 50, allmulti: false, mtu: 1400, promisc: true, mac: '02:00:00:00:00:01' })).toEqual([
      'link show dev eth0',
      'link set dev eth0 address 02:00:00:00:00:01',
      'link set dev eth0 promisc on',
      'link set dev eth0 mtu 1400',
      'link set dev eth0 allmulticast off',
      'link set dev eth0 txqueuelen 50',
      'link show dev eth0',
    ]);
  });

  test('nothing asked: only the reads', () => {
    expect(applyBatch('net1', {})).toEqual(['link show dev net1', 'link show dev net1']);
  });

  test('restore: mtu before mac, as the reference', () => {
    expect(restoreBatch('eth0', { mac: 'aa:bb:cc:dd:ee:ff', mtu: 1500, promisc: false, allmulti: true })).toEqual([
      'link set dev eth0 mtu 1500',
      'link set dev eth0 address aa:bb:cc:dd:ee:ff',
      'link set dev eth0 promisc off',
      'link set dev eth0 allmulticast on',
    ]);
  });

  test('saved values are only those of the attributes being changed', () => {
    const now = { address: 'aa:bb:cc:dd:ee:ff', mtu: 1500, flags: ['BROADCAST', 'PROMISC'], txqlen: 1000 };
    expect(savedValues({ mtu: 1400 }, now)).toEqual({ mtu: 1500 });
    expect(savedValues({ mac: '02:00:00:00:00:01', promisc: true, allmulti: true, txQLen: 5 }, now)).toEqual({ mac: 'aa:bb:cc:dd:ee:ff', promisc: true, allmulti: false, txQLen: 1000 });
  });
});

describe('backup file', () => {
  test('name and Go MarshalIndent(" ") shape in the reference key order', () => {
    expect(backupFileName('abc', 'eth0')).toBe('abc_eth0.json');
    expect(formatBackup({ allmulti: false, mtu: 1500, mac: 'aa:bb:cc:dd:ee:ff', promisc: false })).toBe('{\n "mac": "aa:bb:cc:dd:ee:ff",\n "promisc": false,\n "mtu": 1500,\n "allmulti": false\n}');
  });

  test('a file written by the reference parses; bad fields are dropped; our sysctl key round-trips', () => {
    expect(parseBackup('{\n "mac": "aa:bb:cc:dd:ee:ff",\n "mtu": 1500,\n "promisc": false\n}')).toEqual({ mac: 'aa:bb:cc:dd:ee:ff', mtu: 1500, promisc: false });
    expect(parseBackup('{"mtu":"x","promisc":1,"sysctl":{"/proc/sys/net/core/somaxconn":"4096","bad":1}}')).toEqual({ sysctl: { '/proc/sys/net/core/somaxconn': '4096' } });
    const b = { txQLen: 1000, sysctl: { '/proc/sys/net/core/somaxconn': '4096' } };
    expect(parseBackup(formatBackup(b))).toEqual(b);
  });

  test('merge: values saved by an earlier ADD win', () => {
    expect(mergeBackup({ mtu: 1500, sysctl: { a: '1' } }, { mtu: 1400, mac: 'x', sysctl: { a: '2', b: '3' } })).toEqual({ mtu: 1500, mac: 'x', sysctl: { a: '1', b: '3' } });
    expect(mergeBackup(undefined, { mtu: 1 })).toEqual({ mtu: 1 });
  });
});
