// Drives a plugin executable the way a runtime does: CNI_* env, config on stdin, result or
// error JSON on stdout, run inside the sandbox host netns (`nsenter --net=<host>`), with
// CNI_PATH = the plugin dir so delegated IPAM resolves to the same implementation.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { exec, inNetns } from './exec';
import type { Netns } from './netns';
import { FAILPOINT_PLUGIN_DIR, PLUGIN_DIR, versionGte } from './plugin-dir';
import { servedEnv } from './served';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface RunOptions {
  plugin: string;
  command: CniCommand;
  host: Netns;
  /** Object → JSON.stringify; string → sent verbatim (for malformed-input tests). */
  config: unknown;
  containerId?: string;
  /** Container netns path; '' sends an empty CNI_NETNS (as ctr/nerdctl do on DEL). */
  netns?: string;
  ifname?: string;
  args?: string;
  /**
   * Extra env. A value of undefined removes the variable. With CNI_TS_FAILPOINT the plugin (and
   * CNI_PATH) come from our test build, FAILPOINT_PLUGIN_DIR: release builds have no failpoints.
   */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

export interface PluginResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, or undefined if empty / not JSON. */
  json: Json;
  env: Record<string, string>;
  stdin: string;
}

/** Runs one plugin invocation in the sandbox host netns and returns its exit code and output. */
export async function runPlugin(o: RunOptions): Promise<PluginResult> {
  const dir = o.env?.CNI_TS_FAILPOINT !== undefined ? FAILPOINT_PLUGIN_DIR : PLUGIN_DIR;
  const bin = join(dir, o.plugin);
  if (!existsSync(bin)) {
    throw new Error(`plugin binary ${bin} not found (plugin dir ${dir}; run \`node build.mjs\`?)`);
  }
  const env: Record<string, string> = {
    // A runtime's PATH, plus this node's dir (our executables start with `#!/usr/bin/env node`).
    PATH: `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    CNI_COMMAND: o.command,
    // CONFORMANCE_EXTRA_CNI_PATH (e.g. /usr/lib/cni) lets one of our plugins delegate to a
    // reference IPAM while ours is not built yet; the plugin dir always comes first.
    CNI_PATH: [dir, process.env.CONFORMANCE_EXTRA_CNI_PATH].filter(Boolean).join(':'),
  };
  if (o.command !== 'VERSION') {
    if (o.containerId !== undefined) env.CNI_CONTAINERID = o.containerId;
    if (o.netns !== undefined) env.CNI_NETNS = o.netns;
    if (o.ifname !== undefined) env.CNI_IFNAME = o.ifname;
    env.CNI_ARGS = o.args ?? '';
  }
  Object.assign(env, servedEnv(o.host));
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const stdin = typeof o.config === 'string' ? o.config : JSON.stringify(o.config);
  const r = await exec(inNetns(o.host.path, [bin]), { stdin, env, timeoutMs: o.timeoutMs ?? 45_000 });
  let json: Json;
  if (r.stdout.trim()) {
    try {
      json = JSON.parse(r.stdout);
    } catch {
      json = undefined;
    }
  }
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, json, env, stdin };
}

/** Readable summary of a failed invocation for assertion messages. */
export function describeRun(r: PluginResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}\nenv: ${JSON.stringify(r.env)}\nstdin: ${r.stdin}`;
}

/** Throws with the whole exchange when the plugin did not exit 0. */
export function expectOk(r: PluginResult, what = 'plugin'): PluginResult {
  if (r.code !== 0) throw new Error(`${what} failed:\n${describeRun(r)}`);
  return r;
}

/** Asserts a CNI error reply: non-zero exit and {code, msg} JSON on stdout. */
export function expectCniError(r: PluginResult, code?: number): { code: number; msg: string; details?: string } {
  if (r.code === 0) throw new Error(`expected a CNI error${code !== undefined ? ` (code ${code})` : ''}, got success:\n${describeRun(r)}`);
  if (!r.json || typeof r.json.code !== 'number' || typeof r.json.msg !== 'string') {
    throw new Error(`expected error JSON {code,msg} on stdout:\n${describeRun(r)}`);
  }
  if (code !== undefined && r.json.code !== code) {
    throw new Error(`expected error code ${code}, got ${r.json.code}:\n${describeRun(r)}`);
  }
  return r.json;
}

// ---------------------------------------------------------------------------------------------
// libcni-style network list execution (cni:libcni/api.go AddNetworkList / CheckNetworkList /
// DelNetworkList): each plugin gets the list's name and cniVersion, runtimeConfig built from
// its capabilities, and prevResult threaded through; the final ADD result is cached and given
// to CHECK and DEL (DEL runs in reverse order; prevResult only for cniVersion >= 0.4.0).

export interface NetConfList {
  cniVersion: string;
  name: string;
  plugins: Json[];
  disableCheck?: boolean;
  disableGC?: boolean;
}

export interface Attachment {
  containerId: string;
  netns: string;
  ifname: string;
  args?: string;
  /** Capability args offered by the runtime (e.g. {ips: [...], portMappings: [...]}). */
  capabilityArgs?: Record<string, unknown>;
}

function buildPluginConf(list: NetConfList, plugin: Json, att: Attachment, prevResult: Json): Json {
  const conf: Json = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  const caps: Record<string, boolean> = plugin.capabilities ?? {};
  const rc: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(att.capabilityArgs ?? {})) if (caps[k]) rc[k] = v;
  if (Object.keys(rc).length) conf.runtimeConfig = rc;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

export class ListError extends Error {
  constructor(
    message: string,
    readonly result: PluginResult,
    readonly plugin: string,
  ) {
    super(message);
  }
}

/**
 * GC of a whole conflist as libcni's GCNetworkList sends it (after its synthesized DELs): every
 * plugin in order, with `cni.dev/valid-attachments` (and the spec text's `cni.dev/attachments`).
 * Throws naming the plugin when one fails; GC prints nothing on success.
 */
export async function gcList(host: Netns, list: NetConfList, valid: { containerID: string; ifname: string }[]): Promise<void> {
  for (const p of list.plugins) {
    const config = { ...p, cniVersion: list.cniVersion, name: list.name, 'cni.dev/valid-attachments': valid, 'cni.dev/attachments': valid };
    const r = await runPlugin({ plugin: p.type, command: 'GC', host, config });
    if (r.code !== 0 || r.stdout.trim() !== '') throw new ListError(`plugin ${p.type} failed (gc):\n${describeRun(r)}`, r, p.type);
  }
}

/** Runs a conflist against one attachment, keeping the cached result like libcni does. */
export class ConflistRunner {
  cachedResult: Json;
  constructor(
    readonly host: Netns,
    readonly list: NetConfList,
    readonly att: Attachment,
    readonly env: Record<string, string | undefined> = {},
  ) {}

  private run(command: CniCommand, plugin: Json, prev: Json, netns = this.att.netns): Promise<PluginResult> {
    return runPlugin({
      plugin: plugin.type,
      command,
      host: this.host,
      config: buildPluginConf(this.list, plugin, this.att, prev),
      containerId: this.att.containerId,
      netns,
      ifname: this.att.ifname,
      args: this.att.args,
      env: this.env,
    });
  }

  /** ADD every plugin in order; returns the final result (and caches it). */
  async add(): Promise<Json> {
    let prev: Json;
    for (const p of this.list.plugins) {
      const r = await this.run('ADD', p, prev);
      if (r.code !== 0) throw new ListError(`plugin ${p.type} failed (add):\n${describeRun(r)}`, r, p.type);
      if (!r.json) throw new ListError(`plugin ${p.type} printed no result on ADD:\n${describeRun(r)}`, r, p.type);
      prev = r.json;
    }
    this.cachedResult = prev;
    return prev;
  }

  /** CHECK every plugin in order with the cached result. */
  async check(): Promise<void> {
    for (const p of this.list.plugins) {
      const r = await this.run('CHECK', p, this.cachedResult);
      if (r.code !== 0) throw new ListError(`plugin ${p.type} failed (check):\n${describeRun(r)}`, r, p.type);
    }
  }

  /**
   * DEL in reverse order; netns overrides CNI_NETNS (pass '' to mimic ctr after the netns died).
   * `cached: false` sends no prevResult, as libcni does once its result cache is gone (the
   * second DEL containerd's RemovePodSandbox sends, with an empty CNI_NETNS).
   */
  async del(netns?: string, { cached = true }: { cached?: boolean } = {}): Promise<void> {
    const prev = cached && versionGte(this.list.cniVersion, '0.4.0') ? this.cachedResult : undefined;
    for (const p of [...this.list.plugins].reverse()) {
      const r = await this.run('DEL', p, prev, netns ?? this.att.netns);
      if (r.code !== 0) throw new ListError(`plugin ${p.type} failed (delete):\n${describeRun(r)}`, r, p.type);
    }
  }
}
