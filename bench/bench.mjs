#!/usr/bin/env node
// `npm run bench`: our plugins in both packagings, the dist/bin bundles and the dist/package
// single-executable binary (when built: `npm run package`), vs the reference Go plugins
// (/usr/lib/cni), same run, interleaved, inside sandbox network namespaces.
//
//   node bench/bench.mjs [--quick] [--iterations N] [--only id,id] [--no-rss] [--no-strace] [--no-binary]
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Impl, STRACE_BIN, TIME_BIN } from './lib/cni.mjs';
import { machineInfo } from './lib/machine.mjs';
import { run, runOk } from './lib/proc.mjs';
import { Sandbox } from './lib/sandbox.mjs';
import { scenarios } from './lib/scenarios.mjs';
import { ratio, summarize } from './lib/stats.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

// Reference medians the issue measured on this machine kind (ms; RSS in MiB).
const BASELINE = {
  'bridge ADD': 11,
  'bridge DEL': 24,
  'bridge-masq ADD': 24,
  'bridge-masq DEL': 72,
  'chain ADD': 44,
  'chain DEL': 140,
  'parallel ADD': 230,
};
const BASELINE_RSS_MIB = 4.7;

// The issue's targets: ratio ours/reference of medians (same run) unless stated otherwise.
const TARGETS = [
  { name: 'chain ADD', scenario: 'chain', verb: 'ADD', max: 1.3 },
  { name: 'chain DEL', scenario: 'chain', verb: 'DEL', max: 0.7 },
  { name: 'bridge+ipMasq DEL', scenario: 'bridge-masq', verb: 'DEL', max: 0.8 },
  { name: 'bridge ADD', scenario: 'bridge', verb: 'ADD', max: 3 },
  { name: 'bridge DEL', scenario: 'bridge', verb: 'DEL', max: 1.5 },
  { name: `parallel ADDs (wall)`, scenario: 'parallel', verb: 'ADD', max: 3 },
];
const RSS_TARGET_MIB = 45;
// "host-local with 60 000 leases no slower than with 10": ours vs ours, with 10% for noise.
const LEASES_TOLERANCE = 1.1;

function parseArgs(argv) {
  const o = { iterations: 30, quick: false, only: null, rss: true, strace: true, binary: true, help: false };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    if (a === '--quick') o.quick = true;
    else if (a === '--iterations' || a === '-n') o.iterations = Number(argv[++k]);
    else if (a.startsWith('--iterations=')) o.iterations = Number(a.split('=')[1]);
    else if (a === '--only') o.only = argv[++k].split(',');
    else if (a.startsWith('--only=')) o.only = a.split('=')[1].split(',');
    else if (a === '--no-rss') o.rss = false;
    else if (a === '--no-strace') o.strace = false;
    else if (a === '--no-binary') o.binary = false;
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown argument ${a} (try --help)`);
  }
  if (o.quick && !argv.some((a) => a.startsWith('--iterations') || a === '-n')) o.iterations = 5;
  if (!Number.isInteger(o.iterations) || o.iterations < 1) throw new Error('--iterations needs a positive integer');
  return o;
}

const fmt = (x, w = 7) => (x === null || x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1)).padStart(w);
const log = (s = '') => process.stdout.write(s + '\n');

async function runScenario(sc, sides, iterations, flags, sb) {
  const res = {
    id: sc.id,
    title: sc.title,
    plugins: sc.plugins,
    unit: sc.wall ? 'ms wall per wave' : 'ms per verb (whole list)',
    sides: sides.map((s) => ({ key: s.key, label: s.label })),
    iterations,
    status: {},
    firstError: {},
    failures: {},
    verbs: {},
    perPlugin: {},
    rss: {},
    procs: {},
    extra: {},
  };
  const samples = {};
  const perPlugin = {};
  const active = [];
  for (const side of sides) {
    const missing = side.impl.missing(sc.plugins);
    if (missing.length) {
      res.status[side.key] = `not built (missing from ${side.impl.shownDir ?? side.impl.dir}: ${missing.join(', ')})`;
      continue;
    }
    try {
      await sc.setup(side, sb);
      // Warm-up and validation: one untimed iteration (creates the bridge, loads caches).
      const w = await sc.iterate(side, 'warmup', {});
      if (w.failures) throw new Error(w.error ?? 'warm-up iteration failed');
    } catch (e) {
      res.status[side.key] = `failed: ${e.message.split('\n')[0]}`;
      continue;
    }
    res.status[side.key] = 'ok';
    res.failures[side.key] = 0;
    samples[side.key] = {};
    perPlugin[side.key] = {};
    res.extra[side.key] = [];
    active.push(side);
  }
  for (let i = 0; i < iterations; i++) {
    // Alternate who goes first so drift and cache effects hit both sides equally.
    const order = i % 2 ? [...active].reverse() : active;
    for (const side of order) {
      const r = await sc.iterate(side, i, {});
      res.failures[side.key] += r.failures;
      if (r.error && !res.firstError[side.key]) res.firstError[side.key] = r.error;
      for (const [verb, ms] of Object.entries(r.samples)) (samples[side.key][verb] ??= []).push(ms);
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
          const v = (byVerb[e.command] ??= { procs: 0, execs: 0, children: {}, perPlugin: {} });
          // leases scenario runs each verb once per lease-count: keep the last one only
          if (v.perPlugin[e.plugin] && sc.id === 'host-local-leases') continue;
          v.procs += e.procs;
          v.execs += e.execs;
          v.perPlugin[e.plugin] = e.procs;
          for (const [p, c] of Object.entries(e.children)) v.children[p] = (v.children[p] ?? 0) + c;
        }
        res.procs[side.key] = byVerb;
      }
    }
  }
  // Ratios are of medians against the last side (the reference; for bridge-ca: ours without CA).
  // `ratio` is the first side's (ours, the bundles), `ratios` every side's.
  const keys = sides.map((s) => s.key);
  const base = keys[keys.length - 1];
  const verbs = sc.verbs ?? Object.keys(keys.map((k) => samples[k]).find(Boolean) ?? {});
  for (const verb of verbs) {
    const v = {};
    for (const s of sides) v[s.key] = samples[s.key]?.[verb] ? summarize(samples[s.key][verb]) : null;
    v.ratios = Object.fromEntries(keys.slice(0, -1).map((k) => [k, ratio(v[k]?.median, v[base]?.median)]));
    v.ratio = v.ratios[keys[0]];
    v.samples = Object.fromEntries(sides.map((s) => [s.key, (samples[s.key]?.[verb] ?? []).map((x) => Math.round(x * 100) / 100)]));
    res.verbs[verb] = v;
  }
  for (const s of active) {
    res.perPlugin[s.key] = {};
    for (const [verb, m] of Object.entries(perPlugin[s.key])) {
      res.perPlugin[s.key][verb] = Object.fromEntries(Object.entries(m).map(([p, xs]) => [p, summarize(xs)?.median]));
    }
  }
  return res;
}

function printScenario(res) {
  const sides = res.sides;
  const last = sides[sides.length - 1];
  log(`\n== ${res.title}  [${res.id}; ${res.iterations} iterations; ${res.unit}]`);
  for (const s of sides) {
    const f = res.failures[s.key];
    log(`   ${s.label}: ${res.status[s.key]}${f ? `, ${f} failure(s): ${res.firstError[s.key]}` : ''}`);
  }
  const anyData = Object.values(res.verbs).some((v) => sides.some((s) => v[s.key]));
  if (!anyData) return;
  const rk = sides.slice(0, -1);
  const ratioHead = rk.map((s) => `${s.label}/${last.label}`.slice(0, 14).padStart(14)).join(' ');
  log(`   ${'verb'.padEnd(10)} ${sides.map((s) => `${`${s.label} med`.padStart(15)} ${'p90'.padStart(7)} ${'min'.padStart(7)}`).join(' │ ')} │ ${ratioHead}  issue baseline`);
  for (const [verb, v] of Object.entries(res.verbs)) {
    const base = BASELINE[`${res.id} ${verb}`];
    const cols = sides.map((s) => `${fmt(v[s.key]?.median, 15)} ${fmt(v[s.key]?.p90)} ${fmt(v[s.key]?.min)}`).join(' │ ');
    const ratios = rk.map((s) => { const x = v.ratios?.[s.key]; return (x === null || x === undefined ? '-' : `${x.toFixed(2)}×`).padStart(14); }).join(' ');
    log(`   ${verb.padEnd(10)} ${cols} │ ${ratios}  ${base ? `ref ${base} ms` : ''}`);
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
    const rss = res.rss[s.key];
    if (rss) log(`   ${s.label} peak RSS (MiB): ${Object.entries(rss).map(([k, kib]) => `${k} ${(kib / 1024).toFixed(1)}`).join(', ')}`);
    const pr = res.procs[s.key];
    if (pr) {
      log(
        `   ${s.label} processes per verb (incl. the plugins, excl. nsenter wrapper): ${Object.entries(pr)
          .map(([verb, x]) => `${verb} ${x.procs} [${Object.entries(x.children).map(([p, c]) => `${p}×${c}`).join(' ') || 'no children'}]`)
          .join('; ')}`,
      );
    }
  }
}

function evaluateTargets(results, packagings) {
  const byId = Object.fromEntries(results.map((r) => [r.id, r]));
  const out = [];
  for (const [key, label] of packagings) {
    for (const t of TARGETS) {
      const r = byId[t.scenario];
      const ratioV = r?.verbs[t.verb]?.ratios?.[key] ?? null;
      const why = !r
        ? 'scenario not run'
        : r.status[key] !== 'ok'
          ? `${label} ${r.status[key] ?? 'not run'}`
          : r.status.ref !== 'ok'
            ? `reference ${r.status.ref}`
            : ratioV === null && (r.failures[key] || r.failures.ref)
              ? `every timed iteration failed: ${r.firstError[key] ?? r.firstError.ref}`
              : null;
      out.push({ target: `${label}: ${t.name} ≤ ${t.max}× reference`, measured: ratioV, unit: '×', verdict: ratioV === null ? `n/a (${why ?? 'no samples'})` : ratioV <= t.max ? 'PASS' : 'MISS' });
    }
  }
  // RSS: the largest peak over every measured invocation of each packaging.
  for (const [key, label] of packagings) {
    let maxKiB = null;
    let where = '';
    for (const r of results) {
      for (const [k, kib] of Object.entries(r.rss[key] ?? {})) {
        if (maxKiB === null || kib > maxKiB) {
          maxKiB = kib;
          where = `${k} in ${r.id}`;
        }
      }
    }
    out.push({
      target: `${label}: peak RSS ≤ ${RSS_TARGET_MIB} MiB per process`,
      measured: maxKiB === null ? null : Math.round((maxKiB / 1024) * 10) / 10,
      unit: ' MiB',
      where,
      verdict: maxKiB === null ? `n/a (no RSS measured for ${label})` : maxKiB / 1024 <= RSS_TARGET_MIB ? 'PASS' : 'MISS',
    });
  }
  const hl = byId['host-local-leases'];
  const keys = hl ? Object.keys(hl.verbs) : [];
  const small = keys.find((k) => k === 'ADD 10');
  const big = keys.find((k) => k.startsWith('ADD ') && k !== 'ADD 10');
  for (const [key, label] of packagings) {
    const rr = hl && small && big ? ratio(hl.verbs[big][key]?.median, hl.verbs[small][key]?.median) : null;
    out.push({
      target: `${label}: host-local ${big ? big.slice(4) : 'many'} leases no slower than 10 (ADD; ≤ ${LEASES_TOLERANCE}× for noise)`,
      measured: rr,
      unit: '×',
      verdict: rr === null ? `n/a (${hl ? `${label} ${hl.status[key] ?? 'not run'}` : 'scenario not run'})` : rr <= LEASES_TOLERANCE ? 'PASS' : 'MISS',
    });
  }
  return out;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) {
    log('usage: node bench/bench.mjs [--quick] [--iterations N] [--only id,id] [--no-rss] [--no-strace] [--no-binary]');
    log(`scenario ids: ${scenarios().map((s) => s.id).join(', ')}`);
    return 0;
  }
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates network namespaces: run it as root');
  for (const tool of ['ip', 'nsenter']) {
    if ((await run(['which', tool])).code !== 0) throw new Error(`${tool} not found in PATH`);
  }
  const flags = { rss: opts.rss && existsSync(TIME_BIN), strace: opts.strace && !!STRACE_BIN };
  if (opts.rss && !flags.rss) log(`note: ${TIME_BIN} not found (Debian package "time"): peak RSS not measured`);
  if (opts.strace && !flags.strace) log('note: strace not found: processes per verb not counted');

  const ref = new Impl('ref', 'reference', '/usr/lib/cni');
  const all = scenarios();
  const selected = opts.only ? all.filter((s) => opts.only.includes(s.id)) : all;
  if (opts.only && selected.length !== opts.only.length) throw new Error(`unknown scenario in --only; ids: ${all.map((s) => s.id).join(', ')}`);

  const sb = new Sandbox();
  sb.installSignalHandlers();
  const started = Date.now();
  const results = [];
  let machine;
  let cleanupProblems = [];
  // Snapshot dist/bin: others may rebuild while the bench runs, and one run must time one build.
  const distBin = join(REPO, 'dist/bin');
  const ours = new Impl('ours', 'ours', existsSync(distBin) ? sb.tempDir('ours-bin') : distBin);
  ours.shownDir = 'dist/bin';
  const oursBuild = {};
  if (existsSync(distBin)) {
    cpSync(distBin, ours.dir, { recursive: true });
    for (const f of readdirSync(ours.dir)) oursBuild[f] = createHash('sha256').update(readFileSync(join(ours.dir, f))).digest('hex').slice(0, 12);
  }
  // The binary packaging, snapshotted the same way: its own install.sh copies cni-ts into a temp
  // dir and writes stubs that name that copy (the stubs are what a runtime runs).
  const distPkg = join(REPO, 'dist/package');
  let bin = null;
  if (opts.binary && existsSync(join(distPkg, 'install.sh'))) {
    bin = new Impl('bin', 'binary', sb.tempDir('bin'));
    bin.shownDir = 'dist/package';
    await runOk(['sh', join(distPkg, 'install.sh'), '--dir', bin.dir]);
    oursBuild['package/cni-ts'] = createHash('sha256').update(readFileSync(join(bin.dir, 'cni-ts'))).digest('hex').slice(0, 12);
  } else if (opts.binary) {
    log('note: dist/package not built (npm run package): the binary packaging is not measured');
  }
  try {
    machine = await machineInfo(REPO);
    machine.oursBuild = oursBuild;
    log(`cni-ts benchmark — ours: bundles ${distBin} (copied to ${ours.dir}: ${Object.keys(oursBuild).sort().join(', ') || 'nothing built'})${bin ? `, binary ${distPkg} (installed to ${bin.dir})` : ''} vs reference ${ref.dir} (containernetworking-plugins ${machine.referencePlugins})`);
    log(`${machine.cpuModel}, ${machine.cores} cores, ${machine.kernel}, node ${machine.node}, load ${machine.loadavgAtStart.join(' ')}`);
    log(`${machine.iproute2}; ${machine.nft}; ${machine.iptables}; sandbox ${sb.tag}; ${opts.iterations} iterations${opts.quick ? ' (--quick)' : ''}`);
    if (machine.loadavgAtStart[0] > machine.cores) {
      log(`warning: load average ${machine.loadavgAtStart[0]} > ${machine.cores} cores: absolute times are inflated; the ratios stay comparable (interleaved runs)`);
    }
    const hosts = { ours: await sb.host('host-ours'), ref: await sb.host('host-ref'), ca: await sb.host('host-ca'), ovl: await sb.host('host-ovl') };
    if (bin) Object.assign(hosts, { bin: await sb.host('host-bin'), binca: await sb.host('host-binca') });
    for (const sc of selected) {
      // The last side is what the others are compared with.
      const sides =
        sc.sidesKind === 'overlay'
          ? [
              { key: 'overlay', label: 'ours overlay', impl: ours, host: hosts.ovl },
              { key: 'bridge', label: 'ours bridge', impl: ours, host: hosts.ours },
            ]
          : sc.sidesKind === 'ca'
          ? [
              { key: 'ca', label: 'bundle+CA', impl: ours, host: hosts.ca, env: { NODE_EXTRA_CA_CERTS: CA_BUNDLE } },
              ...(bin ? [{ key: 'binca', label: 'binary+CA', impl: bin, host: hosts.binca, env: { NODE_EXTRA_CA_CERTS: CA_BUNDLE } }] : []),
              { key: 'noca', label: 'bundle', impl: ours, host: hosts.ours },
            ]
          : [
              { key: 'ours', label: 'bundle', impl: ours, host: hosts.ours },
              ...(bin ? [{ key: 'bin', label: 'binary', impl: bin, host: hosts.bin }] : []),
              { key: 'ref', label: 'reference', impl: ref, host: hosts.ref },
            ];
      const n = Math.max(sc.iterationsFactor ? 2 : 1, Math.round(opts.iterations * (sc.iterationsFactor ?? 1)));
      const t0 = Date.now();
      let res;
      try {
        res = await runScenario(sc, sides, n, flags, sb);
      } catch (e) {
        res = { id: sc.id, title: sc.title, sides: sides.map((s) => ({ key: s.key, label: s.label })), status: { error: e.message }, verbs: {}, rss: {}, procs: {}, failures: {}, firstError: {}, perPlugin: {}, extra: {} };
      }
      res.seconds = Math.round((Date.now() - t0) / 100) / 10;
      results.push(res);
      printScenario(res);
    }
  } finally {
    cleanupProblems = await sb.cleanup();
  }

  // Anything of ours left on the real host?
  const leftovers = (await run(['ip', 'netns', 'list'])).stdout.split('\n').filter((l) => l.includes(sb.tag));
  cleanupProblems.push(...leftovers.map((l) => `netns left behind: ${l}`));

  const targets = evaluateTargets(results, [['ours', 'bundle'], ...(bin ? [['bin', 'binary']] : [])]);
  log('\n== Targets (ratios ours/reference of medians, same run; bundle = dist/bin, binary = dist/package)');
  for (const t of targets) {
    log(`   ${t.verdict.startsWith('n/a') ? 'n/a ' : t.verdict}  ${t.target}: ${t.measured === null ? '-' : `${t.measured}${t.unit}`}${t.where ? ` (${t.where})` : ''}${t.verdict.startsWith('n/a') ? `  ${t.verdict.slice(4)}` : ''}`);
  }
  let refRss = 0;
  for (const r of results) for (const kib of Object.values(r.rss.ref ?? {})) refRss = Math.max(refRss, kib);
  if (refRss) log(`   (reference peak RSS ${(refRss / 1024).toFixed(1)} MiB; issue baseline ${BASELINE_RSS_MIB} MiB)`);

  const report = {
    machine,
    loadavgAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    options: { ...opts, rssMeasured: flags.rss, procsCounted: flags.strace },
    implementations: { ours: distBin, ...(bin ? { bin: distPkg } : {}), reference: ref.dir },
    durationSeconds: Math.round((Date.now() - started) / 1000),
    baseline: { ...BASELINE, rssMiB: BASELINE_RSS_MIB },
    scenarios: results,
    targets,
    cleanupProblems,
  };
  const outDir = join(REPO, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `bench-${report.machine?.date.replace(/[:.]/g, '-') ?? Date.now()}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(outDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  log(`\nwrote ${file} (and bench-results/latest.json) in ${report.durationSeconds} s`);
  for (const p of cleanupProblems) log(`cleanup problem: ${p}`);
  return cleanupProblems.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench: ${e.stack ?? e}\n`);
    process.exit(1);
  },
);
