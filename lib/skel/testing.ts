/** Helpers for unit tests only (no plugin imports this). */
import type { CniError } from './errors';

/** The CNI error code `f` throws, or undefined when it does not throw. */
export function codeOf(f: () => unknown): number | undefined {
  try {
    f();
  } catch (e) {
    return (e as CniError).code;
  }
  return undefined;
}
