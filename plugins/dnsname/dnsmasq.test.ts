import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniError } from '../../lib/skel/errors';
import { unreachableAncestor, buildDnsmasqConf, cmdlineMatches, dnsmasqSpec, findDnsmasq, listenFromConf, netPaths, startArgv } from './dnsmasq';

const paths = netPaths('/run/containers/cni/dnsname', 'podman1');

describe('dnsmasq files and argv', () => {
  test('per-network paths, named as containers/dnsname names them', () => {
    expect(paths).toEqual({
      dir: '/run/containers/cni/dnsname/podman1',
      conf: '/run/containers/cni/dnsname/podman1/dnsmasq.conf',
      hosts: '/run/containers/cni/dnsname/podman1/addnhosts',
      hostsDir: '/run/containers/cni/dnsname/podman1/hosts.d',
      pidFile: '/run/containers/cni/dnsname/podman1/pidfile',
      log: '/run/containers/cni/dnsname/podman1/dnsmasq.log',
      lock: '/run/containers/cni/dnsname/podman1/lock',
    });
  });

  test('config: gateway addresses only, our hosts file only, domain kept local, bare names not forwarded', () => {
    const text = buildDnsmasqConf({ network: 'podman1', domain: 'dns.podman', listen: ['10.88.0.1', 'fd00::1'], paths });
    const opts = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(opts).toEqual([
      // No pid file from dnsmasq (lib/daemon writes ours), log lines to stderr (our log file).
      'pid-file=',
      'log-facility=-',
      'listen-address=10.88.0.1,fd00::1',
      'bind-dynamic',
      'no-hosts',
      'addn-hosts=/run/containers/cni/dnsname/podman1/addnhosts',
      'hostsdir=/run/containers/cni/dnsname/podman1/hosts.d',
      'local=/dns.podman/',
      'domain-needed',
    ]);
    // --interface would make dnsmasq listen on the union of interface and addresses.
    expect(text).not.toMatch(/^interface=/m);
    // The readiness probe asks where the config listens.
    expect(listenFromConf(text)).toEqual(['10.88.0.1', 'fd00::1']);
    expect(listenFromConf('')).toEqual([]);
  });

  test('argv: the binary in the foreground (its pid is the one started) and our config file, no shell', () => {
    expect(startArgv('/usr/sbin/dnsmasq', paths)).toEqual(['/usr/sbin/dnsmasq', '--keep-in-foreground', '--conf-file=/run/containers/cni/dnsname/podman1/dnsmasq.conf']);
  });

  test('daemon spec: the network dir, pidfile and lock as containers/dnsname names them, dnsmasq.log', () => {
    const spec = dnsmasqSpec({ network: 'podman1', paths, listen: ['10.88.0.1'], bin: '/usr/sbin/dnsmasq' });
    expect(spec).toMatchObject({
      name: 'dnsmasq for network podman1',
      dir: paths.dir,
      argv: startArgv('/usr/sbin/dnsmasq', paths),
      pidFile: paths.pidFile,
      logFile: paths.log,
      lockFile: paths.lock,
    });
    expect(spec.matches(startArgv('/usr/sbin/dnsmasq', paths))).toBe(true);
  });

  test('a pid is ours only if its cmdline is dnsmasq with our config file', () => {
    const conf = '--conf-file=/run/containers/cni/dnsname/podman1/dnsmasq.conf';
    expect(cmdlineMatches(['/usr/sbin/dnsmasq', '--keep-in-foreground', conf], paths)).toBe(true);
    // One started by an older version (self-daemonized) is still ours to stop.
    expect(cmdlineMatches(['dnsmasq', conf], paths)).toBe(true);
    // Another network's server, a reused pid, an empty cmdline (kernel thread or zombie).
    expect(cmdlineMatches(['dnsmasq', '--conf-file=/run/containers/cni/dnsname/podman2/dnsmasq.conf'], paths)).toBe(false);
    expect(cmdlineMatches(['sleep', conf], paths)).toBe(false);
    expect(cmdlineMatches([], paths)).toBe(false);
  });
});

describe('findDnsmasq / unreachableAncestor', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dnsname-unit-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a configured path wins; missing is code 50 (STATUS: not available)', () => {
    const bin = join(dir, 'dnsmasq');
    writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
    expect(findDnsmasq(bin, '')).toBe(bin);
    const e = (() => {
      try {
        findDnsmasq(join(dir, 'nope'), '');
      } catch (x) {
        return x as CniError;
      }
      return undefined;
    })();
    expect(e?.code).toBe(50);
  });

  test('PATH is searched first', () => {
    const bin = join(dir, 'dnsmasq');
    writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
    expect(findDnsmasq(undefined, `/nonexistent:${dir}`)).toBe(bin);
  });

  test('unreachableAncestor names the nearest directory others cannot enter; missing ones do not count', () => {
    const inner = join(dir, 'a', 'b');
    mkdirSync(inner, { recursive: true });
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'a'), 0o700);
    expect(unreachableAncestor(join(inner, 'not-yet'))).toBe(join(dir, 'a'));
    chmodSync(join(dir, 'a'), 0o755);
    expect(unreachableAncestor(join(inner, 'not-yet'))).toBeUndefined();
  });

  test('config: user=root only when the files are out of reach of the unprivileged user', () => {
    const conf = (runAsRoot?: string) => buildDnsmasqConf({ network: 'n', domain: 'd', listen: ['10.0.0.1'], paths, runAsRoot });
    expect(conf()).not.toMatch(/^user=/m);
    expect(conf('/run/containers')).toMatch(/^user=root$/m);
  });
});
