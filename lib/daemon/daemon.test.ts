import { daemonPaths, formatLogLine, parseCmdline, parsePidFile, parseProcStat, tailOf } from './daemon';

describe('daemon: pure helpers', () => {
  test('paths default to <dir>/<basename(argv[0])>.{pid,log,lock}; base and each file can be set', () => {
    const spec = { name: 'x', dir: '/run/x', argv: ['/usr/sbin/dnsmasq', '-k'], matches: () => true };
    expect(daemonPaths(spec)).toEqual({ pidFile: '/run/x/dnsmasq.pid', logFile: '/run/x/dnsmasq.log', lockFile: '/run/x/dnsmasq.lock' });
    expect(daemonPaths({ ...spec, base: 'agent' }).logFile).toBe('/run/x/agent.log');
    expect(daemonPaths({ ...spec, pidFile: '/run/x/pidfile', lockFile: '/run/x/lock' })).toEqual({ pidFile: '/run/x/pidfile', logFile: '/run/x/dnsmasq.log', lockFile: '/run/x/lock' });
  });

  test('cmdline: split on NUL, the final NUL adds no empty argument, empty arguments inside stay', () => {
    expect(parseCmdline('/usr/sbin/dnsmasq\0--keep-in-foreground\0--conf-file=/a b\0')).toEqual(['/usr/sbin/dnsmasq', '--keep-in-foreground', '--conf-file=/a b']);
    expect(parseCmdline('node\0\0x\0')).toEqual(['node', '', 'x']);
    // A kernel thread or a zombie reads empty.
    expect(parseCmdline('')).toEqual([]);
  });

  test('stat: state, ppid, pgrp, session after the last ")" (comm may hold ") " itself)', () => {
    expect(parseProcStat('4242 (dnsmasq) S 1 4242 4242 0 -1 4194560 ...')).toEqual({ state: 'S', ppid: 1, pgrp: 4242, session: 4242 });
    expect(parseProcStat('77 (a) Z (b)) Z 10 77 5 0')).toEqual({ state: 'Z', ppid: 10, pgrp: 77, session: 5 });
    expect(parseProcStat('garbage')).toBeUndefined();
  });

  test('pid file: a decimal pid > 1, surrounding whitespace allowed, anything else is no pid', () => {
    expect(parsePidFile('1234\n')).toBe(1234);
    expect(parsePidFile(' 99 ')).toBe(99);
    for (const bad of ['', '\n', '1', '0', '-5', '12ab', '1e3', '12 13', '99999999999999999999']) expect(parsePidFile(bad)).toBeUndefined();
  });

  test('log line: ISO time, the message, one newline; continuation lines indented', () => {
    const at = new Date(Date.UTC(2026, 11, 3, 22, 10, 5, 123));
    expect(formatLogLine(at, 'agent up')).toBe('2026-12-03T22:10:05.123Z agent up\n');
    expect(formatLogLine(at, 'failed:\nError: x\n  at y\n')).toBe('2026-12-03T22:10:05.123Z failed:\n    Error: x\n      at y\n');
  });

  test('tail: the last lines, bounded in size', () => {
    const text = Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n') + '\n';
    expect(tailOf(text, 3)).toBe('line 47\nline 48\nline 49');
    expect(tailOf(text, 100, 20)).toBe('line 48\nline 49');
    expect(tailOf(text, 100, 24)).toBe('line 47\nline 48\nline 49');
    expect(tailOf('')).toBe('');
  });
});
