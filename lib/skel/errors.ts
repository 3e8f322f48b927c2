/** CNI error codes (SPEC.md §6) and the one error type every plugin throws. */
import { CommandError } from '../exec/run';

export const ErrCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  InvalidNetNS: 8,
  TryAgainLater: 11,
  NotAvailable: 50,
  LimitedConnectivity: 51,
  Internal: 999,
  // Plugin-specific codes (>= 100) live here so they are declared once.
  NoAddressAvailable: 100,
  AddressInUse: 101,
  InterfaceExists: 102,
  /** host/container: CNI_NETNS is not the namespace the plugin is meant to join. */
  NetnsMismatch: 103,
  /** container: the target container has no cached attachment to join. */
  TargetNotFound: 104,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
  ) {
    super(msg);
    this.name = 'CniError';
  }

  toJSON(cniVersion: string): Record<string, unknown> {
    const out: Record<string, unknown> = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

/**
 * What a tool prints when the kernel or a lock holder says "not now": netlink's EBUSY
 * (`RTNETLINK answers: Device or resource busy`), EAGAIN (`Resource temporarily unavailable`),
 * and the xtables lock held by another iptables (`Another app is currently holding the xtables
 * lock`). A runtime may retry those, so they are code 11, not 999.
 */
const BUSY = /resource busy|resource temporarily unavailable|holding the xtables lock|EAGAIN|EBUSY/i;

/**
 * Wraps anything thrown into a CniError; a CniError passes through unchanged. The one place a
 * failed command (CommandError, from lib/exec) gets its code: 11 when it said it was busy, else
 * 999.
 */
export function asCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof CommandError) return new CniError(BUSY.test(e.stderr) ? ErrCode.TryAgainLater : ErrCode.Internal, e.message);
  if (e instanceof Error) return new CniError(ErrCode.Internal, e.message);
  return new CniError(ErrCode.Internal, String(e));
}

/** Prefixes an error's message with context, keeping its code: `failed to X: <cause>`. */
export function wrapError(context: string, e: unknown): CniError {
  const c = asCniError(e);
  return new CniError(c.code, `${context}: ${c.message}`, c.details);
}
