import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveMulticall } from './multicall';
import { BUNDLE_MARKER, isBinary, isOurPlugin, registerMode, runRequestedMode, selfArgv } from './self';

const table = { bridge: () => undefined, 'host-local': () => undefined };

describe('resolveMulticall', () => {
  test('a link named after the plugin (SEA argv: [execPath, argv0, ...args])', () => {
    expect(resolveMulticall(['/opt/cni/bin/cni-ts', '/opt/cni/bin/bridge'], table)).toEqual({ name: 'bridge', argv: ['/opt/cni/bin/cni-ts', '/opt/cni/bin/bridge'] });
  });
  test('a stub: env runs `cni-ts <stub path>`', () => {
    expect(resolveMulticall(['/x/cni-ts', '/x/cni-ts', '/x/host-local'], table)).toEqual({ name: 'host-local', argv: ['/x/cni-ts', '/x/host-local'] });
  });
  test('selfArgv form: `cni-ts <plugin> <mode> args` keeps the arguments after the plugin', () => {
    expect(resolveMulticall(['/x/cni-ts', '/x/cni-ts', 'bridge', '--cni-ts-foo', 'a'], table)).toEqual({ name: 'bridge', argv: ['/x/cni-ts', 'bridge', '--cni-ts-foo', 'a'] });
  });
  test('no plugin named: undefined (usage)', () => {
    expect(resolveMulticall(['/x/cni-ts', '/x/cni-ts'], table)).toBeUndefined();
    expect(resolveMulticall(['/x/cni-ts', '/x/cni-ts', 'toString'], table)).toBeUndefined();
    expect(resolveMulticall(['/x/cni-ts', '/x/renamed', '--list'], table)).toBeUndefined();
  });
});

describe('self in the bundle packaging (jest is not a SEA)', () => {
  test('isBinary is false and selfArgv re-runs node with this script', () => {
    expect(isBinary()).toBe(false);
    expect(selfArgv(['--cni-ts-x', 'y'])).toEqual([process.execPath, process.argv[1], '--cni-ts-x', 'y']);
  });

  test('hidden modes: only registered --cni-ts-* flags in argv[2] run', async () => {
    expect(() => registerMode('--other', () => undefined)).toThrow(/--cni-ts-/);
    const seen: string[] = [];
    registerMode('--cni-ts-test-mode', () => {
      seen.push('ran');
    });
    expect(runRequestedMode(['node', 'script'])).toBe(false);
    expect(runRequestedMode(['node', 'script', '--cni-ts-unknown'])).toBe(false);
    expect(runRequestedMode(['node', 'script', '--cni-ts-test-mode'])).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['ran']);
  });
});

describe('isOurPlugin', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cni-ts-self-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('our bundle of that plugin: the marker on line 2', () => {
    const p = join(dir, 'host-local');
    writeFileSync(p, `#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS -u NODE_OPTIONS node\n${BUNDLE_MARKER}host-local\n"use strict";`);
    expect(isOurPlugin(p, 'host-local')).toBe(true);
    expect(isOurPlugin(p, 'bridge')).toBe(false);
  });
  test('a stub or link to a binary that is not this process, an ELF, a missing file: exec', () => {
    const stub = join(dir, 'stub');
    writeFileSync(stub, `#!/usr/bin/env -S -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS ${process.execPath}\n# x\n`);
    expect(isOurPlugin(stub, 'stub')).toBe(false); // only the binary itself recognises its stubs
    const link = join(dir, 'link');
    symlinkSync(process.execPath, link);
    expect(isOurPlugin(link, 'link')).toBe(false);
    expect(isOurPlugin('/usr/lib/cni/host-local', 'host-local')).toBe(false);
    expect(isOurPlugin(join(dir, 'missing'), 'missing')).toBe(false);
  });
});
