// make bench: one markdown report of every benchmark, build/bench.md.
//
//   node tests/bench/report.js --start    first step of the run: removes
//                                         the figures of an earlier run and
//                                         samples the load average
//   node tests/bench/report.js [--failed "a b"]
//                                         last step: reads build/bench/*.json
//                                         and writes build/bench.md
//
// Each bench script writes its figures with writeRows() below, as an
// array of rows {bench, measure, value, unit, baseline, baseline_value,
// ratio, goal} in build/bench/<script>.json.  A goal is text the report
// checks: clauses joined by " and ", each "<=|<|>=|>|= N" on the value or
// "ratio <=|... N" on the ratio, anything after in parentheses ignored
// ("<= 5", ">= 20000 and ratio >= 0.6", "<= 14.2 (2 x baseline + 10)").
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '../..');
const DIR = path.join(ROOT, 'build/bench');
const OUT = path.join(ROOT, 'build/bench.md');
const START = path.join(DIR, 'run-start.txt');
const ORDER = ['artifacts', 'services', 'registry', 'prepare', 'api', 'flood'];

const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null);

// Writes build/bench/<bench>.json; ratio is value / baseline_value when
// the row gives none and both are numbers.
function writeRows(bench, rows) {
  const out = rows.map((r) => {
    const value = num(r.value);
    const bv = num(r.baseline_value);
    let ratio = num(r.ratio);
    if (ratio === null && value !== null && bv !== null && bv !== 0) ratio = value / bv;
    return {
      bench,
      measure: r.measure,
      value,
      unit: r.unit || '',
      baseline: r.baseline || null,
      baseline_value: bv,
      ratio,
      goal: r.goal || null,
    };
  });
  fs.mkdirSync(DIR, { recursive: true });
  const file = path.join(DIR, `${bench}.json`);
  fs.writeFileSync(file, `${JSON.stringify(out, null, 1)}\n`);
  console.log(`figures written to ${path.relative(process.cwd(), file)}`);
}

// ------------------------------------------------------------ the report

function fmt(v) {
  if (v === null || v === undefined) return '—';
  const a = Math.abs(v);
  if (a === 0 || Number.isInteger(v)) return String(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return String(Number(v.toPrecision(2)));
}

const withUnit = (v, unit) => (v === null ? '—' : `${fmt(v)}${unit ? ` ${unit}` : ''}`);

// true, false, or null (no goal, or one this cannot read).
function met(row) {
  if (!row.goal) return null;
  const text = row.goal.replace(/\(.*$/, '').replace(/≤/g, '<=').replace(/≥/g, '>=').trim();
  let ok = true;
  for (const clause of text.split(/\s+and\s+/)) {
    const m = clause.match(/^(ratio\s*)?(<=|>=|<|>|=)\s*(-?[\d.]+)/);
    if (!m) return null;
    const x = m[1] ? row.ratio : row.value;
    if (x === null) return false;
    const n = Number(m[3]);
    ok = ok && { '<=': x <= n, '>=': x >= n, '<': x < n, '>': x > n, '=': x === n }[m[2]];
  }
  return ok;
}

const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

function load() {
  const [a, b, c] = os.loadavg();
  return { one: a, five: b, fifteen: c, at: new Date().toISOString() };
}

function start() {
  fs.mkdirSync(DIR, { recursive: true });
  for (const f of fs.readdirSync(DIR)) {
    if (f.endsWith('.json')) fs.rmSync(path.join(DIR, f));
  }
  fs.writeFileSync(START, `${JSON.stringify(load())}\n`);
  console.log(`bench run started; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch (_) {
    return '?';
  }
}

function report(failed) {
  const end = load();
  let begin = null;
  try { begin = JSON.parse(fs.readFileSync(START, 'utf8')); } catch (_) { /* no --start */ }
  const scripts = fs.readdirSync(__dirname)
    .filter((f) => f.endsWith('.js') && f !== 'report.js').map((f) => f.replace(/\.js$/, ''));
  const have = fs.existsSync(DIR)
    ? fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''))
    : [];
  const rank = (b) => (ORDER.includes(b) ? ORDER.indexOf(b) : ORDER.length);
  const benches = [...have].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const missing = scripts.filter((s) => !have.includes(s));

  const cpus = os.cpus();
  const la = (x) => (x ? `${x.one.toFixed(2)} ${x.five.toFixed(2)} ${x.fifteen.toFixed(2)}` : '—');
  const L = [];
  L.push('# nodee benchmarks (`make bench`)');
  L.push('');
  L.push(`- date: ${end.at}${begin ? ` (run started ${begin.at}, ${((Date.parse(end.at) - Date.parse(begin.at)) / 60000).toFixed(0)} min)` : ''}`);
  L.push(`- machine: ${cpus.length} cores (${cpus[0] ? cpus[0].model : '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${sh('uname', ['-sr'])}`);
  L.push(`- nodee: ${sh(path.join(ROOT, 'nodee'), ['--version'])}, tree ${sh('git', ['-C', ROOT, 'describe', '--always', '--dirty'])}`);
  try {
    const built = fs.statSync(path.join(ROOT, 'nodee')).mtime;
    if (begin && built > new Date(begin.at)) {
      L.push(`- **the nodee binary was rebuilt during the run** (${built.toISOString()}): a script started before then ran the older one`);
    }
  } catch (_) { /* no binary */ }
  L.push(`- load average (1 5 15 min): ${la(begin)} at the start, ${la(end)} at the end`);
  if (failed.length) L.push(`- **failed** (exited non-zero; their figures, if any, are below): ${failed.join(', ')}`);
  if (missing.length) L.push(`- **no figures** from: ${missing.join(', ')}`);
  L.push('');
  L.push('Each baseline is measured in the same run on the same machine; ratio is nodee / baseline.');
  L.push('A goal reads "<= 5" for the nodee figure, "ratio >= 0.6" for the ratio; — means none is set.');
  // A goal counts once however many baselines its figure is shown beside.
  const counted = new Map();
  for (const b of benches) {
    let rows;
    try {
      rows = JSON.parse(fs.readFileSync(path.join(DIR, `${b}.json`), 'utf8'));
    } catch (e) {
      L.push('', `## ${b}`, '', `(build/bench/${b}.json cannot be read: ${e.message})`);
      continue;
    }
    L.push('', `## ${b}${failed.includes(b) ? ' (failed)' : ''}`, '');
    L.push('| measure | nodee | baseline | ratio | goal | met? |');
    L.push('|---|---:|---|---:|---|---|');
    for (const r of rows) {
      const m = met(r);
      if (m !== null) counted.set(`${b}\n${r.measure}\n${r.goal}`, m);
      const base = r.baseline || r.baseline_value !== null
        ? `${r.baseline ? `${r.baseline}: ` : ''}${withUnit(r.baseline_value, r.unit)}`
        : '—';
      L.push(`| ${cell(r.measure)} | ${cell(withUnit(r.value, r.unit))} | ${cell(base)} | ${fmt(r.ratio)} | `
        + `${cell(r.goal || '—')} | ${m === null ? '—' : m ? 'yes' : '**no**'} |`);
    }
  }
  const yes = [...counted.values()].filter((x) => x).length;
  L.push('', `Goals met: ${yes} of ${counted.size}.`, '');
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, L.join('\n'));
  console.log(`\nbench report: ${OUT}`);
  return missing.length === 0 && failed.length === 0;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args[0] === '--start') {
    start();
  } else {
    const i = args.indexOf('--failed');
    const failed = i >= 0 ? (args[i + 1] || '').split(/\s+/).filter(Boolean) : [];
    if (!report(failed)) process.exitCode = 1;
  }
}

module.exports = { writeRows };
