/**
 * iptables-save and iptables-restore for every iptables backend (masquerade, port maps,
 * firewall): the tools per family, one read of a table, the read-build-apply transaction, and
 * the parsing of a table's text into chains and `-A` rules as words, so callers match rules by
 * what they do.
 */
import { run, CommandError } from '../exec/run';
import type { Family } from '../ip/cidr';
import { CniError, ErrCode } from '../skel/errors';
import { netfilterError, onPath } from './common';

export const IPT_TOOLS: Record<Family, { save: string; restore: string }> = {
  4: { save: 'iptables-save', restore: 'iptables-restore' },
  6: { save: 'ip6tables-save', restore: 'ip6tables-restore' },
};

/** `iptables-save -t <table>` of a family (in netns); a table the kernel does not have reads as ''. */
export async function saveTable(family: Family, table: string, netns?: string): Promise<string> {
  const argv = [IPT_TOOLS[family].save, '-t', table];
  const r = await run(argv, { netns, nothrow: true });
  if (r.exitCode === 0) return r.stdout;
  if (/does not exist|can't initialize/i.test(r.stderr)) return '';
  throw new CommandError(argv, r.exitCode, r.stderr, netns);
}

/**
 * One transaction: reads, builds the `iptables-restore --noflush` input from what it read and
 * applies it. If the restore fails because a rule it meant to delete vanished in a concurrent
 * DEL, it reads and tries once more. `build` returning undefined means nothing to do.
 */
export async function readThenApply<T>(family: Family, netns: string | undefined, read: () => Promise<T>, build: (t: T) => string | undefined): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const script = build(await read());
    if (script === undefined) return;
    try {
      await run([IPT_TOOLS[family].restore, '--noflush', '-w'], { netns, input: script });
      return;
    } catch (e) {
      if (attempt === 0 && e instanceof CommandError && /No chain\/target\/match|Bad rule|does a matching rule exist/i.test(e.stderr)) continue;
      throw e;
    }
  }
}

/**
 * Runs `fn` for IPv4 then IPv6, skipping a family whose tools are not installed. Every family
 * runs even when one fails; the failures are joined into one error, each prefixed with
 * `context(tool)` (e.g. "failed to remove port mappings (ip6tables) for c1").
 */
export async function forEachInstalledFamily(context: (tool: string) => string, fn: (f: Family) => Promise<void>): Promise<void> {
  const errors: string[] = [];
  for (const f of [4, 6] as const) {
    if (!onPath(IPT_TOOLS[f].save)) continue;
    try {
      await fn(f);
    } catch (e) {
      errors.push(netfilterError(context(f === 4 ? 'iptables' : 'ip6tables'), e).message);
    }
  }
  if (errors.length) throw new CniError(ErrCode.Internal, errors.join('; '));
}

/** Splits an iptables-save line into words, undoing its double quotes and backslash escapes. */
export function splitSaveLine(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '\\' && i + 1 < line.length) cur += line[++i];
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') {
      quoted = true;
      inWord = true;
    } else if (ch === ' ' || ch === '\t') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}


/** One `-A` line of iptables-save. */
export interface SavedRule {
  chain: string;
  /** The line as iptables-save printed it (turned into `-D …` to delete it). */
  line: string;
  /** The words after `-A <chain>`, quotes undone. */
  words: string[];
}

export interface SavedTable {
  chains: Set<string>;
  rules: SavedRule[];
}

export const emptyTable = (): SavedTable => ({ chains: new Set(), rules: [] });

/** Parses one table (`nat`, `filter`, …) out of iptables-save text. */
export function parseSaveTable(text: string, table: string): SavedTable {
  const out = emptyTable();
  let inTable = false;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.startsWith('*')) inTable = line === `*${table}`;
    if (!inTable) continue;
    if (line.startsWith(':')) out.chains.add(line.slice(1).split(' ')[0]!);
    else if (line.startsWith('-A ')) {
      const w = splitSaveLine(line);
      out.rules.push({ chain: w[1]!, line, words: w.slice(2) });
    }
  }
  return out;
}

/** The word after `flag` (e.g. `-j`, `--comment`), undefined when absent. */
export function opt(words: readonly string[], ...flags: string[]): string | undefined {
  for (let i = 0; i < words.length - 1; i++) if (flags.includes(words[i]!)) return words[i + 1];
  return undefined;
}

/** Whether `flag` appears negated (`! -o br`). */
export function negated(words: readonly string[], flag: string): boolean {
  const i = words.indexOf(flag);
  return i > 0 && words[i - 1] === '!';
}

export const targetOf = (r: SavedRule): string | undefined => opt(r.words, '-j', '--jump', '-g', '--goto');
export const commentOf = (r: SavedRule): string | undefined => opt(r.words, '--comment');

/** The `-D` line that deletes a rule exactly as iptables-save printed it. */
export const deleteLine = (r: SavedRule): string => r.line.replace(/^-A /, '-D ');

/** Canonical source/destination of a rule ("10.1.0.2/32"): iptables-save always prints a prefix. */
export const addrOpt = (r: SavedRule, flag: '-s' | '-d'): string | undefined =>
  opt(r.words, flag, flag === '-s' ? '--source' : '--destination');
