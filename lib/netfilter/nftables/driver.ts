/**
 * The nftables driver: masquerade and port maps in the reference's tables (masq.ts,
 * portmap.ts), the firewall in a table of ours (firewall.ts). Every operation, whatever concerns
 * it carries, reads once (`nft -j list table <t>` when it needs one table, else
 * `nft -j list ruleset`), renders from the layouts and applies one `nft -f -`: nft applies a
 * file as one transaction, so both families of the port maps change together or not at all.
 * Teardown and GC delete the owners' rules by handle.
 *
 * Processes per operation: 1 read + 1 write (none when nothing is to change); check = 1 read.
 * In the per-host service, concurrent teardowns share them (lib/batch.ts).
 */
import { batched } from '../../batch';
import { run, CommandError } from '../../exec/run';
import { CniError, ErrCode, wrapError } from '../../skel/errors';
import type { Attachment } from '../../skel/gc';
import { type Concern, concernsOf, labelOf, type NetfilterDriver, type Owner, type OwnerHint, type Want } from '../driver';
import { assertOwner, assertPrintable, type DriverOptions } from '../common';
import { deleteRuleLine, emptyRuleset, type NftRule, type NftRuleset, parseNftJson } from './json';
import { nftMasq } from './masq';
import { nftPorts } from './portmap';
import { nftFirewall } from './firewall';

/** One concern's layout: pure functions from (spec, ruleset as read) to nft lines or rules. */
export interface NftLayout<S extends Owner> {
  /** The tables it lives in, "family name". */
  readonly tables: readonly string[];
  /** Throws a config error (code 7) for input that could not be written; runs before any process. */
  validate(spec: S): void;
  setup(spec: S, rs: NftRuleset): string[];
  /** What setup would have made that is not in the ruleset, in words. */
  missing(spec: S, rs: NftRuleset): string[];
  /** The owner's rules (teardown deletes them by handle). */
  owned(owner: OwnerHint, rs: NftRuleset): NftRule[];
  /** This network's rules whose owner has no valid attachment (GC deletes them by handle). */
  stale(network: string, valid: readonly Attachment[], rs: NftRuleset): NftRule[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyLayout = NftLayout<any>;
const LAYOUTS: Record<Concern, AnyLayout> = { masq: nftMasq, ports: nftPorts, firewall: nftFirewall };

const script = (lines: readonly string[]): string | undefined => (lines.length ? lines.join('\n') + '\n' : undefined);
const deleteScript = (rules: readonly NftRule[]): string | undefined => script(rules.map(deleteRuleLine));

export class NftablesDriver implements NetfilterDriver {
  readonly name = 'nftables' as const;

  constructor(private readonly opts: DriverOptions = {}) {}

  /** One read of the tables the layouts use; a missing table reads as empty. */
  async read(layouts: readonly AnyLayout[]): Promise<NftRuleset> {
    const tables = [...new Set(layouts.flatMap((l) => l.tables))];
    const argv = tables.length === 1 ? ['nft', '-j', 'list', 'table', ...tables[0]!.split(' ')] : ['nft', '-j', 'list', 'ruleset'];
    const r = await run(argv, { netns: this.opts.netns, nothrow: true });
    if (r.exitCode !== 0) {
      if (tables.length === 1 && /No such file or directory/i.test(r.stderr)) return emptyRuleset();
      throw new CommandError(argv, r.exitCode, r.stderr, this.opts.netns);
    }
    return parseNftJson(r.stdout || '{"nftables":[]}');
  }

  /**
   * One transaction: reads, renders the `nft -f -` input from what it read and applies it. If
   * nft says a rule or table it meant to touch is gone (a concurrent DEL), it reads and tries
   * once more. `render` returning undefined means nothing to do.
   */
  private async readThenApply(layouts: readonly AnyLayout[], render: (rs: NftRuleset) => string | undefined): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const input = render(await this.read(layouts));
      if (input === undefined) return;
      try {
        await run(['nft', '-f', '-'], { netns: this.opts.netns, input });
        return;
      } catch (e) {
        if (attempt === 0 && e instanceof CommandError && /No such file or directory/i.test(e.stderr)) continue;
        throw e;
      }
    }
  }

  async setup(want: Want): Promise<void> {
    const parts = concernsOf(want).map((c) => ({ layout: LAYOUTS[c], spec: want[c]! as Owner }));
    for (const p of parts) p.layout.validate(p.spec);
    try {
      await this.readThenApply(
        parts.map((p) => p.layout),
        (rs) => script(parts.flatMap((p) => p.layout.setup(p.spec, rs))),
      );
    } catch (e) {
      throw wrapError(`failed to set up ${labelOf(concernsOf(want))} (nftables) for ${parts[0]?.spec.containerID}`, e);
    }
  }

  async check(want: Want): Promise<void> {
    const parts = concernsOf(want).map((c) => ({ layout: LAYOUTS[c], spec: want[c]! as Owner }));
    for (const p of parts) p.layout.validate(p.spec);
    const label = labelOf(concernsOf(want));
    let rs: NftRuleset;
    try {
      rs = await this.read(parts.map((p) => p.layout));
    } catch (e) {
      throw wrapError(`failed to read ${label} (nftables)`, e);
    }
    const missing = parts.flatMap((p) => p.layout.missing(p.spec, rs));
    if (missing.length > 0) {
      throw new CniError(ErrCode.Internal, `${label} (nftables) for ${parts[0]?.spec.containerID} incomplete: ${missing.join('; ')}`);
    }
  }

  async teardown(owner: OwnerHint, concerns: readonly Concern[]): Promise<void> {
    const layouts = concerns.map((c) => LAYOUTS[c]);
    try {
      assertOwner(owner);
      const key = `nftables teardown ${this.opts.netns ?? ''} ${[...concerns].sort().join(',')}`;
      await batched(key, owner, (owners) => this.teardownMany(owners, layouts));
    } catch (e) {
      throw wrapError(`failed to remove ${labelOf(concerns)} (nftables) for ${owner.containerID}`, e);
    }
  }

  /**
   * The teardowns of a wave of DELs in the service (lib/batch.ts): one read and one transaction
   * for all of them; should that fail, each on its own, so that one owner's error stays its own.
   */
  private async teardownMany(owners: readonly OwnerHint[], layouts: readonly AnyLayout[]): Promise<PromiseSettledResult<void>[]> {
    const one = (o: OwnerHint): Promise<void> => this.readThenApply(layouts, (rs) => deleteScript(layouts.flatMap((l) => l.owned(o, rs))));
    if (owners.length === 1) return Promise.allSettled([one(owners[0]!)]);
    try {
      await this.readThenApply(layouts, (rs) => script([...new Set(owners.flatMap((o) => layouts.flatMap((l) => l.owned(o, rs))).map(deleteRuleLine))]));
      return owners.map(() => ({ status: 'fulfilled', value: undefined }));
    } catch {
      return Promise.allSettled(owners.map(one));
    }
  }

  async gc(network: string, valid: readonly Attachment[], concerns: readonly Concern[]): Promise<void> {
    const layouts = concerns.map((c) => LAYOUTS[c]);
    try {
      assertPrintable('network name', network);
      await this.readThenApply(layouts, (rs) => deleteScript(layouts.flatMap((l) => l.stale(network, valid, rs))));
    } catch (e) {
      throw wrapError(`failed to garbage-collect ${labelOf(concerns)} (nftables) of network ${network}`, e);
    }
  }
}
