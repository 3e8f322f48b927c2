/**
 * iptables-save and iptables-restore text for the iptables driver: the tools per family, one
 * read of a table, the one parser of a table's text (chains and `-A` rules as words, with the
 * parts the layouts match on), restore quoting, and the inverse of a restore script (the
 * rollback of one family when the other family's restore fails). Pure except saveTable.
 */
import { run, CommandError } from '../../exec/run';
import { type Family, formatCidr, networkOf, parseCidr } from '../../ip/cidr';

export const IPT_TOOLS: Record<Family, { save: string; restore: string; name: string }> = {
  4: { save: 'iptables-save', restore: 'iptables-restore', name: 'iptables' },
  6: { save: 'ip6tables-save', restore: 'ip6tables-restore', name: 'ip6tables' },
};

export type IptTable = 'nat' | 'filter';

/** `iptables-save -t <table>` of a family (in netns); a table the kernel does not have reads as ''. */
export async function saveTable(family: Family, table: IptTable, netns?: string): Promise<string> {
  const argv = [IPT_TOOLS[family].save, '-t', table];
  const r = await run(argv, { netns, nothrow: true });
  if (r.exitCode === 0) return r.stdout;
  if (/does not exist|can't initialize/i.test(r.stderr)) return '';
  throw new CommandError(argv, r.exitCode, r.stderr, netns);
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

/** Quotes a word for iptables-restore the way iptables-save does. */
export function quoteRestoreWord(s: string): string {
  return /^[^\s"\\']+$/.test(s) ? s : `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** One `-A` line of iptables-save. */
export interface SavedRule {
  chain: string;
  /** The line as iptables-save printed it (turned into `-D …` to delete it). */
  line: string;
  /** The words after `-A <chain>`, quotes undone. */
  words: string[];
  /** -s / -d as canonical "ip/prefix" (host bits cleared). */
  source?: string;
  dest?: string;
  destNegated: boolean;
  comment?: string;
  /** -j / -g. */
  target?: string;
}

export interface SavedTable {
  chains: Set<string>;
  rules: SavedRule[];
}

export const emptyTable = (): SavedTable => ({ chains: new Set(), rules: [] });

/** Canonical "ip/prefix" (host bits cleared) or undefined. A bare address gets /32 or /128. */
function canonNet(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const c = parseCidr(s.includes('/') ? s : `${s}/${s.includes(':') ? 128 : 32}`);
  return c ? formatCidr(networkOf(c)) : undefined;
}

/** Parses one table (`nat`, `filter`, …) out of iptables-save text. */
export function parseSaveTable(text: string, table: IptTable): SavedTable {
  const out = emptyTable();
  let inTable = false;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.startsWith('*')) inTable = line === `*${table}`;
    if (!inTable) continue;
    if (line.startsWith(':')) out.chains.add(line.slice(1).split(' ')[0]!);
    else if (line.startsWith('-A ')) {
      const w = splitSaveLine(line);
      const words = w.slice(2);
      const d = words.findIndex((x) => x === '-d' || x === '--destination');
      out.rules.push({
        chain: w[1]!,
        line,
        words,
        source: canonNet(opt(words, '-s', '--source')),
        dest: canonNet(opt(words, '-d', '--destination')),
        destNegated: d > 0 && words[d - 1] === '!',
        comment: opt(words, '--comment'),
        target: opt(words, '-j', '--jump', '-g', '--goto'),
      });
    }
  }
  return out;
}

/** The word after `flag` (e.g. `-o`, `--dport`), undefined when absent. */
export function opt(words: readonly string[], ...flags: string[]): string | undefined {
  for (let i = 0; i < words.length - 1; i++) if (flags.includes(words[i]!)) return words[i + 1];
  return undefined;
}

/** Whether `flag` appears negated (`! -o br`). */
export function negated(words: readonly string[], flag: string): boolean {
  const i = words.indexOf(flag);
  return i > 0 && words[i - 1] === '!';
}

/** The `-D` line that deletes a rule exactly as iptables-save printed it. */
export const deleteLine = (r: SavedRule): string => r.line.replace(/^-A /, '-D ');

/** The restore input for one table's lines; undefined when there are none. */
export function restoreScript(table: IptTable, lines: readonly string[]): string | undefined {
  return lines.length ? [`*${table}`, ...lines, 'COMMIT', ''].join('\n') : undefined;
}

/**
 * The restore lines that undo `lines` (as applied with --noflush to a table that read as
 * `before`): rules added to chains that were not redeclared are deleted (newest first), chains
 * the lines redeclared (which flushes them) get their old rules back, rules the lines deleted
 * go back at their old positions, and chains the lines created are removed last.
 */
export function invertRestore(lines: readonly string[], before: SavedTable): string[] {
  const redeclared = new Set(lines.filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!));
  const parse = (l: string): { op: string; chain: string; rest: string } | undefined => {
    const m = /^(-[AID]) (\S+) (.*)$/.exec(l);
    if (!m) return undefined;
    // `-I CHAIN 1 rule`: the position is not part of the rule.
    const rest = m[1] === '-I' ? m[3]!.replace(/^\d+ /, '') : m[3]!;
    return { op: m[1]!, chain: m[2]!, rest };
  };
  const out: string[] = [];
  for (const l of [...lines].reverse()) {
    const p = parse(l);
    if (p && p.op !== '-D' && !redeclared.has(p.chain)) out.push(`-D ${p.chain} ${p.rest}`);
  }
  for (const c of redeclared) {
    if (before.chains.has(c)) out.push(`:${c} - [0:0]`, ...before.rules.filter((r) => r.chain === c).map((r) => r.line));
  }
  const back = lines
    .map(parse)
    .filter((p): p is NonNullable<typeof p> => p?.op === '-D' && !redeclared.has(p.chain))
    .map((p) => {
      const inChain = before.rules.filter((r) => r.chain === p.chain);
      return { p, at: inChain.findIndex((r) => r.line === `-A ${p.chain} ${p.rest}`) };
    })
    .sort((x, y) => x.at - y.at);
  for (const { p, at } of back) out.push(at < 0 ? `-A ${p.chain} ${p.rest}` : `-I ${p.chain} ${at + 1} ${p.rest}`);
  // Every new chain emptied before any is removed: one may jump to another.
  const created = [...redeclared].filter((c) => !before.chains.has(c));
  out.push(...created.map((c) => `-F ${c}`), ...created.map((c) => `-X ${c}`));
  return out;
}
