/**
 * The iptables driver: the reference's layouts (masq.ts, portmap.ts, firewall.ts) in the nat
 * and filter tables of iptables (IPv4) and ip6tables (IPv6). Every operation, whatever concerns
 * it carries, reads each table it needs once per family (`iptables-save -t <table>`), renders
 * the lines from the layouts, and applies one `iptables-restore --noflush -w` per family.
 * Setup is one transaction across the families: when IPv6 fails, the IPv4 restore already
 * applied is undone with its inverse (save.ts invertRestore). Teardown and GC run every family,
 * at once (each restore waits for the xtables lock, -w), even when one fails (a removal is not
 * rolled back), and join the failures.
 *
 * Processes per operation, per family touched: 1 read per table + 1 restore (none when nothing
 * is to change); setup and check touch the families of the addresses, teardown the installed
 * ones (masquerade: only the addresses' families when they are known), GC the installed ones.
 */
import { readFileSync } from 'node:fs';
import { batched, shared } from '../../batch';
import { run, CommandError } from '../../exec/run';
import type { Family } from '../../ip/cidr';
import { CniError, ErrCode, wrapError } from '../../skel/errors';
import type { Attachment } from '../../skel/gc';
import { type Concern, concernsOf, labelOf, type NetfilterDriver, type Owner, type OwnerHint, type Want } from '../driver';
import { assertOwner, assertPrintable, type DriverOptions, onPath } from '../common';
import { runSteps } from '../../rollback';
import { invertRestore, IPT_TOOLS, type IptTable, parseSaveTable, restoreScript, saveTable, type SavedTable } from './save';
import { iptMasq } from './masq';
import { iptPorts } from './portmap';
import { iptFirewall } from './firewall';

/** One concern's layout: pure functions from (spec, family, table as read) to restore lines. */
export interface IptLayout<S extends Owner> {
  readonly table: IptTable;
  /** Throws a config error (code 7) for input that could not be written; runs before any process. */
  validate(spec: S): void;
  /** The families setup and check touch. */
  families(spec: S): Family[];
  setup(spec: S, family: Family, t: SavedTable): string[];
  /** What setup would have made that is not in the table, in words. */
  missing(spec: S, family: Family, t: SavedTable): string[];
  /** The families teardown searches (of those installed). */
  teardownFamilies(owner: OwnerHint): Family[];
  teardown(owner: OwnerHint, family: Family, t: SavedTable): string[];
  gc(network: string, valid: readonly Attachment[], family: Family, t: SavedTable): string[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyLayout = IptLayout<any>;
const LAYOUTS: Record<Concern, AnyLayout> = { masq: iptMasq, ports: iptPorts, firewall: iptFirewall };

type State = Partial<Record<IptTable, SavedTable>>;
/** Restore lines per table, in the order they go into the script. */
type Sections = Map<IptTable, string[]>;

const tool = (f: Family): string => IPT_TOOLS[f].name;
const union = (lists: Family[][]): Family[] => ([4, 6] as const).filter((f) => lists.some((l) => l.includes(f)));
const tablesOf = (layouts: readonly AnyLayout[]): IptTable[] => [...new Set(layouts.map((l) => l.table))];

function sectionsOf(parts: readonly { layout: AnyLayout; lines: string[] }[]): Sections {
  const s: Sections = new Map();
  for (const p of parts) s.set(p.layout.table, [...(s.get(p.layout.table) ?? []), ...p.lines]);
  return s;
}

/** The restore input of one family: one `*table … COMMIT` per table with lines. */
function scriptOf(sections: Sections): string | undefined {
  const text = [...sections].map(([t, lines]) => restoreScript(t, lines) ?? '').join('');
  return text || undefined;
}

/** Restore errors that mean a rule we meant to delete vanished (a concurrent DEL). */
const VANISHED = /No chain\/target\/match|Bad rule|does a matching rule exist/i;

export interface IptablesOptions extends DriverOptions {
  /** Which families have their tools installed (default: looked up on PATH); for tests. */
  families?: Family[];
}

export class IptablesDriver implements NetfilterDriver {
  readonly name = 'iptables' as const;

  constructor(private readonly opts: IptablesOptions = {}) {}

  private installed(): Family[] {
    return this.opts.families ?? ([4, 6] as const).filter((f) => onPath(IPT_TOOLS[f].save));
  }

  /** One read of each table, of one family; a table the kernel does not have reads as empty. */
  private async read(family: Family, tables: readonly IptTable[]): Promise<State> {
    const st: State = {};
    for (const t of tables) st[t] = parseSaveTable(await saveTable(family, t, this.opts.netns), t);
    return st;
  }

  private restore(family: Family, script: string): Promise<unknown> {
    return run([IPT_TOOLS[family].restore, '--noflush', '-w'], { netns: this.opts.netns, input: script });
  }

  /**
   * One family's transaction: reads, renders from what it read, applies. If the restore fails
   * because a rule it meant to delete vanished meanwhile, it reads and tries once more. Returns
   * what it applied and the state that was rendered from, or undefined when nothing changed.
   */
  private async readThenApply(family: Family, tables: readonly IptTable[], render: (st: State) => Sections): Promise<{ sections: Sections; before: State } | undefined> {
    for (let attempt = 0; ; attempt++) {
      const before = await this.read(family, tables);
      const sections = render(before);
      const script = scriptOf(sections);
      if (script === undefined) return undefined;
      try {
        await this.restore(family, script);
        return { sections, before };
      } catch (e) {
        if (attempt === 0 && e instanceof CommandError && VANISHED.test(e.stderr)) continue;
        throw e;
      }
    }
  }

  async setup(want: Want): Promise<void> {
    const parts = concernsOf(want).map((c) => ({ layout: LAYOUTS[c], spec: want[c]! as Owner }));
    for (const p of parts) p.layout.validate(p.spec);
    const context = (f: Family): string => `failed to set up ${labelOf(concernsOf(want))} (${tool(f)}) for ${parts[0]?.spec.containerID}`;
    const applied: { family: Family; sections: Sections; before: State }[] = [];
    for (const f of union(parts.map((p) => p.layout.families(p.spec)))) {
      const mine = parts.filter((p) => p.layout.families(p.spec).includes(f));
      try {
        const done = await this.readThenApply(f, tablesOf(mine.map((p) => p.layout)), (st) =>
          sectionsOf(mine.map((p) => ({ layout: p.layout, lines: p.layout.setup(p.spec, f, st[p.layout.table]!) }))),
        );
        if (done) applied.push({ family: f, ...done });
      } catch (e) {
        const err = wrapError(context(f), e);
        await this.rollback(applied);
        throw err;
      }
    }
  }

  /**
   * Undoes the restores of a setup whose later family failed, newest first, each with the
   * inverse of its lines. A failed undo goes to stderr and never replaces the setup's error.
   */
  private async rollback(applied: readonly { family: Family; sections: Sections; before: State }[]): Promise<void> {
    for (const a of [...applied].reverse()) {
      const inverse: Sections = new Map([...a.sections].map(([t, lines]) => [t, invertRestore(lines, a.before[t]!)]));
      const script = scriptOf(inverse);
      if (script === undefined) continue;
      try {
        await this.restore(a.family, script);
      } catch (e) {
        process.stderr.write(`rollback: failed to undo the ${tool(a.family)} rules: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
  }

  async check(want: Want): Promise<void> {
    const parts = concernsOf(want).map((c) => ({ layout: LAYOUTS[c], spec: want[c]! as Owner }));
    for (const p of parts) p.layout.validate(p.spec);
    const label = labelOf(concernsOf(want));
    const missing: string[] = [];
    for (const f of union(parts.map((p) => p.layout.families(p.spec)))) {
      const mine = parts.filter((p) => p.layout.families(p.spec).includes(f));
      let st: State;
      try {
        st = await this.read(f, tablesOf(mine.map((p) => p.layout)));
      } catch (e) {
        throw wrapError(`failed to read ${label} (${tool(f)})`, e);
      }
      for (const p of mine) missing.push(...p.layout.missing(p.spec, f, st[p.layout.table]!));
    }
    if (missing.length > 0) {
      throw new CniError(ErrCode.Internal, `${label} (iptables) for ${parts[0]?.spec.containerID} incomplete: ${missing.join('; ')}`);
    }
  }

  async teardown(owner: OwnerHint, concerns: readonly Concern[]): Promise<void> {
    assertOwner(owner);
    const layouts = concerns.map((c) => LAYOUTS[c]);
    const families = union(layouts.map((l) => l.teardownFamilies(owner))).filter((f) => this.installed().includes(f));
    await this.everyFamily(families, (f) => `failed to remove ${labelOf(concerns)} (${tool(f)}) for ${owner.containerID}`, layouts, (l, f, t) => l.teardown(owner, f, t));
  }

  async gc(network: string, valid: readonly Attachment[], concerns: readonly Concern[]): Promise<void> {
    assertPrintable('network name', network);
    const layouts = concerns.map((c) => LAYOUTS[c]);
    await this.everyFamily(this.installed(), (f) => `failed to garbage-collect ${labelOf(concerns)} (${tool(f)}) of network ${network}`, layouts, (l, f, t) =>
      l.gc(network, valid, f, t),
    );
  }

  /** Teardown and GC: one transaction per family, the families at once, the failures joined. */
  private async everyFamily(
    families: readonly Family[],
    context: (f: Family) => string,
    layouts: readonly AnyLayout[],
    lines: (l: AnyLayout, f: Family, t: SavedTable) => string[],
  ): Promise<void> {
    // Nothing of ours can be in a table the netns does not have: skip the reads (an
    // iptables-save costs 10-45 ms; the check one `nft list tables` when nft is there).
    const present = this.opts.probeTables === false ? undefined : await tablesPresent(this.opts.netns);
    const needed = tablesOf(layouts);
    const todo = present ? families.filter((f) => needed.some((t) => present.has(`${f}:${t}`))) : families;
    await runSteps(
      { mode: 'all', label: 'iptables', loneAsIs: true },
      todo.map((f) => {
        const render = (st: State): Sections => sectionsOf(layouts.map((l) => ({ layout: l, lines: lines(l, f, st[l.table]!) })));
        return [context(f), () => this.readThenApply(f, tablesOf(layouts), render)] as const;
      }),
    );
  }
}

/**
 * Which iptables tables this netns has, as "4:nat", "6:filter"; undefined when that cannot be
 * told without reading them. iptables-nft keeps its tables as nftables tables of family ip/ip6
 * (`nft list tables`), legacy iptables lists the loaded ones in /proc/net/ip{,6}_tables_names.
 * A table that appears in neither holds no rule, so teardown and GC have nothing to read there.
 * Not for another netns (its /proc/net is not ours to read), nor without nft.
 */
export async function tablesPresent(netns: string | undefined, path = process.env.PATH): Promise<ReadonlySet<string> | undefined> {
  if (netns !== undefined || !onPath('nft', path)) return undefined;
  // Concurrent teardowns in the service (a wave of DELs) share one read that began after them.
  return batched('iptables tables present', undefined, (items) => shared(items, readTablesPresent));
}

async function readTablesPresent(): Promise<ReadonlySet<string> | undefined> {
  const r = await run(['nft', 'list', 'tables'], { nothrow: true });
  if (r.exitCode !== 0) return undefined;
  const present = new Set<string>();
  for (const m of r.stdout.matchAll(/^table (ip6?) (\S+)$/gm)) present.add(`${m[1] === 'ip' ? 4 : 6}:${m[2]}`);
  for (const [f, file] of [
    [4, '/proc/net/ip_tables_names'],
    [6, '/proc/net/ip6_tables_names'],
  ] as const) {
    try {
      for (const t of readFileSync(file, 'utf8').split('\n')) if (t) present.add(`${f}:${t}`);
    } catch {
      /* legacy iptables not loaded: no legacy tables */
    }
  }
  return present;
}
