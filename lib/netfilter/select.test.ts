import { setSpawnHook, type RunResult } from '../exec/run';
import { onPath } from './common';
import { availableBackends, selectDriver as selectBackend, teardownAll } from './select';
import type { OwnerHint } from './driver';

const teardownMasqAll = (o: OwnerHint, opts: Parameters<typeof teardownAll>[2]): Promise<void> => teardownAll(o, ['masq'], opts);

const both = { nftables: true, iptables: true };

describe('selectBackend', () => {
  it('an explicit choice wins', () => {
    expect(selectBackend('iptables', { available: both }).name).toBe('iptables');
    expect(selectBackend('nftables', { available: { nftables: false, iptables: true } }).name).toBe('nftables');
  });
  it('default: nftables when installed, else iptables', () => {
    expect(selectBackend(undefined, { available: both }).name).toBe('nftables');
    expect(selectBackend('', { available: { nftables: false, iptables: true } }).name).toBe('iptables');
    expect(() => selectBackend(undefined, { available: { nftables: false, iptables: false } })).toThrow(/neither nft nor iptables/);
  });
  it('an unknown name is a config error', () => {
    expect(() => selectBackend('ebtables' as never)).toThrow(expect.objectContaining({ code: 7 }));
  });
  it('looks for the tools on PATH without spawning', () => {
    expect(onPath('sh', '/bin:/usr/bin')).toBe(true);
    expect(onPath('sh', '/nonexistent')).toBe(false);
    expect(availableBackends('/nonexistent')).toEqual({ nftables: false, iptables: false });
  });
});

describe('teardownMasqAll', () => {
  afterEach(() => setSpawnHook(undefined));
  const spec = { network: 'n', containerID: 'c', ifName: 'eth0', addresses: [] };

  it('tears down on every installed backend', async () => {
    const argv0: string[] = [];
    setSpawnHook(async (argv): Promise<RunResult> => {
      argv0.push(argv[0]!);
      return argv[0] === 'nft'
        ? { stdout: '', stderr: 'Error: No such file or directory', exitCode: 1 }
        : { stdout: '*nat\nCOMMIT\n', stderr: '', exitCode: 0 };
    });
    await teardownMasqAll(spec, { available: both });
    expect(argv0).toContain('nft');
    expect(argv0).toContain('iptables-save');
    argv0.length = 0;
    await teardownMasqAll(spec, { available: { nftables: true, iptables: false } });
    expect(argv0).toEqual(['nft']);
  });
  it('runs the others when one fails, then reports the failure', async () => {
    const argv0: string[] = [];
    setSpawnHook(async (argv): Promise<RunResult> => {
      argv0.push(argv[0]!);
      return argv[0] === 'iptables-save'
        ? { stdout: '', stderr: 'iptables-save: boom', exitCode: 2 }
        : { stdout: '', stderr: 'Error: No such file or directory', exitCode: 1 };
    });
    await expect(teardownMasqAll({ ...spec, addresses: ['10.0.0.2/24'] }, { available: both, probeTables: false })).rejects.toThrow(/boom/);
    expect(argv0).toEqual(['iptables-save', 'nft']);
  });
});

describe('the null driver', () => {
  afterEach(() => setSpawnHook(undefined));
  it('is chosen only by name, and spawns nothing', async () => {
    let spawned = 0;
    setSpawnHook(async (): Promise<RunResult> => {
      spawned++;
      return { stdout: '', stderr: '', exitCode: 0 };
    });
    const d = selectBackend('none', { available: both });
    expect(d.name).toBe('none');
    const owner = { network: 'n', containerID: 'c', ifName: 'eth0', addresses: ['10.0.0.2/24'] };
    await d.setup({ masq: owner });
    await d.check({ masq: owner });
    await d.teardown(owner, ['masq', 'ports', 'firewall']);
    await d.gc('n', [], ['masq', 'ports', 'firewall']);
    expect(spawned).toBe(0);
  });
});
