/**
 * dnsname: containers on one network find each other by name and alias, like on a Docker
 * user-defined network. Chained after `bridge`; compatible with podman's dnsname config.
 *
 * One dnsmasq per network answers on the network's gateway address(es); it serves the
 * network's hosts file, keeps its domain local and forwards other names to the host's
 * resolvers. Every read-modify-write of a network's files, and every start/stop/reload of its
 * server, happens under the network's flock, so concurrent ADD/DEL/GC see a consistent file
 * and at most one live server.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode, wrapError } from '../../lib/skel/errors';
import { validAttachments } from '../../lib/skel/gc';
import type { Result } from '../../lib/types/result';
import { type DaemonSpec, ensureRunning, livePid, readyPid, stopDaemon } from '../../lib/daemon/daemon';
import { withLock } from '../../lib/lock/flock';
import { withRollback } from '../../lib/rollback';
import { FAILPOINTS, failpoint } from '../../lib/failpoint';
import { containerNames, type DnsnameConf } from './config';
import { requirePrevResult } from '../../lib/skel/inputs';
import { type NetPaths, buildDnsmasqConf, dnsmasqSpec, findDnsmasq, listenFromConf, netPaths, reloadDnsmasq, sameNetnsAsSelf, unreachableAncestor } from './dnsmasq';
import { type HostsLine, type Owner, attachmentCount, entriesOf, formatHosts, hostnamesFor, parseHosts, removeEntries, setEntries } from './hosts';

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new CniError(ErrCode.IOFailure, `failed to read ${path}: ${(e as Error).message}`);
  }
}

/** Write-then-rename, so dnsmasq never reads half a file on a concurrent reload. */
function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new CniError(ErrCode.IOFailure, `failed to write ${path}: ${(e as Error).message}`);
  }
}

/** The container's addresses: ips on a container-side interface (all ips if none says). */
function containerIps(prev: Result): { ips: string[]; gateways: string[] } {
  const ifaces = prev.interfaces ?? [];
  const onContainer = (prev.ips ?? []).filter((ip) => ip.interface === undefined || !!ifaces[ip.interface]?.sandbox);
  const ips = [...new Set(onContainer.map((ip) => ip.address.split('/')[0]!))];
  const gateways = [...new Set(onContainer.map((ip) => ip.gateway).filter((g): g is string => !!g && isIP(g) !== 0))];
  return { ips, gateways };
}

/** The network's server as written in its config (for finding, probing and stopping it). */
function existingSpec(network: string, paths: NetPaths): DaemonSpec {
  return dnsmasqSpec({ network, paths, listen: listenFromConf(readText(paths.conf)) });
}

/** SIGHUP for the live server, once it answers (a SIGHUP before its handler kills it). */
async function reload(spec: DaemonSpec): Promise<void> {
  const pid = await readyPid(spec);
  if (pid !== undefined) reloadDnsmasq(pid);
}

/**
 * Stops the network's server (if it runs) and removes its files. The lock stays: a process
 * waiting on it would otherwise lock an unlinked file while a later one locks a new file, and
 * both would run. The log stays for whoever looks into what the server did; hosts.d stays with
 * whatever others put there.
 */
async function retire(spec: DaemonSpec, paths: NetPaths): Promise<void> {
  await stopDaemon(spec, { locked: true });
  for (const f of [paths.hosts, paths.conf, paths.pidFile]) rmSync(f, { force: true });
}

/** Writes the edited hosts file and reloads the live server, or retires it when no entry is left. */
async function commitRemoval(network: string, paths: NetPaths, lines: HostsLine[]): Promise<void> {
  const spec = existingSpec(network, paths);
  if (attachmentCount(lines) === 0) {
    await retire(spec, paths);
    return;
  }
  writeAtomic(paths.hosts, formatHosts(lines));
  await reload(spec);
}

export async function cmdAdd(args: CmdArgs, conf: DnsnameConf): Promise<Result> {
  // Validate everything first (the config already is): a bad name leaves no file behind.
  const { name, aliases } = containerNames(args, conf);
  const prev = requirePrevResult(args);
  const { ips, gateways } = containerIps(prev);
  if (ips.length === 0) throw new CniError(ErrCode.InvalidConfig, 'prevResult has no container address to register');
  if (gateways.length === 0) {
    throw new CniError(ErrCode.InvalidConfig, 'prevResult has no gateway for dnsmasq to listen on', 'the bridge must be the gateway (isGateway: true)');
  }
  const bin = findDnsmasq(conf.dnsmasqPath);
  const paths = netPaths(conf.runDir, conf.name);
  try {
    mkdirSync(paths.hostsDir, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new CniError(ErrCode.IOFailure, `failed to create ${paths.hostsDir}: ${(e as Error).message}`);
  }
  const owner: Owner = { containerID: args.containerID, ifname: args.ifName };
  const names = hostnamesFor(name, aliases, conf.domainName);

  await withLock(paths.lock, async () => {
    await withRollback(async (undo) => {
      const oldConf = readText(paths.conf);
      const runAsRoot = unreachableAncestor(paths.dir);
      const newConf = buildDnsmasqConf({ network: conf.name, domain: conf.domainName, listen: gateways, paths, runAsRoot });
      const spec = dnsmasqSpec({ network: conf.name, paths, listen: gateways, bin });
      const oldHosts = readText(paths.hosts);
      const lines = setEntries(parseHosts(oldHosts), owner, ips, names);
      writeAtomic(paths.hosts, formatHosts(lines));
      undo.push('restore the hosts file', async () => {
        if (oldHosts) writeAtomic(paths.hosts, oldHosts);
        else rmSync(paths.hosts, { force: true });
        await reload(existingSpec(conf.name, paths));
      });
      if (newConf !== oldConf) {
        // SIGHUP does not re-read the config: a changed one (domain, gateways) needs a restart.
        await stopDaemon(spec, { locked: true });
        writeAtomic(paths.conf, newConf);
        undo.push('restore the dnsmasq config', async () => (oldConf ? writeAtomic(paths.conf, oldConf) : rmSync(paths.conf, { force: true })));
      }
      if (FAILPOINTS) failpoint('dnsname-before-server');
      // Under the network's lock (held here): the live server once it answers, or a new one
      // that already read the new hosts file.
      const { pid, started } = await ensureRunning(spec, { locked: true });
      if (!started) {
        reloadDnsmasq(pid);
      } else if (attachmentCount(parseHosts(oldHosts)) === 0) {
        // If this ADD fails later, the server it started goes unless older attachments need it
        // (then restoring the hosts file reloads it).
        undo.push('stop dnsmasq', () => retire(spec, paths));
      }
      if (FAILPOINTS) failpoint('dnsname-after-server');
    });
  });

  // The runtime writes these into the container's resolv.conf: our server first, our domain first.
  const dns = prev.dns ?? {};
  return {
    ...prev,
    cniVersion: conf.cniVersion,
    dns: {
      ...dns,
      nameservers: [...new Set([...gateways, ...(dns.nameservers ?? [])])],
      search: [...new Set([conf.domainName, ...(dns.search ?? [])])],
    },
  };
}

/** DEL: removes this attachment's lines; stops the server with the last one. Missing = done. */
export async function cmdDel(args: CmdArgs, conf: DnsnameConf): Promise<void> {
  const paths = netPaths(conf.runDir, conf.name);
  // Never create anything on DEL: no directory means nothing was ever added here.
  if (!existsSync(paths.dir)) return;
  await withLock(paths.lock, async () => {
    const { lines, removed } = removeEntries(parseHosts(readText(paths.hosts)), (o) => o.containerID === args.containerID && o.ifname === args.ifName);
    if (removed === 0 && attachmentCount(lines) > 0) return;
    try {
      await commitRemoval(conf.name, paths, lines);
    } catch (e) {
      throw wrapError(`failed to remove ${args.containerID}/${args.ifName} from network ${conf.name}`, e);
    }
  });
}

/** CHECK: the server runs next to us, and the attachment's lines are in its file as ADD wrote them. */
export async function cmdCheck(args: CmdArgs, conf: DnsnameConf): Promise<void> {
  const { name, aliases } = containerNames(args, conf);
  const prev = requirePrevResult(args);
  findDnsmasq(conf.dnsmasqPath);
  const paths = netPaths(conf.runDir, conf.name);
  if (!existsSync(paths.dir)) throw new CniError(ErrCode.Internal, `network ${conf.name} has no dnsname state in ${conf.runDir}`);
  await withLock(paths.lock, async () => {
    const pid = livePid(existingSpec(conf.name, paths));
    if (pid === undefined) throw new CniError(ErrCode.Internal, `dnsmasq for network ${conf.name} is not running`);
    if (!sameNetnsAsSelf(pid)) throw new CniError(ErrCode.Internal, `dnsmasq for network ${conf.name} (pid ${pid}) runs in another network namespace`);
    const mine = entriesOf(parseHosts(readText(paths.hosts)), { containerID: args.containerID, ifname: args.ifName });
    if (mine.length === 0) throw new CniError(ErrCode.Internal, `no name entry for ${args.containerID}/${args.ifName} in ${paths.hosts}`);
    const want = hostnamesFor(name, aliases, conf.domainName).join(' ');
    for (const ip of containerIps(prev).ips) {
      const line = mine.find((l) => l.ip === ip);
      if (!line) throw new CniError(ErrCode.Internal, `address ${ip} of ${args.containerID} is not in ${paths.hosts}`);
      if (line.names.join(' ') !== want) throw new CniError(ErrCode.Internal, `names for ${ip} are "${line.names.join(' ')}", expected "${want}"`);
    }
  });
}

/** GC: drops the lines of attachments not in cni.dev/valid-attachments; stops an empty network's server. */
export async function cmdGc(args: CmdArgs, conf: DnsnameConf): Promise<void> {
  const keep = new Set(validAttachments(args.conf).map((a) => `${a.containerID}\0${a.ifname}`));
  const paths = netPaths(conf.runDir, conf.name);
  if (!existsSync(paths.dir)) return;
  await withLock(paths.lock, async () => {
    const { lines, removed } = removeEntries(parseHosts(readText(paths.hosts)), (o) => !keep.has(`${o.containerID}\0${o.ifname}`));
    // Also a server left running with nothing to serve (a crash between steps) goes here.
    if (removed === 0 && attachmentCount(lines) > 0) return;
    await commitRemoval(conf.name, paths, lines);
  });
}

/** STATUS: available when the config is valid and dnsmasq can be run (else code 50). */
export async function cmdStatus(args: CmdArgs, conf: DnsnameConf): Promise<void> {
  findDnsmasq(conf.dnsmasqPath);
}
