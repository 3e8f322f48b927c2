/**
 * Reading iptables-save output of any table (the masquerade code in iptables.ts reads only nat):
 * chains, and each `-A` rule as its words, so callers match rules by what they do. Pure.
 */
import { splitSaveLine } from './iptables';

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
