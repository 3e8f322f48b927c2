/**
 * bandwidth config: ajv schema, then the reference's choice and checks (plugins/meta/bandwidth
 * main.go parseConfig): the limits at the top level win when any of their keys is there (Go
 * allocates the embedded entry then), else `runtimeConfig.bandwidth`; each rate needs its burst
 * and the other way round; a burst must stay under 4 GB. Rates are bit/s, bursts bits.
 */
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import { validateConf } from '../../lib/schema/validate';
import { bandwidth as validateBandwidth } from '../../lib/generated/validators';

export interface BandwidthEntry {
  /** Traffic to the container, bit/s (0: no limit). */
  ingressRate: number;
  /** Bits. */
  ingressBurst: number;
  /** Traffic from the container, bit/s (0: no limit). */
  egressRate: number;
  egressBurst: number;
}

export interface BandwidthConf {
  raw: NetConf;
  cniVersion: string;
  name: string;
  /** Undefined when no limit is configured at all. */
  bandwidth?: BandwidthEntry;
}

const LIMIT_KEYS = ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'] as const;
/** plugins v1.5 only (reverted in v1.6: containernetworking/plugins d44bbf28); we do not shape per subnet. */
const SUBNET_KEYS = ['unshapedSubnets', 'shapedSubnets'] as const;
const ENTRY_KEYS = [...LIMIT_KEYS, ...SUBNET_KEYS];

const MAX_UINT32 = 4294967295;

function validateRateAndBurst(rate: number, burst: number): void {
  if (burst === 0 && rate !== 0) throw new CniError(ErrCode.InvalidConfig, 'if rate is set, burst must also be set');
  if (rate === 0 && burst !== 0) throw new CniError(ErrCode.InvalidConfig, 'if burst is set, rate must also be set');
  if (Math.floor(burst / 8) >= MAX_UINT32) throw new CniError(ErrCode.InvalidConfig, 'burst cannot be more than 4GB');
  // tbf counts bytes: the reference would hand the kernel a rate of 0 (and a bucket of Inf ticks).
  if (rate !== 0 && rate < 8) throw new CniError(ErrCode.InvalidConfig, `rate ${rate} bit/s is below the smallest tbf rate (8 bit/s, one byte per second)`);
}

/** True when a limit is configured (the reference treats all-zero as "no limit"). */
export function isZero(b: BandwidthEntry): boolean {
  return b.ingressRate === 0 && b.ingressBurst === 0 && b.egressRate === 0 && b.egressBurst === 0;
}

export const shapesIngress = (b: BandwidthEntry): boolean => b.ingressRate > 0 && b.ingressBurst > 0;
export const shapesEgress = (b: BandwidthEntry): boolean => b.egressRate > 0 && b.egressBurst > 0;

export function loadNetConf(args: Pick<CmdArgs, 'conf'>): BandwidthConf {
  const c = args.conf;
  validateConf(validateBandwidth, c, 'bandwidth');
  const top = ENTRY_KEYS.some((k) => c[k] !== undefined);
  // The same keys either way (the schema describes both places alike).
  const src = top ? c : c.runtimeConfig?.bandwidth;
  let bandwidth: BandwidthEntry | undefined;
  if (src) {
    for (const k of SUBNET_KEYS) {
      const v = src[k];
      if (v && v.length > 0) {
        throw new CniError(
          ErrCode.UnsupportedField,
          `unsupported field "${k}": ${JSON.stringify(v)}`,
          'per-subnet shaping (reference plugins v1.5 only, reverted in v1.6) is not implemented; remove the key to shape all traffic',
        );
      }
    }
    const num = (k: (typeof LIMIT_KEYS)[number]): number => src[k] ?? 0;
    bandwidth = { ingressRate: num('ingressRate'), ingressBurst: num('ingressBurst'), egressRate: num('egressRate'), egressBurst: num('egressBurst') };
    validateRateAndBurst(bandwidth.ingressRate, bandwidth.ingressBurst);
    validateRateAndBurst(bandwidth.egressRate, bandwidth.egressBurst);
    if (isZero(bandwidth)) bandwidth = undefined;
  }
  return Object.freeze({ raw: c, cniVersion: c.cniVersion, name: c.name, bandwidth });
}
