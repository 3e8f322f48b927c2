/**
 * Checks of a verb's inputs that several plugins make, each worded once: a chained plugin's
 * prevResult, the container's netns, and a MAC address from the config or CNI_ARGS.
 */
import { CniError, ErrCode } from './errors';
import type { CmdArgs } from './dispatch';
import type { Result } from '../types/result';
import { netnsExists } from '../iproute/netns';

/**
 * prevResult, which a chained plugin needs on ADD (the previous plugin's result) and a plugin
 * that checks its work needs on CHECK (the attachment's result); code 7 when the runtime sent
 * none. The reference words this five ways; this one names the verb (dnsname's suite pins it).
 */
export function requirePrevResult(args: Pick<CmdArgs, 'prevResult' | 'command'>): Result {
  if (!args.prevResult) {
    throw new CniError(ErrCode.InvalidConfig, `${args.command} needs prevResult`, "the runtime passes it in the config: on ADD the previous plugin's result, on CHECK the attachment's");
  }
  return args.prevResult;
}

/** Code 8 unless CNI_NETNS names an existing file (a netns bind mount or /proc/<pid>/ns/net). */
export function requireNetns(netns: string): void {
  if (!netnsExists(netns)) throw new CniError(ErrCode.InvalidNetNS, `failed to open netns "${netns}": no such file or directory`);
}

const MAC_RE = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/**
 * A 6-byte Ethernet address in lower case with colons, or undefined when `text` is not one.
 * Colons or dashes, one kind throughout (net.ParseMAC also takes 8- and 20-byte forms and
 * dotted groups, which no Ethernet link has); `dashes: false` accepts colons only.
 */
export function parseMac(text: string, opts: { dashes?: boolean } = {}): string | undefined {
  const m = MAC_RE.exec(text);
  if (!m || (opts.dashes === false && m[1] === '-')) return undefined;
  return text.toLowerCase().replace(/-/g, ':');
}
