// A real etcd (Debian's etcd-server 3.4) for a test, running inside a network namespace the test
// made, with its own temp data dir. Optional TLS (a throwaway CA and certificates made with
// openssl in the temp dir) and optional auth (root user + `auth enable`). Stopped by pid: the
// Registry's cleanup stops it before the netns and the temp dir go, also when a test fails.
//
//   const etcd = await startEtcd(reg);                                     // loopback of a fresh netns
//   const etcd = await startEtcd(reg, { netns: underlay, listenIP: '10.9.0.1', tls: true,
//                                       auth: { user: 'root', password: 'pw' } });
//   await etcd.etcdctl(['put', '/k', 'v']);  await etcd.stop();  await etcd.start();  // same data dir
//
// A process under test reaches etcd by running in etcd's netns (or one routed to it); the jest
// process cannot enter a netns, so it talks to etcd through `etcd.etcdctl(args)` (nsenter).
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ExecResult, exec, execOk, inNetns } from './exec';
import { type Netns, type Registry, randomHex } from './netns';

export interface EtcdAuth {
  /** 'root' by default; any other user is created with read-write on every key (root gets the same password). */
  user?: string;
  password: string;
}

export interface StartEtcdOptions {
  /** Where etcd runs; default: a fresh netns (role 'etcd'). lo is brought up in it either way. */
  netns?: Netns;
  /** Address etcd listens on (client and peer); default 127.0.0.1. It must exist in the netns. */
  listenIP?: string;
  clientPort?: number; // default 2379
  peerPort?: number; // default 2380
  /** Serve clients over https with a throwaway CA; clients must present a certificate signed by it. */
  tls?: boolean;
  auth?: EtcdAuth;
  /** Member name; default etcd-<random>. */
  name?: string;
  /** Extra etcd flags (e.g. ['--auth-token-ttl', '5']). */
  extraArgs?: string[];
}

/** Files of the throwaway PKI (when tls is on): what a client needs is caFile + certFile + keyFile. */
export interface EtcdTls {
  caFile: string;
  certFile: string; // client certificate (CN cni-test-client, not an etcd user)
  keyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
}

export interface EtcdServer {
  /** The client URL, e.g. "http://127.0.0.1:2379" or "https://10.9.0.1:2379". */
  readonly endpoint: string;
  readonly clientUrls: string[];
  readonly netns: Netns;
  readonly listenIP: string;
  readonly dataDir: string;
  /** Server log (stdout + stderr of every run, appended). */
  readonly logFile: string;
  readonly tls?: EtcdTls;
  readonly auth?: Required<EtcdAuth>;
  /** pid of the running etcd, undefined while stopped. */
  readonly pid: number | undefined;
  /** SIGTERM by pid, wait up to 10 s, then SIGKILL. No-op when stopped. */
  stop(): Promise<void>;
  /** Starts again on the same data dir (after stop/kill) and waits until it serves clients. */
  start(): Promise<void>;
  /** SIGKILL by pid (a crash), waits for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a hung server (connections are accepted by the kernel, nothing answers). */
  pause(): void;
  resume(): void;
  /** Runs etcdctl (API v3) in etcd's netns against this server, with TLS and root credentials as needed. */
  etcdctl(args: string[], opts?: { timeoutMs?: number; noAuth?: boolean }): Promise<ExecResult>;
  /** Like etcdctl, but throws with stderr on a non-zero exit. */
  etcdctlOk(args: string[], opts?: { timeoutMs?: number; noAuth?: boolean }): Promise<ExecResult>;
  /** Stops the process (the Registry calls this at cleanup; the data dir goes with the Registry's temp dirs). */
  cleanup(): Promise<void>;
}

/** Starts etcd and waits until it serves clients (and auth is set up, when asked). */
export async function startEtcd(reg: Registry, opts: StartEtcdOptions = {}): Promise<EtcdServer> {
  const netns = opts.netns ?? (await reg.netns('etcd'));
  // lo must be up even when etcd listens on another address: etcd's gateway dials etcd's own
  // gRPC listener, and Linux delivers traffic to a local address over lo (down: requests hang).
  await execOk(inNetns(netns.path, ['ip', 'link', 'set', 'lo', 'up']));
  const server = new RealEtcd(reg, netns, opts);
  reg.onCleanup(`stop etcd ${server.name}`, () => server.cleanup());
  await server.setup();
  return server;
}

const READY_TIMEOUT_MS = 30_000;

class RealEtcd implements EtcdServer {
  readonly name: string;
  readonly endpoint: string;
  readonly clientUrls: string[];
  readonly listenIP: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly tls?: EtcdTls;
  readonly auth?: Required<EtcdAuth>;
  private readonly dir: string;
  private readonly peerUrl: string;
  private child?: ChildProcess;
  private exited?: Promise<void>;

  constructor(
    reg: Registry,
    readonly netns: Netns,
    private readonly opts: StartEtcdOptions,
  ) {
    this.name = opts.name ?? `etcd-${randomHex(3)}`;
    this.listenIP = opts.listenIP ?? '127.0.0.1';
    const host = this.listenIP.includes(':') ? `[${this.listenIP}]` : this.listenIP;
    this.dir = reg.tempDir();
    this.dataDir = join(this.dir, 'data');
    this.logFile = join(this.dir, 'etcd.log');
    this.endpoint = `${opts.tls ? 'https' : 'http'}://${host}:${opts.clientPort ?? 2379}`;
    this.clientUrls = [this.endpoint];
    this.peerUrl = `http://${host}:${opts.peerPort ?? 2380}`;
    if (opts.tls) this.tls = pkiPaths(this.dir);
    if (opts.auth) this.auth = { user: opts.auth.user ?? 'root', password: opts.auth.password };
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  async setup(): Promise<void> {
    if (this.tls) await makePki(this.dir, this.listenIP);
    await this.start();
    if (this.auth) await this.enableAuth();
  }

  private args(): string[] {
    const a = [
      'etcd',
      `--name=${this.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.endpoint}`,
      `--advertise-client-urls=${this.endpoint}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${this.name}=${this.peerUrl}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${this.name}`,
      '--logger=zap',
      '--log-outputs=stderr',
    ];
    if (this.tls) {
      a.push(`--cert-file=${this.tls.serverCertFile}`, `--key-file=${this.tls.serverKeyFile}`);
      a.push(`--trusted-ca-file=${this.tls.caFile}`, '--client-cert-auth');
    }
    return [...a, ...(this.opts.extraArgs ?? [])];
  }

  async start(): Promise<void> {
    if (this.pid !== undefined) throw new Error(`etcd ${this.name} is already running (pid ${this.pid})`);
    // nsenter with only --net execs etcd in place, so the child's pid is etcd's pid.
    const [cmd, ...rest] = inNetns(this.netns.path, this.args());
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.on('close', () => resolve()));
    let tail = '';
    let ready = false;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(`did not serve clients within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
      const fail = (why: string) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`etcd ${this.name} in ${this.netns.name}: ${why}\n--- log tail ---\n${tail.slice(-3000)}`));
      };
      const onData = (d: Buffer) => {
        log.write(d);
        if (ready) return;
        tail = (tail + d.toString()).slice(-8000);
        // zap logs "serving client traffic insecurely" (http) or "serving client traffic securely" (https)
        // once the client listener answers; that is after the member is ready.
        if (/serving client traffic (in)?securely/.test(tail)) {
          ready = true;
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('error', (e) => fail(`cannot spawn: ${e.message}`));
      child.on('exit', (code, sig) => {
        if (!ready) fail(`exited early (code ${code}, signal ${sig})`);
      });
    });
    child.on('close', () => log.end());
  }

  private async enableAuth(): Promise<void> {
    const { user, password } = this.auth!;
    const ctl = (args: string[]) => this.etcdctlOk(args, { noAuth: true });
    await ctl(['user', 'add', 'root', `--new-user-password=${password}`]);
    await ctl(['role', 'add', 'root']).catch(() => undefined); // 3.4 has the root role built in
    await ctl(['user', 'grant-role', 'root', 'root']);
    if (user !== 'root') {
      await ctl(['user', 'add', user, `--new-user-password=${password}`]);
      await ctl(['role', 'add', 'cni-test-rw']);
      // The empty prefix: every key.
      await ctl(['role', 'grant-permission', '--prefix=true', 'cni-test-rw', 'readwrite', '']);
      await ctl(['user', 'grant-role', user, 'cni-test-rw']);
    }
    await ctl(['auth', 'enable']);
  }

  async etcdctl(args: string[], opts: { timeoutMs?: number; noAuth?: boolean } = {}): Promise<ExecResult> {
    const a = ['etcdctl', `--endpoints=${this.endpoint}`, '--dial-timeout=3s', '--command-timeout=10s'];
    if (this.tls) a.push(`--cacert=${this.tls.caFile}`, `--cert=${this.tls.certFile}`, `--key=${this.tls.keyFile}`);
    if (this.auth && !opts.noAuth) a.push(`--user=root:${this.auth.password}`);
    return exec(inNetns(this.netns.path, [...a, ...args]), {
      env: { ...process.env, ETCDCTL_API: '3' },
      timeoutMs: opts.timeoutMs ?? 20_000,
    });
  }

  async etcdctlOk(args: string[], opts: { timeoutMs?: number; noAuth?: boolean } = {}): Promise<ExecResult> {
    const r = await this.etcdctl(args, opts);
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr.trim() || r.stdout.trim()} (exit ${r.code})`);
    return r;
  }

  private async signalAndWait(sig: NodeJS.Signals, graceMs: number): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    process.kill(pid, sig);
    const gone = await Promise.race([this.exited!.then(() => true), sleep(graceMs).then(() => false)]);
    if (!gone) {
      process.kill(pid, 'SIGKILL');
      await this.exited;
    }
  }

  async stop(): Promise<void> {
    if (this.pid !== undefined) process.kill(this.pid, 'SIGCONT'); // a paused etcd cannot handle SIGTERM
    await this.signalAndWait('SIGTERM', 10_000);
  }

  async kill(): Promise<void> {
    await this.signalAndWait('SIGKILL', 10_000);
  }

  pause(): void {
    if (this.pid !== undefined) process.kill(this.pid, 'SIGSTOP');
  }

  resume(): void {
    if (this.pid !== undefined) process.kill(this.pid, 'SIGCONT');
  }

  async cleanup(): Promise<void> {
    await this.stop();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function pkiPaths(dir: string): EtcdTls {
  return {
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'client.crt'),
    keyFile: join(dir, 'client.key'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
  };
}

/** A throwaway CA, a server certificate for listenIP (+ 127.0.0.1, localhost) and a client certificate. */
async function makePki(dir: string, listenIP: string): Promise<void> {
  if (!existsSync('/usr/bin/openssl')) throw new Error('openssl is needed for the TLS etcd (apt-get install openssl)');
  const p = pkiPaths(dir);
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = join(dir, 'ca.key');
  await execOk(['openssl', 'req', '-x509', ...key, '-keyout', ca, '-out', p.caFile, '-days', '2', '-subj', '/CN=cni-test-etcd-ca']);
  const sans = [`IP:${listenIP}`, 'IP:127.0.0.1', 'DNS:localhost'].filter((v, i, a) => a.indexOf(v) === i).join(',');
  const sign = async (name: string, cn: string, ext: string, certFile: string, keyFile: string) => {
    const csr = join(dir, `${name}.csr`);
    const extFile = join(dir, `${name}.ext`);
    writeFileSync(extFile, ext);
    await execOk(['openssl', 'req', ...key, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${cn}`]);
    await execOk([
      'openssl', 'x509', '-req', '-in', csr, '-CA', p.caFile, '-CAkey', ca, '-CAcreateserial',
      '-out', certFile, '-days', '2', '-extfile', extFile,
    ]);
  };
  await sign('server', 'cni-test-etcd', `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n`, p.serverCertFile, p.serverKeyFile);
  // The CN is not an etcd user: with auth on, etcd 3.4 would otherwise take the CN as the identity.
  await sign('client', 'cni-test-client', 'extendedKeyUsage=clientAuth\n', p.certFile, p.keyFile);
}
