/**
 * firewall config: ajv schema, then the reference's defaults (plugins:plugins/meta/firewall/
 * firewall.go parseConf). podman writes `"backend": ""`, which means the default.
 */
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import { validateConf } from '../../lib/schema/validate';
import { firewall as validateFirewall } from '../../lib/generated/validators';
import type { BackendName } from '../../lib/netfilter/driver';
import type { IngressPolicy } from '../../lib/netfilter/driver';

export const DEFAULT_ADMIN_CHAIN = 'CNI-ADMIN';

export interface FirewallConf {
  cniVersion: string;
  name: string;
  backend?: BackendName;
  policy: IngressPolicy;
  adminChain: string;
}

export function loadNetConf(args: Pick<CmdArgs, 'conf'>): FirewallConf {
  const c = args.conf;
  validateConf(validateFirewall, c, 'firewall');
  const backend = c.backend || undefined;
  if (backend === 'firewalld') {
    // Refused, never silently replaced: a config asking for firewalld zones expects them.
    throw new CniError(ErrCode.UnsupportedField, 'unsupported field: backend="firewalld"', 'this firewall plugin implements the iptables and nftables backends only');
  }
  return Object.freeze({
    cniVersion: c.cniVersion,
    name: c.name,
    backend,
    policy: c.ingressPolicy || 'open',
    adminChain: c.iptablesAdminChainName || DEFAULT_ADMIN_CHAIN,
  });
}
