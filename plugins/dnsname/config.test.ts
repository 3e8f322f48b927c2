import type { CmdArgs, NetConf } from '../../lib/skel/dispatch';
import { CniError } from '../../lib/skel/errors';
import { DEFAULT_DOMAIN, DEFAULT_RUN_DIR, checkDomain, containerNames, hostnameProblem, loadNetConf } from './config';

const conf = (extra: Record<string, unknown> = {}): NetConf => ({ cniVersion: '1.0.0', name: 'net1', type: 'dnsname', ...extra });
const args = (extra: Record<string, unknown> = {}, argsMap: Record<string, string> = {}, containerID = 'ctr1'): CmdArgs =>
  ({ conf: conf(extra), argsMap, containerID, ifName: 'eth0' }) as unknown as CmdArgs;
const names = (extra: Record<string, unknown> = {}, argsMap: Record<string, string> = {}, containerID = 'ctr1') => {
  const a = args(extra, argsMap, containerID);
  return containerNames(a, loadNetConf(a));
};

function errOf(f: () => unknown): CniError | undefined {
  try {
    f();
  } catch (e) {
    return e as CniError;
  }
  return undefined;
}

describe('hostnameProblem (RFC 1123)', () => {
  test.each(['alpine1', 'a', 'web-1', 'A1.b2.c3', 'x'.repeat(63), '0abc', 'dns.podman'])('%s is a host name', (n) => {
    expect(hostnameProblem(n)).toBeUndefined();
  });
  test.each([
    ['', 'empty'],
    ['my_app', 'letters, digits'],
    ['-web', 'letters, digits'],
    ['web-', 'letters, digits'],
    ['a..b', 'empty label'],
    ['.a', 'empty label'],
    ['a b', 'letters, digits'],
    ['x'.repeat(64), 'at most 63'],
    [`${'a'.repeat(60)}.`.repeat(5), 'at most 253'],
    ['café', 'letters, digits'],
  ])('%j is refused (%s)', (n, why) => {
    expect(hostnameProblem(n)).toContain(why);
  });
});

describe('dnsname loadNetConf', () => {
  test('defaults: podman domain, containers/dnsname run dir, dnsmasq from PATH', () => {
    expect(loadNetConf(args())).toMatchObject({ name: 'net1', domainName: DEFAULT_DOMAIN, runDir: DEFAULT_RUN_DIR, dnsmasqPath: undefined });
  });
  test('domain is lower-cased and loses a trailing dot', () => {
    expect(checkDomain('Example.ORG.')).toBe('example.org');
  });
  test.each(['bad domain', 'a..b', '-x.org', 'under_score.org', '.'])('domainName %j is a code-7 error that names it', (d) => {
    const e = errOf(() => loadNetConf(args({ domainName: d })));
    expect(e?.code).toBe(7);
    expect(e?.message).toContain(`invalid domainName "${d}"`);
  });
  test('schema: relative runDir, non-string domain, a network name that is not a path component', () => {
    expect(errOf(() => loadNetConf(args({ runDir: 'run/x' })))?.code).toBe(7);
    expect(errOf(() => loadNetConf(args({ domainName: 5 })))?.code).toBe(7);
    expect(errOf(() => loadNetConf(args({ name: '../etc' })))?.code).toBe(7);
    expect(errOf(() => loadNetConf(args({ name: 'a/b' })))?.code).toBe(7);
  });
});

describe('containerNames', () => {
  test('K8S_POD_NAME wins over the container ID', () => {
    expect(names({}, { K8S_POD_NAME: 'alpine1' })).toEqual({ name: 'alpine1', aliases: [] });
  });
  test('without it the container ID is the name; a 64-char ID becomes its 12-char short ID', () => {
    expect(names({}, {}, 'web1').name).toBe('web1');
    const id = '0a64f08ca95a3f142d15ff53bf36059e666909a338c1d71686808616f79a5cbe';
    expect(names({}, {}, id).name).toBe('0a64f08ca95a');
  });
  test('a K8S_POD_NAME DNS forbids is a code-4 error naming the variable', () => {
    const e = errOf(() => names({}, { K8S_POD_NAME: 'my_app' }));
    expect(e?.code).toBe(4);
    expect(e?.message).toMatch(/invalid container name "my_app" in CNI_ARGS K8S_POD_NAME/);
  });
  test('a container ID that is no DNS name asks for K8S_POD_NAME', () => {
    expect(errOf(() => names({}, {}, 'my_ctr'))?.message).toMatch(/pass the name in CNI_ARGS K8S_POD_NAME/);
  });
  test("aliases come from runtimeConfig.aliases[<this network>] only, deduplicated, without the name", () => {
    const rc = { runtimeConfig: { aliases: { net1: ['web', 'alpine1', 'WEB', 'db'], other: ['nope'] } } };
    expect(names(rc, { K8S_POD_NAME: 'alpine1' })).toEqual({ name: 'alpine1', aliases: ['web', 'db'] });
  });
  test('a bad alias is a code-7 error', () => {
    const e = errOf(() => names({ runtimeConfig: { aliases: { net1: ['ok', 'not ok'] } } }));
    expect(e?.code).toBe(7);
    expect(e?.message).toContain('invalid alias "not ok"');
  });
  test('name.domain must fit in 253 characters', () => {
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(55)}`;
    expect(errOf(() => names({}, { K8S_POD_NAME: long }))?.message).toMatch(/at most 253/);
  });
});
