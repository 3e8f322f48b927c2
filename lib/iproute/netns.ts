/** Network namespace paths. */
import { statSync } from 'node:fs';

/** True when `path` names an existing netns file (a bind mount in /run/netns or /proc/<pid>/ns/net). */
export function netnsExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
