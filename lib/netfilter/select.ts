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
 * Tears down on every installed backend: the container may have been set up with the other
 * one (another version of the plugin, another config, or the reference plugin). Each backend
 * already treats "nothing there" as success; the other failures are joined into one error
 * after all backends have run.
 */
export async function teardownMasqAll(spec: MasqSpec, opts: SelectOptions = {}): Promise<void> {
  const have = opts.available ?? availableBackends();
  const errors: CniError[] = [];
  for (const name of ['iptables', 'nftables'] as const) {
    if (!have[name]) continue;
    try {
      await makeBackend(name, opts).teardownMasq(spec);
    } catch (e) {
      errors.push(asCniError(e));
    }
  }
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) {
    // Keep a shared code (e.g. 11, try again) when both agree; otherwise it is generic.
    const code = errors.every((e) => e.code === errors[0]!.code) ? errors[0]!.code : ErrCode.Internal;
    throw new CniError(code, `masquerade teardown failed on ${errors.length} backends: ${errors.map((e) => e.message).join('; ')}`);
  }
}
