import { setSpawnHook, type RunOptions, type RunResult } from '../../exec/run';
import { CniError } from '../../skel/errors';
import type { MasqSpec } from '../driver';
import { nftComment } from '../names';
import { NftablesDriver } from './driver';
import { deleteRuleLine, emptyRuleset, type NftRuleset, parseNftJson } from './json';
import { describeMasqRule, findOwnerRules, nftMasq } from './masq';

const parseNftListing = parseNftJson;
const nftSetupScript = (spec: MasqSpec, rs: NftRuleset): string => nftMasq.setup(spec, rs).join('\n') + '\n';
const nftTeardownScript = (rs: NftRuleset, spec: MasqSpec): string | undefined => {
  const lines = nftMasq.owned(spec, rs).map(deleteRuleLine);
  return lines.length ? lines.join('\n') + '\n' : undefined;
};
const nftMissing = (rs: NftRuleset, spec: MasqSpec, addresses: string[]): string[] => nftMasq.missing({ ...spec, addresses }, rs);

const A: MasqSpec = { network: 'mynet', containerID: 'ctr-a', ifName: 'eth0', addresses: ['10.22.0.5/16', 'fd00::5/64'] };
const B: MasqSpec = { network: 'mynet', containerID: 'ctr-b', ifName: 'eth0', addresses: ['10.22.0.6/16'] };
const T = 'inet cni_plugins_masquerade';

/** A listing shaped like `nft -j list table` (nft 1.0.6) for the given rules. */
function listing(rules: { chain: string; handle: number; comment?: string; expr: unknown[] }[]): string {
  return JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { table: { family: 'inet', name: 'cni_plugins_masquerade', handle: 1 } },
      { chain: { family: 'inet', table: 'cni_plugins_masquerade', name: 'masq_checks', handle: 1 } },
      { chain: { family: 'inet', table: 'cni_plugins_masquerade', name: 'postrouting', handle: 2, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
      ...rules.map((r) => ({ rule: { family: 'inet', table: 'cni_plugins_masquerade', ...r } })),
    ],
  });
}
const masqExpr = (proto: 'ip' | 'ip6', ip: string, addr: string, len: number): unknown[] => [
  { match: { op: '==', left: { payload: { protocol: proto, field: 'saddr' } }, right: ip } },
  { match: { op: '!=', left: { payload: { protocol: proto, field: 'daddr' } }, right: { prefix: { addr, len } } } },
  { masquerade: null },
];
const goto = { chain: 'postrouting', handle: 5, expr: [{ goto: { target: 'masq_checks' } }] };
const cA = nftComment('mynet', 'eth0', 'ctr-a');
const cB = nftComment('mynet', 'eth0', 'ctr-b');
const FULL = listing([
  goto,
  { chain: 'masq_checks', handle: 6, comment: cA, expr: masqExpr('ip', '10.22.0.5', '10.22.0.0', 16) },
  { chain: 'masq_checks', handle: 7, comment: cA, expr: masqExpr('ip6', 'fd00::5', 'fd00::', 64) },
  { chain: 'masq_checks', handle: 8, comment: cB, expr: masqExpr('ip', '10.22.0.6', '10.22.0.0', 16) },
]);

describe('nft text', () => {
  it('setup: table, chains, postrouting rewritten, stale rules deleted, one rule per address', () => {
    expect(nftSetupScript(A, parseNftListing(FULL))).toBe(
      [
        `add table ${T} { comment "Masquerading for plugins from github.com/containernetworking/plugins" ; }`,
        `add chain ${T} masq_checks { comment "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet" ; }`,
        `add chain ${T} postrouting { type nat hook postrouting priority srcnat ; }`,
        `flush chain ${T} postrouting`,
        `add rule ${T} postrouting ip daddr == 224.0.0.0/4 return`,
        `add rule ${T} postrouting ip6 daddr == ff00::/8 return`,
        `add rule ${T} postrouting goto masq_checks`,
        `delete rule ${T} masq_checks handle 6`,
        `delete rule ${T} masq_checks handle 7`,
        `add rule ${T} masq_checks ip saddr == 10.22.0.5 ip daddr != 10.22.0.0/16 masquerade comment "${cA}"`,
        `add rule ${T} masq_checks ip6 saddr == fd00::5 ip6 daddr != fd00::/64 masquerade comment "${cA}"`,
        '',
      ].join('\n'),
    );
  });
  it('teardown: deletes by handle, nothing when there is nothing', () => {
    expect(nftTeardownScript(parseNftListing(FULL), A)).toBe(`delete rule ${T} masq_checks handle 6\ndelete rule ${T} masq_checks handle 7\n`);
    expect(nftTeardownScript(emptyRuleset(), A)).toBeUndefined();
  });
  it('refuses control characters that would start a new nft command', () => {
    expect(() => nftSetupScript({ ...A, containerID: 'x\nflush ruleset', addresses: [] }, emptyRuleset())).toThrow(CniError);
  });
});

describe('nft -j list parsing', () => {
  const l = parseNftListing(FULL);
  it('finds table, chains and rules', () => {
    expect(l.tables.has(T)).toBe(true);
    expect([...l.chains].sort()).toEqual([`${T} masq_checks`, `${T} postrouting`]);
    expect(l.rules).toHaveLength(4);
  });
  it("finds one owner's rules by comment prefix, not another's with the same subnet", () => {
    expect(findOwnerRules(l, A).map((r) => r.handle)).toEqual([6, 7]);
    expect(findOwnerRules(l, B).map((r) => r.handle)).toEqual([8]);
    expect(findOwnerRules(l, { ...A, ifName: 'eth1' })).toEqual([]);
  });
  it('reads back what a rule does', () => {
    expect(describeMasqRule(l.rules[2]!)).toEqual({ ip: 'fd00::5', subnet: 'fd00::/64' });
    expect(describeMasqRule(l.rules[0]!)).toBeUndefined();
  });
  it('reports what is missing', () => {
    expect(nftMissing(l, A, A.addresses)).toEqual([]);
    expect(nftMissing(l, A, ['10.23.0.5/24'])).toEqual([
      `no masquerade rule for 10.23.0.5 (subnet 10.23.0.0/24) in ${T} masq_checks`,
    ]);
    const noGoto = parseNftListing(listing([]));
    expect(nftMissing(noGoto, B, B.addresses)).toHaveLength(2);
  });
  it('rejects output that is not nft JSON', () => {
    expect(() => parseNftListing('nope')).toThrow(CniError);
    expect(() => parseNftListing('{}')).toThrow(CniError);
  });
});

describe('NftablesDriver processes', () => {
  let calls: { argv: string[]; opts: RunOptions }[];
  let replies: RunResult[];
  beforeEach(() => {
    calls = [];
    replies = [];
    setSpawnHook(async (argv, opts) => {
      calls.push({ argv, opts });
      return replies.shift() ?? { stdout: '', stderr: '', exitCode: 0 };
    });
  });
  afterEach(() => setSpawnHook(undefined));
  const missingTable = { stdout: '', stderr: 'Error: No such file or directory\nlist table inet cni_plugins_masquerade\n', exitCode: 1 };

  it('setup on an empty system: one read, one nft -f -', async () => {
    replies = [missingTable];
    await new NftablesDriver().setup({ masq: B });
    expect(calls.map((c) => c.argv)).toEqual([['nft', '-j', 'list', 'table', 'inet', 'cni_plugins_masquerade'], ['nft', '-f', '-']]);
    expect(calls[1]!.opts.input).toContain('ip saddr == 10.22.0.6 ip daddr != 10.22.0.0/16 masquerade');
    expect(calls[1]!.opts.input).not.toContain('delete rule');
  });
  it('setup again replaces its own rules only', async () => {
    replies = [{ stdout: FULL, stderr: '', exitCode: 0 }];
    await new NftablesDriver().setup({ masq: B });
    expect(calls).toHaveLength(2);
    expect(calls[1]!.opts.input).toContain('delete rule inet cni_plugins_masquerade masq_checks handle 8\n');
    expect(calls[1]!.opts.input).not.toMatch(/handle [67]\n/);
  });
  it('teardown with no addresses removes only the owner\'s rules', async () => {
    replies = [{ stdout: FULL, stderr: '', exitCode: 0 }];
    await new NftablesDriver().teardown({ ...A, addresses: [] }, ['masq']);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.opts.input).toBe(`delete rule ${T} masq_checks handle 6\ndelete rule ${T} masq_checks handle 7\n`);
  });
  it('teardown with nothing there: one read and no write', async () => {
    replies = [missingTable];
    await new NftablesDriver().teardown(A, ['masq']);
    expect(calls).toHaveLength(1);
  });
  it('teardown retries once when a rule vanished under it', async () => {
    const onlyB = listing([goto, { chain: 'masq_checks', handle: 8, comment: cB, expr: masqExpr('ip', '10.22.0.6', '10.22.0.0', 16) }]);
    replies = [
      { stdout: FULL, stderr: '', exitCode: 0 },
      { stdout: '', stderr: 'Error: Could not process rule: No such file or directory', exitCode: 1 },
      { stdout: onlyB, stderr: '', exitCode: 0 },
    ];
    await new NftablesDriver().teardown(A, ['masq']);
    expect(calls).toHaveLength(3);
  });
  /** A third owner, C, and a listing of the rules of B and C with one of A's (handle 6 or 7). */
  const C: MasqSpec = { ...B, containerID: 'ctr-c', addresses: ['10.22.0.7/16'] };
  const withBC = (a: 6 | 7): string =>
    listing([
      goto,
      a === 6 ? { chain: 'masq_checks', handle: 6, comment: cA, expr: masqExpr('ip', '10.22.0.5', '10.22.0.0', 16) } : { chain: 'masq_checks', handle: 7, comment: cA, expr: masqExpr('ip6', 'fd00::5', 'fd00::', 64) },
      { chain: 'masq_checks', handle: 8, comment: cB, expr: masqExpr('ip', '10.22.0.6', '10.22.0.0', 16) },
      { chain: 'masq_checks', handle: 9, comment: nftComment('mynet', 'eth0', 'ctr-c'), expr: masqExpr('ip', '10.22.0.7', '10.22.0.0', 16) },
    ]);
  it('concurrent teardowns (a wave of DELs in the service): the first alone, the rest in one read and one transaction', async () => {
    replies = [{ stdout: FULL, stderr: '', exitCode: 0 }, { stdout: '', stderr: '', exitCode: 0 }, { stdout: withBC(7), stderr: '', exitCode: 0 }];
    await Promise.all([A, B, C].map((o) => new NftablesDriver().teardown(o, ['masq'])));
    expect(calls.map((c) => c.argv.join(' '))).toEqual([`nft -j list table ${T}`, 'nft -f -', `nft -j list table ${T}`, 'nft -f -']);
    expect(calls[3]!.opts.input).toBe(`delete rule ${T} masq_checks handle 8\ndelete rule ${T} masq_checks handle 9\n`);
  });
  it('a wave whose shared transaction fails is torn down owner by owner, each with its own outcome', async () => {
    const read = { stdout: withBC(6), stderr: '', exitCode: 0 };
    const ok = { stdout: '', stderr: '', exitCode: 0 };
    const denied = { stdout: '', stderr: 'Error: Could not process rule: Operation not permitted', exitCode: 1 };
    // A alone; B and C together (denied); then B and C each: both read, B applies, C is denied.
    replies = [read, ok, read, denied, read, read, ok, denied];
    const settled = await Promise.allSettled([A, B, C].map((o) => new NftablesDriver().teardown(o, ['masq'])));
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(calls.map((c) => c.argv.join(' ')).filter((a) => a === 'nft -f -')).toHaveLength(4);
    expect(calls[3]!.opts.input).toBe(`delete rule ${T} masq_checks handle 8\ndelete rule ${T} masq_checks handle 9\n`);
  });
  it('runs inside a netns through nsenter when asked', async () => {
    replies = [missingTable];
    await new NftablesDriver({ netns: '/run/netns/x' }).teardown(A, ['masq']);
    expect(calls[0]!.opts.netns).toBe('/run/netns/x');
  });
  it('check: one read; a missing rule is an error that names it', async () => {
    replies = [{ stdout: FULL, stderr: '', exitCode: 0 }];
    await new NftablesDriver().check({ masq: A });
    replies = [missingTable];
    await expect(new NftablesDriver().check({ masq: A })).rejects.toThrow(/does not exist/);
    expect(calls).toHaveLength(2);
  });
  it('a busy kernel is code 11', async () => {
    replies = [missingTable, { stdout: '', stderr: 'Error: Could not process rule: Device or resource busy', exitCode: 1 }];
    await expect(new NftablesDriver().setup({ masq: A })).rejects.toMatchObject({ code: 11 });
  });
  it('a bad address is a config error before anything runs', async () => {
    await expect(new NftablesDriver().setup({ masq: { ...A, addresses: ['10.0.0.1'] } })).rejects.toMatchObject({ code: 7 });
    expect(calls).toHaveLength(0);
  });
});

describe('one operation, several concerns', () => {
  afterEach(() => setSpawnHook(undefined));
  it('masquerade and firewall together: one read of the ruleset, one nft -f -', async () => {
    const calls: { argv: string[]; opts: RunOptions }[] = [];
    setSpawnHook(async (argv, opts): Promise<RunResult> => {
      calls.push({ argv, opts });
      return { stdout: calls.length === 1 ? FULL : '', stderr: '', exitCode: 0 };
    });
    await new NftablesDriver().setup({ masq: B, firewall: { ...B, policy: 'open', adminChain: 'CNI-ADMIN' } });
    expect(calls.map((c) => c.argv)).toEqual([['nft', '-j', 'list', 'ruleset'], ['nft', '-f', '-']]);
    expect(calls[1]!.opts.input).toContain('delete rule inet cni_plugins_masquerade masq_checks handle 8\n');
    expect(calls[1]!.opts.input).toContain('add rule inet cni_ts_firewall containers ip saddr 10.22.0.6 accept');
  });
});
