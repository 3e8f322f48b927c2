/**
 * portmap config: ajv schema (compiled at build time), then the reference's semantic rules
 * (plugins:plugins/meta/portmap/main.go parseConfig) and the backend choice. No side effects.
 */
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import { validateConf } from '../../lib/schema/validate';
import { portmap as validatePortmap, type PortmapNetConf } from '../../lib/generated/validators';
import type { BackendName, Owner, PortMapping, PortMapSpec, Protocol } from '../../lib/netfilter/driver';
import { parseIP } from '../../lib/ip/cidr';
import type { Result } from '../../lib/types/result';

export const DEFAULT_MARK_BIT = 13;

/** The mapping part is the driver's PortMapSpec without its owner. */
export interface PortMapConf extends Omit<PortMapSpec, keyof Owner> {
  cniVersion: string;
  name: string;
  /** Explicit backend, or undefined for the project's default. */
  backend?: BackendName;
  /** First IPv4 and first IPv6 address ("ip/prefix") of the container interface in prevResult. */
  addresses: string[];
  /** The host-side interface the container is routed through (for route_localnet), if known. */
  hostIf?: string;
}

const PROTOCOLS: Protocol[] = ['tcp', 'udp', 'sctp'];

function parseMappings(raw: NonNullable<PortmapNetConf['runtimeConfig']>['portMappings']): PortMapping[] {
  if (!raw) return [];
  return raw.map((m) => {
    if (m.containerPort <= 0 || m.containerPort > 65535) throw new CniError(ErrCode.InvalidConfig, `Invalid container port number: ${m.containerPort}`);
    if (m.hostPort <= 0 || m.hostPort > 65535) throw new CniError(ErrCode.InvalidConfig, `Invalid host port number: ${m.hostPort}`);
    // Runtimes send "tcp"; Docker and Kubernetes also spell it "TCP". Empty means tcp.
    const asked = (m.protocol || 'tcp').toLowerCase();
    const protocol = PROTOCOLS.find((p) => p === asked);
    if (!protocol) throw new CniError(ErrCode.InvalidConfig, `Invalid protocol ${JSON.stringify(m.protocol)}: want tcp, udp or sctp`);
    const hostIP = m.hostIP ?? '';
    if (hostIP !== '' && !parseIP(hostIP)) throw new CniError(ErrCode.InvalidConfig, `Invalid hostIP ${JSON.stringify(hostIP)}`);
    return { hostPort: m.hostPort, containerPort: m.containerPort, protocol, hostIP };
  });
}

/**
 * The container's addresses as the reference picks them: the first IPv4 and the first IPv6 of
 * the result whose interface (when given) is CNI_IFNAME inside a sandbox.
 */
export function containerAddresses(prev: Result | undefined, ifName: string): { addresses: string[]; hostIf?: string } {
  if (!prev) return { addresses: [] };
  const ifs = prev.interfaces ?? [];
  let v4: string | undefined;
  let v6: string | undefined;
  for (const ip of prev.ips ?? []) {
    const idx = ip.interface;
    if (idx !== undefined && idx !== null && idx >= 0 && idx < ifs.length && (ifs[idx]!.name !== ifName || !ifs[idx]!.sandbox)) continue;
    const v6addr = ip.address.includes(':');
    if (v6addr && !v6) v6 = ip.address;
    if (!v6addr && !v4) v4 = ip.address;
  }
  // The first host-side interface: the bridge for bridge, the host veth for ptp.
  const hostIf = ifs.find((i) => !i.sandbox)?.name;
  return { addresses: [v4, v6].filter((a): a is string => !!a), hostIf };
}

export function loadNetConf(args: Pick<CmdArgs, 'conf' | 'prevResult' | 'ifName'>): PortMapConf {
  const c = args.conf;
  validateConf(validatePortmap, c, 'portmap');
  if (c.markMasqBit !== undefined && c.externalSetMarkChain !== undefined) {
    throw new CniError(ErrCode.InvalidConfig, 'Cannot specify externalSetMarkChain and markMasqBit');
  }
  let backend = c.backend || undefined;
  const iptablesOnly = c.markMasqBit !== undefined || c.externalSetMarkChain !== undefined;
  if (backend === 'nftables' && iptablesOnly) {
    throw new CniError(ErrCode.InvalidConfig, 'markMasqBit and externalSetMarkChain are only supported by the iptables backend');
  }
  // Options only iptables understands pick iptables when no backend is named (as the reference).
  if (!backend && iptablesOnly) backend = 'iptables';
  const { addresses, hostIf } = containerAddresses(args.prevResult, args.ifName);
  return Object.freeze({
    cniVersion: c.cniVersion,
    name: c.name,
    snat: c.snat !== false,
    masqAll: c.masqAll === true,
    markMasqBit: c.markMasqBit ?? DEFAULT_MARK_BIT,
    externalSetMarkChain: c.externalSetMarkChain,
    conditionsV4: c.conditionsV4 ?? undefined,
    conditionsV6: c.conditionsV6 ?? undefined,
    backend,
    mappings: parseMappings(c.runtimeConfig?.portMappings),
    addresses,
    hostIf,
  });
}
