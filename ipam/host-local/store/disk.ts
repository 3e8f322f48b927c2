/**
 * The reference's on-disk store (backend/disk/backend.go), byte for byte:
 *
 *   <dataDir>/<network>/<ip>                  lease, O_EXCL, 0600, "<containerID>\r\n<ifname>"
 *   <dataDir>/<network>/last_reserved_ip.<N>  the address last reserved in range set N
 *   <dataDir>/<network>/lock                  flock, shared with the reference's go-filemutex
 *
 * so leases written by either implementation are honoured and released by the other.
 *
 * Finding the leases of one attachment (duplicate check, DEL, CHECK) is where the reference
 * reads every lease file. We keep a derived index outside the lease directory,
 * `<dataDir>/.host-local-index/<network>/`, mapping sha256(lease content) to addresses in
 * 256 bucket files, and trust it only while the lease directory is unchanged since we last
 * wrote it: every lease create or unlink, ours or the reference's, updates the directory's
 * mtime. Coarse kernel timestamps could hide a change made in the same tick as ours, so when
 * we seal the index we move the directory's mtime a few microseconds back and record that
 * value (the `stamp`); any later change by anyone sets a current time, which differs. A
 * mismatch (or no stamp, or any index error) means one full scan, as the reference does, and
 * a rebuild. Answers taken from the index are re-checked against the lease files they name.
 */
import {
  type Dirent,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  constants,
  writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { type IP, formatIP, parseIP } from '../../../lib/ip/cidr';
import { withLock } from '../../../lib/lock/flock';
import { CniError, ErrCode } from '../../../lib/skel/errors';
import { type Attachment, type GcOutcome, type Store, isValidLease, leaseContent, legacyContent } from './store';

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';
const LAST_IP_PREFIX = 'last_reserved_ip.';
/** Starts with a dot, which a network name (container-ID charset) cannot. */
export const INDEX_ROOT = '.host-local-index';
/** How far back the sealed mtime is moved: well above the ~240 ns a double keeps at today's epoch. */
const SEAL_BACK_NS = 10_000n;

function ioError(what: string, e: unknown): CniError {
  return new CniError(ErrCode.IOFailure, `${what}: ${(e as Error).message}`);
}

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

const keyOf = (content: string): string => createHash('sha256').update(content).digest('hex');

/**
 * Writes one of our state files whole, through a temp file and a rename: a symlink planted in
 * its place is replaced, never followed onto a file outside the directory.
 */
function writeStateFile(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
}

export class DiskStore implements Store {
  /** `<dataDir>/<network>`: the lease directory. */
  readonly dir: string;
  readonly indexDir: string;
  /** unknown until checked in a locked section; off = scan like the reference. */
  private index: 'unknown' | 'valid' | 'off' = 'unknown';
  /** Leases or index changed in this locked section: seal before unlocking. */
  private dirty = false;
  private stampDropped = false;

  constructor(network: string, dataDir = DEFAULT_DATA_DIR, opts: { create?: boolean } = {}) {
    this.dir = join(dataDir, network);
    this.indexDir = join(dataDir, INDEX_ROOT, network);
    if (opts.create ?? true) {
      try {
        mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      } catch (e) {
        throw ioError(`failed to create ${this.dir}`, e);
      }
    }
  }

  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(join(this.dir, 'lock'), async () => {
      this.index = 'unknown';
      this.dirty = false;
      this.stampDropped = false;
      try {
        return await fn();
      } finally {
        this.seal();
      }
    });
  }

  async reserve(id: string, ifname: string, ip: IP, rangeID: string): Promise<boolean> {
    const name = formatIP(ip);
    const path = join(this.dir, name);
    this.ensureIndex();
    this.beginMutation();
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (e) {
      if (errno(e) === 'EEXIST') return false;
      throw ioError(`failed to create lease ${path}`, e);
    }
    const content = leaseContent(id, ifname);
    try {
      writeSync(fd, content);
      closeSync(fd);
    } catch (e) {
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
      unlinkSync(path);
      throw ioError(`failed to write lease ${path}`, e);
    }
    if (this.index === 'valid') this.indexAdd(content, name);
    try {
      writeStateFile(join(this.dir, LAST_IP_PREFIX + rangeID), name);
    } catch (e) {
      throw ioError('failed to record the last reserved address', e);
    }
    return true;
  }

  async lastReservedIP(rangeID: string): Promise<IP | undefined> {
    try {
      return parseIP(readFileSync(join(this.dir, LAST_IP_PREFIX + rangeID), 'utf8').trim());
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      throw e;
    }
  }

  async getByID(id: string, ifname: string): Promise<IP[]> {
    return [...this.find(leaseContent(id, ifname)), ...this.find(legacyContent(id))].map((n) => parseIP(n)!);
  }

  async findByID(id: string, ifname: string): Promise<boolean> {
    return this.find(leaseContent(id, ifname)).length > 0 || this.find(legacyContent(id)).length > 0;
  }

  async releaseByID(id: string, ifname: string): Promise<void> {
    let content = leaseContent(id, ifname);
    let names = this.find(content);
    if (names.length === 0) {
      // Files written before ifname was recorded hold only the id.
      content = legacyContent(id);
      names = this.find(content);
    }
    for (const n of names) this.remove(n, content);
  }

  async releaseIP(ip: IP, id: string, ifname: string): Promise<void> {
    const name = formatIP(ip);
    const content = leaseContent(id, ifname);
    this.ensureIndex();
    if (this.readLease(name) === content) this.remove(name, content);
  }

  async isReserved(ip: IP): Promise<boolean> {
    return existsSync(join(this.dir, formatIP(ip)));
  }

  /** Every leased address, from one directory listing (no file is read). */
  async listReserved(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const d of this.readDir()) {
      const ip = d.isFile() ? parseIP(d.name) : undefined;
      if (ip) out.add(formatIP(ip));
    }
    return out;
  }

  async gc(valid: Attachment[]): Promise<GcOutcome> {
    const out: GcOutcome = { released: [], errors: [] };
    const leases = this.scan();
    for (const [name, content] of leases) {
      if (isValidLease(content, valid)) continue;
      this.beginMutation();
      try {
        unlinkSync(join(this.dir, name));
        leases.delete(name);
        out.released.push(parseIP(name)!);
      } catch (e) {
        if (errno(e) === 'ENOENT') leases.delete(name);
        else out.errors.push(`failed to release ${name}: ${(e as Error).message}`);
      }
    }
    // We just read everything: leave a fresh index behind.
    this.rebuild(leases);
    return out;
  }

  // --- leases -------------------------------------------------------------------------

  private readDir(): Dirent[] {
    try {
      return readdirSync(this.dir, { withFileTypes: true });
    } catch (e) {
      if (errno(e) === 'ENOENT') return [];
      throw ioError(`failed to list ${this.dir}`, e);
    }
  }

  /** A lease's trimmed content (what the reference compares), or undefined if unreadable. */
  private readLease(name: string): string | undefined {
    try {
      return readFileSync(join(this.dir, name), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  /** Reads every lease (file named as an address) like the reference's Walk: name → content. */
  private scan(): Map<string, string> {
    const out = new Map<string, string>();
    for (const d of this.readDir()) {
      if (!d.isFile() || !parseIP(d.name)) continue;
      const c = this.readLease(d.name);
      if (c !== undefined) out.set(d.name, c);
    }
    return out;
  }

  /** Names of the leases whose trimmed content equals `content`. */
  private find(content: string): string[] {
    if (this.ensureIndex()) {
      const names = this.indexLookup(content);
      // The stamp vouches that nothing was added or removed; still, confirm what we return.
      if (names.every((n) => this.readLease(n) === content)) return names;
      this.rebuild(this.scan());
      return this.index === 'valid' ? this.indexLookup(content) : this.scanFind(content);
    }
    return this.scanFind(content);
  }

  private scanFind(content: string): string[] {
    return [...this.scan()].filter(([, c]) => c === content).map(([n]) => n);
  }

  private remove(name: string, content: string): void {
    this.beginMutation();
    try {
      unlinkSync(join(this.dir, name));
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw ioError(`failed to release ${name}`, e);
    }
    if (this.index === 'valid') this.indexRemove(content, name);
  }

  // --- index --------------------------------------------------------------------------

  private stampPath(): string {
    return join(this.indexDir, 'stamp');
  }

  private currentStamp(): string {
    const st = statSync(this.dir, { bigint: true });
    return `${st.ino}:${st.mtimeNs}`;
  }

  /** Decides, once per locked section and before any change, whether the index can be used. */
  private ensureIndex(): boolean {
    if (this.index === 'unknown') {
      try {
        let stamp: string | undefined;
        try {
          stamp = readFileSync(this.stampPath(), 'utf8').trim();
        } catch {
          stamp = undefined;
        }
        if (stamp !== undefined && stamp === this.currentStamp()) this.index = 'valid';
        else this.rebuild(this.scan());
      } catch {
        this.disableIndex();
      }
    }
    return this.index === 'valid';
  }

  /** Rewrites the whole index from a full scan (name → content). */
  private rebuild(leases: Map<string, string>): void {
    try {
      rmSync(this.indexDir, { recursive: true, force: true });
      this.stampDropped = true;
      mkdirSync(this.indexDir, { recursive: true, mode: 0o700 });
      const buckets = new Map<string, string[]>();
      for (const [name, content] of leases) {
        const k = keyOf(content);
        const b = k.slice(0, 2);
        let lines = buckets.get(b);
        if (!lines) buckets.set(b, (lines = []));
        lines.push(`${k} ${name}\n`);
      }
      for (const [b, lines] of buckets) writeStateFile(join(this.indexDir, b), lines.join(''));
      this.index = 'valid';
      this.dirty = true;
    } catch {
      this.disableIndex();
    }
  }

  private disableIndex(): void {
    this.index = 'off';
    this.dropStamp();
  }

  private dropStamp(): void {
    try {
      unlinkSync(this.stampPath());
    } catch {
      /* not there */
    }
    this.stampDropped = true;
  }

  /** Before the first change of a section: a crash from here on leaves no stamp, so a rebuild. */
  private beginMutation(): void {
    if (!this.stampDropped) this.dropStamp();
    this.dirty = true;
  }

  private indexLookup(content: string): string[] {
    const k = keyOf(content);
    let text: string;
    try {
      text = readFileSync(join(this.indexDir, k.slice(0, 2)), 'utf8');
    } catch (e) {
      if (errno(e) === 'ENOENT') return [];
      this.disableIndex();
      return this.scanFind(content);
    }
    const out: string[] = [];
    for (const line of text.split('\n')) {
      if (line.startsWith(k) && line[k.length] === ' ') out.push(line.slice(k.length + 1));
    }
    return out;
  }

  private indexAdd(content: string, name: string): void {
    const k = keyOf(content);
    try {
      const fd = openSync(join(this.indexDir, k.slice(0, 2)), constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW, 0o600);
      try {
        writeSync(fd, `${k} ${name}\n`);
      } finally {
        closeSync(fd);
      }
    } catch {
      this.disableIndex();
    }
  }

  private indexRemove(content: string, name: string): void {
    const k = keyOf(content);
    const path = join(this.indexDir, k.slice(0, 2));
    try {
      const kept = readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '' && l !== `${k} ${name}`);
      if (kept.length === 0) unlinkSync(path);
      else writeStateFile(path, kept.join('\n') + '\n');
    } catch (e) {
      if (errno(e) !== 'ENOENT') this.disableIndex();
    }
  }

  /**
   * Records that the index matches the lease directory as it is now. The directory's mtime is
   * moved back a little first, so a later change in the same clock tick is still visible.
   */
  private seal(): void {
    if (!this.dirty || this.index !== 'valid') return;
    try {
      const before = statSync(this.dir, { bigint: true });
      const mtime = Number(before.mtimeNs - SEAL_BACK_NS) / 1e9;
      utimesSync(this.dir, Number(before.atimeNs) / 1e9, mtime);
      const after = statSync(this.dir, { bigint: true });
      if (after.mtimeNs >= before.mtimeNs) {
        // The filesystem ignored or rounded the change: a stamp would not be trustworthy.
        this.dropStamp();
        return;
      }
      writeStateFile(this.stampPath(), `${after.ino}:${after.mtimeNs}\n`);
    } catch {
      this.dropStamp();
    }
  }
}
