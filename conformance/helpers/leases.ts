// host-local's lease files in a network's lease folder (<dataDir>/<network>): one per address,
// named by it, beside `lock` and `last_reserved_ip.N`. Sorted; [] when the folder is not there.
import { existsSync, readdirSync } from 'node:fs';

export function leaseFiles(leaseDir: string): string[] {
  if (!existsSync(leaseDir)) return [];
  return readdirSync(leaseDir)
    .filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'))
    .sort();
}
