/**
 * pluginMain: the CNI skeleton every plugin's main.ts calls once. It reads the environment and
 * stdin, negotiates the version, dispatches the verb and prints exactly one JSON document on
 * stdout: the result, or a CNI error object followed by exit 1. Nothing else prints to stdout.
 */
import { readSync, statSync, writeSync } from 'node:fs';
import { CniError, ErrCode, asCniError } from './errors';
import { readEnv, type CniEnv, type Verb } from './env';
import { SUPPORTED_VERSIONS, CURRENT_VERSION, atLeast, isSupported } from './versions';
import { parseResult, resultForVersion, type Result } from '../types/result';
import { canonicalKeys, ownKeys, type KeyNode } from '../schema/keys';
import { runRequestedMode } from '../self/self';

/** The keys every network config may carry; plugins extend this. */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  ipam?: { type?: string; [k: string]: unknown };
  dns?: Record<string, unknown>;
  runtimeConfig?: Record<string, unknown>;
  args?: { cni?: Record<string, unknown>; [k: string]: unknown };
  prevResult?: unknown;
  [k: string]: unknown;
}

export interface CmdArgs extends CniEnv {
  /** The exact bytes received on stdin, for delegating to IPAM. */
  stdin: Buffer;
  /** stdin parsed, its keys spelled as the plugin's schema spells them; `name` and `cniVersion` are checked. */
  conf: NetConf;
  /** conf.prevResult upgraded to the current result shape, when present. */
  prevResult?: Result;
}

export interface PluginFuncs {
  add?: (a: CmdArgs) => Promise<Result>;
  del?: (a: CmdArgs) => Promise<void>;
  check?: (a: CmdArgs) => Promise<void>;
  gc?: (a: CmdArgs) => Promise<void>;
  status?: (a: CmdArgs) => Promise<void>;
}

export interface PluginOptions {
  /** Allow CNI_NETNS to be the plugin's own netns on ADD/DEL (the `host` plugin needs this). */
  allowOwnNetns?: boolean;
  /** The config keys to match case-insensitively; default: the plugin's schema.json (ownKeys). */
  keys?: KeyNode;
}

/** What a plugin hands pluginMain: its verbs, its about text and its options. */
export interface PluginDef {
  funcs: PluginFuncs;
  about: string;
  opts: PluginOptions;
}

let capture: ((def: PluginDef) => void) | undefined;
/**
 * For the per-host service (lib/serve/service.ts), which loads every plugin's main module in one
 * process: while set, pluginMain hands the plugin's definition to `fn` instead of running it.
 */
export function captureDefinitions(fn: ((def: PluginDef) => void) | undefined): void {
  capture = fn;
}

export interface Io {
  getenv: (k: string) => string | undefined;
  readStdin: () => Buffer;
  /** Called once with the text to print on stdout and the exit code. */
  finish: (stdout: string, code: number) => void;
  stderr: (s: string) => void;
}

/**
 * Reads stdin to its end. A runtime's pipe may be non-blocking and still empty when we start
 * (readFileSync then throws EAGAIN, which must not pass for an empty config): wait and retry
 * until end of input, up to a limit.
 */
function readAllStdin(): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 30_000;
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' && Date.now() < deadline) {
        Atomics.wait(pause, 0, 0, 1);
        continue;
      }
      // A closed descriptor is an empty config, not a crash.
      if (code === 'EOF' || code === 'EBADF') break;
      throw new CniError(ErrCode.IOFailure, `error reading from stdin: ${(e as Error).message}`);
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

const realIo: Io = {
  getenv: (k) => process.env[k],
  readStdin: readAllStdin,
  finish: (stdout, code) => {
    if (stdout) writeSync(1, stdout.endsWith('\n') ? stdout : stdout + '\n');
    process.exit(code);
  },
  stderr: (s) => {
    writeSync(2, s.endsWith('\n') ? s : s + '\n');
  },
};

function versionsText(): string {
  return `[${SUPPORTED_VERSIONS.map((v) => `"${v}"`).join(' ')}]`;
}

/** A network name as libcni accepts it. */
export const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Parses the config on stdin: bad JSON is code 6, a missing name code 7. Keys naming a field
 * of `keys` are spelled as the field is (lib/schema/keys.ts: Go's case-insensitive matching).
 */
export function parseConf(stdin: Buffer, keys: KeyNode = ownKeys()): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin.toString('utf8'));
  } catch (e) {
    throw new CniError(ErrCode.DecodeFailure, 'error parsing network configuration', (e as Error).message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(ErrCode.DecodeFailure, 'error parsing network configuration', 'not a JSON object');
  }
  const conf = canonicalKeys(raw, keys) as NetConf;
  if (typeof conf.name !== 'string' || conf.name === '') {
    throw new CniError(ErrCode.InvalidConfig, 'missing network name');
  }
  // libcni's character set (cni:pkg/utils ValidateNetworkName): the name becomes a directory
  // (host-local's leases, dnsname's and overlay's run dirs) and a rule comment, so nothing else.
  if (!NETWORK_NAME_RE.test(conf.name)) {
    throw new CniError(ErrCode.InvalidConfig, 'invalid characters found in network name', conf.name);
  }
  // A config without cniVersion decodes as 0.1.0 (cni:pkg/types/create), which we do not speak.
  if (conf.cniVersion === undefined || conf.cniVersion === '') conf.cniVersion = '0.1.0';
  if (typeof conf.cniVersion !== 'string') {
    throw new CniError(ErrCode.DecodeFailure, 'error parsing network configuration', 'cniVersion is not a string');
  }
  return conf;
}

/** The config's cniVersion if stdin is a JSON object declaring a supported one. */
function peekVersion(stdin: Buffer): string | undefined {
  try {
    const v = (JSON.parse(stdin.toString('utf8')) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && isSupported(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function checkVersion(verb: Verb, v: string): void {
  if (!isSupported(v)) {
    throw new CniError(ErrCode.IncompatibleVersion, 'incompatible CNI versions', `config is "${v}", plugin supports ${versionsText()}`);
  }
  if (verb === 'CHECK' && !atLeast(v, '0.4.0')) {
    throw new CniError(ErrCode.IncompatibleVersion, 'config version does not allow CHECK', `config is "${v}"`);
  }
  if ((verb === 'GC' || verb === 'STATUS') && !atLeast(v, '1.1.0')) {
    throw new CniError(ErrCode.IncompatibleVersion, `config version does not allow ${verb}`, `config is "${v}"`);
  }
}

function sameNetnsAsSelf(path: string): boolean {
  try {
    const a = statSync(path);
    const b = statSync('/proc/self/ns/net');
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

/** Runs one CNI invocation; returns what to print and the exit code (tests call this directly). */
export async function dispatch(funcs: PluginFuncs, about: string, io: Io, opts: PluginOptions = {}): Promise<{ out: string; code: number }> {
  let cniVersion = CURRENT_VERSION;
  let stdin: Buffer | undefined;
  try {
    const command = io.getenv('CNI_COMMAND');
    if (!command) {
      io.stderr(`${about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}`);
      return { out: '', code: 0 };
    }
    if (command === 'VERSION') {
      // VERSION ignores everything but an optional {"cniVersion"} on stdin.
      let asked = CURRENT_VERSION;
      try {
        const raw = JSON.parse(io.readStdin().toString('utf8') || '{}');
        if (typeof raw.cniVersion === 'string' && raw.cniVersion) asked = raw.cniVersion;
      } catch {
        /* an unreadable VERSION request still gets an answer */
      }
      return { out: JSON.stringify({ cniVersion: asked, supportedVersions: SUPPORTED_VERSIONS }), code: 0 };
    }
    const env = readEnv(io.getenv);
    stdin = io.readStdin();
    const conf = parseConf(stdin, opts.keys);
    cniVersion = isSupported(conf.cniVersion) ? conf.cniVersion : CURRENT_VERSION;
    checkVersion(env.command, conf.cniVersion);
    if ((env.command === 'ADD' || env.command === 'DEL') && env.netns && !opts.allowOwnNetns && sameNetnsAsSelf(env.netns)) {
      throw new CniError(ErrCode.InvalidNetNS, 'cannot use the plugin\'s own network namespace as the container\'s', env.netns);
    }
    const args: CmdArgs = { ...env, stdin, conf };
    if (conf.prevResult !== undefined && conf.prevResult !== null) {
      args.prevResult = parseResult(conf.prevResult, conf.cniVersion);
    }
    switch (env.command) {
      case 'ADD': {
        if (!funcs.add) throw new CniError(ErrCode.Internal, 'ADD is not implemented');
        // The served-mode stub saw the service die after it had taken this ADD (lib/serve/protocol.ts):
        // undo whatever it may have half-made, then add afresh.
        if (io.getenv('CNI_TS_RECOVER') === '1' && funcs.del) {
          await funcs.del(args).catch((e: unknown) => io.stderr(`cleaning up after the service died mid-ADD: ${asCniError(e).message}`));
        }
        const result = await funcs.add(args);
        return { out: JSON.stringify(resultForVersion(result, conf.cniVersion)), code: 0 };
      }
      case 'DEL':
      case 'CHECK':
      case 'GC':
      case 'STATUS': {
        const fn = funcs[env.command.toLowerCase() as 'del' | 'check' | 'gc' | 'status'];
        // A verb a plugin has nothing to do for succeeds quietly (e.g. STATUS of loopback).
        if (fn) await fn(args);
        return { out: '', code: 0 };
      }
    }
    throw new CniError(ErrCode.InvalidEnvironment, `unknown CNI_COMMAND: ${command}`);
  } catch (e) {
    const err = asCniError(e);
    // An error found while checking the config (say a missing name) still answers in its version.
    if (stdin && cniVersion === CURRENT_VERSION) cniVersion = peekVersion(stdin) ?? cniVersion;
    if (err.code === ErrCode.Internal && e instanceof Error && e.stack && io.getenv('CNI_TS_DEBUG')) io.stderr(e.stack);
    return { out: JSON.stringify(err.toJSON(cniVersion)), code: 1 };
  }
}

/** The single entry point of each executable. */
export function pluginMain(funcs: PluginFuncs, about: string, opts: PluginOptions = {}, io: Io = realIo): void {
  if (capture) {
    capture({ funcs, about, opts });
    return;
  }
  // This program started again as one of its own helpers (lib/self/self.ts selfArgv)?
  if (io === realIo && runRequestedMode()) return;
  // Run here by a served-mode stub that found no service to take the call: start one for the
  // calls to come, alongside this one (lib/serve/start.ts; never fails the call).
  const starting = io === realIo && process.env.CNI_TS_VIA_STUB && process.env.CNI_COMMAND && process.env.CNI_COMMAND !== 'VERSION' ? import('../serve/start').then((m) => m.startForNextCalls(io.stderr)) : undefined;
  dispatch(funcs, about, io, opts).then(
    async ({ out, code }) => {
      await starting;
      io.finish(out, code);
    },
    (e) => io.finish(JSON.stringify(asCniError(e).toJSON(CURRENT_VERSION)), 1),
  );
}
