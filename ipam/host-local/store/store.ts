/**
 * Where host-local keeps its leases (backend/store.go). The allocator only knows this
 * interface; DiskStore is the reference's on-disk format, FakeStore drives the unit tests.
 *
 * Every method except withLock and isReserved expects the caller to hold the lock.
 */
import type { IP } from '../../../lib/ip/cidr';

export type { Attachment } from '../../../lib/skel/gc';
import type { Attachment } from '../../../lib/skel/gc';

export interface GcOutcome {
  released: IP[];
  /** One message per lease that could not be removed; GC reports them all. */
  errors: string[];
}

export interface Store {
  /** Runs fn holding the network's exclusive lock (shared with the reference's go-filemutex). */
  withLock<T>(fn: () => Promise<T>): Promise<T>;
  /** Creates the lease of `ip` for (id, ifname); false when the address is already leased. */
  reserve(id: string, ifname: string, ip: IP, rangeID: string): Promise<boolean>;
  /** The address last reserved in range set `rangeID`, if recorded and readable. */
  lastReservedIP(rangeID: string): Promise<IP | undefined>;
  /** Every lease of (id, ifname); leases holding only the bare id count too. */
  getByID(id: string, ifname: string): Promise<IP[]>;
  /** True when (id, ifname), or failing that the bare id, holds any lease. */
  findByID(id: string, ifname: string): Promise<boolean>;
  /** Removes every lease of (id, ifname); when there is none, those of the bare id (legacy files). */
  releaseByID(id: string, ifname: string): Promise<void>;
  /** Removes the lease of `ip` only if (id, ifname) holds it: the exact undo of one reserve. */
  releaseIP(ip: IP, id: string, ifname: string): Promise<void>;
  /** True when `ip` is leased to anyone; safe without the lock (a point-in-time answer). */
  isReserved(ip: IP): Promise<boolean>;
  /** Every leased address (formatIP text) from one listing: used once probing keeps hitting leases. */
  listReserved(): Promise<Set<string>>;
  /** Removes every lease whose attachment is not in `valid`. */
  gc(valid: Attachment[]): Promise<GcOutcome>;
}

/** The lease content the reference writes and matches: `id\r\nifname`, no trailing newline. */
export function leaseContent(id: string, ifname: string): string {
  return `${id.trim()}\r\n${ifname}`;
}

/** The key of a legacy lease (written before ifname was recorded): the bare container id. */
export function legacyContent(id: string): string {
  return id.trim();
}

/** True when a lease's trimmed content belongs to one of the valid attachments. */
export function isValidLease(content: string, valid: Attachment[]): boolean {
  const crlf = content.indexOf('\r\n');
  if (crlf < 0) return valid.some((a) => a.containerID.trim() === content);
  const id = content.slice(0, crlf);
  const ifname = content.slice(crlf + 2);
  return valid.some((a) => a.containerID.trim() === id && a.ifname === ifname);
}
