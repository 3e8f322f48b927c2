/**
 * dnsmasq's readiness: it answers a query. The question is `version.bind` TXT in class CHAOS,
 * which dnsmasq answers itself (never forwarded, whatever the config), so the probe needs no
 * upstream and no name in the hosts file. One UDP socket in the plugin process, no extra
 * process; it runs in the plugin's netns, which is dnsmasq's.
 */
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';

const CLASS_CHAOS = 3;
const TYPE_TXT = 16;

/** A DNS query for version.bind CH TXT with the given id (0..65535). Pure. */
export function chaosVersionQuery(id: number): Buffer {
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, 1 question
  const name = Buffer.from([7, ...Buffer.from('version'), 4, ...Buffer.from('bind'), 0]);
  return Buffer.concat([header, name, Buffer.from([0, TYPE_TXT, 0, CLASS_CHAOS])]);
}

/** True when msg is a DNS response (QR set) to our query id, whatever its rcode. Pure. */
export function isResponseTo(msg: Buffer, id: number): boolean {
  return msg.length >= 12 && msg.readUInt16BE(0) === id && (msg[2]! & 0x80) !== 0;
}

/** One query to addr:53; true on an answer, false on refusal (nothing bound yet) or timeout. */
function askOnce(addr: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const id = Math.floor(Math.random() * 0x10000);
    const sock = createSocket(isIP(addr) === 6 ? 'udp6' : 'udp4');
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    // ECONNREFUSED (ICMP port unreachable on a connected socket) arrives here at once.
    sock.on('error', () => finish(false));
    sock.on('message', (m) => {
      if (isResponseTo(m, id)) finish(true);
    });
    sock.connect(53, addr, () => sock.send(chaosVersionQuery(id)));
  });
}

/**
 * True when a DNS server answers on any of the addresses (IPv4 first: an IPv6 gateway may
 * still be tentative). No address to ask is treated as answering: there is nothing to wait for.
 */
export async function answersDns(addrs: string[], timeoutMs = 250): Promise<boolean> {
  const ordered = [...addrs.filter((a) => isIP(a) === 4), ...addrs.filter((a) => isIP(a) === 6)];
  if (ordered.length === 0) return true;
  for (const a of ordered) if (await askOnce(a, timeoutMs)) return true;
  return false;
}
