/**
 * macvlan config: ajv schema (compiled at build time), then the reference's rules and defaults
 * (plugins/main/macvlan/macvlan.go loadConf). Nothing on the system changes before
 * loadNetConf returns; the checks that need the kernel (master exists, mtu ≤ master's) are
 * made by the first batch of the ADD, which reads the master before creating anything.
 */
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
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
  dns?: NetConf['dns'];
}

// net.ParseMAC also takes 8- and 20-byte forms; a macvlan only has 6-byte Ethernet addresses.
const MAC_RE = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** The MAC asked for: `mac`, overridden by CNI_ARGS MAC=, overridden by runtimeConfig.mac (reference order). */
export function pickMac(conf: NetConf, argsMap: Record<string, string>): string | undefined {
  let mac = typeof conf.mac === 'string' && conf.mac ? conf.mac : undefined;
  if (argsMap.MAC) mac = argsMap.MAC;
  const rt = conf.runtimeConfig?.mac;
  if (typeof rt === 'string' && rt) mac = rt;
  if (mac === undefined) return undefined;
  if (!MAC_RE.test(mac)) throw new CniError(ErrCode.InvalidConfig, `invalid args ${mac} for MAC addr`);
  const bytes = mac.toLowerCase().replace(/-/g, ':');
  if (parseInt(bytes.slice(0, 2), 16) & 1) throw new CniError(ErrCode.InvalidConfig, `invalid MAC address ${mac}: multicast bit set`);
  return bytes;
}

export function loadNetConf(args: Pick<CmdArgs, 'conf' | 'argsMap'>): MacvlanConf {
  const c = args.conf;
  validateConf(validateMacvlan, c, 'macvlan');
  const mtu = (c.mtu as number | undefined) ?? 0;
  if (mtu !== 0 && mtu < 68) throw new CniError(ErrCode.InvalidConfig, `invalid MTU ${mtu}, must be at least 68 (or 0 for the master's)`);
  const mode = ((c.mode as string | undefined) || 'bridge') as MacvlanMode;
  return Object.freeze({
    raw: c,
    cniVersion: c.cniVersion,
    name: c.name,
    master: (c.master as string | undefined) ?? '',
    mode,
    mtu,
    mac: pickMac(c, args.argsMap),
    linkInContainer: c.linkInContainer === true,
    bcqueuelen: c.bcqueuelen as number | undefined,
    hasIpam: typeof c.ipam?.type === 'string' && c.ipam.type !== '',
    dns: c.dns,
  });
}
