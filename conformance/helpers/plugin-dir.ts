// Which implementation the suite is driving. CNI_PLUGIN_DIR=/usr/lib/cni runs it against the
// reference Go binaries (Debian containernetworking-plugins); the default is our build.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '../..');
export const PLUGIN_DIR = resolve(process.env.CNI_PLUGIN_DIR || join(REPO_ROOT, 'dist/bin'));
export const IMPL: 'reference' | 'ours' = PLUGIN_DIR === '/usr/lib/cni' ? 'reference' : 'ours';
/**
 * Our test build (build.mjs): the same plugins with failpoints compiled in, which the release
 * bundles in dist/bin and the packaged binary do not have. runPlugin runs a plugin from here
 * when the test sets CNI_TS_FAILPOINT (those tests are oursOnly).
 */
export const FAILPOINT_PLUGIN_DIR = resolve(process.env.CNI_FAILPOINT_PLUGIN_DIR || join(REPO_ROOT, 'dist/test-bin'));

/** Versions every suite iterates over (the 0.1.0/0.2.0 result shape is out of scope here). */
export const SPEC_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type SpecVersion = (typeof SPEC_VERSIONS)[number];

export function pluginPath(name: string): string {
  return join(PLUGIN_DIR, name);
}

const versionCache = new Map<string, string[]>();
/** supportedVersions from the plugin's own VERSION reply ([] if the binary is missing). */
export function supportedVersions(plugin: string): string[] {
  const hit = versionCache.get(plugin);
  if (hit) return hit;
  let v: string[] = [];
  if (existsSync(pluginPath(plugin))) {
    try {
      const out = execFileSync(pluginPath(plugin), [], {
        env: { CNI_COMMAND: 'VERSION', PATH: process.env.PATH },
        input: '{"cniVersion":"1.0.0"}',
        timeout: 10_000,
      }).toString();
      v = (JSON.parse(out) as { supportedVersions?: string[] }).supportedVersions ?? [];
    } catch {
      v = [];
    }
  }
  versionCache.set(plugin, v);
  return v;
}

/** Numeric compare of "a.b.c" spec versions. */
export function versionGte(a: string, b: string): boolean {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) > (pb[i] ?? 0);
  }
  return true;
}

/**
 * Known bugs and gaps of the reference plugins (see conformance/REFERENCE-BUGS.md). A test
 * tagged with one is run as `test.failing` against the reference: it is expected to fail there,
 * and jest reports it if it unexpectedly passes (so this list cannot rot silently).
 */
export const REFERENCE_BUGS = {
  'del-empty-netns-leaks-masq': {
    issue: 'containernetworking/plugins#810',
    reason: 'bridge and ptp DEL with an empty CNI_NETNS skip ipMasq teardown, so the NAT rules leak',
  },
  'no-spec-1.1.0': {
    issue: 'containernetworking/plugins#1013 (1.1.0 support landed in plugins v1.5.0)',
    reason: 'plugins v1.1.1 supports cniVersion up to 1.0.0; a 1.1.0 config gets error code 1',
  },
  'loopback-040-no-ip-version': {
    issue: 'no upstream issue found; seen on Debian plugins 1.1.1',
    reason: 'loopback prints 0.3.x/0.4.0 results without the required ips[].version field',
  },
  'no-gc': {
    issue: 'containernetworking/plugins#1047',
    reason: 'host-local has no GC verb ("FIXME GC"); leases not in cni.dev/valid-attachments stay (and bridge GC only forwards to it, so NAT rules stay too)',
  },
  'no-status': {
    issue: 'containernetworking/plugins#1014',
    reason: 'host-local has no STATUS verb; it cannot report an exhausted range as code 50',
  },
} as const;
export type ReferenceBug = keyof typeof REFERENCE_BUGS;

const logged = new Set<string>();
function logOnce(key: string, msg: string): void {
  if (logged.has(key)) return;
  logged.add(key);
  // eslint-disable-next-line no-console
  console.info(msg);
}

/**
 * `test`, or `test.failing` when running against the reference and it has the named bug.
 * Usage: knownReferenceBug('no-gc')('GC removes stale leases', async () => { ... })
 */
export function knownReferenceBug(name: ReferenceBug | null | undefined): jest.It {
  // CONFORMANCE_SHOW_REFERENCE_BUGS=1 runs them as plain tests, to see the actual failures.
  if (!name || IMPL !== 'reference' || process.env.CONFORMANCE_SHOW_REFERENCE_BUGS === '1') return test;
  const b = REFERENCE_BUGS[name];
  logOnce(name, `[conformance] expected to fail on the reference: ${name} (${b.issue}): ${b.reason}`);
  return test.failing as unknown as jest.It;
}

/** Known bug for a spec version the reference plugin does not support (e.g. 1.1.0 on v1.1.1). */
export function versionGap(plugin: string, version: string): ReferenceBug | null {
  if (IMPL !== 'reference') return null;
  return supportedVersions(plugin).includes(version) ? null : 'no-spec-1.1.0';
}

/** `test` for our build, `test.skip` (with a logged reason) against the reference. */
export function oursOnly(reason: string): jest.It {
  if (IMPL === 'ours') return test;
  logOnce(reason, `[conformance] skipped on the reference: ${reason}`);
  return test.skip as unknown as jest.It;
}

/** Gate: these suites need root to create namespaces. */
export const describeIfRoot: jest.Describe = process.getuid?.() === 0 ? describe : describe.skip;
