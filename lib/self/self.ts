/**
 * "Myself" in both packagings: a bundle (`dist/bin/<name>`, a JS file run by the host's node) or
 * the multi-call binary (`cni-ts`, a Node single-executable application that carries the code of
 * every plugin and is reached through a stub or a link named after the plugin; see
 * scripts/package.mjs). Three things differ between them, and only here:
 * - how to start this same program again in another mode (selfArgv): the netns sysctl helper
 *   and any plugin's own background mode run our code, never a `node` found on the host;
 * - which hidden mode a start asks for (runRequestedMode, called by pluginMain first);
 * - whether an executable found in CNI_PATH is our own build of a plugin (isOurPlugin), so a
 *   plugin may run it in-process instead of exec'ing it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The multi-call binary's own name (what the stubs and links point at). */
export const MULTICALL_NAME = 'cni-ts';

/** Line 2 of each bundle (build.mjs writes it): the mark of our bundle of a plugin. */
export const BUNDLE_MARKER = '// cni-ts plugin: ';
/** Line 2 of each served-mode stub (scripts/stub.mjs): a bash front that runs `<its dir>/cni-ts <plugin>`. */
export const STUB_MARKER = '# cni-ts plugin: ';

let seaCache: boolean | undefined;
/** True inside the single-executable binary (node:sea exists from Node 20.12 on). */
export function isBinary(): boolean {
  if (seaCache === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      seaCache = (require('node:sea') as { isSea(): boolean }).isSea();
    } catch {
      seaCache = false;
    }
  }
  return seaCache;
}

let pluginName: string | undefined;
/** The multi-call program's own path when this process is one (bundle: its script; binary: execPath). */
let multicallPath: string | undefined;
/** The multi-call dispatcher records which plugin this process is (lib/self/multicall.ts). */
export function setPluginName(name: string, multicall?: string): void {
  pluginName = name;
  if (multicall !== undefined) multicallPath = multicall;
}

/**
 * The plugin a request of the per-host service (lib/serve) is for. The service is one
 * multi-call process serving every plugin at once, so "which plugin am I" belongs to the
 * request, not to the process.
 */
const requestPlugin = new AsyncLocalStorage<string>();
export function runAsPlugin<T>(name: string, fn: () => T): T {
  return requestPlugin.run(name, fn);
}

/** The multi-call program itself (for the service), when this process is one. */
export function setMulticallPath(path: string): void {
  multicallPath = path;
}
export function getMulticallPath(): string | undefined {
  return multicallPath;
}

/**
 * argv that starts this same program again, as the same plugin, with `args` after it:
 * bundle: [node, /path/to/dist/bin/<plugin>, ...args];
 * binary: [/path/to/cni-ts, <plugin>, ...args] (the dispatcher reads the plugin from argv).
 * Either way the child sees process.argv[2...] === args. Our environment is passed on as it is
 * (the stub or the shebang already dropped NODE_OPTIONS and NODE_EXTRA_CA_CERTS).
 */
export function selfArgv(args: string[]): string[] {
  const name = requestPlugin.getStore() ?? pluginName ?? basename(process.argv[1] ?? '');
  if (isBinary()) return [process.execPath, name, ...args];
  // The multi-call bundle (dist/served/cni-ts) picks the plugin from the word after it.
  if (multicallPath !== undefined) return [process.execPath, multicallPath, name, ...args];
  return [process.execPath, process.argv[1]!, ...args];
}

/** Hidden modes: a flag in argv[2] that makes this start a helper instead of a CNI plugin. */
export type Mode = () => void | Promise<void>;
const modes = new Map<string, Mode>();

/** Registers a hidden mode; `flag` must start with `--cni-ts-` so no user argument collides. */
export function registerMode(flag: string, fn: Mode): void {
  if (!flag.startsWith('--cni-ts-')) throw new Error(`hidden mode flag must start with --cni-ts-: ${flag}`);
  modes.set(flag, fn);
}

/**
 * Runs the hidden mode argv asks for, if any, and returns true (the mode owns the process and
 * its exit); false when this is an ordinary plugin start.
 */
export function runRequestedMode(argv: readonly string[] = process.argv): boolean {
  const fn = argv[2] === undefined ? undefined : modes.get(argv[2]);
  if (!fn) return false;
  Promise.resolve()
    .then(fn)
    .catch((e: unknown) => {
      process.stderr.write(`${argv[2]}: ${(e as Error)?.message ?? String(e)}\n`);
      process.exitCode = 1;
    });
  return true;
}

function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** The first bytes of a file (empty if unreadable). */
function head(path: string, n: number): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } catch {
    return Buffer.alloc(0);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * True when executing `bin` (a path found in CNI_PATH for plugin `type`) runs our own code as
 * `type`, so it may run in-process instead:
 * - a bundle whose line 2 is BUNDLE_MARKER + type (from either packaging: the code is ours);
 * - inside the binary: `bin` is this very binary (a link or hard link: same inode as
 *   process.execPath; the dispatcher picks the plugin by the link's name, which is `type`), or a
 *   stub whose `#!` line ends in a path to this very binary (the stub's name is `type`).
 * Anything else (the reference's plugin, a foreign one, another build of ours) is exec'd.
 * Cost: one open+read of 256 bytes, plus two stat calls inside the binary.
 */
export function isOurPlugin(bin: string, type: string): boolean {
  const b = head(bin, 256);
  if (b.length >= 2 && b[0] === 0x23 && b[1] === 0x21) {
    const lines = b.toString('latin1').split('\n');
    if (lines[1] === BUNDLE_MARKER + type) return true;
    // A served-mode stub runs the multi-call program beside it: ours if that is this very program.
    if (lines[1] === STUB_MARKER + type) {
      const self = isBinary() ? process.execPath : multicallPath;
      return self !== undefined && sameFile(join(dirname(bin), MULTICALL_NAME), self);
    }
    if (!isBinary() || basename(bin) !== type || lines.length < 2) return false;
    const target = lines[0]!.trim().split(/\s+/).pop()!;
    return target.startsWith('/') && sameFile(target, process.execPath);
  }
  return isBinary() && basename(bin) === type && sameFile(bin, process.execPath);
}
