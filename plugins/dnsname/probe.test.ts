import { chaosVersionQuery, isResponseTo } from './probe';

describe('dnsmasq readiness probe', () => {
  test('the query: our id, RD, one question version.bind TXT CHAOS', () => {
    const q = chaosVersionQuery(0xbeef);
    expect(q.toString('hex')).toBe('beef' + '0100' + '0001' + '0000' + '0000' + '0000' + '0776657273696f6e' + '0462696e64' + '00' + '0010' + '0003');
  });

  test('any response to our id counts (an answer or an error rcode); our own query or another id does not', () => {
    const q = chaosVersionQuery(0x1234);
    const resp = Buffer.from(q);
    resp[2] = 0x85; // QR, AA, RD
    expect(isResponseTo(resp, 0x1234)).toBe(true);
    const refused = Buffer.from(resp);
    refused[3] = 0x05;
    expect(isResponseTo(refused, 0x1234)).toBe(true);
    expect(isResponseTo(q, 0x1234)).toBe(false);
    expect(isResponseTo(resp, 0x1235)).toBe(false);
    expect(isResponseTo(Buffer.alloc(5), 0)).toBe(false);
  });
});
