// The config of a private containerd inside a RuntimeSandbox (the ctr and the CRI client suites):
// root, state, opt dir and sockets under the sandbox's temp dir, so nothing of the machine's own
// containerd (/var/lib/containerd, /run/containerd) is used; snapshotters that cannot work here
// are disabled.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeSandbox } from './runtime-sandbox';

const UNUSED_SNAPSHOTTERS = ['btrfs', 'zfs', 'devmapper', 'aufs'].map((s) => `io.containerd.snapshotter.v1.${s}`);

/**
 * Writes <sb.dir>/containerd.toml and returns its path. cri: keep the CRI plugin (else it is
 * disabled); debug: containerd's debug log level; extra: further TOML lines (plugin sections).
 */
export function writeContainerdConfig(sb: RuntimeSandbox, socket: string, o: { cri: boolean; debug?: boolean; extra?: string[] }): string {
  const disabled = [...(o.cri ? [] : ['io.containerd.grpc.v1.cri']), ...UNUSED_SNAPSHOTTERS];
  const path = join(sb.dir, 'containerd.toml');
  writeFileSync(
    path,
    [
      'version = 2',
      `root = "${sb.subdir('containerd-root')}"`,
      `state = "${sb.subdir('containerd-state')}"`,
      `disabled_plugins = [${disabled.map((d) => JSON.stringify(d)).join(', ')}]`,
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '[debug]',
      `  address = "${socket}.debug"`,
      ...(o.debug ? ['  level = "debug"'] : []),
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${sb.subdir('containerd-opt')}"`,
      ...(o.extra ?? []),
      '',
    ].join('\n'),
  );
  return path;
}
