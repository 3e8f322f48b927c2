// Real TCP/UDP traffic for the portmap and firewall suites: a tiny Python echo server started
// inside a namespace (killed by pid at cleanup) and one-shot clients. Python is used because
// nc/ncat/socat are not installed on every test machine; python3 is.
import { type ChildProcess, spawn } from 'node:child_process';
import { execSync } from 'node:child_process';
import { exec, inNetns } from './exec';

const PYTHON = (() => {
  try {
    return execSync(`python3 -c 'import sys;print(sys.executable)'`, { encoding: 'utf8' }).trim();
  } catch {
    return 'python3';
  }
})();

// Answers every TCP connection and every UDP datagram on `port` with `tag`.
const SERVER = `
import socket, sys, threading
port, tag = int(sys.argv[1]), sys.argv[2].encode()
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(('0.0.0.0', port)); t.listen(16)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', port))
def udp():
    while True:
        d, a = u.recvfrom(512); u.sendto(tag, a)
threading.Thread(target=udp, daemon=True).start()
print('ready', flush=True)
while True:
    c, a = t.accept(); c.sendall(tag); c.close()
`;

const CLIENT = `
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM)
s.settimeout(2)
if proto == 'tcp':
    s.connect((host, port)); print(s.recv(64).decode())
else:
    s.sendto(b'hi', (host, port)); print(s.recvfrom(64)[0].decode())
`;

export class EchoServer {
  private constructor(private readonly child: ChildProcess) {}

  /** Starts the server in nsPath and waits until it listens. */
  static async start(nsPath: string, port: number, tag: string): Promise<EchoServer> {
    const [cmd, ...rest] = inNetns(nsPath, [PYTHON, '-c', SERVER, String(port), tag]);
    const child = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('echo server did not start')), 10_000);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.on('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`echo server exited with ${code}`));
      });
    });
    return new EchoServer(child);
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.pid) this.child.kill('SIGKILL');
  }
}

/** One connection (tcp) or datagram (udp) from nsPath; the server's tag, or undefined on failure. */
export async function talk(nsPath: string, proto: 'tcp' | 'udp', host: string, port: number): Promise<string | undefined> {
  const r = await exec(inNetns(nsPath, [PYTHON, '-c', CLIENT, proto, host, String(port)]), { timeoutMs: 10_000 });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

// A TCP sink for throughput checks: accepts one connection, reads to EOF, prints the byte count
// and the seconds from the first byte to EOF (so the connection set-up is not counted).
const SINK = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(1); s.settimeout(60)
print('ready', flush=True)
c, a = s.accept(); c.settimeout(60)
n, t0 = 0, None
while True:
    d = c.recv(262144)
    if not d:
        break
    if t0 is None:
        t0 = time.monotonic()
    n += len(d)
print(n, time.monotonic() - (t0 or time.monotonic()), flush=True)
`;

// Sends exactly n bytes to host:port and closes.
const SOURCE = `
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port), timeout=60)
buf = b'\\x5a' * 65536
while n > 0:
    k = min(n, len(buf)); s.sendall(buf[:k]); n -= k
s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
`;

export interface Transfer {
  bytes: number;
  seconds: number;
  /** Measured at the receiver, in bit/s. */
  bitsPerSecond: number;
}

/**
 * One TCP transfer of `bytes` from `fromNs` to `host:port`, received by a sink started in
 * `toNs`; both processes are ours and end by themselves (the sink is killed by pid if not).
 */
export async function tcpTransfer(fromNs: string, toNs: string, host: string, port: number, bytes: number): Promise<Transfer> {
  const [cmd, ...rest] = inNetns(toNs, [PYTHON, '-c', SINK, String(port)]);
  const sink = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    const done = new Promise<string>((resolve, reject) => {
      sink.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      sink.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`sink exited with ${code}: ${out}`))));
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('sink did not start')), 10_000);
      const check = (): void => {
        if (out.includes('ready')) {
          clearTimeout(t);
          resolve();
        } else setTimeout(check, 20);
      };
      check();
    });
    const r = await exec(inNetns(fromNs, [PYTHON, '-c', SOURCE, host, String(port), String(bytes)]), { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`sender failed (${r.code}): ${r.stderr.trim()}`);
    const [n, s] = (await done).trim().split('\n').pop()!.split(' ').map(Number) as [number, number];
    return { bytes: n, seconds: s, bitsPerSecond: (n * 8) / s };
  } finally {
    if (sink.exitCode === null && sink.pid) sink.kill('SIGKILL');
  }
}
