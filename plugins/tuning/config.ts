/**
 * tuning config: ajv schema, then the reference's merge order (plugins/meta/tuning/tuning.go
 * parseConf): `mac` < CNI_ARGS MAC < runtimeConfig.mac < args.cni.mac, and args.cni overrides
 * sysctl entries, promisc, mtu, allmulti, txQLen. Sysctl keys are resolved to paths here, so a
 * forbidden key is refused before anything is touched.
 */
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import { parseMac } from '../../lib/skel/inputs';
import { validateConf } from '../../lib/schema/validate';
import { tuning as validateTuning } from '../../lib/generated/validators';
import { checkAllowlist, sysctlPath } from './sysctl-keys';

export const DEFAULT_DATA_DIR = '/run/cni/tuning';
export const ALLOWLIST_FILE = '/etc/cni/tuning/allowlist.conf';

export interface LinkSettings {
  mac?: string;
  mtu?: number;
  /** Only `true` acts, as in the reference (promisc:false does not turn it off). */
  promisc?: boolean;
  allmulti?: boolean;
  txQLen?: number;
}

export interface TuningConf {
  raw: NetConf;
  cniVersion: string;
  dataDir: string;
  /** [key as configured, /proc/sys path, value], in config order. */
  sysctls: [string, string, string][];
  link: LinkSettings;
}

function normMac(mac: string): string {
  const parsed = parseMac(mac);
  if (!parsed) throw new CniError(ErrCode.InvalidConfig, `invalid args ${mac} for MAC addr`);
  return parsed;
}

/** True when the config asks for any link attribute change. */
export function hasLinkChanges(l: LinkSettings): boolean {
  return l.mac !== undefined || !!l.mtu || l.promisc === true || l.allmulti !== undefined || l.txQLen !== undefined;
}

export function loadNetConf(args: Pick<CmdArgs, 'conf' | 'argsMap' | 'ifName'>, allowlist?: string[]): TuningConf {
  const c = args.conf;
  validateConf(validateTuning, c, 'tuning');
  const a = c.args?.cni ?? {};
  const sys: Record<string, string> = { ...(c.sysctl ?? {}), ...(a.sysctl ?? {}) };

  let mac = typeof c.mac === 'string' && c.mac ? c.mac : undefined;
  if (args.argsMap.MAC) mac = args.argsMap.MAC;
  const rt = c.runtimeConfig?.mac;
  if (typeof rt === 'string' && rt) mac = rt;
  if (a.mac !== undefined) mac = a.mac || undefined;

  const mtu = a.mtu ?? c.mtu;
  if (mtu !== undefined && mtu !== 0 && mtu < 68) throw new CniError(ErrCode.InvalidConfig, `invalid MTU ${mtu}: must be at least 68`);
  const link: LinkSettings = {};
  if (mac !== undefined) link.mac = normMac(mac);
  if (mtu) link.mtu = mtu;
  const promisc = a.promisc ?? c.promisc;
  if (promisc === true) link.promisc = true;
  const allmulti = a.allmulti ?? c.allmulti;
  if (allmulti !== undefined) link.allmulti = allmulti;
  const txQLen = a.txQLen ?? c.txQLen;
  if (txQLen !== undefined) link.txQLen = txQLen;

  const keys = Object.keys(sys);
  checkAllowlist(keys, allowlist);
  return Object.freeze({
    raw: c,
    cniVersion: c.cniVersion,
    dataDir: c.dataDir || DEFAULT_DATA_DIR,
    sysctls: keys.map((k): [string, string, string] => [k, sysctlPath(k, args.ifName), sys[k]!]),
    link,
  });
}
