/**
 * bridge config: ajv schema (compiled at build time), then the reference's semantic rules and
 * defaults. Nothing on the system changes before loadNetConf returns.
 */
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import { parseMac } from '../../lib/skel/inputs';
import { validateConf } from '../../lib/schema/validate';
import { bridge as validateBridge } from '../../lib/generated/validators';
import type { AttachConf } from '../../lib/bridge/attach';

export const DEFAULT_BRIDGE = 'cni0';

/** The attachment's settings (lib/bridge/attach.ts) plus what only the bridge plugin has. */
export interface BridgeConf extends AttachConf {
  raw: NetConf;
  /** True when `ipam` names a plugin; `{}` or no ipam means a layer-2 only attachment. */
  hasIpam: boolean;
}

/** Keys of the reference's bridge that we accept but do not implement: refused (code 2), never ignored. */
const UNSUPPORTED: [string, (v: unknown) => boolean][] = [
  ['vlan', (v) => typeof v === 'number' && v !== 0],
  ['vlanTrunk', (v) => Array.isArray(v) && v.length > 0],
  ['macspoofchk', (v) => v === true],
  ['disableContainerInterface', (v) => v === true],
];

function pickMac(args: CmdArgs): string | undefined {
  // Later sources win, as in the reference: CNI_ARGS, then args.cni, then runtimeConfig.
  let mac: string | undefined = args.argsMap.MAC || undefined;
  const fromArgs = args.conf.args?.cni?.mac;
  if (typeof fromArgs === 'string' && fromArgs) mac = fromArgs;
  const fromRt = args.conf.runtimeConfig?.mac;
  if (typeof fromRt === 'string' && fromRt) mac = fromRt;
  if (mac === undefined) return undefined;
  // Colons only, as before: net.ParseMAC (the reference) would also take dashes.
  const parsed = parseMac(mac, { dashes: false });
  if (!parsed) throw new CniError(ErrCode.InvalidConfig, `invalid MAC address "${mac}"`);
  return parsed;
}

export function loadNetConf(args: CmdArgs): BridgeConf {
  const c = args.conf;
  validateConf(validateBridge, c, 'bridge');
  for (const [key, used] of UNSUPPORTED) {
    if (used(c[key])) {
      throw new CniError(ErrCode.UnsupportedField, `unsupported field: ${key}=${JSON.stringify(c[key])}`, 'this bridge plugin does not implement it');
    }
  }
  const hairpinMode = c.hairpinMode === true;
  const promiscMode = c.promiscMode === true;
  if (hairpinMode && promiscMode) {
    throw new CniError(ErrCode.InvalidConfig, 'cannot set hairpin mode and promiscuous mode at the same time');
  }
  const mtu = c.mtu ?? 0;
  if (mtu !== 0 && mtu < 68) throw new CniError(ErrCode.InvalidConfig, `invalid MTU ${mtu}: must be at least 68`);
  const isDefaultGateway = c.isDefaultGateway === true;
  return Object.freeze({
    raw: c,
    cniVersion: c.cniVersion,
    name: c.name,
    bridge: c.bridge ?? DEFAULT_BRIDGE,
    // isDefaultGateway implies isGateway (reference behaviour).
    isGateway: c.isGateway === true || isDefaultGateway,
    isDefaultGateway,
    forceAddress: c.forceAddress === true,
    ipMasq: c.ipMasq === true,
    ipMasqBackend: c.ipMasqBackend || undefined,
    mtu,
    hairpinMode,
    promiscMode,
    portIsolation: c.portIsolation === true,
    enableDad: c.enabledad === true,
    mac: pickMac(args),
    hasIpam: typeof c.ipam?.type === 'string' && c.ipam.type !== '',
    dns: c.dns,
  });
}
