// A private containerd 1.6 with its CRI plugin, inside a RuntimeSandbox (own netns, private mount
// namespace: /run, hence /var/run/netns/cni-*, shim state and runc state stay inside it). Its own
// root, state and gRPC socket under the sandbox's temp dir; the CRI plugin's CNI bin_dir is a dir
// of recording shims (record-plugin.cjs) in front of the plugins under test, conf_dir an empty
// private dir the suite writes its conflist into; sandbox_image is the locally built pause image.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeContainerdConfig } from '../../helpers/containerd-config';
import { within } from '../../helpers/exec';
import { RuntimeSandbox, type Background } from '../../helpers/runtime-sandbox';
import { CriClient } from './client';
import { buildPauseImage, PAUSE_IMAGE } from './pause-image';

/** One line of the recording shim's log (see record-plugin.cjs). */
export interface PluginCall {
  plugin: string;
  command: string;
  env: Record<string, string>;
  stdin: Record<string, unknown> | string;
  rc: number;
  stdout: Record<string, unknown> | string;
  stderr: string;
  started: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ContainerdCri {
  readonly binDir: string;
  readonly recordLog: string;
  readonly socket: string;
  private daemon?: Background;
  private clientInstance?: CriClient;
  /** containerd's log so far (for failure messages). */
  log = '';

  private constructor(readonly sb: RuntimeSandbox) {
    this.binDir = sb.subdir('cni-bin');
    this.recordLog = join(sb.dir, 'cni-calls.jsonl');
    this.socket = join(sb.dir, 'containerd.sock');
    writeFileSync(this.recordLog, '');
  }

  /**
   * Starts containerd with CRI in sb, the recording shims in front of pluginDir/<name> for each
   * of plugins (every one must exist: a missing plugin fails here, loudly), the pause image
   * imported. The conf dir (sb.netConfDir) is left as it is.
   */
  static async start(sb: RuntimeSandbox, pluginDir: string, plugins: string[]): Promise<ContainerdCri> {
    const missing = plugins.filter((p) => !existsSync(join(pluginDir, p)));
    if (missing.length) throw new Error(`plugins missing in ${pluginDir}: ${missing.join(', ')} (build them, or merge the branch that adds them)`);
    const c = new ContainerdCri(sb);
    const recorder = join(__dirname, 'record-plugin.cjs');
    for (const p of plugins) {
      const shim = join(c.binDir, p);
      const call = { plugin: p, real: join(pluginDir, p), log: c.recordLog };
      writeFileSync(shim, `#!${process.execPath}\nrequire(${JSON.stringify(recorder)}).run(${JSON.stringify(call)});\n`);
      chmodSync(shim, 0o755);
    }
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    const config = writeContainerdConfig(sb, c.socket, {
      cri: true,
      debug: Boolean(process.env.CRI_DEBUG),
      extra: [
        `[${cri}]`,
        `  sandbox_image = "${PAUSE_IMAGE}"`,
        // No CAP_SYS_RESOURCE here: without it runc fails "can't get final child's PID from pipe".
        '  restrict_oom_score_adj = true',
        '  stream_server_address = "127.0.0.1"',
        `[${cri}.containerd]`,
        '  default_runtime_name = "runc"',
        `[${cri}.containerd.runtimes.runc]`,
        '  runtime_type = "io.containerd.runc.v2"',
        `[${cri}.cni]`,
        `  bin_dir = "${c.binDir}"`,
        `  conf_dir = "${sb.netConfDir}"`,
      ],
    });
    // containerd passes its environment on to the plugins: keep the suite's own CNI_* out of it.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CNI_')));
    const daemon = sb.spawn(['containerd', '--config', config], env);
    c.daemon = daemon;
    daemon.child.stderr!.on('data', (d: string) => (c.log += d));
    for (let i = 0; ; i++) {
      if (existsSync(c.socket) && (await sb.run(c.ctrArgv(['version']))).code === 0) break;
      if (daemon.child.exitCode !== null || i > 150) throw new Error(`containerd did not start:\n${(await within(daemon.done, 2000))?.stderr ?? ''}`);
      await sleep(100);
    }
    const archive = await buildPauseImage(sb.subdir('pause-image'));
    await sb.runOk(c.ctrArgv(['-n', 'k8s.io', 'images', 'import', archive]), { timeoutMs: 60_000 });
    return c;
  }

  /** ctr argv for this containerd (run it with sb.run). */
  ctrArgv(args: string[]): string[] {
    return ['ctr', '--address', this.socket, ...args];
  }

  get client(): CriClient {
    this.clientInstance ??= new CriClient(this.socket);
    return this.clientInstance;
  }

  get pid(): number | undefined {
    return this.daemon?.child.pid;
  }

  /** Every plugin call recorded so far, in the order they ended. */
  calls(): PluginCall[] {
    return readFileSync(this.recordLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as PluginCall);
  }

  /** Stops containerd by its pid (SIGTERM, then SIGKILL after 10 s); the CRI client is closed first. */
  async stop(): Promise<void> {
    this.clientInstance?.close();
    this.clientInstance = undefined;
    const d = this.daemon;
    if (!d || d.child.exitCode !== null || d.child.signalCode !== null) return;
    d.child.kill('SIGTERM');
    if (!(await within(d.done, 10_000))) {
      d.child.kill('SIGKILL');
      await d.done;
    }
  }
}
