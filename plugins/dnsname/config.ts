/**
 * dnsname config: ajv schema (compiled at build time), then DNS syntax rules and defaults.
 * Nothing on the system changes before loadNetConf / containerNames return, so bad input is
 * refused with nothing written.
 *
 * Keys follow containers/dnsname (podman writes them): `domainName` and the `aliases`
 * capability (runtimeConfig.aliases = { <network name>: [names] }). Ours: `runDir` (where the
 * per-network files live) and `dnsmasqPath` (the binary; default: PATH, then /usr/sbin).
 */
import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import { validateConf } from '../../lib/schema/validate';
import { dnsname as validateDnsname, type DnsnameNetConf } from '../../lib/generated/validators';

/** containers/dnsname's directory, so a host has one place to look for these servers. */
export const DEFAULT_RUN_DIR = '/run/containers/cni/dnsname';
/** What podman puts in every network it creates. */
export const DEFAULT_DOMAIN = 'dns.podman';

export interface DnsnameConf {
  raw: NetConf & DnsnameNetConf;
  cniVersion: string;
  name: string;
  domainName: string;
  runDir: string;
  dnsmasqPath?: string;
}

const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * Why `name` is not a DNS host name (RFC 1123: dot-separated labels of letters, digits and
 * inner hyphens, 1-63 characters each, 253 in all), or undefined when it is one.
 */
export function hostnameProblem(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.length > 253) return `it is ${name.length} characters long (at most 253)`;
  for (const label of name.split('.')) {
    if (label.length === 0) return 'it has an empty label (leading, trailing or double dot)';
    if (label.length > 63) return `label "${label.slice(0, 20)}…" is ${label.length} characters long (at most 63)`;
    if (!LABEL_RE.test(label)) {
      return `label "${label}" may only hold letters, digits and inner hyphens`;
    }
  }
  return undefined;
}

/** The domain in canonical form (lower case, no trailing dot), or a code-7 error. */
export function checkDomain(domain: string): string {
  const d = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  const bad = hostnameProblem(d);
  if (bad) throw new CniError(ErrCode.InvalidConfig, `invalid domainName "${domain}": ${bad}`);
  return d.toLowerCase();
}

export function loadNetConf(args: CmdArgs): DnsnameConf {
  const c = args.conf;
  validateConf(validateDnsname, c, 'dnsname');
  return Object.freeze({
    raw: c,
    cniVersion: c.cniVersion,
    name: c.name,
    domainName: checkDomain(c.domainName ?? DEFAULT_DOMAIN),
    runDir: c.runDir ?? DEFAULT_RUN_DIR,
    dnsmasqPath: c.dnsmasqPath,
  });
}

/** Docker's short container ID length; Docker also resolves a container by it. */
const SHORT_ID = 12;

export interface ContainerNames {
  /** The container's name: CNI_ARGS K8S_POD_NAME, else the container ID. */
  name: string;
  /** Aliases for this network from runtimeConfig.aliases, without the name and duplicates. */
  aliases: string[];
}

/**
 * The names ADD registers. K8S_POD_NAME (sent by podman and CRI runtimes) must be a valid host
 * name. Without it the container ID is used; a 64-character ID is too long for a DNS label, so
 * then its first 12 characters (Docker's short ID) are the name.
 */
export function containerNames(args: CmdArgs, conf: DnsnameConf): ContainerNames {
  let name = args.argsMap.K8S_POD_NAME ?? '';
  if (name) {
    const bad = hostnameProblem(name);
    if (bad) throw new CniError(ErrCode.InvalidEnvironment, `invalid container name "${name}" in CNI_ARGS K8S_POD_NAME: ${bad}`);
  } else {
    name = args.containerID.length > 63 ? args.containerID.slice(0, SHORT_ID) : args.containerID;
    const bad = hostnameProblem(name);
    if (bad) {
      throw new CniError(
        ErrCode.InvalidEnvironment,
        `container ID "${args.containerID}" is not a valid DNS name (${bad}); pass the name in CNI_ARGS K8S_POD_NAME`,
      );
    }
  }
  const fqdnProblem = (n: string): string | undefined => hostnameProblem(`${n}.${conf.domainName}`);
  const tooLong = fqdnProblem(name);
  if (tooLong) throw new CniError(ErrCode.InvalidEnvironment, `container name "${name}" with domain "${conf.domainName}" is not a valid DNS name: ${tooLong}`);

  const all = conf.raw.runtimeConfig?.aliases?.[conf.name] ?? [];
  const seen = new Set([name.toLowerCase()]);
  const aliases: string[] = [];
  for (const a of all) {
    const bad = hostnameProblem(a) ?? fqdnProblem(a);
    if (bad) throw new CniError(ErrCode.InvalidConfig, `invalid alias "${a}" in runtimeConfig.aliases["${conf.name}"]: ${bad}`);
    if (seen.has(a.toLowerCase())) continue;
    seen.add(a.toLowerCase());
    aliases.push(a);
  }
  return { name, aliases };
}
