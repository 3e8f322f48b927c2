// The served-mode stub's side of the protocol (lib/serve/protocol.ts, scripts/stub.mjs), with
// this test playing the service: a `sleep` stands in for the service process (its pid in
// service.pid, a FIFO requests.<pid> that the test reads), so every answer and every way of
// dying can be given on purpose, which a real service killed at random cannot. What must hold:
// an answer is printed once with its exit code, whether the "service" wrote stdout itself or
// sent it; a decline runs the call in-process with the stdin it was given; and a service that
// dies leaves the stub to do the right thing from what it left in q/: nothing (run the call),
// a full .in (run it from that copy, its own stdin being spent), an empty .in (fail with 11: the
// config may be half read), a .done (fail: the output may be half written). The calls are
// loopback ADDs into a sandbox netns, whose lo is checked.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { exec, execOk, type ExecResult } from './helpers/exec';
import { Registry, type Netns } from './helpers/netns';
import { IMPL, REPO_ROOT } from './helpers/plugin-dir';

const given = process.env.CNI_PLUGIN_DIR;
const DIR = given && existsSync(join(given, 'cni-ts')) ? given : join(REPO_ROOT, 'dist/served');
const maybe = process.getuid?.() === 0 && IMPL === 'ours' && existsSync(join(DIR, 'cni-ts')) ? describe : describe.skip;
const PATH = `${process.execPath.replace(/\/[^/]+$/, '')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
const CONF = JSON.stringify({ cniVersion: '1.0.0', name: 'lo-net', type: 'loopback' });

maybe(`served-mode stub [${DIR}]`, () => {
  let reg: Registry;
  let ctr: Netns;
  let dir: string;
  let fake: ChildProcess;
  let requests: Socket;

  beforeEach(async () => {
    reg = new Registry();
    ctr = await reg.netns('ctr');
    dir = reg.tempDir();
    mkdirSync(join(dir, 'q'), { mode: 0o700 });
    fake = spawn('sleep', ['600'], { stdio: 'ignore' });
    const pid = fake.pid!;
    reg.onCleanup('stop the fake service', async () => {
      fake.kill('SIGKILL');
    });
    writeFileSync(join(dir, 'service.pid'), `${pid}\n`);
    await execOk(['mkfifo', '-m', '600', join(dir, `requests.${pid}`)]);
    requests = new Socket({ fd: openSync(join(dir, `requests.${pid}`), constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
    reg.onCleanup('close the request FIFO', async () => {
      requests.destroy();
    });
  });
  afterEach(() => reg.cleanup());

  /** The next request line's stub pid. */
  const nextRequest = (): Promise<number> =>
    new Promise((resolve) => {
      requests.once('data', (b: Buffer) => resolve(Number(b.toString().split(' ')[0])));
    });

  /**
   * A loopback ADD through the stub, in served mode that never starts a real service. Its stdin
   * and stdout are sockets (a caller in Node), or with `pipes` real pipes, as a Go runtime gives.
   */
  function add(stdin = CONF, pipes = false): Promise<ExecResult> {
    const env = { PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'stub-test', CNI_NETNS: ctr.path, CNI_IFNAME: 'lo', CNI_PATH: DIR, CNI_TS_SERVICE: 'use', CNI_TS_SERVICE_DIR: dir };
    const argv = pipes ? ['bash', '-c', 'cat | "$0" | cat', join(DIR, 'loopback')] : [join(DIR, 'loopback')];
    return exec(argv, { stdin, env, timeoutMs: 20_000 });
  }
  const answer = (stub: number, text: string): void => {
    const fd = openSync(`/proc/${stub}/fd/3`, constants.O_WRONLY);
    writeSync(fd, text);
    closeSync(fd);
  };
  async function loUp(): Promise<boolean> {
    const r = await execOk(['ip', '-n', ctr.name, '-json', 'link', 'show', 'lo']);
    return (JSON.parse(r.stdout)[0].flags as string[]).includes('UP');
  }
  const die = (): void => {
    fake.kill('SIGKILL');
  };

  test('an answer that carries the result: printed once, with its exit code; nothing runs in-process', async () => {
    const call = add();
    answer(await nextRequest(), '7 {"cniVersion":"1.0.0","code":7,"msg":"from the service"}\0');
    const r = await call;
    expect(r.code).toBe(7);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '1.0.0', code: 7, msg: 'from the service' });
    expect(await loUp()).toBe(false);
  });

  test("a result the service wrote to the stub's stdout (a pipe, its copy on fd 5) itself, answered with the code alone", async () => {
    const call = add(CONF, true);
    const stub = await nextRequest();
    const out = openSync(`/proc/${stub}/fd/5`, constants.O_WRONLY);
    writeSync(out, '{"cniVersion":"1.0.0"}\n');
    closeSync(out);
    answer(stub, '0 \0');
    const r = await call;
    expect([r.code, r.stdout]).toEqual([0, '{"cniVersion":"1.0.0"}\n']);
  });

  test.each([
    ['a socket (its config goes through q/<pid>.stdin)', false],
    ['a pipe', true],
  ])('a decline, stdin %s: the stub runs the call itself with that config', async (_, pipes) => {
    const call = add(CONF, pipes);
    const stub = await nextRequest();
    expect(existsSync(join(dir, 'q', `${stub}.stdin`))).toBe(!pipes);
    answer(stub, 'D\0');
    const r = await call;
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).interfaces[0].name).toBe('lo');
    expect(await loUp()).toBe(true);
  });

  test('a service that dies before it takes the call: the stub runs it itself', async () => {
    const call = add();
    await nextRequest();
    die();
    const r = await call;
    expect(r.code).toBe(0);
    expect(await loUp()).toBe(true);
  });

  test('a service that dies after it read the config: the stub runs the call from the copy in q/<pid>.in', async () => {
    // Its own stdin is not a config at all: success shows the copy was used.
    const call = add('{"spent": true');
    const stub = await nextRequest();
    writeFileSync(join(dir, 'q', `${stub}.in`), CONF);
    die();
    const r = await call;
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).interfaces[0].name).toBe('lo');
    expect(await loUp()).toBe(true);
  });

  test('a service that dies while reading the config: try again later (11), nothing done', async () => {
    const call = add();
    const stub = await nextRequest();
    writeFileSync(join(dir, 'q', `${stub}.in`), '');
    die();
    const r = await call;
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 11 });
    expect(await loUp()).toBe(false);
  });

  test('a service that dies while writing the result: the call fails, it is not run twice', async () => {
    const call = add();
    const stub = await nextRequest();
    writeFileSync(join(dir, 'q', `${stub}.done`), '');
    die();
    const r = await call;
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/died while writing the result/);
    expect(await loUp()).toBe(false);
  });
});
