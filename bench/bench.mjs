#!/usr/bin/env node
// `npm run bench`: our plugins in each packaging against the reference Go plugins (/usr/lib/cni),
// same run, interleaved, inside sandbox network namespaces. The sides:
//   bundle         dist/bin: one node bundle per plugin, in-process
//   bundle-served  dist/served: bash stubs handing each call to the per-host service
//                  (`node cni-ts serve`), which the bench starts before timing
//   binary         dist/package (SEA binary + stubs) with CNI_TS_SERVICE=off: in-process
//   binary-served  dist/package with its service (`cni-ts serve`) running
// Served sides are what the issue's targets are about; the in-process sides are checked for
// regressions against the previous run (bench-results/latest.json, or --compare FILE).
//
//   node bench/bench.mjs [--quick] [--iterations N] [--only id,id] [--sides name,name]
//                        [--compare FILE|--no-compare] [--service-node-options FLAGS]
//                        [--no-rss] [--no-strace] [--no-binary]
// The services get the Node flags a plugin-started service gets (--service-node-options '' for none).
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Impl, invoke, STRACE_BIN, TIME_BIN } from './lib/cni.mjs';
import { machineInfo } from './lib/machine.mjs';
import { run, runOk } from './lib/proc.mjs';
import { Sandbox } from './lib/sandbox.mjs';
import { scenarios } from './lib/scenarios.mjs';
import { leftoverProcesses, Service, SERVICE_NODE_OPTIONS } from './lib/service.mjs';
import { ratio, summarize } from './lib/stats.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** Our sides, in the order they are printed; `served` sides get a service of their own. */
const PACKAGINGS = {
  bundle: { served: false, what: 'dist/bin, one bundle per plugin, in-process' },
  'bundle-served': { served: true, what: 'dist/served stubs + `node cni-ts serve`' },
  binary: { served: false, what: 'dist/package stubs with CNI_TS_SERVICE=off, in-process' },
  'binary-served': { served: true, what: 'dist/package stubs + `cni-ts serve`' },
};
const SIDE_NAMES = Object.keys(PACKAGINGS);

// The issue's targets (served mode): ours ÷ reference of medians, same run.
const TARGETS = [
  { name: 'bridge ADD', scenario: 'bridge', verb: 'ADD', max: 2.5 },
  { name: 'bridge DEL', scenario: 'bridge', verb: 'DEL', max: 1.2 },
  { name: 'bridge+ipMasq DEL', scenario: 'bridge-masq', verb: 'DEL', max: 0.7 },
  { name: 'chain ADD', scenario: 'chain', verb: 'ADD', max: 1.5 },
  { name: 'chain DEL', scenario: 'chain', verb: 'DEL', max: 0.7 },
  { name: '32 parallel ADDs (wall)', scenario: 'parallel', verb: 'ADD', max: 2.5 },
  { name: '32 parallel ipMasq DELs (wall)', scenario: 'parallel-masq', verb: 'DEL', max: 0.6 },
];
const RSS_TARGET_MIB = 45;
// "host-local with 60 000 leases no slower than with 10": ours vs ours, with 10% for noise.
const LEASES_TOLERANCE = 1.1;
// In-process sides: a ratio more than this much above the previous run's counts as a regression.
const REGRESSION_TOLERANCE = 1.15;
// Warm-up iterations per scenario before timing: a service's JIT warms up over a few calls.
const WARMUPS = { inProcess: 1, served: 3 };

function parseArgs(argv) {
  const o = { iterations: 30, quick: false, only: null, sides: [...SIDE_NAMES], compare: undefined, serviceNodeOptions: SERVICE_NODE_OPTIONS, rss: true, strace: true, help: false };
  const list = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++k];
    if (a === '--quick') o.quick = true;
    else if (flag === '--iterations' || flag === '-n') o.iterations = Number(value());
    else if (flag === '--only') o.only = list(value());
    else if (flag === '--sides') o.sides = list(value());
    else if (flag === '--compare') o.compare = value();
    else if (a === '--no-compare') o.compare = null;
    else if (flag === '--service-node-options') o.serviceNodeOptions = value();
    else if (a === '--no-rss') o.rss = false;
    else if (a === '--no-strace') o.strace = false;
    else if (a === '--no-binary') o.sides = o.sides.filter((s) => !s.startsWith('binary'));
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown argument ${a} (try --help)`);
  }
  if (o.quick && !argv.some((a) => a.startsWith('--iterations') || a === '-n')) o.iterations = 5;
  if (!Number.isInteger(o.iterations) || o.iterations < 1) throw new Error('--iterations needs a positive integer');
  const bad = o.sides.filter((s) => !SIDE_NAMES.includes(s));
  if (bad.length || !o.sides.length) throw new Error(`--sides takes a list of ${SIDE_NAMES.join(', ')}${bad.length ? ` (not: ${bad.join(', ')})` : ''}`);
  o.sides = SIDE_NAMES.filter((s) => o.sides.includes(s)); // printed in the canonical order
  return o;
}

const fmt = (x, w = 7) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1)).padStart(w);
const fmtRatio = (x) => (x === null || x === undefined ? '-' : `${x.toFixed(2)}×`);
const log = (s = '') => process.stdout.write(s + '\n');
const load = () => os.loadavg().map((x) => Math.round(x * 100) / 100);
const median = (xs) => summarize(xs)?.median ?? null;

let CLK_TCK = 100;

async function runScenario(sc, sides, iterations, flags, sb) {
  const res = {
    id: sc.id,
    title: sc.title,
    plugins: sc.plugins,
    unit: sc.wall ? 'ms wall per wave' : 'ms per verb (whole list)',
    sides: sides.map((s) => ({ key: s.key, label: s.label, served: !!s.service })),
    iterations,
    status: {},
    firstError: {},
    failures: {},
    verbs: {},
    cpu: {},
    perPlugin: {},
    rss: {},
    procs: {},
    service: {},
    extra: {},
  };
  const samples = {};
  const cpuSums = {};
  const perPlugin = {};
  const active = [];
  const svcBefore = {};
  for (const side of sides) {
    if (side.unavailable) {
      res.status[side.key] = side.unavailable;
      continue;
    }
    const missing = side.impl.missing(sc.plugins);
    if (missing.length) {
      res.status[side.key] = `not built (missing from ${side.impl.shownDir ?? side.impl.dir}: ${missing.join(', ')})`;
      continue;
    }
    if (side.service) svcBefore[side.key] = { ...side.service.counts(), calls: side.service.calls };
    try {
      await sc.setup(side, sb);
      // Warm-up and validation, untimed (creates the bridge, loads caches; a service's JIT).
      for (let w = 0; w < (side.service ? WARMUPS.served : WARMUPS.inProcess); w++) {
        const r = await sc.iterate(side, w ? `warmup${w}` : 'warmup', {});
        if (r.failures) throw new Error(r.error ?? 'warm-up iteration failed');
      }
    } catch (e) {
      res.status[side.key] = `failed: ${e.message.split('\n')[0]}`;
      continue;
    }
    res.status[side.key] = 'ok';
    res.failures[side.key] = 0;
    samples[side.key] = {};
    cpuSums[side.key] = {};
    perPlugin[side.key] = {};
    res.extra[side.key] = [];
    active.push(side);
  }
  for (let i = 0; i < iterations; i++) {
    // Alternate who goes first so drift and cache effects hit every side equally.
    const order = i % 2 ? [...active].reverse() : active;
    for (const side of order) {
      const r = await sc.iterate(side, i, {});
      res.failures[side.key] += r.failures;
      if (r.error && !res.firstError[side.key]) res.firstError[side.key] = r.error;
      for (const [verb, ms] of Object.entries(r.samples)) (samples[side.key][verb] ??= []).push(ms);
      for (const [verb, c] of Object.entries(r.cpu ?? {})) {
        const acc = (cpuSums[side.key][verb] ??= { n: 0, tree: 0, svcOwn: 0, svcChildren: 0 });
        acc.n++;
        acc.tree += c.tree;
        acc.svcOwn += c.svcOwn ?? 0;
        acc.svcChildren += c.svcChildren ?? 0;
      }
      if (r.extra) res.extra[side.key].push(r.extra);
      if (r.steps && !r.error) {
        for (const [verb, steps] of Object.entries(r.steps)) {
          for (const st of steps) ((perPlugin[side.key][verb] ??= {})[st.plugin] ??= []).push(st.ms);
        }
      }
    }
  }
  // One extra untimed iteration per side under /usr/bin/time (peak RSS), one under strace.
  if (sc.rssAndProcs) {
    for (const side of active) {
      if (flags.rss) {
        const recs = [];
        await sc.iterate(side, 'rss', { wrap: 'rss', record: (e) => recs.push(e) });
        for (const e of recs) {
          if (e.rssKiB === undefined) continue;
          const k = `${e.plugin} ${e.command}`;
          res.rss[side.key] ??= {};
          res.rss[side.key][k] = Math.max(res.rss[side.key][k] ?? 0, e.rssKiB);
        }
      }
      if (flags.strace) {
        const recs = [];
        await sc.iterate(side, 'strace', { wrap: 'strace', record: (e) => recs.push(e) });
        const byVerb = {};
        for (const e of recs) {
          if (e.procs === undefined) continue;
          const v = (byVerb[e.command] ??= { procs: 0, execs: 0, children: {}, perPlugin: {}, ...(side.service ? { service: { procs: 0, children: {}, perPlugin: {} } } : {}) });
          // leases scenario runs each verb once per lease-count: keep the last one only
          if (v.perPlugin[e.plugin] !== undefined && sc.id === 'host-local-leases') continue;
          v.procs += e.procs;
          v.execs += e.execs;
          v.perPlugin[e.plugin] = e.procs;
          for (const [p, c] of Object.entries(e.children)) v.children[p] = (v.children[p] ?? 0) + c;
          if (v.service && e.service) {
            v.service.procs += e.service.procs;
            v.service.perPlugin[e.plugin] = e.service.procs;
            for (const [p, c] of Object.entries(e.service.children)) v.service.children[p] = (v.service.children[p] ?? 0) + c;
          }
        }
        res.procs[side.key] = byVerb;
      }
    }
  }
  // Ratios are of medians against the last side (the reference; for bridge-ca: ours without CA;
  // for overlay: a bridge of ours). `ratios` has every other side's.
  const keys = sides.map((s) => s.key);
  const base = keys[keys.length - 1];
  const verbs = sc.verbs ?? Object.keys(keys.map((k) => samples[k]).find(Boolean) ?? {});
  const ms = (ticks, n) => Math.round(((ticks * 1000) / CLK_TCK / n) * 10) / 10;
  for (const verb of verbs) {
    const v = {};
    for (const s of sides) v[s.key] = samples[s.key]?.[verb] ? summarize(samples[s.key][verb]) : null;
    v.ratios = Object.fromEntries(keys.slice(0, -1).map((k) => [k, ratio(v[k]?.median, v[base]?.median)]));
    v.samples = Object.fromEntries(sides.map((s) => [s.key, (samples[s.key]?.[verb] ?? []).map((x) => Math.round(x * 100) / 100)]));
    res.verbs[verb] = v;
    // CPU per verb, mean over the timed iterations (clock ticks are 10 ms; the mean is finer).
    for (const s of active) {
      const c = cpuSums[s.key][verb];
      if (!c?.n) continue;
      const tree = ms(c.tree, c.n);
      const service = s.service ? ms(c.svcOwn, c.n) : undefined;
      const serviceChildren = s.service ? ms(c.svcChildren, c.n) : undefined;
      (res.cpu[s.key] ??= {})[verb] = { n: c.n, callerTreeMs: tree, ...(s.service ? { serviceMs: service, serviceChildrenMs: serviceChildren } : {}), totalMs: Math.round((tree + (service ?? 0) + (serviceChildren ?? 0)) * 10) / 10 };
    }
  }
  for (const s of active) {
    res.perPlugin[s.key] = {};
    for (const [verb, m] of Object.entries(perPlugin[s.key])) {
      res.perPlugin[s.key][verb] = Object.fromEntries(Object.entries(m).map(([p, xs]) => [p, median(xs)]));
    }
  }
  // Served sides: did the service take every call (a declined call ran in-process), and how long
  // did the service itself spend per list (its log, whole ms per call) in the timed iterations?
  for (const s of active) {
    if (!s.service) continue;
    const now = s.service.counts();
    const before = svcBefore[s.key];
    const timedCid = new RegExp(`^bench-${sc.id}-${s.key}-\\d+(-\\d+)?$`);
    const perList = {};
    for (const c of s.service.loggedCalls()) {
      if (c.served && timedCid.test(c.cid)) ((perList[c.verb] ??= {})[c.cid] = (perList[c.verb]?.[c.cid] ?? 0) + c.ms);
    }
    res.service[s.key] = {
      calls: s.service.calls - before.calls,
      served: now.served - before.served,
      declined: now.declined - before.declined,
      ...(now.declined > before.declined ? { firstDecline: now.firstDecline } : {}),
      inServiceMedianMs: Object.fromEntries(Object.entries(perList).map(([verb, m]) => [verb, median(Object.values(m))])),
      alive: s.service.cpu() !== undefined,
      // The service's memory so far (VmHWM never goes down: the scenario that raised it is the first one showing the higher value).
      memoryKiB: s.service.memory(),
    };
  }
  return res;
}

function printScenario(res) {
  const sides = res.sides;
  const last = sides[sides.length - 1];
  log(`\n== ${res.title}  [${res.id}; ${res.iterations} iterations; ${res.unit}; ${res.seconds} s; load at end ${res.loadavgAtEnd?.join(' ')}]`);
  for (const s of sides) {
    const f = res.failures[s.key];
    const sv = res.service[s.key];
    const mem = sv?.memoryKiB ? `; service RSS ${(sv.memoryKiB.rssKiB / 1024).toFixed(1)} MiB, peak so far ${(sv.memoryKiB.hwmKiB / 1024).toFixed(1)} MiB` : '';
    const svc = sv ? `; service took ${sv.served} of ${sv.calls} calls${sv.declined ? `, declined ${sv.declined} (${sv.firstDecline})` : ''}${sv.alive ? '' : ', SERVICE GONE'}${mem}` : '';
    log(`   ${s.label}: ${res.status[s.key]}${f ? `, ${f} failure(s): ${res.firstError[s.key]}` : ''}${svc}`);
  }
  const anyData = Object.values(res.verbs).some((v) => sides.some((s) => v[s.key]));
  if (!anyData) return;
  const w = Math.max(...sides.map((s) => s.label.length), 10);
  const vw = Math.max(...Object.keys(res.verbs).map((v) => v.length), 4);
  log(`   ${'verb'.padEnd(vw)} ${'side'.padEnd(w)} ${'med'.padStart(7)} ${'p90'.padStart(7)} ${'min'.padStart(7)} ${`÷${last.label}`.slice(0, 12).padStart(12)}   CPU ms/verb: caller tree + service + its children = total   in-service ms`);
  for (const [verb, v] of Object.entries(res.verbs)) {
    for (const s of sides) {
      const st = v[s.key];
      if (!st && res.status[s.key] !== 'ok') continue;
      const c = res.cpu[s.key]?.[verb];
      const cpu = !c ? '' : s.served ? `${fmt(c.callerTreeMs, 6)} + ${fmt(c.serviceMs, 5)} + ${fmt(c.serviceChildrenMs, 5)} = ${fmt(c.totalMs, 6)}` : `${fmt(c.callerTreeMs, 6)}${' '.repeat(18)} = ${fmt(c.totalMs, 6)}`;
      const inSvc = res.service[s.key]?.inServiceMedianMs?.[verb];
      const r = s.key === last.key ? '' : fmtRatio(v.ratios?.[s.key]);
      log(`   ${verb.padEnd(vw)} ${s.label.padEnd(w)} ${fmt(st?.median)} ${fmt(st?.p90)} ${fmt(st?.min)} ${r.padStart(12)}   ${cpu.padEnd(48)} ${inSvc === undefined ? '' : fmt(inSvc, 6)}`);
    }
  }
  for (const s of res.sides) {
    const pp = res.perPlugin[s.key];
    if (pp && res.id === 'chain') {
      for (const [verb, m] of Object.entries(pp)) {
        log(`   ${s.label} ${verb} per plugin (median ms): ${Object.entries(m).map(([p, x]) => `${p} ${fmt(x, 0)}`).join(', ')}`);
      }
    }
    const ex = res.extra[s.key];
    if (ex?.length && ex[0].distinctAddresses !== undefined) {
      log(`   ${s.label}: distinct addresses per wave ${[...new Set(ex.map((e) => e.distinctAddresses))].join('/')}, successful ADDs per wave min ${Math.min(...ex.map((e) => e.okAdds))}`);
    }
    if (ex?.length && ex[0].agentAlive !== undefined) {
      const up = ex.filter((e) => e.agentAlive).length;
      log(`   ${s.label}: overlay agent running after the iteration in ${up} of ${ex.length}${up < ex.length ? ' — NOT RUNNING: the lease is not renewed' : ''}`);
    }
    const rss = res.rss[s.key];
    if (rss) log(`   ${s.label} peak RSS (MiB${s.served ? ', the stub; the service is reported at the end' : ''}): ${Object.entries(rss).map(([k, kib]) => `${k} ${(kib / 1024).toFixed(1)}`).join(', ')}`);
    const pr = res.procs[s.key];
    if (pr) {
      const kids = (m) => Object.entries(m).map(([p, c]) => `${p}×${c}`).join(' ') || 'none';
      log(
        `   ${s.label} processes per verb (excl. the nsenter wrapper): ${Object.entries(pr)
          .map(([verb, x]) => (x.service ? `${verb} ${x.procs + x.service.procs} = stub ${x.procs} [children ${kids(x.children)}] + service ${x.service.procs} [${kids(x.service.children)}]` : `${verb} ${x.procs} [children ${kids(x.children)}]`))
          .join('; ')}`,
      );
    }
  }
}

/** A previous run's ratio for a side (older files call the bundle side `ours` and the binary `bin`). */
function previousRatio(prev, scenario, verb, side) {
  const sc = prev?.scenarios?.find((s) => s.id === scenario);
  const r = sc?.verbs?.[verb]?.ratios ?? {};
  const alias = { bundle: ['bundle', 'ours'], binary: ['binary', 'bin'] }[side] ?? [side];
  for (const k of alias) if (typeof r[k] === 'number') return r[k];
  return null;
}

function evaluateTargets(results, sideNames, prev) {
  const byId = Object.fromEntries(results.map((r) => [r.id, r]));
  const out = [];
  const served = sideNames.filter((s) => PACKAGINGS[s].served);
  const inProcess = sideNames.filter((s) => !PACKAGINGS[s].served);
  for (const t of TARGETS) {
    for (const side of [...served, ...inProcess]) {
      const r = byId[t.scenario];
      const measured = r?.verbs[t.verb]?.ratios?.[side] ?? null;
      const why = !r
        ? 'scenario not run'
        : r.status[side] !== 'ok'
          ? `${side} ${r.status[side] ?? 'not run'}`
          : r.status.ref !== 'ok'
            ? `reference ${r.status.ref}`
            : measured === null && (r.failures[side] || r.failures.ref)
              ? `every timed iteration failed: ${r.firstError[side] ?? r.firstError.ref}`
              : 'no samples';
      const row = { target: `${t.name} ≤ ${t.max}×`, side, kind: PACKAGINGS[side].served ? 'served' : 'in-process', max: t.max, measured, unit: '×', verdict: measured === null ? `n/a (${why})` : measured <= t.max ? 'PASS' : 'MISS' };
      if (!PACKAGINGS[side].served) {
        const p = previousRatio(prev, t.scenario, t.verb, side);
        row.previous = p;
        row.regression = measured === null || p === null ? 'n/a' : measured <= p * REGRESSION_TOLERANCE ? 'no regression' : 'REGRESSED';
      }
      out.push(row);
    }
  }
  // RSS: the largest peak over every measured invocation of each side (the stub for served sides).
  for (const side of sideNames) {
    let maxKiB = null;
    let where = '';
    for (const r of results) {
      for (const [k, kib] of Object.entries(r.rss[side] ?? {})) {
        if (maxKiB === null || kib > maxKiB) {
          maxKiB = kib;
          where = `${k} in ${r.id}`;
        }
      }
    }
    out.push({
      target: `peak RSS per process ≤ ${RSS_TARGET_MIB} MiB`,
      side,
      kind: PACKAGINGS[side].served ? 'served' : 'in-process',
      measured: maxKiB === null ? null : Math.round((maxKiB / 1024) * 10) / 10,
      unit: ' MiB',
      where,
      verdict: maxKiB === null ? `n/a (no RSS measured for ${side})` : maxKiB / 1024 <= RSS_TARGET_MIB ? 'PASS' : 'MISS',
    });
  }
  const hl = byId['host-local-leases'];
  const keys = hl ? Object.keys(hl.verbs) : [];
  const small = keys.find((k) => k === 'ADD 10');
  const big = keys.find((k) => k.startsWith('ADD ') && k !== 'ADD 10');
  for (const side of sideNames) {
    const rr = hl && small && big ? ratio(hl.verbs[big][side]?.median, hl.verbs[small][side]?.median) : null;
    out.push({
      target: `host-local ${big ? big.slice(4) : 'many'} leases vs 10 (ADD) ≤ ${LEASES_TOLERANCE}×`,
      side,
      kind: PACKAGINGS[side].served ? 'served' : 'in-process',
      measured: rr,
      unit: '×',
      verdict: rr === null ? `n/a (${hl ? `${side} ${hl.status[side] ?? 'not run'}` : 'scenario not run'})` : rr <= LEASES_TOLERANCE ? 'PASS' : 'MISS',
    });
  }
  return out;
}

function printSummary(targets, services, prevInfo) {
  log('\n== Summary: ratio = ours ÷ reference of medians, same run. Served sides are judged against the targets;');
  log(`   in-process sides' PASS/MISS is for information, their check is no regression against ${prevInfo ?? 'a previous run (none found)'} (≤ ${REGRESSION_TOLERANCE}× its ratio).`);
  // Rows of scenarios this run did not select say nothing.
  const rows = targets.filter((t) => !t.verdict.includes('scenario not run')).map((t) => [
    t.target,
    t.side,
    t.measured === null ? '-' : t.unit === '×' ? fmtRatio(t.measured) : `${t.measured}${t.unit}`,
    t.verdict.startsWith('n/a') ? 'n/a' : t.kind === 'served' ? t.verdict : `(${t.verdict})`,
    t.kind === 'served' ? '' : t.regression ? `${t.regression}${t.previous !== null && t.previous !== undefined ? ` (previous ${t.previous}×)` : ''}` : '',
    t.verdict.startsWith('n/a') ? t.verdict.slice(4) : t.where ?? '',
  ]);
  for (const s of services) {
    rows.push([`service peak RSS (VmHWM), separately`, s.side, s.hwmKiB ? `${(s.hwmKiB / 1024).toFixed(1)} MiB` : '-', 'reported', '', `pid ${s.pid}; ${s.served} calls served`]);
  }
  const head = ['target', 'side', 'ratio', 'PASS/MISS', 'vs previous run', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => `   ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')}`.trimEnd();
  log(line(head));
  log(`   ${widths.map((w) => '-'.repeat(w)).join('-|-')}`);
  for (const r of rows) log(line(r));
}

/** The previous run's report (for the in-process sides' regression check), read before this run overwrites it. */
function readPrevious(file) {
  if (!file || !existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) {
    log('usage: node bench/bench.mjs [--quick] [--iterations N] [--only id,id] [--sides name,name] [--compare FILE|--no-compare] [--service-node-options FLAGS] [--no-rss] [--no-strace] [--no-binary]');
    log(`scenario ids: ${scenarios().map((s) => s.id).join(', ')}`);
    log(`sides (the reference always runs): ${SIDE_NAMES.map((s) => `${s} (${PACKAGINGS[s].what})`).join(', ')}`);
    return 0;
  }
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates network namespaces: run it as root');
  for (const tool of ['ip', 'nsenter']) {
    if ((await run(['which', tool])).code !== 0) throw new Error(`${tool} not found in PATH`);
  }
  const flags = { rss: opts.rss && existsSync(TIME_BIN), strace: opts.strace && !!STRACE_BIN };
  if (opts.rss && !flags.rss) log(`note: ${TIME_BIN} not found (Debian package "time"): peak RSS not measured`);
  if (opts.strace && !flags.strace) log('note: strace not found: processes per verb not counted');
  CLK_TCK = Number((await run(['getconf', 'CLK_TCK'])).stdout.trim()) || 100;
  const outDir = join(REPO, 'bench-results');
  const compareFile = opts.compare === null ? undefined : resolve(opts.compare ?? join(outDir, 'latest.json'));
  const prev = readPrevious(compareFile);
  const prevInfo = prev ? `${compareFile.replace(`${REPO}/`, '')} (${prev.machine?.date}, commit ${prev.machine?.oursCommit}, ${prev.options?.iterations} iterations)` : undefined;

  const ref = new Impl('ref', 'reference', '/usr/lib/cni');
  const all = scenarios();
  const selected = opts.only ? all.filter((s) => opts.only.includes(s.id)) : all;
  if (opts.only && selected.length !== opts.only.length) throw new Error(`unknown scenario in --only; ids: ${all.map((s) => s.id).join(', ')}`);

  const sb = new Sandbox();
  sb.installSignalHandlers();
  const started = Date.now();
  const results = [];
  const services = [];
  let machine;
  let cleanupProblems = [];
  const oursBuild = {};
  const digest = (f) => createHash('sha256').update(readFileSync(f)).digest('hex').slice(0, 12);
  // Snapshots of what is timed: others may rebuild while the bench runs, one run must time one
  // build, and a service declines every call once its executable changes on disk.
  const impls = {};
  const want = (...names) => names.some((n) => opts.sides.includes(n));
  const distBin = join(REPO, 'dist/bin');
  const distServed = join(REPO, 'dist/served');
  const distPkg = join(REPO, 'dist/package');
  const unavailable = {};
  if (want('bundle')) {
    impls.bundle = new Impl('bundle', 'bundle', existsSync(distBin) ? sb.tempDir('bundle') : distBin);
    impls.bundle.shownDir = 'dist/bin';
    if (existsSync(distBin)) {
      cpSync(distBin, impls.bundle.dir, { recursive: true });
      for (const f of readdirSync(impls.bundle.dir)) oursBuild[`bin/${f}`] = digest(join(impls.bundle.dir, f));
    }
  }
  if (want('bundle-served')) {
    if (existsSync(join(distServed, 'cni-ts'))) {
      impls['bundle-served'] = new Impl('bundle-served', 'bundle-served', sb.tempDir('served'));
      impls['bundle-served'].shownDir = 'dist/served';
      cpSync(distServed, impls['bundle-served'].dir, { recursive: true });
      oursBuild['served/cni-ts'] = digest(join(impls['bundle-served'].dir, 'cni-ts'));
    } else unavailable['bundle-served'] = 'not built (no dist/served/cni-ts: node build.mjs)';
  }
  if (want('binary', 'binary-served')) {
    if (existsSync(join(distPkg, 'install.sh'))) {
      // The package's own install.sh puts cni-ts and the stubs into a temp dir (the stubs find
      // cni-ts beside themselves). Its check calls loopback VERSION through a stub: with served
      // mode on that would start a service in /run/cni-ts, on the real host.
      const dir = sb.tempDir('binary');
      await runOk(['sh', join(distPkg, 'install.sh'), '--dir', dir], { env: { ...process.env, CNI_TS_SERVICE: 'off' } });
      for (const n of ['binary', 'binary-served']) {
        impls[n] = new Impl(n, n, dir);
        impls[n].shownDir = 'dist/package';
      }
      oursBuild['package/cni-ts'] = digest(join(dir, 'cni-ts'));
    } else {
      for (const n of ['binary', 'binary-served']) unavailable[n] = 'not built (no dist/package: npm run package)';
      log('note: dist/package not built (npm run package): the binary sides are not measured');
    }
  }

  // One sandbox host per side and role; a served side's host gets its own service, started here,
  // before anything is timed, and warmed up.
  const sideCache = new Map();
  async function sideFor(pack, role = 'main', extraEnv = {}) {
    const id = role === 'main' ? pack : `${role}-${pack}`;
    if (sideCache.has(id)) return sideCache.get(id);
    const side = { key: id, label: id, impl: impls[pack], pack };
    sideCache.set(id, side);
    if (!side.impl) {
      side.unavailable = unavailable[pack] ?? 'not selected';
      side.impl = ref;
      return side;
    }
    side.host = await sb.host(`host-${id}`);
    side.env = { ...(pack === 'binary' ? { CNI_TS_SERVICE: 'off' } : {}), ...extraEnv };
    if (PACKAGINGS[pack].served) {
      const exe = join(side.impl.dir, 'cni-ts');
      const argv = pack === 'bundle-served' ? [process.execPath, exe, 'serve'] : [exe, 'serve'];
      const svc = new Service({ label: id, argv, host: side.host, dir: sb.tempDir(`svc-${id}`), nodeOptions: opts.serviceNodeOptions });
      services.push(svc);
      // Registered before the start: an interrupted start is stopped too.
      sb.onCleanup(async () => {
        const how = await svc.stop();
        svc.stoppedHow = how;
      });
      try {
        await svc.start();
        side.service = svc;
        side.env = { ...side.env, ...svc.env };
        await warmUpService(side, sb);
      } catch (e) {
        side.unavailable = `failed: ${e.message.split('\n')[0]}`;
      }
    }
    return side;
  }

  try {
    machine = await machineInfo(REPO);
    machine.oursBuild = oursBuild;
    machine.clockTicksPerSecond = CLK_TCK;
    log(`cni-ts benchmark — sides: ${opts.sides.map((s) => `${s} (${PACKAGINGS[s].what})`).join(', ')}; vs reference ${ref.dir} (containernetworking-plugins ${machine.referencePlugins})`);
    log(`snapshots: ${Object.entries(impls).map(([k, i]) => `${k} ${i.dir}`).join(', ') || 'none'}`);
    log(`${machine.cpuModel}, ${machine.cores} cores, ${machine.kernel}, node ${machine.node}, load average at start ${machine.loadavgAtStart.join(' ')}`);
    log(`${machine.iproute2}; ${machine.nft}; ${machine.iptables}; sandbox ${sb.tag}; ${opts.iterations} iterations${opts.quick ? ' (--quick)' : ''}`);
    if (machine.loadavgAtStart[0] > machine.cores) {
      log(`warning: load average ${machine.loadavgAtStart[0]} > ${machine.cores} cores: absolute times are inflated; the ratios stay comparable (interleaved runs)`);
    }
    const mainSides = [];
    for (const p of opts.sides) mainSides.push(await sideFor(p));
    for (const s of services) if (s.pid) log(`service for ${s.label}: pid ${s.pid} (${s.cmdline}; NODE_OPTIONS=${s.nodeOptions || '(none)'}) in ${s.host}, dir ${s.dir}`);
    const refSide = { key: 'ref', label: 'reference', impl: ref, host: await sb.host('host-ref') };

    for (const sc of selected) {
      // The last side is what the others are compared with.
      let sides;
      if (sc.sidesKind === 'overlay') {
        // Overlay in every selected packaging (a host, an etcd and, served, a service each),
        // beside a bridge with the same masquerade in the first one.
        sides = [];
        for (const p of opts.sides) sides.push({ ...(await sideFor(p, 'overlay')), overlay: true });
        sides.push({ ...mainSides[0], key: 'bridge', label: `${mainSides[0].label} bridge` });
      } else if (sc.sidesKind === 'ca') {
        // Node parses NODE_EXTRA_CA_CERTS at every start: an in-process matter only.
        if (!impls.bundle) {
          results.push({ id: sc.id, title: sc.title, sides: [], status: { skipped: 'needs the bundle side' }, verbs: {}, cpu: {}, rss: {}, procs: {}, service: {}, failures: {}, firstError: {}, perPlugin: {}, extra: {}, seconds: 0 });
          log(`\n== ${sc.title}  [${sc.id}]: skipped (needs the bundle side)`);
          continue;
        }
        sides = [
          { ...(await sideFor('bundle', 'ca', { NODE_EXTRA_CA_CERTS: CA_BUNDLE })), key: 'ca', label: 'bundle+CA' },
          ...(impls.binary && opts.sides.includes('binary') ? [{ ...(await sideFor('binary', 'ca', { NODE_EXTRA_CA_CERTS: CA_BUNDLE })), key: 'binca', label: 'binary+CA' }] : []),
          { ...(await sideFor('bundle')), key: 'noca', label: 'bundle' },
        ];
      } else {
        sides = [...mainSides, refSide];
      }
      // Scenario state lives on the side objects: each scenario gets fresh copies.
      sides = sides.map((s) => ({ ...s }));
      const n = Math.max(sc.iterationsFactor ? 2 : 1, Math.round(opts.iterations * (sc.iterationsFactor ?? 1)));
      const t0 = Date.now();
      let res;
      try {
        res = await runScenario(sc, sides, n, flags, sb);
      } catch (e) {
        res = { id: sc.id, title: sc.title, sides: sides.map((s) => ({ key: s.key, label: s.label })), status: { error: e.message }, verbs: {}, cpu: {}, rss: {}, procs: {}, service: {}, failures: {}, firstError: {}, perPlugin: {}, extra: {} };
      }
      res.seconds = Math.round((Date.now() - t0) / 100) / 10;
      res.loadavgAtEnd = load();
      results.push(res);
      printScenario(res);
    }
  } finally {
    // What the services did, read before they are stopped.
    for (const s of services) {
      s.final = { memory: s.memory(), cpu: s.cpu(), ...s.counts(), callsByBench: s.calls };
    }
    cleanupProblems = await sb.cleanup();
  }

  // Anything of ours left on the real host? Namespaces, and processes (a service, an agent, etcd).
  const leftovers = (await run(['ip', 'netns', 'list'])).stdout.split('\n').filter((l) => l.includes(sb.tag));
  cleanupProblems.push(...leftovers.map((l) => `netns left behind: ${l}`));
  const procsLeft = leftoverProcesses(sb.tag);
  cleanupProblems.push(...procsLeft.map((p) => `process left behind: pid ${p.pid}${p.serve ? ' (a cni-ts service)' : ''}: ${p.cmdline}`));

  const serviceReport = services.map((s) => ({
    side: s.label,
    pid: s.pid,
    cmdline: s.cmdline,
    nodeOptions: s.nodeOptions,
    dir: s.dir,
    hwmKiB: s.final?.memory?.hwmKiB,
    rssKiBAtEnd: s.final?.memory?.rssKiB,
    cpuMs: s.final?.cpu ? { own: Math.round((s.final.cpu.own * 1000) / CLK_TCK), children: Math.round((s.final.cpu.children * 1000) / CLK_TCK) } : undefined,
    served: s.final?.served,
    declined: s.final?.declined,
    callsByBench: s.final?.callsByBench,
    stopped: s.stoppedHow,
  }));
  log('\n== Services');
  for (const s of serviceReport) {
    log(`   ${s.side}: pid ${s.pid}, ${s.served} calls served, ${s.declined} declined (the bench made ${s.callsByBench}); peak RSS (VmHWM) ${s.hwmKiB ? (s.hwmKiB / 1024).toFixed(1) : '-'} MiB, RSS at end ${s.rssKiBAtEnd ? (s.rssKiBAtEnd / 1024).toFixed(1) : '-'} MiB; CPU ${s.cpuMs?.own ?? '-'} ms own + ${s.cpuMs?.children ?? '-'} ms its children; stopped: ${s.stopped}`);
  }
  const serveLeft = procsLeft.filter((p) => p.serve);
  log(`   left behind: ${procsLeft.length ? procsLeft.map((p) => `pid ${p.pid} ${p.cmdline}`).join('; ') : `nothing (no process naming ${sb.tag} or with its service dirs, ${serveLeft.length} \`cni-ts serve\`)`}`);

  const targets = evaluateTargets(results, opts.sides, prev);
  printSummary(targets, serviceReport, prevInfo);
  const loadEnd = load();
  log(`\nload average: ${machine?.loadavgAtStart?.join(' ')} at start, ${loadEnd.join(' ')} at end (${machine?.cores} cores)`);

  const report = {
    machine,
    loadavgAtEnd: loadEnd,
    options: { ...opts, rssMeasured: flags.rss, procsCounted: flags.strace },
    implementations: { ...Object.fromEntries(Object.entries(impls).map(([k, i]) => [k, i.shownDir])), reference: ref.dir },
    durationSeconds: Math.round((Date.now() - started) / 1000),
    comparedWith: prev ? { file: compareFile, date: prev.machine?.date, commit: prev.machine?.oursCommit } : null,
    scenarios: results,
    services: serviceReport,
    targets,
    leftoverProcesses: procsLeft,
    cleanupProblems,
  };
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `bench-${report.machine?.date.replace(/[:.]/g, '-') ?? Date.now()}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(outDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  log(`wrote ${file} (and bench-results/latest.json) in ${report.durationSeconds} s`);
  for (const p of cleanupProblems) log(`cleanup problem: ${p}`);
  return cleanupProblems.length ? 1 : 0;
}

/**
 * A few loopback ADD/DELs through the side's stubs right after its service started: the service
 * must take them all (else the side is measuring the in-process fallback) and its code paths get
 * their first runs before any scenario.
 */
async function warmUpService(side, sb) {
  const ctr = await sb.netns(`c-warm-${side.key}`);
  const conf = { cniVersion: '1.0.0', name: 'bench-warm', type: 'loopback' };
  const before = side.service.counts().served;
  const rounds = 5;
  for (let i = 0; i < rounds; i++) {
    for (const verb of ['ADD', 'DEL']) {
      const r = await invoke(side.impl, 'loopback', verb, conf, { host: side.host, env: side.env, service: side.service, containerId: `bench-warm-${side.key}-${i}`, netns: ctr, ifname: 'lo' });
      if (!r.ok) throw new Error(`warm-up loopback ${verb} failed: ${(r.stdout || r.stderr).trim().slice(0, 300)}`);
    }
  }
  const c = side.service.counts();
  if (c.served - before !== 2 * rounds) throw new Error(`the service took ${c.served - before} of ${2 * rounds} warm-up calls${c.firstDecline ? ` (declined: ${c.firstDecline})` : ''}; log: ${side.service.logTail(3)}`);
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench: ${e.stack ?? e}\n`);
    process.exit(1);
  },
);
