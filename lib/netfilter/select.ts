/**
 * The one place that picks a netfilter driver, and the teardown and GC that run on all of them.
 *
 * Default: nftables when `nft` is installed, else iptables (the rule). The reference
 * (plugins:pkg/ip/ipmasq_linux.go SetupIPMasqForNetworks) prefers iptables and uses nftables
 * only when iptables is unusable; we differ on purpose. Both layouts match the reference's,
 * and DEL tears down on every installed driver, so mixing with the reference still cleans up.
 * What is installed is looked up on PATH (no process) unless the caller passes `available`.
 */
import { CniError, ErrCode } from '../skel/errors';
import { runSteps } from '../rollback';
import type { Attachment } from '../skel/gc';
import { type BackendName, type Concern, type DriverName, labelOf, type NetfilterDriver, type OwnerHint } from './driver';
import { type DriverOptions, onPath } from './common';
import { IptablesDriver } from './iptables/driver';
import { NftablesDriver } from './nftables/driver';
import { NullDriver } from './none';

export type Availability = Record<BackendName, boolean>;

/** Which drivers have their tools on PATH. A few stat calls, no process. */
export function availableBackends(path: string | undefined = process.env.PATH): Availability {
  return {
    nftables: onPath('nft', path),
    iptables: onPath('iptables-restore', path) && onPath('iptables-save', path),
  };
}

export interface SelectOptions extends DriverOptions {
  /** What is installed (default: looked up on PATH); injectable for tests and callers that know. */
  available?: Availability;
}

export function makeDriver(name: DriverName, opts: DriverOptions = {}): NetfilterDriver {
  if (name === 'none') return new NullDriver();
  return name === 'nftables' ? new NftablesDriver(opts) : new IptablesDriver(opts);
}

/**
 * The driver for setup and check. An explicit choice wins (and then fails loudly when its
 * tools are missing, rather than silently using the other); otherwise nftables if installed,
 * else iptables.
 */
export function selectDriver(pref?: DriverName | '' | null, opts: SelectOptions = {}): NetfilterDriver {
  if (pref !== undefined && pref !== null && pref !== '' && pref !== 'nftables' && pref !== 'iptables' && pref !== 'none') {
    throw new CniError(ErrCode.InvalidConfig, `unknown netfilter backend ${JSON.stringify(pref)} (want "nftables" or "iptables")`);
  }
  if (pref) return makeDriver(pref, opts);
  const have = opts.available ?? availableBackends();
  if (have.nftables) return makeDriver('nftables', opts);
  if (have.iptables) return makeDriver('iptables', opts);
  throw new CniError(ErrCode.Internal, 'no netfilter tool found: neither nft nor iptables-restore/iptables-save is on PATH');
}

/**
 * Runs `fn` on every installed driver at once and waits for all of them; the failures are
 * joined into one error. Teardown and GC use it: the container may have been set up with the
 * other driver (another version of the plugin, another config, or the reference plugin), and
 * each driver already treats "nothing there" as success.
 */
async function onEveryDriver(what: string, opts: SelectOptions, fn: (d: NetfilterDriver) => Promise<void>): Promise<void> {
  const available = opts.available ?? availableBackends();
  const names = (['iptables', 'nftables'] as const).filter((n) => available[n]);
  // A lone failure as it is; with two, both (whose messages name their backend) after the label.
  await runSteps(
    { mode: 'all', label: `${what} failed on ${names.length} backends`, bare: true, loneAsIs: true },
    names.map((n) => [n, () => fn(makeDriver(n, opts))] as const),
  );
}

/** Teardown of the owner's rules of these concerns on every installed driver. */
export async function teardownAll(owner: OwnerHint, concerns: readonly Concern[], opts: SelectOptions = {}): Promise<void> {
  await onEveryDriver(`${labelOf(concerns)} teardown`, opts, (d) => d.teardown(owner, concerns));
}

/** GC of one network's rules of these concerns on every installed driver. */
export async function gcAll(network: string, valid: readonly Attachment[], concerns: readonly Concern[], opts: SelectOptions = {}): Promise<void> {
  await onEveryDriver(`${labelOf(concerns)} GC`, opts, (d) => d.gc(network, valid, concerns));
}
