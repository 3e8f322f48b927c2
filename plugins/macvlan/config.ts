/**
 * macvlan config: ajv schema (compiled at build time), then the reference's rules and defaults
 * (plugins/main/macvlan/macvlan.go loadConf). Nothing on the system changes before
 * loadNetConf returns; the checks that need the kernel (master exists, mtu ≤ master's) are
 * made by the first batch of the ADD, which reads the master before creating anything.
 */
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import { parseMac } from '../../lib/skel/inputs';
import type { DNS } from '../../lib/types/result';
import { validateConf } from '../../lib/schema/validate';
import { macvlan as validateMacvlan } from '../../lib/generated/validators';

export type MacvlanMode = 'bridge' | 'private' | 'vepa' | 'passthru';

export interface MacvlanConf {
  raw: NetConf;
  cniVersion: string;
  name: string;
  /** Empty: use the interface of the default route (in the container netns if linkInContainer). */
  master: string;
  mode: MacvlanMode;
  /** 0: inherit the master's. */
  mtu: number;
  mac?: string;
  linkInContainer: boolean;
  bcqueuelen?: number;
  hasIpam: boolean;
  dns?: DNS;
}

/** The MAC asked for: `mac`, overridden by CNI_ARGS MAC=, overridden by runtimeConfig.mac (reference order). */
export function pickMac(conf: NetConf, argsMap: Record<string, string>): string | undefined {
  let mac = typeof conf.mac === 'string' && conf.mac ? conf.mac : undefined;
  if (argsMap.MAC) mac = argsMap.MAC;
  const rt = conf.runtimeConfig?.mac;
  if (typeof rt === 'string' && rt) mac = rt;
  if (mac === undefined) return undefined;
  const bytes = parseMac(mac);
  if (!bytes) throw new CniError(ErrCode.InvalidConfig, `invalid args ${mac} for MAC addr`);
  if (parseInt(bytes.slice(0, 2), 16) & 1) throw new CniError(ErrCode.InvalidConfig, `invalid MAC address ${mac}: multicast bit set`);
  return bytes;
}

export function loadNetConf(args: Pick<CmdArgs, 'conf' | 'argsMap'>): MacvlanConf {
  const c = args.conf;
  validateConf(validateMacvlan, c, 'macvlan');
  const mtu = c.mtu ?? 0;
  if (mtu !== 0 && mtu < 68) throw new CniError(ErrCode.InvalidConfig, `invalid MTU ${mtu}, must be at least 68 (or 0 for the master's)`);
  const mode: MacvlanMode = c.mode || 'bridge';
  return Object.freeze({
    raw: c,
    cniVersion: c.cniVersion,
    name: c.name,
    master: c.master ?? '',
    mode,
    mtu,
    mac: pickMac(c, args.argsMap),
    linkInContainer: c.linkInContainer === true,
    bcqueuelen: c.bcqueuelen,
    hasIpam: typeof c.ipam?.type === 'string' && c.ipam.type !== '',
    dns: c.dns,
  });
}
