// The sandbox ("pause") image for the CRI suite, built locally from Debian's busybox-static as an
// OCI image archive (oci-layout, index.json naming the image through the
// `io.containerd.image.name` annotation, one uncompressed layer), for `ctr images import`. No
// registry is involved. Besides keeping the pod's namespaces alive, its command starts busybox
// httpd on port 80 serving a page that holds the pod's hostname, so HTTP through a pod IP or a
// host port tells which pod answered (a pod with no other container has no other listener).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execOk } from '../../helpers/exec';
import { busyboxRootfs } from '../../helpers/runtime-sandbox';

export const PAUSE_IMAGE = 'localhost/cni-ts-pause:1';

/** The OCI name of this machine's architecture (busybox-static is the host's own binary). */
const ARCH = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;

/**
 * The pause process's shell line: httpd daemonizes, sleep keeps PID 1 alive. The sandbox's rootfs
 * and /dev/shm are read-only and it has no /etc/hostname (containerd 1.6 mounts them so), hence
 * the page is a CGI script made at build time that prints the hostname: GET HOSTNAME_PATH.
 */
export const PAUSE_SCRIPT = 'httpd -p 80 -h /www && exec sleep 2147483647';
export const HOSTNAME_PATH = '/cgi-bin/hostname';

function blob(dir: string, bytes: Buffer): { digest: string; size: number } {
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(dir, 'blobs', 'sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/** Writes the OCI archive of the pause image into workDir and returns its path. */
export async function buildPauseImage(workDir: string): Promise<string> {
  const rootfs = join(workDir, 'rootfs');
  const layout = join(workDir, 'oci');
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  await busyboxRootfs(rootfs);
  mkdirSync(join(rootfs, 'www', 'cgi-bin'), { recursive: true });
  writeFileSync(join(rootfs, 'www', HOSTNAME_PATH), '#!/bin/sh\necho "Content-Type: text/plain"\necho\nhostname\n', { mode: 0o755 });
  const layerTar = join(workDir, 'layer.tar');
  await execOk(['tar', '--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', layerTar, '.']);
  // Uncompressed layer: its digest is also its diff ID.
  const layer = blob(layout, readFileSync(layerTar));
  const config = blob(
    layout,
    Buffer.from(
      JSON.stringify({
        architecture: ARCH,
        os: 'linux',
        config: { Env: ['PATH=/bin'], Entrypoint: ['/bin/sh', '-c'], Cmd: [PAUSE_SCRIPT], WorkingDir: '/' },
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = blob(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      }),
    ),
  );
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: ARCH, os: 'linux' },
          annotations: { 'io.containerd.image.name': PAUSE_IMAGE, 'org.opencontainers.image.ref.name': '1' },
        },
      ],
    }),
  );
  const archive = join(workDir, 'pause-oci.tar');
  await execOk(['tar', '-C', layout, '-cf', archive, '.']);
  return archive;
}
