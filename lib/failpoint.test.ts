// Failpoints work where tests need them (here, and the test build) and are compiled out of
// release builds: a plugin bundled as build.mjs bundles it holds no failpoint name, and the
// check build.mjs and scripts/package.mjs run on their output fails when one is left.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { FAILPOINTS, failpoint } from './failpoint';
import { BUNDLE_OPTIONS, TEST_DEFINE } from '../scripts/bundle-options.mjs';
import { checkFailpoints, failpointNames } from '../scripts/failpoints.mjs';

const ROOT = resolve(__dirname, '..');

describe('failpoint', () => {
  const saved = process.env.CNI_TS_FAILPOINT;
  afterEach(() => {
    if (saved === undefined) delete process.env.CNI_TS_FAILPOINT;
    else process.env.CNI_TS_FAILPOINT = saved;
  });

  it('is on in unit tests (no define)', () => {
    expect(FAILPOINTS).toBe(true);
  });

  it('throws only for the named point', () => {
    process.env.CNI_TS_FAILPOINT = 'post-ipam';
    expect(() => failpoint('post-veth')).not.toThrow();
    expect(() => failpoint('post-ipam')).toThrow('failpoint post-ipam triggered');
  });

  it('is silent when unset', () => {
    delete process.env.CNI_TS_FAILPOINT;
    expect(() => failpoint('post-ipam')).not.toThrow();
  });
});

describe('release builds have no failpoints', () => {
  /** plugins/<name>/main.ts bundled in memory with the release options, or the test build's. */
  async function bundle(name: string, test: boolean): Promise<string> {
    const out = await build({
      entryPoints: [join(ROOT, 'plugins', name, 'main.ts')],
      ...BUNDLE_OPTIONS,
      define: { ...BUNDLE_OPTIONS.define, ...(test ? TEST_DEFINE : {}) },
      write: false,
    });
    return out.outputFiles![0]!.text;
  }

  it('the sources name the failpoints the conformance suites use', () => {
    expect(failpointNames(ROOT)).toEqual(['after-apply', 'after-ipam', 'dnsname-after-server', 'dnsname-before-server']);
  });

  it.each(['bridge', 'dnsname'])('%s: the test build has its failpoints, the release build none', async (name) => {
    const [release, test] = await Promise.all([bundle(name, false), bundle(name, true)]);
    const dir = mkdtempSync(join(tmpdir(), 'cni-ts-fp-'));
    try {
      writeFileSync(join(dir, 'release'), release);
      writeFileSync(join(dir, 'test'), test);
      expect(test).toContain('CNI_TS_FAILPOINT');
      expect(release).not.toContain('CNI_TS_FAILPOINT');
      expect(() => checkFailpoints(ROOT, [join(dir, 'release')])).not.toThrow();
      // The check can fail: the test build given as a release is refused, naming what leaked.
      expect(() => checkFailpoints(ROOT, [join(dir, 'test')])).toThrow(/failpoint code in a release build:[^]*CNI_TS_FAILPOINT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
