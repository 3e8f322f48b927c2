// lib/etcd against a real etcd 3.4 started by helpers/etcd.ts inside a netns the test made.
// The jest process cannot enter a netns, so the client runs in a small node process under
// `nsenter --net=` (helpers/etcd-driver.ts, bundled by esbuild on the fly) that the test drives
// over stdin/stdout.
import { existsSync } from 'node:fs';
import { exec } from './helpers/exec';
import { startEtcd } from './helpers/etcd';
import { Registry } from './helpers/netns';

const maybe = process.getuid?.() === 0 ? describe : describe.skip;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

maybe('etcd test helper', () => {
  test('starts etcd in a fresh netns, keeps its data over stop/start, and cleanup leaves nothing', async () => {
    const reg = new Registry();
    let pids: number[] = [];
    let nsPath = '';
    let dataDir = '';
    try {
      const etcd = await startEtcd(reg);
      nsPath = etcd.netns.path;
      dataDir = etcd.dataDir;
      expect(etcd.endpoint).toBe('http://127.0.0.1:2379');
      pids.push(etcd.pid!);
      await etcd.etcdctlOk(['put', '/k', 'v1']);
      expect((await etcd.etcdctlOk(['get', '--print-value-only', '/k'])).stdout.trim()).toBe('v1');
      // Not reachable from the real host's loopback: it lives in its own netns.
      const outside = await exec(['etcdctl', '--endpoints=http://127.0.0.1:2379', '--dial-timeout=1s', '--command-timeout=1s', 'get', '/k'], {
        env: { ...process.env, ETCDCTL_API: '3' },
      });
      expect(outside.stdout).not.toContain('v1');
      await etcd.stop();
      expect(etcd.pid).toBeUndefined();
      expect(alive(pids[0]!)).toBe(false);
      expect((await etcd.etcdctl(['--command-timeout=1s', 'get', '/k'])).code).not.toBe(0);
      await etcd.start();
      pids.push(etcd.pid!);
      expect((await etcd.etcdctlOk(['get', '--print-value-only', '/k'])).stdout.trim()).toBe('v1');
      await etcd.kill();
      expect(alive(pids[1]!)).toBe(false);
      await etcd.start();
      pids.push(etcd.pid!);
    } finally {
      await reg.cleanup();
    }
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(existsSync(nsPath)).toBe(false);
    expect(existsSync(dataDir)).toBe(false);
  });

  test('TLS with a client certificate and auth with a non-root user', async () => {
    const reg = new Registry();
    try {
      const etcd = await startEtcd(reg, { tls: true, auth: { user: 'agent', password: 'secret' } });
      expect(etcd.endpoint).toBe('https://127.0.0.1:2379');
      await etcd.etcdctlOk(['put', '/k', 'v']);
      // Without credentials: refused (auth is on).
      const anon = await etcd.etcdctl(['get', '/k'], { noAuth: true });
      expect(anon.code).not.toBe(0);
      expect(anon.stderr).toMatch(/user name is empty|permission denied|invalid auth/i);
      // The non-root user can read and write anything.
      const asAgent = await etcd.etcdctl(['--user=agent:secret', 'put', '/other', 'x'], { noAuth: true });
      expect(asAgent.stderr).toBe('');
      expect(asAgent.code).toBe(0);
    } finally {
      await reg.cleanup();
    }
  });
});
