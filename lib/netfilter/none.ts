/**
 * The null driver (netavark's fwnone): every operation succeeds and touches nothing, for a
 * host whose firewall someone else manages. Only an explicit choice selects it (select.ts).
 */
import type { NetfilterDriver } from './driver';

export class NullDriver implements NetfilterDriver {
  readonly name = 'none' as const;
  async setup(): Promise<void> {}
  async check(): Promise<void> {}
  async teardown(): Promise<void> {}
  async gc(): Promise<void> {}
}
