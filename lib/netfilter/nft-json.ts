/**
 * Reading `nft -j list …` output into tables, chains and rules, for the portmap and firewall
 * backends (which may own tables in several families), and the read-build-apply transaction
 * every nftables backend uses.
 */
import { CniError, ErrCode } from '../skel/errors';
import { CommandError, run } from '../exec/run';

/**
 * One transaction: reads, builds the `nft -f -` input from what it read and applies it. If nft
 * says a rule or table it meant to touch is gone (a concurrent DEL), it reads and tries once
 * more. `build` returning undefined means nothing to do.
 */
export async function nftReadThenApply<T>(netns: string | undefined, read: () => Promise<T>, build: (t: T) => string | undefined): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const script = build(await read());
    if (script === undefined) return;
    try {
      await run(['nft', '-f', '-'], { netns, input: script });
      return;
    } catch (e) {
      if (attempt === 0 && e instanceof CommandError && /No such file or directory/i.test(e.stderr)) continue;
      throw e;
    }
  }
}

export interface NftJsonRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  comment?: string;
  expr: unknown[];
}

export interface NftRuleset {
  /** "family name" of every table. */
  tables: Set<string>;
  /** "family table chain" of every chain. */
  chains: Set<string>;
  rules: NftJsonRule[];
}

export const emptyRuleset = (): NftRuleset => ({ tables: new Set(), chains: new Set(), rules: [] });

/** Parses `nft -j list ruleset` or `nft -j list table …`. */
export function parseNftJson(json: string): NftRuleset {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new CniError(ErrCode.Internal, `cannot parse nft JSON output: ${(e as Error).message}`);
  }
  const items = (doc as { nftables?: unknown })?.nftables;
  if (!Array.isArray(items)) throw new CniError(ErrCode.Internal, 'nft JSON output has no "nftables" array');
  const out = emptyRuleset();
  for (const it of items as Record<string, Record<string, unknown>>[]) {
    if (it.table) out.tables.add(`${it.table.family} ${it.table.name}`);
    else if (it.chain) out.chains.add(`${it.chain.family} ${it.chain.table} ${it.chain.name}`);
    else if (it.rule) {
      const r = it.rule;
      out.rules.push({
        family: String(r.family),
        table: String(r.table),
        chain: String(r.chain),
        handle: Number(r.handle),
        comment: typeof r.comment === 'string' ? r.comment : undefined,
        expr: Array.isArray(r.expr) ? r.expr : [],
      });
    }
  }
  return out;
}

/** Every object nested anywhere in a rule's expressions (to find matches, dnat, verdicts). */
export function walk(x: unknown, visit: (o: Record<string, unknown>) => void): void {
  if (Array.isArray(x)) for (const y of x) walk(y, visit);
  else if (x && typeof x === 'object') {
    visit(x as Record<string, unknown>);
    for (const v of Object.values(x)) walk(v, visit);
  }
}

/** The destination port a rule matches (`tcp dport 8080`, `th dport 8080`), if any. */
export function ruleDport(r: NftJsonRule): number | undefined {
  let port: number | undefined;
  walk(r.expr, (o) => {
    const m = o.match as { left?: { payload?: { field?: string } }; right?: unknown } | undefined;
    if (m?.left?.payload?.field === 'dport' && typeof m.right === 'number') port = m.right;
  });
  return port;
}

/** The address and port of a rule's dnat statement, if any. */
export function ruleDnat(r: NftJsonRule): { addr?: string; port?: number } | undefined {
  let d: { addr?: string; port?: number } | undefined;
  walk(r.expr, (o) => {
    const x = o.dnat as { addr?: unknown; port?: unknown } | undefined;
    if (x && typeof x === 'object') d = { addr: typeof x.addr === 'string' ? x.addr : undefined, port: typeof x.port === 'number' ? x.port : undefined };
  });
  return d;
}

/** The chain a rule jumps or goes to, if any. */
export function ruleJump(r: NftJsonRule): string | undefined {
  let t: string | undefined;
  walk(r.expr, (o) => {
    const j = (o.jump ?? o.goto) as { target?: string } | undefined;
    if (j && typeof j.target === 'string') t = j.target;
  });
  return t;
}
