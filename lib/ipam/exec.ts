/**
 * Delegation to an IPAM plugin, as libcni's invoke package does it: find `ipam.type` in
 * CNI_PATH, run it with our environment (CNI_COMMAND replaced) and our exact stdin, and read
 * its stdout as a result or a CNI error, which is re-raised unchanged.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { run } from '../exec/run';
import { isOurPlugin } from '../self/self';
import { CniError, ErrCode, asCniError } from '../skel/errors';
import type { CmdArgs, Plugin } from '../skel/dispatch';
import { parseResult, type Result } from '../types/result';
import { canonicalKeys, type KeyNode } from '../schema/keys';

/** Finds an executable named `type` in the CNI_PATH directories. */
export function findPlugin(type: string, path: string[]): string {
  if (!/^[A-Za-z0-9._-]+$/.test(type)) {
    throw new CniError(ErrCode.InvalidConfig, `invalid plugin type "${type}"`);
  }
  for (const dir of path) {
    const p = join(dir, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* try the next directory */
    }
  }
  throw new CniError(ErrCode.InvalidConfig, `failed to find plugin "${type}" in path [${path.join(' ')}]`);
}

/**
 * An IPAM plugin run in-process (see issue: exec costs a process): its verbs, each failure a
 * CniError, as an exec'd plugin's error would be.
 */
export type InProcessIpam = Pick<Plugin, 'add' | 'del' | 'check' | 'gc' | 'status'>;

/**
 * `plugin`'s verbs as an in-process IPAM. With `keys` (the IPAM's own key description,
 * lib/generated/keys.js) the config reaches it with those fields canonical: the calling plugin
 * matched only its own fields, and an exec'd IPAM would match its fields itself. args.stdin
 * stays the bytes the runtime sent.
 */
export function inProcessIpam(plugin: Plugin, keys?: KeyNode): InProcessIpam {
  const input = (args: CmdArgs): CmdArgs => (keys ? { ...args, conf: canonicalKeys(args.conf, keys) } : args);
  const wrap =
    <R>(fn: (a: CmdArgs) => Promise<R>) =>
    (args: CmdArgs): Promise<R> =>
      fn(input(args)).catch((e: unknown) => {
        throw asCniError(e);
      });
  return { add: wrap(plugin.add), del: wrap(plugin.del), check: wrap(plugin.check), gc: wrap(plugin.gc), status: wrap(plugin.status) };
}

const inProcess = new Map<string, InProcessIpam>();
/** Lets `type` run in-process when CNI_PATH resolves it to our own build (ipam/host-local/register.ts). */
export function registerInProcessIpam(type: string, plugin: Plugin): void {
  inProcess.set(type, inProcessIpam(plugin, plugin.keys));
}

/**
 * Picks how to run the IPAM: in-process when CNI_PATH resolves to our own build of it, in either
 * packaging (lib/self/self.ts isOurPlugin; saves a Node start per verb), else by exec, so a foreign IPAM (or the reference's) still works.
 */
function resolveIpam(args: CmdArgs): { bin: string; fn?: InProcessIpam } {
  const type = ipamType(args);
  const bin = findPlugin(type, args.path);
  const fn = inProcess.get(type);
  return fn && process.env.CNI_TS_IPAM_EXEC !== '1' && isOurPlugin(bin, type) ? { bin, fn } : { bin };
}

function ipamType(args: CmdArgs): string {
  const t = args.conf.ipam?.type;
  if (typeof t !== 'string' || t === '') throw new CniError(ErrCode.InvalidConfig, 'ipam.type is missing');
  return t;
}

async function execIpam(command: 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS', bin: string, args: CmdArgs): Promise<string> {
  const type = ipamType(args);
  const res = await run([bin], {
    input: args.stdin.toString('utf8'),
    nothrow: true,
    // The call's own CNI_* variables, named one by one as libcni does: in served mode this
    // process's environment is the service's, not the call's.
    envOverride: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: args.containerID,
      CNI_NETNS: args.netns,
      CNI_IFNAME: args.ifName,
      CNI_ARGS: args.args,
      CNI_PATH: args.path.join(':'),
    },
  });
  if (res.exitCode !== 0) {
    // The child's error object is on stdout (libcni pluginErr); stderr only when stdout is empty.
    try {
      const e = JSON.parse(res.stdout);
      if (typeof e.code === 'number') throw new CniError(e.code, e.msg ?? `${type} failed`, e.details ?? '');
    } catch (x) {
      if (x instanceof CniError) throw x;
    }
    throw new CniError(ErrCode.Internal, `${type} ${command} failed: ${(res.stderr || res.stdout).trim() || `exit code ${res.exitCode}`}`);
  }
  return res.stdout;
}

/** ADD on the delegated IPAM; returns its result in the current shape. */
export async function ipamAdd(args: CmdArgs): Promise<Result> {
  const { bin, fn } = resolveIpam(args);
  if (fn) return fn.add(args);
  const out = await execIpam('ADD', bin, args);
  let raw: unknown;
  try {
    raw = JSON.parse(out);
  } catch {
    throw new CniError(ErrCode.DecodeFailure, `failed to decode IPAM result: ${out.slice(0, 200)}`);
  }
  return parseResult(raw, args.conf.cniVersion);
}

/** DEL, CHECK, GC or STATUS on the delegated IPAM. */
export async function ipamExec(command: 'DEL' | 'CHECK' | 'GC' | 'STATUS', args: CmdArgs): Promise<void> {
  const { bin, fn } = resolveIpam(args);
  if (fn) {
    const verb = { DEL: fn.del, CHECK: fn.check, GC: fn.gc, STATUS: fn.status }[command];
    await verb(args);
    return;
  }
  await execIpam(command, bin, args);
}
