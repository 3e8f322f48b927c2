/**
 * tuning: a chained (meta) plugin. It changes network sysctls and link attributes (mac, mtu,
 * promisc, allmulti, txqueuelen) of CNI_IFNAME inside the container netns, saves the previous
 * values in <dataDir>/<containerID>_<ifName>.json, and puts them back on DEL. Its result is the
 * prevResult, with the interface's MAC updated when it changed it.
 *
 * Processes per ADD: one sysctl child in the netns (reads the old values and writes the new
 * ones; `nsenter --net` + this same program in a helper mode, see lib/sysctl/netns.ts) when
 * there are sysctls, and one `ip -batch` in the netns (reads the link, sets it, reads it back)
 * when there are link changes.
 * Sysctls go first, as in the reference: a later MTU change resets e.g. net.ipv6.conf.X.mtu.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { CmdArgs } from '../../lib/skel/dispatch';
import { CniError, ErrCode } from '../../lib/skel/errors';
import type { Result } from '../../lib/types/result';
import { ipBatch } from '../../lib/iproute/ip';
import { netnsExists } from '../../lib/iproute/netns';
import { netnsSysctl } from '../../lib/sysctl/netns';
import { withRollback } from '../../lib/rollback';
import { FAILPOINTS, failpoint } from '../../lib/failpoint';
import { validAttachments } from '../../lib/skel/gc';
import { requireNetns, requirePrevResult } from '../../lib/skel/inputs';
import { ALLOWLIST_FILE, hasLinkChanges, loadNetConf, type TuningConf } from './config';
import { parseAllowlist, sameSysctlValue } from './sysctl-keys';
import { applyBatch, backupFileName, formatBackup, mergeBackup, parseBackup, restoreBatch, savedValues, type Backup, type LinkState } from './batch';

function readAllowlist(): string[] | undefined {
  try {
    return parseAllowlist(readFileSync(ALLOWLIST_FILE, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CniError(ErrCode.IOFailure, `failed to read ${ALLOWLIST_FILE}: ${(e as Error).message}`);
  }
}

/** The config with the sysctl allowlist of this host applied (the definition's loadConf). */
export const loadConf = (args: CmdArgs): TuningConf => loadNetConf(args, readAllowlist());

function readBackup(file: string): Backup | undefined {
  try {
    return parseBackup(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Writes the backup atomically (temp file + rename), mode 0600 as the reference. */
function writeBackup(dir: string, file: string, b: Backup): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, formatBackup(b), { mode: 0o600 });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new CniError(ErrCode.IOFailure, `failed to save ${file}: ${(e as Error).message}`);
  }
}

const notFound = (m: string): boolean => /Cannot find device|does not exist|No such device/.test(m);

export async function cmdAdd(args: CmdArgs, conf: TuningConf): Promise<Result> {
  const prev = requirePrevResult(args);
  requireNetns(args.netns);
  const backup: Backup = {};
  return withRollback(async (undo) => {
    // 1. Sysctls: one child reads each old value and writes the new one; it undoes its own writes
    //    if one fails, so on error nothing is left changed.
    if (conf.sysctls.length) {
      const out = await netnsSysctl(args.netns, { write: conf.sysctls.map(([, p, v]) => [p, v]) });
      if (out.errors.length) {
        const e = out.errors[0]!;
        const key = conf.sysctls.find(([, p]) => p === e.path)?.[0] ?? e.path;
        throw new CniError(ErrCode.Internal, `failed to set sysctl ${key} (${e.path}): ${e.message}`);
      }
      backup.sysctl = {};
      for (const [, p] of conf.sysctls) {
        const old = out.values[p];
        if (old !== null && old !== undefined) backup.sysctl[p] = old;
      }
      const olds = backup.sysctl;
      undo.push('restore sysctls', () => netnsSysctl(args.netns, { write: Object.entries(olds), mode: 'best-effort' }));
    }

    // 2. Link attributes: read, set, read back in one batch.
    let newMac: string | undefined;
    if (hasLinkChanges(conf.link)) {
      const lines = applyBatch(args.ifName, conf.link);
      const out = await ipBatch(lines, { netns: args.netns, force: true });
      const failed = new Map(out.errors.map((e) => [e.line, e.message]));
      if (failed.has(0)) throw new CniError(ErrCode.Internal, `failed to get "${args.ifName}": ${failed.get(0)}`);
      const before = (out.shows[0] as LinkState[])[0]!;
      Object.assign(backup, savedValues(conf.link, before));
      const saved = savedValues(conf.link, before);
      undo.push(`restore ${args.ifName}`, () => ipBatch(restoreBatch(args.ifName, saved), { netns: args.netns, force: true }));
      const bad = out.errors.find((e) => e.line > 0 && e.line < lines.length - 1);
      if (bad) throw new CniError(ErrCode.Internal, `failed to tune ${args.ifName}: ${bad.message} (ip ${lines[bad.line]})`);
      newMac = (out.shows[1] as LinkState[] | undefined)?.[0]?.address;
    }

    // 3. The backup DEL restores from, merged with an earlier one (a repeated ADD keeps the originals).
    if (backup.sysctl || hasLinkChanges(conf.link)) {
      const file = join(conf.dataDir, backupFileName(args.containerID, args.ifName));
      const earlier = readBackup(file);
      writeBackup(conf.dataDir, file, mergeBackup(earlier, { ...backup, cniNetwork: args.conf.name }));
      undo.push(`put back ${file}`, async () => (earlier ? writeBackup(conf.dataDir, file, earlier) : rmSync(file, { force: true })));
    }
    if (FAILPOINTS) failpoint('after-apply');

    const result: Result = { ...prev, cniVersion: conf.cniVersion };
    if (conf.link.mac !== undefined && result.interfaces) {
      const mac = newMac ?? conf.link.mac;
      result.interfaces = result.interfaces.map((i) => (i.name === args.ifName ? { ...i, mac } : i));
    }
    return result;
  });
}

/**
 * DEL restores what the backup holds, then removes it. Idempotent: no backup, nothing to do. The
 * reference never fails a DEL here; neither do we (problems go to stderr), but unlike the
 * reference we also remove the backup when the netns or the link is gone, so it cannot leak.
 */
export async function cmdDel(args: CmdArgs, conf: TuningConf): Promise<void> {
  const file = join(conf.dataDir, backupFileName(args.containerID, args.ifName));
  if (!existsSync(file)) return;
  const b = readBackup(file);
  if (b && args.netns && netnsExists(args.netns)) {
    const problems: string[] = [];
    const lines = restoreBatch(args.ifName, b);
    if (lines.length) {
      const out = await ipBatch(lines, { netns: args.netns, force: true }).catch((e: Error) => ({ shows: [], errors: [{ line: 0, message: e.message }] }));
      for (const e of out.errors) if (!notFound(e.message)) problems.push(`${lines[e.line]}: ${e.message}`);
    }
    if (b.sysctl && Object.keys(b.sysctl).length) {
      const out = await netnsSysctl(args.netns, { write: Object.entries(b.sysctl), mode: 'best-effort' }).catch((e: Error) => ({ errors: [{ path: '*', message: e.message }] }));
      // A per-interface sysctl whose interface is gone has nothing left to restore.
      for (const e of out.errors) if (e.message !== 'no such sysctl') problems.push(`sysctl ${e.path}: ${e.message}`);
    }
    if (problems.length) process.stderr.write(`tuning DEL: could not restore everything: ${problems.join('; ')}\n`);
  }
  rmSync(file, { force: true });
}

/**
 * GC: removes the backups of this network's attachments that are not in
 * cni.dev/valid-attachments (their containers are gone, so there is nothing to restore). Only
 * backups that name this network (`cniNetwork`, which our ADD writes) are touched: a file name
 * says only `<containerID>_<ifname>`, and the reference's backups name no network.
 */
export async function cmdGc(args: CmdArgs, conf: TuningConf): Promise<void> {
  const valid = new Set(validAttachments(args.conf).map((a) => backupFileName(a.containerID, a.ifname)));
  let files: string[];
  try {
    files = readdirSync(conf.dataDir);
  } catch {
    return; // no backups at all
  }
  for (const f of files) {
    if (!f.endsWith('.json') || valid.has(f)) continue;
    const b = readBackup(join(conf.dataDir, f));
    if (b?.cniNetwork === args.conf.name) rmSync(join(conf.dataDir, f), { force: true });
  }
}

/** CHECK: every configured sysctl and link attribute still has the configured value. */
export async function cmdCheck(args: CmdArgs, conf: TuningConf): Promise<void> {
  requirePrevResult(args);
  requireNetns(args.netns);
  const [sys, link] = await Promise.all([
    netnsSysctl(args.netns, { read: conf.sysctls.map(([, p]) => p) }),
    ipBatch([`link show dev ${args.ifName}`], { netns: args.netns, force: true }),
  ]);
  for (const [key, p, want] of conf.sysctls) {
    const have = sys.values[p];
    if (have === null || have === undefined) throw new CniError(ErrCode.Internal, `sysctl ${key} (${p}) cannot be read`);
    if (!sameSysctlValue(want, have)) throw new CniError(ErrCode.Internal, `Error: Tuning configured value of ${p} is ${want}, current value is ${have}`);
  }
  const l = (link.shows[0] as LinkState[] | undefined)?.[0];
  if (!l) throw new CniError(ErrCode.Internal, `Cannot find container link ${args.ifName}`);
  const s = conf.link;
  const fail = (what: string, want: unknown, have: unknown): never => {
    throw new CniError(ErrCode.Internal, `Error: Tuning configured ${what} of ${args.ifName} is ${String(want)}, current value is ${String(have)}`);
  };
  if (s.mac !== undefined && l.address?.toLowerCase() !== s.mac) fail('Ethernet', s.mac, l.address);
  if (s.promisc && !l.flags.includes('PROMISC')) fail('promisc', true, false);
  if (s.mtu && l.mtu !== s.mtu) fail('MTU', s.mtu, l.mtu);
  if (s.allmulti !== undefined && l.flags.includes('ALLMULTI') !== s.allmulti) fail('all-multicast mode', s.allmulti, !s.allmulti);
  if (s.txQLen !== undefined && l.txqlen !== s.txQLen) fail('txQLen', s.txQLen, l.txqlen);
}
