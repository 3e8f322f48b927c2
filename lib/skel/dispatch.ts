/**
 * The plugin contract and the CNI skeleton. A plugin's main.ts exports its definition
 * (definePlugin: about text, config loader, every verb); pluginMain runs it as an executable:
 * it reads the environment and stdin, negotiates the version, dispatches the verb and prints
 * exactly one JSON document on stdout: the result, or a CNI error object followed by exit 1.
 * Nothing else prints to stdout. dispatch runs one invocation for an injected Io.
 */
import { readSync, statSync, writeSync } from 'node:fs';
import { CniError, ErrCode, asCniError } from './errors';
import { readEnv, type CniEnv, type Verb } from './env';
import { SUPPORTED_VERSIONS, CURRENT_VERSION, atLeast, isSupported } from './versions';
import { parseResult, resultForVersion, type Result } from '../types/result';
import { canonicalKeys, NETCONF_KEYS, type KeyNode } from '../schema/keys';
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

/** The verbs a plugin declares, as the definition names them. */
export type VerbName = 'add' | 'del' | 'check' | 'gc' | 'status';

/**
 * A verb declared to have nothing to do for a plugin, with the reason (see `noop`). Such a verb
 * succeeds without loading the config, as the reference's skeleton answers a verb a plugin has
 * no function for (cni:pkg/skel checkVersionAndCall with a nil function).
 */
export class NoopVerb {
  // A private member makes the class nominal: only noop() makes one, no look-alike object passes.
  readonly #why: string;
  constructor(why: string) {
    this.#why = why;
  }
  get why(): string {
    return this.#why;
  }
}

/** Declares that a verb has nothing to do for this plugin, and says why. */
export function noop(why: string): NoopVerb {
  return new NoopVerb(why);
}

/** GC and STATUS of a plugin that keeps no state of its own: nothing to collect, nothing to lack. */
export const stateless = noop('the plugin keeps no state: nothing to collect, nothing that can be unavailable');

/** STATUS of a plugin that needs no daemon, address pool or lock: it is always ready for ADD. */
export const alwaysReady = noop('the plugin needs no daemon, address pool or lock: nothing it depends on can be unavailable');

/** A verb's function: gets the invocation and the config loadConf returned for it. */
export type VerbFn<C> = (args: CmdArgs, conf: C) => Promise<void>;

/**
 * What a plugin is: its about text, its config loader and every verb. Each verb is a function
 * or an explicit `noop(...)`/`stateless`; leaving one out is a type error, so a verb can no
 * longer succeed quietly because nobody wrote it.
 */
export interface PluginDefinition<C> {
  /** Printed on stderr when CNI_COMMAND is unset. */
  about: string;
  /**
   * Parses and checks the config through the plugin's schema (validateConf) and returns it
   * typed; called before every verb that is a function. Changes nothing on the system.
   */
  loadConf: (args: CmdArgs) => C;
  add: (args: CmdArgs, conf: C) => Promise<Result>;
  del: VerbFn<C> | NoopVerb;
  check: VerbFn<C> | NoopVerb;
  gc: VerbFn<C> | NoopVerb;
  status: VerbFn<C> | NoopVerb;
  /** Allow CNI_NETNS to be the plugin's own netns on ADD/DEL (the `host` plugin needs this). */
  allowOwnNetns?: boolean;
  /** The config keys to match case-insensitively (lib/generated/keys.js); default: the common ones. */
  keys?: KeyNode;
  /** Words argv[2] may be to start the executable as something else (overlay's `agent`). */
  commands?: Readonly<Record<string, (argv: string[]) => Promise<void>>>;
}

/**
 * A definition ready to run, its config type hidden: each verb loads the config and runs, or does
 * nothing when declared so. What dispatch, the multi-call table and in-process IPAM hold.
 */
export interface Plugin {
  readonly about: string;
  readonly allowOwnNetns: boolean;
  readonly keys: KeyNode;
  readonly commands: Readonly<Record<string, (argv: string[]) => Promise<void>>>;
  /** The verbs declared to have nothing to do, each with its reason. */
  readonly noops: Readonly<Partial<Record<VerbName, string>>>;
  add(args: CmdArgs): Promise<Result>;
  del(args: CmdArgs): Promise<void>;
  check(args: CmdArgs): Promise<void>;
  gc(args: CmdArgs): Promise<void>;
  status(args: CmdArgs): Promise<void>;
}

/** Checks a definition (by type) and makes it runnable. Pure: nothing runs until a verb is called. */
export function definePlugin<C>(def: PluginDefinition<C>): Plugin {
  const verb =
    (name: Exclude<VerbName, 'add'>) =>
    async (args: CmdArgs): Promise<void> => {
      const fn = def[name];
      if (fn instanceof NoopVerb) return;
      await fn(args, def.loadConf(args));
    };
  const noops: Partial<Record<VerbName, string>> = {};
  for (const name of ['del', 'check', 'gc', 'status'] as const) {
    const fn = def[name];
    if (fn instanceof NoopVerb) noops[name] = fn.why;
  }
  return Object.freeze({
    about: def.about,
    allowOwnNetns: def.allowOwnNetns === true,
    keys: def.keys ?? NETCONF_KEYS,
    commands: Object.freeze({ ...def.commands }),
    noops: Object.freeze(noops),
    add: async (args: CmdArgs) => def.add(args, def.loadConf(args)),
    del: verb('del'),
    check: verb('check'),
    gc: verb('gc'),
    status: verb('status'),
  });
}

/** A verb with nothing to do beyond accepting the config (loadConf has run when it is called). */
export const configOnly: VerbFn<unknown> = async () => undefined;

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
export function parseConf(stdin: Buffer, keys: KeyNode = NETCONF_KEYS): NetConf {
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

const VERB_OF: Record<Exclude<Verb, 'VERSION'>, VerbName> = { ADD: 'add', DEL: 'del', CHECK: 'check', GC: 'gc', STATUS: 'status' };

/**
 * Runs one CNI invocation of `plugin` with the environment and stdin `io` gives; returns what to
 * print and the exit code, and prints nothing itself. Keeps no state between calls and reads
 * the environment only through io.getenv, so one process may serve many invocations.
 */
export async function dispatch(plugin: Plugin, io: Io): Promise<{ out: string; code: number }> {
  let cniVersion = CURRENT_VERSION;
  let stdin: Buffer | undefined;
  try {
    const command = io.getenv('CNI_COMMAND');
    if (!command) {
      io.stderr(`${plugin.about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}`);
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
    const conf = parseConf(stdin, plugin.keys);
    cniVersion = isSupported(conf.cniVersion) ? conf.cniVersion : CURRENT_VERSION;
    checkVersion(env.command, conf.cniVersion);
    if ((env.command === 'ADD' || env.command === 'DEL') && env.netns && !plugin.allowOwnNetns && sameNetnsAsSelf(env.netns)) {
      throw new CniError(ErrCode.InvalidNetNS, 'cannot use the plugin\'s own network namespace as the container\'s', env.netns);
    }
    const args: CmdArgs = { ...env, stdin, conf };
    if (conf.prevResult !== undefined && conf.prevResult !== null) {
      args.prevResult = parseResult(conf.prevResult, conf.cniVersion);
    }
    if (env.command === 'VERSION') throw new CniError(ErrCode.InvalidEnvironment, `unknown CNI_COMMAND: ${command}`);
    if (env.command === 'ADD') {
      // The served-mode stub saw the service die after it had taken this ADD (lib/serve/protocol.ts):
      // undo whatever it may have half-made, then add afresh.
      if (io.getenv('CNI_TS_RECOVER') === '1') {
        await plugin.del(args).catch((e: unknown) => io.stderr(`cleaning up after the service died mid-ADD: ${asCniError(e).message}`));
      }
      const result = await plugin.add(args);
      return { out: JSON.stringify(resultForVersion(result, conf.cniVersion)), code: 0 };
    }
    await plugin[VERB_OF[env.command]](args);
    return { out: '', code: 0 };
  } catch (e) {
    const err = asCniError(e);
    // An error found while checking the config (say a missing name) still answers in its version.
    if (stdin && cniVersion === CURRENT_VERSION) cniVersion = peekVersion(stdin) ?? cniVersion;
    if (err.code === ErrCode.Internal && e instanceof Error && e.stack && io.getenv('CNI_TS_DEBUG')) io.stderr(e.stack);
    return { out: JSON.stringify(err.toJSON(cniVersion)), code: 1 };
  }
}

/**
 * The single entry point of each executable (build.mjs and the multi-call table call it with
 * the definition a plugin's main.ts exports): a hidden helper mode or a command word in argv
 * (lib/self/self.ts, PluginDefinition.commands), else one CNI invocation.
 */
export function pluginMain(plugin: Plugin, io: Io = realIo): void {
  if (io === realIo) {
    // This program started again as one of its own helpers (lib/self/self.ts selfArgv)?
    if (runRequestedMode()) return;
    const word = process.argv[2];
    const command = word !== undefined && Object.hasOwn(plugin.commands, word) ? plugin.commands[word] : undefined;
    if (command) {
      void command(process.argv.slice(3));
      return;
    }
  }
  // Run here by a served-mode stub that found no service to take the call: start one for the
  // calls to come, alongside this one (lib/serve/start.ts; never fails the call).
  const starting = io === realIo && process.env.CNI_TS_VIA_STUB && process.env.CNI_COMMAND && process.env.CNI_COMMAND !== 'VERSION' ? import('../serve/start').then((m) => m.startForNextCalls(io.stderr)) : undefined;
  dispatch(plugin, io).then(
    async ({ out, code }) => {
      await starting;
      io.finish(out, code);
    },
    (e) => io.finish(JSON.stringify(asCniError(e).toJSON(CURRENT_VERSION)), 1),
  );
}
