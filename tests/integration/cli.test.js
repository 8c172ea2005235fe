// The `nodee` command-line client (issue 12) against a real daemon and a
// real loopback depot: every subcommand with --json parsed, the human
// table of `service ls`, and the exit codes (0 ok, 1 API error with the
// problem's detail, 2 bad usage, 3 daemon unreachable).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {
  BIN, startNodee, runNodee, stopClean, cleanEnv, tmpdir, freePort, waitFor, killLeftovers,
} = require('./lib');
const { spawn } = require('node:child_process');
const { makeZip } = require('./zipper');
const { Depot } = require('./depot');

const GAV = 'com.test:clisvc:1';
const GAV2 = 'com.test:clisvc:2';
const GAV3 = 'com.test:clisvc:3';
const COORD = '1.clisvc.cli.test';
const COORD2 = '2.clisvc.cli.test';

const START = `#!/bin/sh
trap 'echo term; exit 0' TERM
echo "hello from cli"
echo "warning from cli" >&2
sleep 1000 &
wait
`;

const prefixes = new Set();
process.on('exit', () => { for (const p of prefixes) killLeftovers(p); });

// Runs the client against daemon d; --json output parsed into .json.
async function cli(d, args, env = {}) {
  const r = await runNodee(args, { env: { NODEE_URL: `http://127.0.0.1:${d.port}`,
    NODEE_PREFIX: d.prefix, ...env } });
  if (args.includes('--json') && r.code === 0) r.json = JSON.parse(r.stdout);
  return r;
}

// Runs a shell command in a pseudo-terminal (util-linux script).
function underTerminal(cmd, env) {
  return new Promise((resolve) => {
    const p = spawn('script', ['-qefc', cmd, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (x) => { stdout += x; });
    p.stderr.on('data', (x) => { stderr += x; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
    p.on('exit', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

async function ok(d, args) {
  const r = await cli(d, args);
  assert.equal(r.code, 0, `nodee ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r;
}

test('every subcommand against a real daemon', { timeout: 120000 }, async () => {
  const depot = await new Depot().start();
  const [g, a, v] = GAV.split(':');
  const zip = makeZip([{ name: 'bin/', dir: true }, { name: 'bin/start', data: START, mode: 0o755 }]);
  for (const ver of [v, '2', '3']) depot.put(g, a, ver, zip, 'sha256');
  const prefix = tmpdir('cli');
  fs.chmodSync(prefix, 0o755);
  prefixes.add(prefix);
  const d = await startNodee({ prefix, args: ['--depot', depot.url] });
  try {
    const node = (await ok(d, ['node', '--json'])).json;
    assert.equal(typeof node.instance, 'string');
    assert.match((await ok(d, ['node'])).stdout, /^version: +\S+/m);

    // install waits for the job; the artifact is there when it returns.
    const inst = await ok(d, ['artifact', 'install', GAV]);
    assert.match(inst.stdout, /succeeded/);
    const arts = (await ok(d, ['artifact', 'ls', '--json'])).json.artifacts;
    assert.deepEqual(arts.map((x) => x.coordinate), [GAV]);
    assert.equal((await ok(d, ['--json', 'artifact', 'show', GAV])).json.coordinate, GAV);
    assert.match((await ok(d, ['artifact', 'install', GAV])).stdout, /is installed/);

    const spec = path.join(tmpdir('spec'), 'spec.json');
    fs.writeFileSync(spec, JSON.stringify({ artifact: GAV, command: 'bin/start' }));
    await ok(d, ['service', 'put', COORD, spec]);
    await waitFor(async () => (await cli(d, ['service', 'show', COORD, '--json'])).json.state === 'running',
      'service running', 20000);
    const ls = (await ok(d, ['service', 'ls'])).stdout.split('\n');
    assert.match(ls[0], /^COORDINATE +STATE +PID +RESTARTS +UPTIME +REASON$/);
    assert.match(ls[1], new RegExp(`^${COORD.replace(/\./g, '\\.')} +running +\\d+ +0 `));
    assert.equal((await ok(d, ['service', 'ls', '--json'])).json.services[0].coordinate, COORD);
    await waitFor(async () => /hello from cli/.test((await ok(d, ['service', 'logs', COORD])).stdout),
      'stdout log', 15000);
    assert.match((await ok(d, ['service', 'logs', COORD, '--stderr', '-n', '5'])).stdout, /warning from cli/);
    assert.match((await ok(d, ['service', 'logs', COORD, '--json'])).json.text, /hello from cli/);
    assert.ok((await ok(d, ['service', 'runs', COORD, '--json'])).json.runs.length >= 1);

    // stop waits for the settled state and prints it.
    assert.equal((await ok(d, ['service', 'stop', COORD])).stdout, `${COORD}: stopped\n`);
    await ok(d, ['service', 'start', COORD]);
    assert.match((await ok(d, ['service', 'restart', COORD])).stdout, /: running\n$/);
    const dr = await cli(d, ['service', 'drain', COORD, '--json']);
    assert.equal(dr.code, 0, dr.stderr);

    // A put whose artifact is not installed waits for the install job.
    const spec2 = path.join(path.dirname(spec), 'spec2.json');
    fs.writeFileSync(spec2, JSON.stringify({ artifact: GAV2, command: 'bin/start' }));
    const put2 = await ok(d, ['service', 'put', COORD2, spec2]);
    assert.match(put2.stdout, /job \d+ succeeded\n/);
    assert.match(put2.stdout, new RegExp(`${COORD2.replace(/\./g, '\\.')}: (preparing|starting|running)\n$`));
    await ok(d, ['service', 'rm', COORD2, '--purge']);
    // A spec on stdin that is not JSON: the API's detail, exit 1.
    const empty = await cli(d, ['service', 'put', COORD2, '-']);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /HTTP 4\d\d/);

    // On a terminal the progress line is redrawn with \r.
    // (asynchronously: the depot answers from this process)
    const tty = await underTerminal(`${BIN} artifact install ${GAV3}`,
      { ...cleanEnv(), NODEE_URL: `http://127.0.0.1:${d.port}`, NODEE_PREFIX: d.prefix });
    assert.equal(tty.status, 0, tty.stdout + tty.stderr);
    assert.match(tty.stdout, /\r\x1b\[Kjob \d+: /);
    assert.match(tty.stdout, /job \d+ succeeded/);
    await ok(d, ['artifact', 'rm', GAV3]);
    await ok(d, ['artifact', 'rm', GAV2, '--json']);

    const jobs = (await ok(d, ['job', 'ls', '--json', '--kind', 'artifact.install'])).json.jobs;
    assert.ok(jobs.length >= 1);
    const id = String(jobs[0].id);
    assert.equal((await ok(d, ['job', 'show', id, '--json'])).json.state, 'succeeded');
    assert.equal((await ok(d, ['job', 'wait', id, '--json'])).json.state, 'succeeded');
    const cancel = await cli(d, ['job', 'cancel', id]);
    assert.equal(cancel.code, 1);
    assert.match(cancel.stderr, /HTTP 409/);

    const ev = (await ok(d, ['events', '--kind', 'service.*', '-n', '3', '--json'])).json.events;
    assert.ok(ev.length >= 1 && ev.length <= 3);
    assert.ok(ev.every((e) => e.kind.startsWith('service.')));
    const cell = await cli(d, ['cell']);
    assert.equal(cell.code, 1);
    assert.match(cell.stderr, /standalone.*HTTP 503/);

    await ok(d, ['service', 'rm', COORD, '--purge']);
    assert.deepEqual((await ok(d, ['service', 'ls', '--json'])).json.services, []);
    await ok(d, ['artifact', 'rm', GAV]);
    assert.deepEqual((await ok(d, ['artifact', 'ls', '--json'])).json.artifacts, []);
    assert.ok((await ok(d, ['drain-node', '--json'])).json.status);

    // Errors: the API's detail and status, bad usage, a wrong token.
    const bad = await cli(d, ['service', 'show', 'NOT_A_COORD']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /HTTP 4\d\d/);
    assert.equal((await cli(d, ['artifact', 'show', 'a:b'])).code, 2);
    const tok = await cli(d, ['node', '--token', 'wrong']);
    assert.equal(tok.code, 1);
    assert.match(tok.stderr, /Bearer.*HTTP 401/);
    const un = await cli(d, ['service', 'lss']);
    assert.equal(un.code, 2);
    assert.match(un.stderr, /unknown subcommand 'lss'; did you mean 'ls'\?/);
    const opt = await cli(d, ['events', '--state', 'running']);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /--state does not apply to nodee events/);
    const top = await cli(d, ['servce', 'ls']);
    assert.equal(top.code, 2);
    assert.match(top.stderr, /did you mean 'service'\?/);
    assert.match((await ok(d, ['service', 'logs', '--help'])).stdout, /nodee service logs C/);
  } finally {
    await stopClean(d);
    await depot.stop();
  }
});

test('a daemon that is not running: exit 3 naming the URL', async () => {
  const port = await freePort();
  const r = await runNodee(['service', 'ls', '--url', `http://127.0.0.1:${port}`]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, new RegExp(`cannot reach the nodee daemon at http://127\\.0\\.0\\.1:${port}`));
});
