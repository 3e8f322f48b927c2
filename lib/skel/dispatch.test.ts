// skel dispatch with an injected Io: env from a map, stdin from a Buffer. No root, no kernel.
import { configOnly, definePlugin, dispatch, noop, parseConf, stateless, type CmdArgs, type Io, type NetConf, type Plugin, type PluginDefinition } from './dispatch';
import { CniError, ErrCode } from './errors';
import type { Result } from '../types/result';

interface Call {
  out: string;
  code: number;
  stderr: string[];
}

const BASE_ENV: Record<string, string> = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'ctr-1',
  CNI_NETNS: '/run/netns/does-not-exist',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
};

function conf(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion: '1.1.0', name: 'net1', type: 'test', ...over };
}

/** The verbs a test supplies; the others are declared as having nothing to do. */
interface Funcs {
  add?: (a: CmdArgs) => Promise<Result>;
  del?: (a: CmdArgs) => Promise<void>;
  check?: (a: CmdArgs) => Promise<void>;
  gc?: (a: CmdArgs) => Promise<void>;
  status?: (a: CmdArgs) => Promise<void>;
}

/** A definition around `funcs`: config as parsed, an ADD that is not under test fails. */
function pluginOf(funcs: Funcs, about = 'test plugin v0', extra: Partial<PluginDefinition<NetConf>> = {}): Plugin {
  const notUnderTest = noop('not under test');
  return definePlugin<NetConf>({
    about,
    loadConf: (a) => a.conf,
    add:
      funcs.add ??
      (async () => {
        throw new Error('ADD is not under test');
      }),
    del: funcs.del ?? notUnderTest,
    check: funcs.check ?? notUnderTest,
    gc: funcs.gc ?? notUnderTest,
    status: funcs.status ?? notUnderTest,
    ...extra,
  });
}

/** Runs dispatch once; `env` entries set to undefined remove a base variable. */
async function call(
  funcs: Funcs,
  env: Record<string, string | undefined>,
  stdin: string | Record<string, unknown> = conf(),
  about = 'test plugin v0',
): Promise<Call> {
  const vars = { ...BASE_ENV, ...env };
  const stderr: string[] = [];
  const io: Io = {
    getenv: (k) => vars[k],
    readStdin: () => Buffer.from(typeof stdin === 'string' ? stdin : JSON.stringify(stdin)),
    finish: () => {
      throw new Error('dispatch must not call finish');
    },
    stderr: (s) => stderr.push(s),
  };
  const { out, code } = await dispatch(pluginOf(funcs, about), io);
  return { out, code, stderr };
}

/** Asserts the output is one CNI error object and returns it. */
function errorOf(c: Call): { cniVersion: string; code: number; msg: string; details?: string } {
  expect(c.code).toBe(1);
  // Exactly one JSON document on stdout: it must parse as a whole.
  const e = JSON.parse(c.out);
  expect(typeof e).toBe('object');
  expect(Object.keys(e).sort()).toEqual(expect.arrayContaining(['code', 'cniVersion', 'msg']));
  return e;
}

const SAMPLE: Result = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'cni0', mac: '0a:58:0a:00:00:01' },
    { name: 'veth1', mac: '0a:58:0a:00:00:02', mtu: 1400 },
    { name: 'eth0', mac: '0a:58:0a:00:00:03', sandbox: '/run/netns/x', mtu: 1400, socketPath: '/run/s.sock', pciID: '0000:00:01.0' },
  ],
  ips: [
    { address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 2 },
    { address: 'fd00::2/64', gateway: 'fd00::1', interface: 2 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1', mtu: 1400, priority: 10, advmss: 1360, table: 100, scope: 0 }],
  dns: { nameservers: ['10.0.0.1'] },
};

const addReturning = (r: Result): Funcs => ({ add: async () => r });

describe('VERSION', () => {
  it('echoes the requested cniVersion and lists the supported versions', async () => {
    const c = await call({}, { CNI_COMMAND: 'VERSION' }, { cniVersion: '0.4.0' });
    expect(c.code).toBe(0);
    expect(JSON.parse(c.out)).toEqual({
      cniVersion: '0.4.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
  });

  it('answers with empty stdin', async () => {
    const c = await call({}, { CNI_COMMAND: 'VERSION', CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined, CNI_PATH: undefined }, '');
    expect(c.code).toBe(0);
    const v = JSON.parse(c.out);
    expect(v.cniVersion).toBe('1.1.0');
    expect(v.supportedVersions).toEqual(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  });

  it('answers even when stdin is not JSON', async () => {
    const c = await call({}, { CNI_COMMAND: 'VERSION' }, 'not json');
    expect(c.code).toBe(0);
    expect(JSON.parse(c.out).supportedVersions).toHaveLength(5);
  });
});

describe('environment', () => {
  it('without CNI_COMMAND prints about on stderr, nothing on stdout, exit 0', async () => {
    const c = await call({ add: jest.fn() }, { CNI_COMMAND: undefined }, conf(), 'CNI test plugin v1.2.3');
    expect(c.code).toBe(0);
    expect(c.out).toBe('');
    expect(c.stderr.join('\n')).toContain('CNI test plugin v1.2.3');
    expect(c.stderr.join('\n')).toContain('0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0');
  });

  it('rejects an unknown command with code 4', async () => {
    const e = errorOf(await call({}, { CNI_COMMAND: 'FROB' }));
    expect(e.code).toBe(ErrCode.InvalidEnvironment);
    expect(e.msg).toBe('unknown CNI_COMMAND: FROB');
  });

  it('lists every missing variable in one code-4 error, in the reference format', async () => {
    const e = errorOf(await call({}, { CNI_NETNS: undefined, CNI_IFNAME: undefined }));
    expect(e.code).toBe(4);
    expect(e.msg).toBe('required env variables [CNI_NETNS,CNI_IFNAME] missing');
  });

  it('names all four ADD variables when none is set', async () => {
    const e = errorOf(await call({}, { CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined, CNI_PATH: '' }));
    expect(e.msg).toBe('required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing');
  });

  it('accepts DEL without CNI_NETNS (the netns is gone)', async () => {
    const del = jest.fn(async (_a: CmdArgs) => {});
    const c = await call({ del }, { CNI_COMMAND: 'DEL', CNI_NETNS: undefined });
    expect(c).toMatchObject({ out: '', code: 0 });
    expect(del).toHaveBeenCalledTimes(1);
    expect(del.mock.calls[0]![0].netns).toBe('');
  });

  it('requires CNI_NETNS on CHECK', async () => {
    const e = errorOf(await call({}, { CNI_COMMAND: 'CHECK', CNI_NETNS: undefined }));
    expect(e.msg).toBe('required env variables [CNI_NETNS] missing');
  });

  it('needs only CNI_PATH for GC', async () => {
    const gc = jest.fn(async () => {});
    const env = { CNI_COMMAND: 'GC', CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined };
    expect(await call({ gc }, env)).toMatchObject({ out: '', code: 0 });
    expect(gc).toHaveBeenCalled();
    expect(errorOf(await call({ gc }, { ...env, CNI_PATH: undefined })).msg).toBe('required env variables [CNI_PATH] missing');
  });

  it.each(['-leading-dash', 'a b', 'a/b', 'ctr;rm', '.hidden'])('rejects container ID %j with code 4', async (id) => {
    const e = errorOf(await call({ add: jest.fn() }, { CNI_CONTAINERID: id }));
    expect(e.code).toBe(4);
    expect(e.msg).toMatch(/containerID/);
  });

  it.each(['a1_b.c-d', 'ABC123', '0'])('accepts container ID %j', async (id) => {
    const c = await call(addReturning({ cniVersion: '1.1.0' }), { CNI_CONTAINERID: id });
    expect(c.code).toBe(0);
  });

  it.each([
    ['16 chars', 'abcdefghijklmnop'],
    ['dot', '.'],
    ['dot-dot', '..'],
    ['slash', 'eth/0'],
    ['colon', 'eth0:1'],
    ['space', 'eth 0'],
    ['tab', 'eth\t0'],
  ])('rejects CNI_IFNAME with %s with code 4', async (_what, name) => {
    const e = errorOf(await call({ add: jest.fn() }, { CNI_IFNAME: name }));
    expect(e.code).toBe(4);
    expect(e.msg).toMatch(/CNI_IFNAME/);
  });

  it('accepts a 15-character interface name', async () => {
    const c = await call(addReturning({ cniVersion: '1.1.0' }), { CNI_IFNAME: 'abcdefghijklmno' });
    expect(c.code).toBe(0);
  });

  it('accepts CNI_ARGS with unknown keys and passes them on', async () => {
    const add = jest.fn(async (_a: CmdArgs): Promise<Result> => ({ cniVersion: '1.1.0' }));
    const c = await call({ add }, { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=x;K8S_POD_NAMESPACE=default' });
    expect(c.code).toBe(0);
    const a = add.mock.calls[0]![0];
    expect(a.argsMap).toEqual({ IgnoreUnknown: '1', K8S_POD_NAME: 'x', K8S_POD_NAMESPACE: 'default' });
    expect(a.args).toBe('IgnoreUnknown=1;K8S_POD_NAME=x;K8S_POD_NAMESPACE=default');
  });

  it.each(['IgnoreUnknown=1;K8S_POD_NAME', '=x', 'novalue'])('rejects malformed CNI_ARGS %j with code 4', async (args) => {
    const e = errorOf(await call({ add: jest.fn() }, { CNI_ARGS: args }));
    expect(e.code).toBe(4);
    expect(e.msg).toMatch(/CNI_ARGS/);
  });

  it('passes the parsed environment and the exact stdin bytes to the verb', async () => {
    const add = jest.fn(async (_a: CmdArgs): Promise<Result> => ({ cniVersion: '1.1.0' }));
    const text = JSON.stringify(conf({ extra: { keep: true } }));
    await call({ add }, { CNI_PATH: '/a:/b::/c' }, text);
    const a = add.mock.calls[0]![0];
    expect(a).toMatchObject({ command: 'ADD', containerID: 'ctr-1', ifName: 'eth0', netns: '/run/netns/does-not-exist', path: ['/a', '/b', '/c'] });
    expect(a.stdin.toString()).toBe(text);
    expect(a.conf.extra).toEqual({ keep: true });
  });

  it("refuses the plugin's own netns on ADD with code 8", async () => {
    const add = jest.fn();
    const e = errorOf(await call({ add }, { CNI_NETNS: '/proc/self/ns/net' }));
    expect(e.code).toBe(ErrCode.InvalidNetNS);
    expect(add).not.toHaveBeenCalled();
  });
});

describe('config', () => {
  it('rejects invalid JSON with code 6', async () => {
    const e = errorOf(await call({ add: jest.fn() }, {}, '{"cniVersion": "1.1.0", '));
    expect(e.code).toBe(ErrCode.DecodeFailure);
  });

  it('rejects a JSON value that is not an object with code 6', async () => {
    expect(errorOf(await call({ add: jest.fn() }, {}, '[1,2]')).code).toBe(6);
  });

  it('rejects a config without a name with code 7', async () => {
    const e = errorOf(await call({ add: jest.fn() }, {}, { cniVersion: '1.1.0', type: 'test' }));
    expect(e.code).toBe(ErrCode.InvalidConfig);
    expect(e.msg).toMatch(/name/);
  });

  it.each([['a leading dot', '.host-local-index'], ['a slash', 'a/b'], ['a space', 'my net'], ['a colon', 'a:b'], ['a leading dash', '-x'], ['a quote', 'a"b']])(
    'rejects a network name with %s with code 7, as libcni does, before any verb runs',
    async (_what, name) => {
      const add = jest.fn();
      const e = errorOf(await call({ add }, {}, conf({ name })));
      expect(e.code).toBe(ErrCode.InvalidConfig);
      expect(e.msg).toBe('invalid characters found in network name');
      expect(add).not.toHaveBeenCalled();
    },
  );

  it('accepts the characters libcni allows in a network name', async () => {
    const add = jest.fn().mockResolvedValue({ cniVersion: '1.1.0' });
    expect((await call({ add }, {}, conf({ name: 'Net_1.a-b' }))).code).toBe(0);
  });

  it('rejects an unsupported version with code 1 and the reference details', async () => {
    const add = jest.fn();
    const e = errorOf(await call({ add }, {}, conf({ cniVersion: '0.9.9' })));
    expect(e.code).toBe(ErrCode.IncompatibleVersion);
    expect(e.msg).toBe('incompatible CNI versions');
    expect(e.details).toBe('config is "0.9.9", plugin supports ["0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]');
    expect(add).not.toHaveBeenCalled();
  });

  it('treats a missing cniVersion as 0.1.0, which is unsupported (code 1)', async () => {
    const e = errorOf(await call({ add: jest.fn() }, {}, { name: 'net1', type: 'test' }));
    expect(e.code).toBe(1);
    expect(e.details).toMatch(/^config is "0\.1\.0"/);
  });

  it('rejects CHECK with a 0.3.1 config (code 1)', async () => {
    const check = jest.fn();
    const e = errorOf(await call({ check }, { CNI_COMMAND: 'CHECK' }, conf({ cniVersion: '0.3.1' })));
    expect(e.code).toBe(1);
    expect(check).not.toHaveBeenCalled();
  });

  it('runs CHECK with a 0.4.0 config', async () => {
    const check = jest.fn(async () => {});
    expect(await call({ check }, { CNI_COMMAND: 'CHECK' }, conf({ cniVersion: '0.4.0' }))).toMatchObject({ out: '', code: 0 });
    expect(check).toHaveBeenCalled();
  });

  it.each(['GC', 'STATUS'])('rejects %s with a 1.0.0 config (code 1)', async (verb) => {
    const fn = jest.fn();
    const e = errorOf(await call({ gc: fn, status: fn }, { CNI_COMMAND: verb }, conf({ cniVersion: '1.0.0' })));
    expect(e.code).toBe(1);
    expect(e.msg).toContain(verb);
    expect(fn).not.toHaveBeenCalled();
  });

  it('runs STATUS with a 1.1.0 config and no CNI_PATH', async () => {
    const status = jest.fn(async () => {});
    const c = await call({ status }, { CNI_COMMAND: 'STATUS', CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined, CNI_PATH: undefined });
    expect(c).toMatchObject({ out: '', code: 0 });
    expect(status).toHaveBeenCalled();
  });

  it('succeeds for a verb declared to have nothing to do, without loading the config', async () => {
    const loadConf = jest.fn((a: CmdArgs) => a.conf);
    const p = pluginOf({}, 'test', { loadConf });
    const io: Io = { getenv: (k) => ({ ...BASE_ENV, CNI_COMMAND: 'DEL' })[k], readStdin: () => Buffer.from(JSON.stringify(conf())), finish: () => undefined, stderr: () => undefined };
    expect(await dispatch(p, io)).toEqual({ out: '', code: 0 });
    expect(loadConf).not.toHaveBeenCalled();
  });
});

describe('ADD result per version', () => {
  it('0.4.0 adds ips[].version and drops the 1.1-only keys', async () => {
    const c = await call(addReturning(SAMPLE), {}, conf({ cniVersion: '0.4.0' }));
    expect(c.code).toBe(0);
    const r = JSON.parse(c.out);
    expect(r.cniVersion).toBe('0.4.0');
    expect(r.ips).toEqual([
      { version: '4', interface: 2, address: '10.0.0.2/24', gateway: '10.0.0.1' },
      { version: '6', interface: 2, address: 'fd00::2/64', gateway: 'fd00::1' },
    ]);
    expect(r.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.0.0.1' }]);
    expect(r.interfaces[2]).toEqual({ name: 'eth0', mac: '0a:58:0a:00:00:03', sandbox: '/run/netns/x' });
    expect(r.dns).toEqual({ nameservers: ['10.0.0.1'] });
  });

  it.each(['0.3.0', '0.3.1'])('%s has the same shape as 0.4.0', async (v) => {
    const r = JSON.parse((await call(addReturning(SAMPLE), {}, conf({ cniVersion: v }))).out);
    expect(r.cniVersion).toBe(v);
    expect(r.ips[0].version).toBe('4');
    expect(r.routes[0]).not.toHaveProperty('mtu');
  });

  it('1.0.0 drops ips[].version and the 1.1-only keys', async () => {
    const r = JSON.parse((await call(addReturning(SAMPLE), {}, conf({ cniVersion: '1.0.0' }))).out);
    expect(r.cniVersion).toBe('1.0.0');
    expect(r.ips[0]).toEqual({ interface: 2, address: '10.0.0.2/24', gateway: '10.0.0.1' });
    expect(r.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.0.0.1' }]);
    expect(r.interfaces[1]).toEqual({ name: 'veth1', mac: '0a:58:0a:00:00:02' });
    expect(r.interfaces[2]).not.toHaveProperty('socketPath');
    expect(r.interfaces[2]).not.toHaveProperty('pciID');
  });

  it('1.1.0 keeps route and interface extras', async () => {
    const r = JSON.parse((await call(addReturning(SAMPLE), {}, conf())).out);
    expect(r.cniVersion).toBe('1.1.0');
    expect(r.ips[0]).not.toHaveProperty('version');
    expect(r.routes[0]).toEqual(SAMPLE.routes![0]);
    expect(r.interfaces).toEqual(SAMPLE.interfaces);
  });

  it('answers in the config version even if the plugin set another cniVersion', async () => {
    const r = JSON.parse((await call(addReturning({ ...SAMPLE, cniVersion: '1.1.0' }), {}, conf({ cniVersion: '1.0.0' }))).out);
    expect(r.cniVersion).toBe('1.0.0');
  });
});

describe('prevResult', () => {
  it('is parsed from a 0.4.0 shape into the current shape', async () => {
    const add = jest.fn(async (a: CmdArgs): Promise<Result> => a.prevResult!);
    const prev = {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'eth0', mac: '0a:58:0a:00:00:03', sandbox: '/run/netns/x' }],
      ips: [
        { version: '4', interface: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' },
        { version: '6', address: 'fd00::2/64' },
      ],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['1.1.1.1'] },
    };
    const c = await call({ add }, {}, conf({ cniVersion: '0.4.0', prevResult: prev }));
    expect(c.code).toBe(0);
    const p = add.mock.calls[0]![0].prevResult!;
    expect(p.ips).toEqual([
      { interface: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' },
      { address: 'fd00::2/64' },
    ]);
    expect(p.interfaces).toEqual(prev.interfaces);
    expect(p.routes).toEqual(prev.routes);
    expect(p.dns).toEqual(prev.dns);
    // And echoed back unchanged in the config's version.
    expect(JSON.parse(c.out)).toEqual(prev);
  });

  it('is absent on a first ADD', async () => {
    const add = jest.fn(async (a: CmdArgs): Promise<Result> => ({ cniVersion: a.conf.cniVersion }));
    await call({ add }, {});
    expect(add.mock.calls[0]![0].prevResult).toBeUndefined();
  });

  it('that cannot be decoded is code 6', async () => {
    const add = jest.fn();
    const e = errorOf(await call({ add }, {}, conf({ prevResult: { ips: 'nope' } })));
    expect(e.code).toBe(6);
    expect(add).not.toHaveBeenCalled();
  });
});

describe('errors from the verb', () => {
  it('wraps a plain Error as code 999', async () => {
    const e = errorOf(await call({ add: async () => { throw new Error('boom'); } }, {}));
    expect(e).toEqual({ cniVersion: '1.1.0', code: 999, msg: 'boom' });
  });

  it('wraps a thrown non-Error as code 999', async () => {
    const e = errorOf(await call({ del: async () => { throw 'weird'; } }, { CNI_COMMAND: 'DEL' }));
    expect(e).toMatchObject({ code: 999, msg: 'weird' });
  });

  it('passes a CniError through with its code and details', async () => {
    const e = errorOf(
      await call({ add: async () => { throw new CniError(ErrCode.NoAddressAvailable, 'no IP addresses available in range set', '10.0.0.0/30'); } }, {}),
    );
    expect(e).toEqual({ cniVersion: '1.1.0', code: 100, msg: 'no IP addresses available in range set', details: '10.0.0.0/30' });
  });

  it('carries the config version in the error object', async () => {
    for (const v of ['0.3.1', '0.4.0', '1.0.0']) {
      const e = errorOf(await call({ del: async () => { throw new CniError(11, 'busy'); } }, { CNI_COMMAND: 'DEL' }, conf({ cniVersion: v })));
      expect(e.cniVersion).toBe(v);
      expect(e.code).toBe(11);
    }
  });

  it('carries the config version on config errors found after the version is known', async () => {
    const e = errorOf(await call({ add: jest.fn() }, {}, { cniVersion: '0.4.0', type: 'x' }));
    expect(e.code).toBe(7);
    expect(e.cniVersion).toBe('0.4.0');
  });

  it('prints exactly one JSON object on stdout and nothing else', async () => {
    const c = await call({ add: async () => { throw new Error('line1\nline2'); } }, {});
    expect(c.out.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(c.out).msg).toBe('line1\nline2');
  });
});

describe('config keys (containerd sends PascalCase capability arguments)', () => {
  const keys = { p: { runtimeConfig: { p: { portMappings: { i: { p: { hostPort: {}, containerPort: {}, protocol: {}, hostIP: {} } } } } } } };
  const CRI_ARGS = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=3f1c0a6b2f0e4c1d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f;K8S_POD_UID=0b3c9d5e-1f2a-4b6c-8d7e-9f0a1b2c3d4e';

  async function addWith(stdin: Record<string, unknown>, opts: Partial<PluginDefinition<NetConf>>) {
    const add = jest.fn(async (_a: CmdArgs): Promise<Result> => ({ cniVersion: '1.0.0' }));
    const vars: Record<string, string | undefined> = { ...BASE_ENV, CNI_ARGS: CRI_ARGS };
    const text = JSON.stringify(stdin);
    const { code, out } = await dispatch(pluginOf({ add }, 'test', opts), { getenv: (k) => vars[k], readStdin: () => Buffer.from(text), finish: () => undefined, stderr: () => undefined });
    return { code, out, args: add.mock.calls[0]?.[0], text };
  }

  it('hands the plugin canonical keys, the exact stdin bytes, and CNI_ARGS keys as sent', async () => {
    const stdin = {
      CNIVersion: '1.0.0',
      Name: 'k8s-pod-network',
      type: 'portmap',
      runtimeConfig: { portMappings: [{ HostPort: 18080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }] },
    };
    const r = await addWith(stdin, { keys: { p: { ...keys.p, cniVersion: {}, name: {} } } });
    expect(r.code).toBe(0);
    expect(r.args!.conf).toEqual({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'portmap', runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp', hostIP: '' }] } });
    expect(r.args!.stdin.toString()).toBe(r.text);
    // CNI_ARGS is matched by exact name in the reference (types.LoadArgs): never rewritten.
    expect(Object.keys(r.args!.argsMap)).toEqual(['IgnoreUnknown', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID']);
    expect(r.args!.argsMap.K8S_POD_NAME).toBe('web-0');
  });

  it('matches the keys every config has by default (a "Name" is a name)', async () => {
    const r = await addWith({ CNIVersion: '0.4.0', NAME: 'n', Type: 't', PrevResult: { CNIVersion: '0.4.0', IPs: [{ Version: '4', Address: '10.0.0.2/24' }] } }, {});
    expect(r.code).toBe(0);
    expect(r.args!.conf.name).toBe('n');
    expect(r.args!.prevResult!.ips).toEqual([{ address: '10.0.0.2/24' }]);
    expect(JSON.parse(r.out).cniVersion).toBe('0.4.0');
  });
});

describe('the plugin contract (definePlugin)', () => {
  const base = { about: 'x', loadConf: (a: CmdArgs) => a.conf, add: async (): Promise<Result> => ({ cniVersion: '1.1.0' }) };

  it('refuses, at compile time, a definition that leaves a verb out or undefined', () => {
    // The checks are the @ts-expect-error lines: tsc fails if either definition compiles.
    // @ts-expect-error status is not declared
    const missing = () => definePlugin({ ...base, del: stateless, check: stateless, gc: stateless });
    // @ts-expect-error an undefined verb is not a declaration either
    const undef = () => definePlugin({ ...base, del: stateless, check: stateless, gc: stateless, status: undefined });
    // @ts-expect-error ADD must be a function: a plugin without ADD is no plugin
    const noAdd = () => definePlugin({ ...base, add: stateless, del: stateless, check: stateless, gc: stateless, status: stateless });
    expect([missing, undef, noAdd].every((f) => typeof f === 'function')).toBe(true);
  });

  it('says why each verb has nothing to do', () => {
    const p = definePlugin({ ...base, del: configOnly, check: noop('nothing to compare'), gc: stateless, status: stateless });
    expect(p.noops).toEqual({ check: 'nothing to compare', gc: stateless.why, status: stateless.why });
    expect(p.allowOwnNetns).toBe(false);
  });

  it('a noop verb succeeds without loading the config; a function verb gets what loadConf returned', async () => {
    const loadConf = jest.fn((a: CmdArgs) => ({ parsed: a.conf.name }));
    const gc = jest.fn(async (_a: CmdArgs, _c: { parsed: string }) => undefined);
    const p = definePlugin({ about: 'x', loadConf, add: async () => ({ cniVersion: '1.1.0' }), del: configOnly, check: stateless, gc, status: stateless });
    const stdin = Buffer.from(JSON.stringify(conf()));
    const args: CmdArgs = { command: 'GC', containerID: '', netns: '', ifName: '', args: '', argsMap: {}, path: [], stdin, conf: parseConf(stdin) };
    await expect(p.status({ ...args, command: 'STATUS' })).resolves.toBeUndefined();
    await expect(p.check({ ...args, command: 'CHECK' })).resolves.toBeUndefined();
    expect(loadConf).not.toHaveBeenCalled();
    await p.gc(args);
    expect(gc).toHaveBeenCalledWith(args, { parsed: 'net1' });
    // configOnly: the config is loaded (so a broken one is refused), nothing else happens.
    await expect(p.del({ ...args, command: 'DEL' })).resolves.toBeUndefined();
    expect(loadConf).toHaveBeenCalledTimes(2);
  });

  it('a config loadConf refuses is the error of the call, and the verb does not run', async () => {
    const status = jest.fn(async () => undefined);
    const loadConf = () => {
      throw new CniError(ErrCode.InvalidConfig, 'invalid test configuration', 'conf.mtu must be integer');
    };
    const p = definePlugin<never>({ about: 'x', loadConf, add: async () => ({ cniVersion: '1.1.0' }), del: stateless, check: stateless, gc: stateless, status });
    const io: Io = { getenv: (k) => ({ CNI_COMMAND: 'STATUS' })[k], readStdin: () => Buffer.from(JSON.stringify(conf())), finish: () => undefined, stderr: () => undefined };
    const e = errorOf({ ...(await dispatch(p, io)), stderr: [] });
    expect(e).toMatchObject({ code: 7, msg: 'invalid test configuration', details: 'conf.mtu must be integer' });
    expect(status).not.toHaveBeenCalled();
  });

  it('keeps nothing between invocations: two plugins, interleaved, each with its own keys and result', async () => {
    const mk = (name: string, keys: Plugin['keys']) =>
      definePlugin({ about: name, loadConf: (a) => a.conf, add: async (a) => ({ cniVersion: '1.1.0', dns: { domain: `${name}:${String(a.conf.name)}:${String(a.conf.mtu)}` } }), del: stateless, check: stateless, gc: stateless, status: stateless, keys });
    const a = mk('a', { p: { name: {}, cniVersion: {}, mtu: {} } });
    const b = mk('b', { p: { name: {}, cniVersion: {} } });
    const io = (text: string): Io => ({ getenv: (k) => BASE_ENV[k], readStdin: () => Buffer.from(text), finish: () => undefined, stderr: () => undefined });
    const stdin = JSON.stringify({ cniVersion: '1.1.0', Name: 'n', MTU: 1400 });
    const [ra, rb] = await Promise.all([dispatch(a, io(stdin)), dispatch(b, io(stdin))]);
    expect(JSON.parse(ra.out).dns.domain).toBe('a:n:1400');
    expect(JSON.parse(rb.out).dns.domain).toBe('b:n:undefined');
  });
});

describe('ADD after the served-mode service died mid-call (CNI_TS_RECOVER=1, set by the stub)', () => {
  test('the DEL runs first, then the ADD; a failing DEL is reported on stderr and does not stop the ADD', async () => {
    const order: string[] = [];
    const funcs: Funcs = {
      add: async () => {
        order.push('add');
        return SAMPLE;
      },
      del: async () => {
        order.push('del');
        throw new Error('nothing to delete');
      },
    };
    const c = await call(funcs, { CNI_TS_RECOVER: '1' });
    expect(c.code).toBe(0);
    expect(order).toEqual(['del', 'add']);
    expect(c.stderr.join('')).toMatch(/service died mid-ADD: nothing to delete/);
    order.length = 0;
    expect((await call(funcs, {})).code).toBe(0);
    expect(order).toEqual(['add']);
  });
});
