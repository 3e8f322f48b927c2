/**
 * `nft -j list …` output for the nftables driver: the one parser (tables, chains and rules of
 * every family the listing holds) and the readers of a rule's expressions the layouts match on.
 * Pure.
 */
import { CniError, ErrCode } from '../../skel/errors';

export interface NftRule {
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
  rules: NftRule[];
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
  for (const it of items as (Record<string, Record<string, unknown>> | null)[]) {
    if (!it || typeof it !== 'object') continue;
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

/** The rules of one table ("inet cni_plugins_masquerade"), optionally of one chain. */
export function rulesOf(rs: NftRuleset, table: string, chain?: string): NftRule[] {
  return rs.rules.filter((r) => `${r.family} ${r.table}` === table && (chain === undefined || r.chain === chain));
}

/** The line that deletes a rule by its handle. */
export const deleteRuleLine = (r: NftRule): string => `delete rule ${r.family} ${r.table} ${r.chain} handle ${r.handle}`;

/** Every object nested anywhere in a rule's expressions (to find matches, dnat, verdicts). */
export function walk(x: unknown, visit: (o: Record<string, unknown>) => void): void {
  if (Array.isArray(x)) for (const y of x) walk(y, visit);
  else if (x && typeof x === 'object') {
    visit(x as Record<string, unknown>);
    for (const v of Object.values(x)) walk(v, visit);
  }
}

/** The destination port a rule matches (`tcp dport 8080`, `th dport 8080`), if any. */
export function ruleDport(r: NftRule): number | undefined {
  let port: number | undefined;
  walk(r.expr, (o) => {
    const m = o.match as { left?: { payload?: { field?: string } }; right?: unknown } | undefined;
    if (m?.left?.payload?.field === 'dport' && typeof m.right === 'number') port = m.right;
  });
  return port;
}

/** The address and port of a rule's dnat statement, if any. */
export function ruleDnat(r: NftRule): { addr?: string; port?: number } | undefined {
  let d: { addr?: string; port?: number } | undefined;
  walk(r.expr, (o) => {
    const x = o.dnat as { addr?: unknown; port?: unknown } | undefined;
    if (x && typeof x === 'object') d = { addr: typeof x.addr === 'string' ? x.addr : undefined, port: typeof x.port === 'number' ? x.port : undefined };
  });
  return d;
}

/** The chain a rule jumps or goes to, if any. */
export function ruleJump(r: NftRule): string | undefined {
  let t: string | undefined;
  walk(r.expr, (o) => {
    const j = (o.jump ?? o.goto) as { target?: string } | undefined;
    if (j && typeof j.target === 'string') t = j.target;
  });
  return t;
}
