/**
 * ptp config: ajv schema (compiled at build time), then the rules the schema cannot say.
 * Nothing on the system changes before loadNetConf returns.
 */
import type { CmdArgs } from '../../lib/skel/dispatch';
import type { DNS } from '../../lib/types/result';
import { CniError, ErrCode } from '../../lib/skel/errors';
import { validateConf } from '../../lib/schema/validate';
import { ptp as validatePtp } from '../../lib/generated/validators';
import type { BackendName } from '../../lib/netfilter/driver';

export interface PtpConf {
  cniVersion: string;
  name: string;
  ipMasq: boolean;
  ipMasqBackend?: BackendName;
  /** Both veth ends; 0 leaves the kernel default. */
  mtu: number;
  dns?: DNS;
}

export function loadNetConf(args: Pick<CmdArgs, 'conf'>): PtpConf {
  const c = args.conf;
  validateConf(validatePtp, c, 'ptp');
  // The reference fails later, inside its IPAM call ("no plugin name provided", code 999).
  if (typeof c.ipam?.type !== 'string' || c.ipam.type === '') {
    throw new CniError(ErrCode.InvalidConfig, 'ptp needs an IPAM plugin: "ipam.type" is missing');
  }
  const mtu = c.mtu ?? 0;
  if (mtu !== 0 && mtu < 68) throw new CniError(ErrCode.InvalidConfig, `invalid MTU ${mtu}: must be at least 68`);
  return Object.freeze({
    cniVersion: c.cniVersion,
    name: c.name,
    ipMasq: c.ipMasq === true,
    ipMasqBackend: c.ipMasqBackend || undefined,
    mtu,
    dns: c.dns,
  });
}
