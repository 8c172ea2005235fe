// make bench: artifact install time, nodee against `curl -o` + `unzip -q`
// from the same loopback depot, in the same run.  Prints a table with the
// median of several runs and the ratio nodee / baseline.  A benchmark,
// not a test: it reports numbers and fails only if something breaks.
'use strict';

const { execFile, execFileSync } = require('node:child_process');
const { promisify } = require('node:util');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { startNodee, tmpdir, sleep } = require('../integration/lib');
const { writeRows } = require('./report');

const RUNS = Number(process.env.BENCH_RUNS || 3);

function serve(root) {
  const srv = http.createServer((req, res) => {
    const p = path.join(root, decodeURIComponent(req.url.split('?')[0]));
    if (!p.startsWith(root) || !fs.existsSync(p) || !fs.statSync(p).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Length': fs.statSync(p).size });
    fs.createReadStream(p).pipe(res);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

// Writes the files for one artifact into dir and zips them as zipPath.
function makeBig(dir, zipPath) {
  fs.mkdirSync(path.join(dir, 'random'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'text'), { recursive: true });
  const line = 'INFO 2026-11-25T00:00:00Z service started on port 8080 with 4 workers\n';
  for (let i = 0; i < 20; i++) {
    fs.writeFileSync(path.join(dir, 'random', `r${i}.bin`), crypto.randomBytes(5 * 1024 * 1024));
    let s = '';
    while (s.length < 5 * 1024 * 1024) s += `${i} ${s.length} ${line}`;
    fs.writeFileSync(path.join(dir, 'text', `t${i}.log`), s.slice(0, 5 * 1024 * 1024));
  }
  execFileSync('zip', ['-q', '-r', zipPath, '.'], { cwd: dir });
}

function makeSmall(dir, zipPath) {
  for (let d = 0; d < 100; d++) {
    const sub = path.join(dir, `d${d}`);
    fs.mkdirSync(sub, { recursive: true });
    for (let f = 0; f < 200; f++) {
      fs.writeFileSync(path.join(sub, `f${f}.txt`), `file ${d}/${f}\n`.repeat(20 + (f % 50)));
    }
  }
  execFileSync('zip', ['-q', '-r', zipPath, '.'], { cwd: dir });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// The depot runs in this process, so the baseline must not block it.
const run = promisify(execFile);

async function baseline(url, work) {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const t0 = process.hrtime.bigint();
  await run('curl', ['-sf', '-o', path.join(work, 'a.zip'), url]);
  await run('unzip', ['-q', path.join(work, 'a.zip'), '-d', path.join(work, 'out')]);
  const t1 = process.hrtime.bigint();
  fs.rmSync(work, { recursive: true, force: true });
  return Number(t1 - t0) / 1e9;
}

async function nodeeInstall(d, coord, url) {
  const t0 = process.hrtime.bigint();
  const r = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: coord, url } });
  if (r.status !== 202) throw new Error(`install ${coord}: ${r.status} ${r.text}`);
  for (;;) {
    const j = (await d.req({ path: `/api/v1/jobs/${r.json.id}` })).json;
    if (j.state === 'succeeded') break;
    if (j.state === 'failed' || j.state === 'cancelled') throw new Error(`${coord}: ${j.error}`);
    await sleep(5);
  }
  const t1 = process.hrtime.bigint();
  return Number(t1 - t0) / 1e9;
}

async function main() {
  const root = tmpdir('bench-depot');
  const work = tmpdir('bench-work');
  process.stdout.write('building artifacts... ');
  makeBig(path.join(work, 'big'), path.join(root, 'big.zip'));
  makeSmall(path.join(work, 'small'), path.join(root, 'small.zip'));
  fs.rmSync(path.join(work, 'big'), { recursive: true, force: true });
  fs.rmSync(path.join(work, 'small'), { recursive: true, force: true });
  console.log('done');
  const srv = await serve(root);
  const base = `http://127.0.0.1:${srv.address().port}`;
  const d = await startNodee({ args: ['--log-level', 'warn'] });
  const rows = [];
  const loads = [];
  try {
    for (const [name, file, what] of [
      ['big', 'big.zip', '200 MB: half random, half text'],
      ['small', 'small.zip', '20 000 small files'],
    ]) {
      const url = `${base}/${file}`;
      const size = fs.statSync(path.join(root, file)).size;
      const b = [];
      const n = [];
      for (let i = 0; i < RUNS; i++) {
        loads.push(os.loadavg()[0]);
        b.push(await baseline(url, path.join(work, 'baseline')));
        n.push(await nodeeInstall(d, `bench:${name}:${i}`, url));
        // Keep the disk from filling up between runs.
        await d.req({ method: 'DELETE', path: `/api/v1/artifacts/bench/${name}/${i}` });
      }
      rows.push({ name, what, size, base: median(b), nodee: median(n) });
    }
  } finally {
    await d.stop('SIGTERM');
    srv.close();
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log('');
  console.log(`artifact install, median of ${RUNS} runs (curl -o + unzip -q as the baseline)`);
  console.log('artifact                          zip MB   baseline s   nodee s   nodee/baseline');
  for (const r of rows) {
    console.log(`${r.what.padEnd(32)} ${(r.size / 1048576).toFixed(1).padStart(7)} ${r.base.toFixed(3).padStart(12)} `
      + `${r.nodee.toFixed(3).padStart(9)} ${(r.nodee / r.base).toFixed(2).padStart(16)}`);
  }
  console.log(`cores: ${os.cpus().length}; 1-min load during the run: ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)}`);
  writeRows('artifacts', rows.map((r) => ({
    measure: `install ${r.what} (${(r.size / 1048576).toFixed(1)} MB zip), median of ${RUNS}`,
    value: r.nodee, unit: 's', baseline: 'curl -o + unzip -q', baseline_value: r.base,
  })));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
