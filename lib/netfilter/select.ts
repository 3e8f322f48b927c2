/**
 * Which netfilter backend to use, and the teardown that runs on all of them.
 *
 * Default: nftables when `nft` is installed, else iptables (the rule). The reference
 * (plugins:pkg/ip/ipmasq_linux.go SetupIPMasqForNetworks) prefers iptables and uses nftables
 * only when iptables is unusable; we differ on purpose. Both layouts match the reference's,
 * and DEL tears down on every installed backend, so mixing with the reference still cleans up.
 */
import { asCniError, CniError, ErrCode } from '../skel/errors';
import type { BackendName, MasqSpec, NetfilterBackend } from './backend';
import type { Attachment } from '../skel/gc';
import { type BackendOptions, onPath } from './common';
import { IptablesBackend } from './iptables';
import { NftablesBackend } from './nftables';

/** Which backends have their tools on PATH. A few stat calls, no process. */
export function availableBackends(path: string | undefined = process.env.PATH): Record<BackendName, boolean> {
  return {
    nftables: onPath('nft', path),
    iptables: onPath('iptables-restore', path) && onPath('iptables-save', path),
  };
}

export function makeBackend(name: BackendName, opts: BackendOptions = {}): NetfilterBackend {
  return name === 'nftables' ? new NftablesBackend(opts) : new IptablesBackend(opts);
}

export interface SelectOptions extends BackendOptions {
  /** For tests: what is installed (default: looked up on PATH). */
  available?: Record<BackendName, boolean>;
}

/**
 * The backend for setup and check. An explicit choice wins (and then fails loudly when its
 * tools are missing, rather than silently using the other); otherwise nftables if installed,
 * else iptables.
 */
export function selectBackend(pref?: BackendName | '' | null, opts: SelectOptions = {}): NetfilterBackend {
  if (pref !== undefined && pref !== null && pref !== '' && pref !== 'nftables' && pref !== 'iptables') {
    throw new CniError(ErrCode.InvalidConfig, `unknown ipmasq backend ${JSON.stringify(pref)} (want "nftables" or "iptables")`);
  }
  if (pref) return makeBackend(pref, opts);
  const have = opts.available ?? availableBackends();
  if (have.nftables) return makeBackend('nftables', opts);
  if (have.iptables) return makeBackend('iptables', opts);
  throw new CniError(ErrCode.Internal, 'no netfilter tool found for masquerade: neither nft nor iptables-restore/iptables-save is on PATH');
}

/**
 * Runs `fn` on every installed backend at once and waits for all of them; the failures are
 * joined into one error (keeping their code when they share one, e.g. 11 "try again").
 * Teardowns use it: the container may have been set up with the other backend (another
 * version of the plugin, another config, or the reference plugin), and each backend already
 * treats "nothing there" as success.
 */
export async function onEveryBackend(what: string, available: Record<BackendName, boolean>, fn: (name: BackendName) => Promise<void>): Promise<void> {
  const names = (['iptables', 'nftables'] as const).filter((n) => available[n]);
  const settled = await Promise.allSettled(names.map((n) => fn(n)));
  const errors = settled.flatMap((r) => (r.status === 'rejected' ? [asCniError(r.reason)] : []));
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) {
    const code = errors.every((e) => e.code === errors[0]!.code) ? errors[0]!.code : ErrCode.Internal;
    throw new CniError(code, `${what} failed on ${errors.length} backends: ${errors.map((e) => e.message).join('; ')}`);
  }
}

/** Masquerade teardown on every installed backend (see onEveryBackend). */
export async function teardownMasqAll(spec: MasqSpec, opts: SelectOptions = {}): Promise<void> {
  await onEveryBackend('masquerade teardown', opts.available ?? availableBackends(), (n) => makeBackend(n, opts).teardownMasq(spec));
}

/** Masquerade GC of one network on every installed backend (see onEveryBackend). */
export async function gcMasqAll(network: string, valid: readonly Attachment[], opts: SelectOptions = {}): Promise<void> {
  await onEveryBackend('masquerade GC', opts.available ?? availableBackends(), (n) => makeBackend(n, opts).gcMasq(network, valid));
}
