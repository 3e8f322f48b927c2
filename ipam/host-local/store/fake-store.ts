/**
 * In-memory Store for the unit tests (backend/testing/fake_store.go): leases are a map from
 * address text to lease content, with the same matching rules as the disk.
 */
import { type IP, formatIP, parseIP } from '../../../lib/ip/cidr';
import { type Attachment, type GcOutcome, type Store, isValidLease, leaseContent, legacyContent } from './store';

export class FakeStore implements Store {
  /** address text → lease content (`id\r\nifname`, or a bare id for legacy leases). */
  readonly leases = new Map<string, string>();
  readonly lastReserved = new Map<string, IP>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(leases: Record<string, string> = {}, lastReserved: Record<string, string> = {}) {
    for (const [ip, c] of Object.entries(leases)) this.leases.set(ip, c);
    for (const [id, ip] of Object.entries(lastReserved)) this.lastReserved.set(id, parseIP(ip)!);
  }

  /** Serializes callers like the flock does. */
  withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async reserve(id: string, ifname: string, ip: IP, rangeID: string): Promise<boolean> {
    const key = formatIP(ip);
    if (this.leases.has(key)) return false;
    this.leases.set(key, leaseContent(id, ifname));
    this.lastReserved.set(rangeID, ip);
    return true;
  }

  async lastReservedIP(rangeID: string): Promise<IP | undefined> {
    return this.lastReserved.get(rangeID);
  }

  private matching(content: string): string[] {
    return [...this.leases].filter(([, c]) => c.trim() === content).map(([ip]) => ip);
  }

  async getByID(id: string, ifname: string): Promise<IP[]> {
    return [...this.matching(leaseContent(id, ifname)), ...this.matching(legacyContent(id))].map((s) => parseIP(s)!);
  }

  async findByID(id: string, ifname: string): Promise<boolean> {
    return this.matching(leaseContent(id, ifname)).length > 0 || this.matching(legacyContent(id)).length > 0;
  }

  async releaseByID(id: string, ifname: string): Promise<void> {
    let ips = this.matching(leaseContent(id, ifname));
    if (ips.length === 0) ips = this.matching(legacyContent(id));
    for (const ip of ips) this.leases.delete(ip);
  }

  async releaseIP(ip: IP, id: string, ifname: string): Promise<void> {
    const key = formatIP(ip);
    if (this.leases.get(key)?.trim() === leaseContent(id, ifname)) this.leases.delete(key);
  }

  async isReserved(ip: IP): Promise<boolean> {
    return this.leases.has(formatIP(ip));
  }

  async listReserved(): Promise<Set<string>> {
    return new Set(this.leases.keys());
  }

  async gc(valid: Attachment[]): Promise<GcOutcome> {
    const released: IP[] = [];
    for (const [ip, c] of [...this.leases]) {
      if (!isValidLease(c.trim(), valid)) {
        this.leases.delete(ip);
        released.push(parseIP(ip)!);
      }
    }
    return { released, errors: [] };
  }
}
