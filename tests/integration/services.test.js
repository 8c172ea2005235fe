// Services: start, supervise, drain and stop, surviving daemon restarts
// and reboots (issue 4).  Real artifacts built here (shell scripts and a
// small C program compiled at test time) are served from a real loopback
// depot; the daemon runs as root, as in CI, so services run as dynamic
// uids in a private mount namespace.
//
// A daemon stop does not stop services (by design), so every test removes
// its services through the API before its daemon is stopped, and as a last
// resort kills what is left by pid (checked against the recorded process
// start time, so an unrelated process with a reused pid is never hit).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const {
  startNodee, sanitizerReport, sqlRows, sleep, tmpdir, waitFor, readIf, waitFile, procStat,
  serviceGroups, stopClean, db, q, esc, rundir, alive, procStart, killLeftovers,
  svcGet: get, svcPut: put, waitSvc, isRunning, putRunning,
  waitJob, installArtifact,
} = require('./lib');
const { makeZip } = require('./zipper');
const { Depot } = require('./depot');

const GAV = 'com.test:svc:1';
// The default dynamic uid range (service_uid_min, service_uid_max).
const UID_MIN = 70000;
const UID_MAX = 79999;

// ---------------------------------------------------------------- artifacts

const SCRIPTS = {
  // Prints its arguments and environment, then becomes a sleeping process.
  'bin/start': `#!/bin/sh
echo "argc=$#"
for a in "$@"; do printf 'arg=[%s]\\n' "$a"; done
echo "cwd=$(pwd)"
echo "physical=$(/bin/pwd -P 2>&1)"
echo "uid=$(id -u)"
env | sort | sed 's/^/env:/'
echo "started $$" >&2
exec sleep 1000
`,
  // Traps TERM, writes a marker and exits 0.
  'bin/graceful': `#!/bin/sh
trap 'echo term > term-marker; kill $! 2>/dev/null; exit 0' TERM
sleep 1000 &
echo $! > child.pid
echo ready > ready
wait
`,
  // Ignores TERM (and so does its child): only SIGKILL ends it.
  'bin/stubborn': `#!/bin/sh
trap '' TERM
sleep 1000 &
echo $! > child.pid
echo ready > ready
while :; do wait; done
`,
  // Drains on USR1 (a marker) and keeps running; exits 0 on TERM.
  'bin/drainer': `#!/bin/sh
trap 'echo usr1 >> drain-marker' USR1
trap 'echo term > term-marker; kill $! 2>/dev/null; exit 0' TERM
echo ready > ready
while :; do sleep 1000 & wait $!; done
`,
  // Exits 0 on its drain signal.
  'bin/drain-exit': `#!/bin/sh
trap 'echo usr1 > drain-marker; kill $! 2>/dev/null; exit 0' USR1
echo ready > ready
sleep 1000 &
wait
`,
  // Main process for the drain command test.
  'bin/drain-main': `#!/bin/sh
trap 'echo term > term-marker; kill $! 2>/dev/null; exit 0' TERM
echo $$ > main.pid
echo ready > ready
sleep 1000 &
wait
`,
  // The drain command: tells the main process to finish.
  'bin/drain': `#!/bin/sh
echo "drain-cmd $NODEE_COORDINATE" > drain-cmd-marker
kill -TERM "$(cat main.pid)"
`,
  'bin/crash': `#!/bin/sh
echo "crash $$"
exit 1
`,
  'bin/crash-once': `#!/bin/sh
if [ ! -e crashed-once ]; then echo once > crashed-once; exit 1; fi
echo ready > ready
exec sleep 1000
`,
  // Runs steadily for a while, then fails.
  'bin/crash-late': `#!/bin/sh
echo "run $$"
sleep 1.3
exit 1
`,
  // Writes more than log_max, then one more line when told to.
  'bin/chatty': `#!/bin/sh
i=0
while [ $i -lt 100 ]; do echo "first-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done
echo ready > ready
while [ ! -e go ]; do sleep 0.05; done
echo after-rotation
echo done > done
exec sleep 1000
`,
  'bin/exit0': '#!/bin/sh\necho bye\nexit 0\n',
  'bin/exit3': '#!/bin/sh\necho bye\nexit 3\n',
  'bin/lines': `#!/bin/sh
i=1
while [ $i -le 50 ]; do echo "line $i"; i=$((i+1)); done
echo "err 1" >&2
echo "err 2" >&2
echo ready > ready
exec sleep 1000
`,
  // Tries to modify the software tree; reports each exit status.
  'bin/rofs': `#!/bin/sh
touch "$NODEE_ARTIFACT_DIR/evil" 2>>rofs.err; echo "touch=$?"
mkdir "$NODEE_ARTIFACT_DIR/evildir" 2>>rofs.err; echo "mkdir=$?"
( echo x >> "$NODEE_ARTIFACT_DIR/bin/rofs" ) 2>>rofs.err; echo "append=$?"
rm -f "$NODEE_ARTIFACT_DIR/bin/start" 2>>rofs.err; echo "rm=$?"
chmod 777 "$NODEE_ARTIFACT_DIR" 2>>rofs.err; echo "chmod=$?"
echo mine > "$NODEE_RUNTIME_DIR/mine" 2>>rofs.err; echo "own=$?"
echo "uid=$(id -u) gid=$(id -g)"
echo ready > ready
exec sleep 1000
`,
};

const CPROG = `#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	int i;
	printf("cprog argc=%d\\n", argc);
	for (i = 1; i < argc; i++)
		printf("cprog argv[%d]=<%s>\\n", i, argv[i]);
	printf("cprog end\\n");
	fflush(stdout);
	for (;;)
		pause();
}
`;

function buildCprog() {
  const dir = tmpdir('cprog');
  fs.writeFileSync(path.join(dir, 'cprog.c'), CPROG);
  execFileSync('cc', ['-O2', '-o', path.join(dir, 'cprog'), path.join(dir, 'cprog.c')]);
  const bin = fs.readFileSync(path.join(dir, 'cprog'));
  fs.rmSync(dir, { recursive: true, force: true });
  return bin;
}

function svcZip(cprog) {
  return makeZip([
    { name: 'bin/', dir: true },
    ...Object.entries(SCRIPTS).map(([name, data]) => ({ name, data, mode: 0o755 })),
    { name: 'bin/cprog', data: cprog, mode: 0o755 },
    { name: 'conf/app.properties', data: 'x=1\n' },
  ]);
}

// ------------------------------------------------------------------ helpers

const prefixes = new Set();
const strays = new Set(); // processes the tests spawn themselves

// A prefix a dynamic uid can traverse (mkdtemp makes it 0700): 0711, as
// nodee makes one itself, searchable but not readable, so that a service
// sees the same ancestors as on a real machine.
function newPrefix() {
  const p = tmpdir('svc');
  fs.chmodSync(p, 0o711);
  prefixes.add(p);
  return p;
}

async function startDaemon(prefix, extra = {}) {
  return startNodee({ prefix, args: ['--depot', depot.url], ...extra });
}


async function post(d, coord, op) {
  return d.req({ method: 'POST', path: `/api/v1/services/${coord}/${op}` });
}


function history(d, coord) {
  return q(d, `select * from start_history where coordinate = '${esc(coord)}'`);
}

function events(d, coord, kind) {
  return q(d, `select kind, detail from events where subject = '${esc(coord)}'${
    kind ? ` and kind = '${esc(kind)}'` : ''} order by id`);
}

const sorted = (a) => [...a].sort((x, y) => x - y);

// The kinds of a service's events, in order, without service.running (a
// start that lasted start.min_uptime_ms): the steps these tests are about.
function lifecycle(d, coord) {
  return events(d, coord).map((e) => e.kind).filter((k) => k !== 'service.running');
}

process.on('exit', () => {
  for (const p of prefixes) killLeftovers(p);
  for (const p of strays) {
    try { process.kill(p.pid, 'SIGKILL'); } catch (_) { /* gone */ }
  }
});

// Deletes every service through the API, waits until they are gone and
// checks nothing of them still runs.
async function removeAll(d) {
  const list = (await d.req({ path: '/api/v1/services' })).json.services;
  await Promise.all(list.map((s) => d.req({ method: 'DELETE',
    path: `/api/v1/services/${s.coordinate}?purge=true` })));
  await waitFor(async () => (await d.req({ path: '/api/v1/services' })).json.services.length === 0,
    'every service deleted', 20000);
  await sleep(50);
  const left = killLeftovers(d.prefix);
  assert.deepEqual(left, [], 'no service process outlives its DELETE');
}


function assertProblem(r, status, detail) {
  assert.equal(r.status, status, `status of ${r.text}`);
  assert.match(r.headers['content-type'], /^application\/problem\+json/);
  assert.equal(r.json.status, status);
  if (detail) assert.match(r.json.detail, detail);
}

// -------------------------------------------------------------------- setup

let depot;
let D; // the shared daemon
let cprog;

test.before(async () => {
  cprog = buildCprog();
  depot = await new Depot().start();
  depot.put('com.test', 'svc', '1', svcZip(cprog));
  depot.put('com.test', 'manifest', '1', makeZip([
    { name: 'nodee.json', data: JSON.stringify({ command: 'bin/other' }) },
    { name: 'bin/other', data: '#!/bin/sh\necho manifest-command "$@"\nexec sleep 1000\n', mode: 0o755 },
    { name: 'bin/start', data: '#!/bin/sh\necho default-start "$@"\nexec sleep 1000\n', mode: 0o755 },
  ]));
  const late = depot.put('com.test', 'late', '1', makeZip([
    { name: 'bin/start', data: '#!/bin/sh\necho late "$NODEE_ARTIFACT"\nexec sleep 1000\n', mode: 0o755 },
    { name: 'lib/blob.bin', data: crypto.randomBytes(48 * 1024) },
  ]));
  depot.behaviour.set(late, 'slow');
  D = await startDaemon(newPrefix(), { env: { LEAK_CHECK_FROM_DAEMON: 'leaked' } });
  await installArtifact(D, GAV);
});

test.afterEach(async () => {
  if (D && !D.exited) await removeAll(D);
});

test.after(async () => {
  try {
    if (D && !D.exited) {
      await removeAll(D);
      await stopClean(D);
    }
  } finally {
    for (const p of prefixes) killLeftovers(p);
    if (depot) await depot.stop();
    for (const p of prefixes) {
      fs.rmSync(p, { recursive: true, force: true });
      prefixes.delete(p);
    }
  }
});

// -------------------------------------------------------------------- tests

test('start: the artifact runs in its own session with stdin /dev/null, logs to its runtime dir, recorded', async () => {
  const c = '1.start.tst.cell';
  const r = await put(D, c, { artifact: GAV, limits: { nofile: 123, core_bytes: 0 } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.coordinate, c);
  assert.equal(r.json.artifact, GAV);
  assert.equal(r.json.desired_state, 'running');
  assert.equal(r.json.spec.artifact, GAV);
  assert.equal(r.json.spec.restart.policy, 'on-failure', 'defaults filled in');
  assert.equal(r.json.spec.stop.signal, 'TERM');
  const s = await waitSvc(D, c, isRunning, 'running');
  assert.equal(s.restarts, 0);
  assert.equal(s.last_exit, null);
  assert.ok(Math.abs(s.started_at - Date.now()) < 60000, `started_at ${s.started_at}`);
  assert.ok(s.uid >= UID_MIN && s.uid <= UID_MAX, `dynamic uid ${s.uid}`);
  assert.equal(s.gid, s.uid);

  const dir = rundir(D.prefix, c);
  await waitFile(path.join(dir, 'log/stderr'), new RegExp(`started ${s.pid}`));
  const st = procStat(s.pid);
  assert.equal(Number(st[2]), s.pid, 'process group leader');
  assert.equal(Number(st[3]), s.pid, 'session leader');
  assert.equal(fs.readlinkSync(`/proc/${s.pid}/fd/0`), '/dev/null');
  assert.equal(fs.readlinkSync(`/proc/${s.pid}/fd/1`), path.join(dir, 'log/stdout'));
  assert.equal(fs.readlinkSync(`/proc/${s.pid}/fd/2`), path.join(dir, 'log/stderr'));
  assert.equal(fs.readFileSync(`/proc/${s.pid}/cmdline`, 'utf8'), 'sleep\u00001000\u0000');
  const limits = fs.readFileSync(`/proc/${s.pid}/limits`, 'utf8');
  assert.match(limits, /Max open files\s+123\s+123/);
  assert.match(limits, /Max core file size\s+0\s+0/);
  // sleep(1) itself opens locale files for a moment at start: look again
  // until that has passed; a descriptor nodee leaked would stay.
  let fds = [];
  for (let i = 0; i < 50; i++) {
    fds = fs.readdirSync(`/proc/${s.pid}/fd`).sort();
    if (fds.length === 3) break;
    await sleep(20);
  }
  assert.deepEqual(fds, ['0', '1', '2'], 'no descriptor of nodee\'s reaches the service');

  const list = (await D.req({ path: '/api/v1/services' })).json.services;
  assert.deepEqual(list.map((x) => x.coordinate), [c]);
  assert.equal(list[0].pid, s.pid);

  const h = history(D, c);
  assert.equal(h.length, 1);
  assert.equal(h[0].pid, s.pid);
  assert.equal(h[0].artifact, GAV);
  assert.equal(h[0].reason, 'api');
  assert.equal(h[0].ended, null);
  const row = q(D, `select state, pid, proc_start, desired_state from services where coordinate = '${c}'`)[0];
  assert.deepEqual([row.state, row.pid, row.desired_state], ['running', s.pid, 'running']);
  assert.equal(row.proc_start, procStart(s.pid), 'the recorded start time is the process\'s');
  assert.deepEqual(lifecycle(D, c), ['service.created', 'service.started']);

  assert.equal((await get(D, '1.nope.tst.cell')).status, 404);
});

test('options and args reach the program in order; a compiled program; a new spec restarts it', async () => {
  const c = '1.opts.tst.cell';
  const s = await putRunning(D, c, {
    artifact: GAV,
    options: { '--port': '8080', '--name': 'svc one', '-v': 2 },
    args: ['first', 'two words', ''],
  });
  const dir = rundir(D.prefix, c);
  await waitFile(path.join(dir, 'log/stderr'), new RegExp(`started ${s.pid}`));
  const out = fs.readFileSync(path.join(dir, 'log/stdout'), 'utf8');
  const args = out.split('\n').filter((l) => l.startsWith('arg=')).map((l) => l.slice(5, -1));
  assert.match(out, /^argc=9$/m);
  assert.deepEqual(args, ['--port', '8080', '--name', 'svc one', '-v', '2', 'first', 'two words', '']);

  // Replacing the spec of a running service restarts it with the new one.
  const r = await put(D, c, { artifact: GAV, options: { '--port': '9090' }, args: ['second'] });
  assert.equal(r.status, 200, r.text);
  const s2 = await waitSvc(D, c, (x) => isRunning(x) && x.pid !== s.pid, 'running again');
  await waitFile(path.join(dir, 'log/stderr'), new RegExp(`started ${s2.pid}`));
  assert.equal(alive(s.pid), false);
  const out2 = fs.readFileSync(path.join(dir, 'log/stdout'), 'utf8').slice(out.length);
  assert.deepEqual(out2.split('\n').filter((l) => l.startsWith('arg=')),
    ['arg=[--port]', 'arg=[9090]', 'arg=[second]']);
  assert.deepEqual(history(D, c).map((h) => h.reason), ['api', 'api']);
  assert.ok(events(D, c).some((e) => e.kind === 'service.updated'));

  // A small compiled program as the command.
  const cc = '1.cprog.tst.cell';
  const cs = await putRunning(D, cc, {
    artifact: GAV, command: 'bin/cprog',
    options: { '--mode': 'fast' }, args: ['a b', '', 'ünï'],
  });
  const cout = await waitFile(path.join(rundir(D.prefix, cc), 'log/stdout'), /cprog end/);
  assert.equal(cout, 'cprog argc=6\ncprog argv[1]=<--mode>\ncprog argv[2]=<fast>\n' +
    'cprog argv[3]=<a b>\ncprog argv[4]=<>\ncprog argv[5]=<ünï>\ncprog end\n');
  assert.equal(fs.readlinkSync(`/proc/${cs.pid}/exe`),
    path.join(D.prefix, 'software/com.test/svc/1/bin/cprog'));
});

test('env: nodee\'s variables and the spec\'s, nothing of the daemon\'s own; cwd is the runtime dir', async () => {
  const c = 'web-1.envtest.tst.cell';
  const s = await putRunning(D, c, { artifact: GAV, env: { GREETING: 'hello world', EMPTY: '' } });
  const dir = rundir(D.prefix, c);
  await waitFile(path.join(dir, 'log/stderr'), new RegExp(`started ${s.pid}`));
  const out = fs.readFileSync(path.join(dir, 'log/stdout'), 'utf8');
  const env = new Map(out.split('\n').filter((l) => l.startsWith('env:'))
    .map((l) => { const kv = l.slice(4); const i = kv.indexOf('='); return [kv.slice(0, i), kv.slice(i + 1)]; }));
  assert.equal(env.get('GREETING'), 'hello world');
  assert.equal(env.get('EMPTY'), '');
  assert.equal(env.get('NODEE_COORDINATE'), c);
  assert.equal(env.get('NODEE_RUNTIME_DIR'), dir);
  assert.equal(env.get('NODEE_ARTIFACT_DIR'), path.join(D.prefix, 'software/com.test/svc/1'));
  assert.equal(env.get('NODEE_ARTIFACT'), GAV);
  assert.equal(env.get('HOME'), dir);
  assert.match(env.get('PATH') || '', /(^|:)\/usr\/bin(:|$)/);
  assert.equal(env.has('LEAK_CHECK_FROM_DAEMON'), false, 'the daemon\'s environment does not leak');
  assert.equal(env.has('NODE_TEST_CONTEXT'), false);
  assert.match(out, new RegExp(`^cwd=${dir}$`, 'm'));
  // getcwd() itself, not the shell's $PWD: it failed (EACCES) when the
  // child entered its directory after making its mount namespace.
  assert.match(out, new RegExp(`^physical=${dir}$`, 'm'));
  assert.match(out, new RegExp(`^uid=${s.uid}$`, 'm'));
  assert.equal(fs.readlinkSync(`/proc/${s.pid}/cwd`), dir);
});

test('the command: nodee.json\'s by default, the spec\'s if given; a missing one fails the service', async () => {
  const c1 = '1.manifest.tst.cell';
  const r = await put(D, c1, { artifact: 'com.test:manifest:1', args: ['m'] });
  assert.equal(r.status, 202, r.text);
  await waitSvc(D, c1, isRunning, 'running');
  await waitFile(path.join(rundir(D.prefix, c1), 'log/stdout'), /^manifest-command m$/m);

  const c2 = '2.manifest.tst.cell';
  await putRunning(D, c2, { artifact: 'com.test:manifest:1', command: 'bin/start', args: ['x'] });
  await waitFile(path.join(rundir(D.prefix, c2), 'log/stdout'), /^default-start x$/m);

  const c3 = '3.manifest.tst.cell';
  const r3 = await put(D, c3, { artifact: GAV, command: 'bin/missing' });
  assert.equal(r3.status, 201, r3.text);
  const s3 = await waitSvc(D, c3, (x) => x.state === 'failed', 'failed');
  assert.match(s3.reason, /bin\/missing/);
  assert.equal(s3.pid, null);
  assert.equal(history(D, c3).length, 0, 'nothing ran');
});

test('stop with grace: TERM to the process group, the trap runs, exit 0, stopped; start again', async () => {
  const c = '1.graceful.tst.cell';
  const dir = rundir(D.prefix, c);
  const s = await putRunning(D, c, { artifact: GAV, command: 'bin/graceful', stop: { timeout_s: 10 } });
  await waitFile(path.join(dir, 'ready'));
  const child = Number(fs.readFileSync(path.join(dir, 'child.pid'), 'utf8'));
  assert.ok(alive(child));
  const t0 = Date.now();
  const r = await post(D, c, 'stop');
  assert.equal(r.status, 200, r.text);
  assert.ok(['stopping', 'stopped'].includes(r.json.state), r.json.state);
  assert.equal(r.json.desired_state, 'stopped');
  const st = await waitSvc(D, c, (x) => x.state === 'stopped', 'stopped');
  assert.ok(Date.now() - t0 < 5000, 'well before the stop timeout');
  assert.equal(st.pid, null);
  assert.equal(st.last_exit.code, 0);
  assert.equal(st.last_exit.signal, null);
  assert.equal(fs.readFileSync(path.join(dir, 'term-marker'), 'utf8'), 'term\n');
  assert.equal(alive(s.pid), false);
  await waitFor(() => !alive(child), 'the child in the group is gone', 3000);
  const kinds = events(D, c).map((e) => e.kind);
  assert.deepEqual(kinds.slice(-3), ['service.stopping', 'service.exited', 'service.stopped']);
  const h = history(D, c);
  assert.equal(h.length, 1);
  assert.equal(h[0].exit, 'code 0');
  assert.notEqual(h[0].ended, null);

  // Stays stopped; a start runs it again.
  await sleep(300);
  assert.equal((await get(D, c)).json.state, 'stopped');
  const r2 = await post(D, c, 'start');
  assert.equal(r2.status, 200, r2.text);
  const s2 = await waitSvc(D, c, isRunning, 'running again');
  assert.notEqual(s2.pid, s.pid);
  assert.equal(s2.desired_state, 'running');
  assert.deepEqual(history(D, c).map((x) => x.reason), ['api', 'api']);
});

test('stop: SIGKILL to the whole group after stop.timeout_s when TERM is ignored', async () => {
  const c = '1.stubborn.tst.cell';
  const dir = rundir(D.prefix, c);
  const s = await putRunning(D, c, { artifact: GAV, command: 'bin/stubborn', stop: { timeout_s: 1 } });
  await waitFile(path.join(dir, 'ready'));
  const child = Number(fs.readFileSync(path.join(dir, 'child.pid'), 'utf8'));
  const t0 = Date.now();
  const r = await post(D, c, 'stop');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.state, 'stopping');
  await sleep(500);
  assert.equal((await get(D, c)).json.state, 'stopping', 'still stopping while TERM is ignored');
  assert.ok(alive(s.pid));
  const st = await waitSvc(D, c, (x) => x.state === 'stopped', 'stopped', 10000);
  const took = Date.now() - t0;
  assert.ok(took >= 900 && took < 5000, `stopped after ${took} ms`);
  assert.equal(st.last_exit.signal, 9);
  assert.equal(st.last_exit.code, null);
  assert.equal(alive(s.pid), false);
  await waitFor(() => !alive(child), 'the child in the group is killed too', 3000);
  assert.match(D.stderr, new RegExp(`${c.replace(/\./g, '\\.')}: did not stop in time; SIGKILL`));
  assert.equal(history(D, c)[0].exit, 'signal 9');
});

test('drain with a signal: draining is visible, then a stop after the drain timeout', async () => {
  const c = '1.drainer.tst.cell';
  const dir = rundir(D.prefix, c);
  const s = await putRunning(D, c, { artifact: GAV, command: 'bin/drainer',
    drain: { signal: 'USR1', timeout_s: 2 } });
  await waitFile(path.join(dir, 'ready'));
  const t0 = Date.now();
  const r = await post(D, c, 'drain');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.state, 'draining');
  assert.equal(r.json.desired_state, 'stopped');
  await waitFile(path.join(dir, 'drain-marker'), /usr1/);
  await sleep(300);
  const mid = (await get(D, c)).json;
  assert.equal(mid.state, 'draining');
  assert.equal(mid.pid, s.pid, 'still the same process while draining');
  assert.ok(alive(s.pid));
  const st = await waitSvc(D, c, (x) => x.state === 'stopped', 'stopped');
  const took = Date.now() - t0;
  assert.ok(took >= 1800 && took < 8000, `stopped ${took} ms after the drain`);
  assert.equal(fs.readFileSync(path.join(dir, 'term-marker'), 'utf8'), 'term\n', 'stopped with TERM');
  assert.equal(st.last_exit.code, 0);
  const kinds = events(D, c).map((e) => e.kind);
  const i = kinds.indexOf('service.draining');
  assert.ok(i > 0, kinds.join());
  assert.deepEqual(kinds.slice(i), ['service.draining', 'service.stopping', 'service.exited', 'service.stopped']);

  // Nothing to drain now.
  assertProblem(await post(D, c, 'drain'), 409, /not running/);
  assertProblem(await post(D, '1.nope.tst.cell', 'drain'), 404);
});

test('drain: a service that exits on its drain signal is stopped at once; a drain command', async () => {
  const c = '1.drainexit.tst.cell';
  const dir = rundir(D.prefix, c);
  await putRunning(D, c, { artifact: GAV, command: 'bin/drain-exit',
    drain: { signal: 'USR1', timeout_s: 30 } });
  await waitFile(path.join(dir, 'ready'));
  const t0 = Date.now();
  const r = await post(D, c, 'drain');
  assert.equal(r.status, 200, r.text);
  assert.ok(['draining', 'stopped'].includes(r.json.state), r.json.state);
  const st = await waitSvc(D, c, (x) => x.state === 'stopped', 'stopped');
  assert.ok(Date.now() - t0 < 5000, 'long before the drain timeout');
  assert.equal(st.last_exit.code, 0);
  assert.equal(readIf(path.join(dir, 'drain-marker')), 'usr1\n');
  const kinds = events(D, c).map((e) => e.kind);
  assert.ok(kinds.includes('service.draining'), kinds.join());
  assert.equal(kinds.includes('service.stopping'), false, 'no stop was needed');

  const c2 = '1.draincmd.tst.cell';
  const dir2 = rundir(D.prefix, c2);
  await putRunning(D, c2, { artifact: GAV, command: 'bin/drain-main',
    drain: { command: 'bin/drain', timeout_s: 30 } });
  await waitFile(path.join(dir2, 'ready'));
  const t1 = Date.now();
  const r2 = await post(D, c2, 'drain');
  assert.equal(r2.status, 200, r2.text);
  assert.ok(['draining', 'stopped'].includes(r2.json.state), r2.json.state);
  const st2 = await waitSvc(D, c2, (x) => x.state === 'stopped', 'stopped');
  assert.ok(Date.now() - t1 < 5000, 'long before the drain timeout');
  assert.equal(readIf(path.join(dir2, 'drain-cmd-marker')), `drain-cmd ${c2}\n`);
  assert.equal(readIf(path.join(dir2, 'term-marker')), 'term\n');
  assert.equal(st2.last_exit.code, 0);
  assert.equal(history(D, c2).length, 1, 'the drain command is not an incarnation');
});

test('restart: a new pid, reason api', async () => {
  const c = '1.restart.tst.cell';
  const s = await putRunning(D, c, { artifact: GAV });
  const r = await post(D, c, 'restart');
  assert.equal(r.status, 200, r.text);
  const s2 = await waitSvc(D, c, (x) => isRunning(x) && x.pid !== s.pid, 'a new pid');
  assert.equal(alive(s.pid), false);
  assert.ok(alive(s2.pid));
  const h = history(D, c);
  assert.deepEqual(h.map((x) => x.reason), ['api', 'api']);
  assert.deepEqual(h.map((x) => x.pid), [s.pid, s2.pid]);
  assert.equal(h[0].exit, 'signal 15');
  assertProblem(await post(D, '1.nope.tst.cell', 'restart'), 404);
});

test('kill -9 of the service process: it comes back with a new pid, restarts + 1, reason restart', async () => {
  const c = '1.killed.tst.cell';
  const s = await putRunning(D, c, { artifact: GAV });
  process.kill(s.pid, 'SIGKILL');
  const s2 = await waitSvc(D, c, (x) => isRunning(x) && x.pid !== s.pid, 'back with a new pid');
  assert.equal(s2.restarts, 1);
  assert.deepEqual(s2.last_exit && [s2.last_exit.code, s2.last_exit.signal], [null, 9]);
  const h = history(D, c);
  assert.deepEqual(h.map((x) => [x.pid, x.reason, x.exit]),
    [[s.pid, 'api', 'signal 9'], [s2.pid, 'restart', null]]);
  const kinds = lifecycle(D, c);
  assert.deepEqual(kinds, ['service.created', 'service.started', 'service.exited',
    'service.backoff', 'service.started']);
  assert.equal(JSON.parse(events(D, c, 'service.exited')[0].detail).signal, 9);
});

// The delays start above the restart floor (about a second between two
// starts), so that what is measured is the backoff, not the floor; a start
// counts at once (min_uptime_ms 0): this is about the policy, not about
// failed starts.
test('a crash loop: backoff delays grow, then failed ("gave up"), and it stays failed until started', async () => {
  const c = '1.crashloop.tst.cell';
  const r = await put(D, c, { artifact: GAV, command: 'bin/crash', start: { min_uptime_ms: 0 },
    restart: { delay_ms: 1250, max_delay_ms: 60000, max_restarts: 3, period_s: 60 } });
  assert.equal(r.status, 201, r.text);
  const s = await waitSvc(D, c, (x) => x.state === 'failed', 'failed', 40000);
  assert.match(s.reason, /^gave up after 3 restarts/);
  assert.equal(s.restarts, 3);
  assert.equal(s.pid, null);
  assert.equal(s.last_exit.code, 1);
  const delays = events(D, c, 'service.backoff').map((e) => JSON.parse(e.detail).delay_ms);
  assert.equal(delays.length, 3, delays.join());
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i] > delays[i - 1], `grows: ${delays}`);
  [[1000, 1500], [2000, 3000], [4000, 6000]].forEach(([lo, hi], i) =>
    assert.ok(delays[i] >= lo && delays[i] <= hi, `delay ${i} = ${delays[i]} in [${lo}, ${hi}]`));
  assert.equal(events(D, c, 'service.gave_up').length, 1);
  const h = history(D, c);
  assert.deepEqual(h.map((x) => x.reason), ['api', 'restart', 'restart', 'restart']);
  assert.ok(h.every((x) => x.exit === 'code 1'), JSON.stringify(h));
  // The gaps between runs follow the delays.
  const starts = h.map((x) => Date.parse(x.started));
  assert.ok(starts[3] - starts[1] >= 0.8 * (delays[1] + delays[2]) - 20, `${starts}`);

  await sleep(600);
  assert.equal((await get(D, c)).json.state, 'failed', 'stays failed');
  assert.equal(history(D, c).length, 4);
  const r2 = await post(D, c, 'start');
  assert.equal(r2.status, 200, r2.text);
  await waitFor(() => history(D, c).length >= 5, 'a new run after start');
  assert.equal(history(D, c)[4].reason, 'api');
});

test('the restart counter resets after a steady run: a service that fails only now and then never gives up', async () => {
  const c = '1.steady.tst.cell';
  await put(D, c, { artifact: GAV, command: 'bin/crash-late',
    restart: { delay_ms: 20, max_restarts: 2, period_s: 60, reset_after_s: 1 } });
  const s = await waitSvc(D, c, (x) => x.restarts >= 3 || x.state === 'failed', 'three restarts', 20000);
  assert.notEqual(s.state, 'failed', s.reason);
  assert.equal(events(D, c, 'service.gave_up').length, 0);
  const delays = events(D, c, 'service.backoff').map((e) => JSON.parse(e.detail).delay_ms);
  assert.ok(delays.length >= 3);
  assert.ok(delays.every((x) => x >= 16 && x <= 24), `the delay starts small again each time: ${delays}`);
});

// The commands exit at once: min_uptime_ms 0 makes each start count, as
// the test is about the policies, not about failed starts.
test('restart policies: never -> exited; on-failure with exit 0 -> exited; always restarts an exit 0', async () => {
  const never = '1.never.tst.cell';
  const onf = '1.onfailure.tst.cell';
  const always = '1.always.tst.cell';
  const start = { min_uptime_ms: 0 };
  const rs = await Promise.all([
    put(D, never, { artifact: GAV, command: 'bin/exit3', start, restart: { policy: 'never', delay_ms: 0 } }),
    put(D, onf, { artifact: GAV, command: 'bin/exit0', start, restart: { delay_ms: 0 } }),
    put(D, always, { artifact: GAV, command: 'bin/exit0', start,
      restart: { policy: 'always', delay_ms: 50, max_restarts: 1000 } }),
  ]);
  rs.forEach((r) => assert.equal(r.status, 201, r.text));
  const n = await waitSvc(D, never, (x) => x.state === 'exited', 'exited');
  assert.equal(n.last_exit.code, 3);
  assert.equal(n.desired_state, 'running');
  const o = await waitSvc(D, onf, (x) => x.state === 'exited', 'exited');
  assert.equal(o.last_exit.code, 0);
  await waitSvc(D, always, (x) => x.restarts >= 2, 'restarted twice', 30000);
  await sleep(500);
  for (const [c, code] of [[never, 3], [onf, 0]]) {
    const x = (await get(D, c)).json;
    assert.equal(x.state, 'exited', c);
    assert.equal(x.restarts, 0, c);
    const h = history(D, c);
    assert.equal(h.length, 1, `${c} not restarted`);
    assert.equal(h[0].exit, `code ${code}`);
  }
  assert.ok(history(D, always).length >= 3);
});

test('a restart request during a long backoff starts at once; a stop during backoff cancels it', async () => {
  const c = '1.backoff.tst.cell';
  const dir = rundir(D.prefix, c);
  await put(D, c, { artifact: GAV, command: 'bin/crash-once',
    restart: { delay_ms: 20000, max_delay_ms: 60000 } });
  await waitSvc(D, c, (x) => x.state === 'backoff', 'backoff');
  const delay = JSON.parse(events(D, c, 'service.backoff')[0].detail).delay_ms;
  assert.ok(delay >= 16000, `delay ${delay}`);
  const t0 = Date.now();
  const r = await post(D, c, 'restart');
  assert.equal(r.status, 200, r.text);
  const s = await waitSvc(D, c, isRunning, 'running', 5000);
  await waitFile(path.join(dir, 'ready'));
  const h = history(D, c);
  assert.equal(h.length, 2);
  assert.ok(['restart', 'api'].includes(h[1].reason), h[1].reason);
  assert.equal(h[1].pid, s.pid);
  assert.ok(Date.parse(h[1].started) - t0 < 1500, 'started at once, not after the delay');

  const c2 = '2.backoff.tst.cell';
  await put(D, c2, { artifact: GAV, command: 'bin/crash',
    restart: { policy: 'always', delay_ms: 800, max_delay_ms: 800 } });
  await waitSvc(D, c2, (x) => x.state === 'backoff', 'backoff');
  const r2 = await post(D, c2, 'stop');
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.json.state, 'stopped');
  await sleep(1500);
  const x = (await get(D, c2)).json;
  assert.equal(x.state, 'stopped');
  assert.equal(history(D, c2).length, 1, 'the pending restart was cancelled');
});

test('DELETE stops and forgets; the runtime dir is kept unless ?purge=true', async () => {
  const a = '1.dela.tst.cell';
  const b = '1.delb.tst.cell';
  const cst = '1.delc.tst.cell';
  const [sa, sb] = await Promise.all([putRunning(D, a, { artifact: GAV }), putRunning(D, b, { artifact: GAV })]);
  await putRunning(D, cst, { artifact: GAV });
  await post(D, cst, 'stop');
  await waitSvc(D, cst, (x) => x.state === 'stopped', 'stopped');
  await waitFile(path.join(rundir(D.prefix, a), 'log/stderr'), /started/);

  assertProblem(await D.req({ method: 'DELETE', path: `/api/v1/services/${a}?purge=yes` }), 400, /purge/);
  assertProblem(await D.req({ method: 'DELETE', path: '/api/v1/services/1.nope.tst.cell' }), 404);

  const ra = await D.req({ method: 'DELETE', path: `/api/v1/services/${a}` });
  assert.equal(ra.status, 200, ra.text);
  await waitFor(async () => (await get(D, a)).status === 404, `${a} gone`);
  assert.equal(alive(sa.pid), false);
  assert.ok(fs.statSync(rundir(D.prefix, a)).isDirectory(), 'runtime dir kept');
  assert.match(fs.readFileSync(path.join(rundir(D.prefix, a), 'log/stdout'), 'utf8'), /argc=0/);
  assert.deepEqual(q(D, `select coordinate from services where coordinate = '${a}'`), []);
  assert.equal(history(D, a).length, 1, 'the history outlives the service');
  assert.deepEqual(JSON.parse(events(D, a, 'service.deleted')[0].detail), { purged: false });

  const rb = await D.req({ method: 'DELETE', path: `/api/v1/services/${b}?purge=true` });
  assert.equal(rb.status, 200, rb.text);
  await waitFor(async () => (await get(D, b)).status === 404, `${b} gone`);
  assert.equal(alive(sb.pid), false);
  assert.equal(fs.existsSync(rundir(D.prefix, b)), false, 'runtime dir purged');
  assert.deepEqual(JSON.parse(events(D, b, 'service.deleted')[0].detail), { purged: true });

  // A stopped service goes at once.
  const rc = await D.req({ method: 'DELETE', path: `/api/v1/services/${cst}` });
  assert.equal(rc.status, 200, rc.text);
  assert.equal(rc.json.state, 'deleted');
  assert.equal((await get(D, cst)).status, 404);
  const list = (await D.req({ path: '/api/v1/services' })).json.services.map((x) => x.coordinate);
  assert.deepEqual(list.filter((x) => [a, b, cst].includes(x)), []);
});

test('logs: tail=N of stdout and stderr', async () => {
  const c = '1.logs.tst.cell';
  await putRunning(D, c, { artifact: GAV, command: 'bin/lines' });
  await waitFile(path.join(rundir(D.prefix, c), 'ready'));
  const logs = (qs) => D.req({ path: `/api/v1/services/${c}/logs${qs}` });
  let r = await logs('?stream=stdout&tail=5');
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /^text\/plain/);
  assert.equal(r.text, 'line 46\nline 47\nline 48\nline 49\nline 50\n');
  r = await logs('?tail=1');
  assert.equal(r.text, 'line 50\n');
  r = await logs('');
  assert.equal(r.text, Array.from({ length: 50 }, (_, i) => `line ${i + 1}\n`).join(''));
  r = await logs('?stream=stdout&tail=100000');
  assert.equal(r.text.split('\n').length, 51);
  r = await logs('?stream=stderr&tail=1');
  assert.equal(r.text, 'err 2\n');
  r = await logs('?stream=stderr&tail=10');
  assert.equal(r.text, 'err 1\nerr 2\n');
  assertProblem(await logs('?stream=stdin'), 400, /stream/);
  assertProblem(await logs('?tail=0'), 400, /tail/);
  assertProblem(await logs('?tail=abc'), 400, /tail/);
  assertProblem(await D.req({ path: '/api/v1/services/1.nope.tst.cell/logs' }), 404);
});

test('isolation: the software tree is read-only to services (dynamic uid, a named user, even root)', async () => {
  const dyn = '1.rofs.tst.cell';
  const dyn2 = '2.rofs.tst.cell';
  const root = '1.rofsroot.tst.cell';
  const nobody = '1.rofsnobody.tst.cell';
  const adir = path.join(D.prefix, 'software/com.test/svc/1');
  const before = fs.readFileSync(path.join(adir, 'bin/rofs'), 'utf8');
  const [sd, sd2, sr, sn] = await Promise.all([
    putRunning(D, dyn, { artifact: GAV, command: 'bin/rofs' }),
    putRunning(D, dyn2, { artifact: GAV, command: 'bin/rofs' }),
    putRunning(D, root, { artifact: GAV, command: 'bin/rofs', user: 'root' }),
    putRunning(D, nobody, { artifact: GAV, command: 'bin/rofs', user: 'nobody' }),
  ]);
  const nobodyUid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
  assert.ok(sd.uid >= UID_MIN && sd.uid <= UID_MAX, `dynamic uid ${sd.uid}`);
  assert.ok(sd2.uid >= UID_MIN && sd2.uid <= UID_MAX, `dynamic uid ${sd2.uid}`);
  assert.notEqual(sd.uid, sd2.uid, 'two live services never share a dynamic uid');
  assert.equal(sr.uid, 0);
  assert.equal(sn.uid, nobodyUid);

  for (const [c, s] of [[dyn, sd], [dyn2, sd2], [root, sr], [nobody, sn]]) {
    const dir = rundir(D.prefix, c);
    await waitFile(path.join(dir, 'ready'));
    const out = fs.readFileSync(path.join(dir, 'log/stdout'), 'utf8');
    for (const op of ['touch', 'mkdir', 'append', 'rm', 'chmod']) {
      assert.match(out, new RegExp(`^${op}=[1-9]\\d*$`, 'm'), `${c}: ${op} must fail:\n${out}`);
    }
    assert.match(out, /^own=0$/m, `${c} writes its own runtime dir`);
    assert.match(out, new RegExp(`^uid=${s.uid} gid=${s.gid}$`, 'm'));
    const status = fs.readFileSync(`/proc/${s.pid}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${s.uid}\\s+${s.uid}\\s+${s.uid}\\s+${s.uid}$`, 'm'));
    assert.match(status, new RegExp(`^Gid:\\s+${s.gid}\\s+${s.gid}\\s+${s.gid}\\s+${s.gid}$`, 'm'));
    const st = fs.statSync(dir);
    assert.equal(st.uid, s.uid, `${c}: the runtime dir belongs to the service's uid`);
    assert.equal(st.gid, s.gid);
    assert.equal(fs.statSync(path.join(dir, 'log')).uid, s.uid);
    assert.equal(fs.statSync(path.join(dir, 'log/stdout')).uid, s.uid);
    assert.notEqual(fs.readlinkSync(`/proc/${s.pid}/ns/mnt`), fs.readlinkSync(`/proc/${D.pid}/ns/mnt`),
      `${c}: a private mount namespace`);
  }
  // Only the read-only mount can stop root.
  assert.match(fs.readFileSync(path.join(rundir(D.prefix, root), 'rofs.err'), 'utf8'), /Read-only file system/);
  assert.equal(fs.existsSync(path.join(adir, 'evil')), false);
  assert.equal(fs.existsSync(path.join(adir, 'evildir')), false);
  assert.ok(fs.existsSync(path.join(adir, 'bin/start')));
  assert.equal(fs.readFileSync(path.join(adir, 'bin/rofs'), 'utf8'), before);
  assert.equal(fs.statSync(adir).mode & 0o7777, 0o555);
  // Outside the services' namespaces the tree is still nodee's to manage.
  assert.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(`${D.prefix}/software`), false);
});

test('a service waits for its artifact: 202 with install_job, then running', async () => {
  const c1 = '1.late.tst.cell';
  const c2 = '2.late.tst.cell';
  const r1 = await put(D, c1, { artifact: 'com.test:late:1' });
  assert.equal(r1.status, 202, r1.text);
  assert.ok(Number.isInteger(r1.json.install_job.id), r1.text);
  assert.equal(r1.json.install_job.kind, 'artifact.install');
  assert.equal(r1.json.install_job.subject, 'com.test:late:1');
  assert.equal(r1.headers.location, `/api/v1/jobs/${r1.json.install_job.id}`);
  assert.equal(r1.json.state, 'starting');
  assert.equal(r1.json.job, r1.json.install_job.id);
  assert.equal(r1.json.pid, null);
  const r2 = await put(D, c2, { artifact: 'com.test:late:1' });
  assert.equal(r2.status, 202, r2.text);
  assert.equal(r2.json.install_job.id, r1.json.install_job.id, 'one install for both');
  const mid = (await get(D, c1)).json;
  assert.equal(mid.state, 'starting', 'waits while the (slow) download runs');
  const [s1, s2] = await Promise.all([waitSvc(D, c1, isRunning, 'running'), waitSvc(D, c2, isRunning, 'running')]);
  const job = (await D.req({ path: `/api/v1/jobs/${r1.json.install_job.id}` })).json;
  assert.equal(job.state, 'succeeded');
  assert.equal(s1.job, null);
  assert.notEqual(s1.pid, s2.pid);
  await waitFile(path.join(rundir(D.prefix, c1), 'log/stdout'), /^late com\.test:late:1$/m);
  assert.deepEqual(history(D, c1).map((x) => x.reason), ['api']);
  assert.equal(depot.count(Depot.zipPath('com.test', 'late', '1')), 1);
});

test('a failing install (artifact missing from the depot) leaves the service failed, naming the install', async () => {
  const c = '1.noart.tst.cell';
  const r = await put(D, c, { artifact: 'com.test:nothere:1' });
  assert.equal(r.status, 202, r.text);
  const s = await waitSvc(D, c, (x) => x.state === 'failed', 'failed');
  assert.match(s.reason, /install/);
  assert.match(s.reason, /404/);
  assert.equal(s.pid, null);
  assert.equal(history(D, c).length, 0);
  const job = (await D.req({ path: `/api/v1/jobs/${r.json.install_job.id}` })).json;
  assert.equal(job.state, 'failed');
  await sleep(200);
  assert.equal((await get(D, c)).json.state, 'failed');
});

test('bad coordinates and bad specs: 400 naming the problem, nothing created', async () => {
  const counts = () => ({
    services: q(D, 'select count(*) n from services')[0].n,
    jobs: q(D, 'select count(*) n from jobs')[0].n,
    runs: q(D, 'select count(*) n from service_runs')[0].n,
    events: q(D, "select count(*) n from events where kind like 'service.%'")[0].n,
  });
  const tree = () => execFileSync('find', [path.join(D.prefix, 'runtime'), path.join(D.prefix, 'software')],
    { encoding: 'utf8' }).split('\n').sort().join('\n');
  const c0 = counts();
  const t0 = tree();
  const good = { artifact: GAV };
  const label64 = 'x'.repeat(64);
  const badCoords = [
    ['a.b.c', /four labels/],
    ['1.Svc.u.cell', /a-z/],
    [`1.${label64}.u.cell`, /1 to 63/],
    [`${label64}.svc.u.cell`, /1 to 63/],
    ['1.svc..cell', /1 to 63/],
    ['..', null],
    ['1.svc.u.cell.x', /more than four/],
    ['1.s_v.u.cell', /a-z/],
    ['1.svc.u.ce%20ll', null],
    ['%2e%2e.svc.u.cell', null],
  ];
  for (const [c, detail] of badCoords) {
    const r = await put(D, c, good);
    assert.ok([400, 404].includes(r.status), `${c}: ${r.status} ${r.text}`);
    if (detail || r.status === 400) assertProblem(r, 400, detail);
    const g = await get(D, c);
    assert.ok([400, 404].includes(g.status), `${c}: GET ${g.status}`);
  }
  const c = '1.bad.tst.cell';
  const badSpecs = [
    [{}, /artifact/],
    [[], /object/],
    [{ artifact: 'not-a-gav' }, /./],
    [{ artifact: GAV, foo: 1 }, /foo: unknown field/],
    [{ artifact: GAV, restart: { policy: 'sometimes' } }, /restart\.policy/],
    [{ artifact: GAV, restart: { bogus: 1 } }, /restart\.bogus/],
    [{ artifact: GAV, restart: { max_restarts: -1 } }, /restart\.max_restarts/],
    [{ artifact: GAV, stop: { signal: 'NOPE' } }, /stop\.signal/],
    [{ artifact: GAV, stop: { timeout_s: 'ten' } }, /stop\.timeout_s/],
    [{ artifact: GAV, drain: { signal: 'NOPE' } }, /drain\.signal/],
    [{ artifact: GAV, drain: { command: '/bin/true' } }, /drain\.command/],
    [{ artifact: GAV, command: '../x' }, /command/],
    [{ artifact: GAV, command: 'bin/../../x' }, /command/],
    [{ artifact: GAV, command: '/bin/sh' }, /command/],
    [{ artifact: GAV, command: '' }, /command/],
    [{ artifact: GAV, options: ['--x'] }, /options/],
    [{ artifact: GAV, args: [1] }, /args/],
    [{ artifact: GAV, env: { 'A=B': 'x' } }, /env/],
    [{ artifact: GAV, user: 'no-such-user-nodee' }, /user/],
    [{ artifact: GAV, limits: { nofile: -1 } }, /limits\.nofile/],
    [{ artifact: GAV, limits: { stack: 1 } }, /limits\.stack/],
  ];
  for (const [spec, detail] of badSpecs) {
    const r = await put(D, c, spec);
    assertProblem(r, 400, detail);
  }
  const raw = await D.req({ method: 'PUT', path: `/api/v1/services/${c}`, body: '{"artifact":',
    headers: { 'Content-Type': 'application/json' } });
  assertProblem(raw, 400);
  assert.equal((await get(D, c)).status, 404);
  assert.deepEqual(counts(), c0, 'no service, job, run or event');
  assert.equal(tree(), t0, 'no runtime dir');

  // The largest label is fine.
  const max = `1.${'x'.repeat(63)}.u.cell`;
  const ok = await put(D, max, good);
  assert.equal(ok.status, 201, ok.text);
  await waitSvc(D, max, isRunning, 'running');
});

// ------------------------------------------------- daemon restarts and kills

test('kill -9 of the daemon with 20 running services, 10 times: every one adopted, same pid, same restarts', async () => {
  const prefix = newPrefix();
  let d = await startDaemon(prefix);
  try {
    await installArtifact(d, GAV);
    const coords = Array.from({ length: 20 }, (_, i) => `${i}.herd.tst.cell`);
    const rs = await Promise.all(coords.map((c) => put(d, c, { artifact: GAV })));
    rs.forEach((r) => assert.equal(r.status, 201, r.text));
    // One of them has already been restarted once: the count must survive.
    const first = await waitSvc(d, coords[0], isRunning, 'running');
    process.kill(first.pid, 'SIGKILL');
    await waitSvc(d, coords[0], (x) => isRunning(x) && x.restarts === 1, 'restarted');
    const want = new Map();
    for (const c of coords) {
      const s = await waitSvc(d, c, isRunning, 'running');
      want.set(c, { pid: s.pid, start: procStart(s.pid), restarts: s.restarts, uid: s.uid });
    }
    assert.equal(new Set([...want.values()].map((x) => x.uid)).size, 20, 'twenty distinct uids');
    assert.deepEqual(serviceGroups(prefix), sorted([...want.values()].map((x) => x.pid)));
    const runs0 = q(d, 'select count(*) n from service_runs')[0].n;

    for (let round = 1; round <= 10; round++) {
      const ex = await d.stop('SIGKILL');
      assert.equal(ex.signal, 'SIGKILL');
      assert.equal(sanitizerReport(d.stderr), null, d.stderr);
      for (const [c, w] of want) assert.equal(procStart(w.pid), w.start, `round ${round}: ${c} survives nodee`);
      d = await startDaemon(prefix);
      await waitFor(() => q(d, "select count(*) n from service_runs where reason = 'adopted'")[0].n === 20 * round,
        `round ${round}: 20 adoptions`, 15000);
      const list = (await d.req({ path: '/api/v1/services' })).json.services;
      assert.equal(list.length, 20);
      for (const s of list) {
        const w = want.get(s.coordinate);
        assert.equal(s.state, 'running', `round ${round}: ${s.coordinate}`);
        assert.equal(s.pid, w.pid, `round ${round}: ${s.coordinate} keeps its pid`);
        assert.equal(s.restarts, w.restarts, `round ${round}: ${s.coordinate} keeps its restart count`);
        assert.equal(s.uid, w.uid);
      }
      assert.equal(q(d, 'select count(*) n from service_runs')[0].n, runs0 + 20 * round,
        'nothing but adoptions: no service started again');
      assert.equal(q(d, "select count(*) n from events where kind = 'service.adopted'")[0].n, 20 * round);
      assert.deepEqual(serviceGroups(prefix), sorted([...want.values()].map((x) => x.pid)),
        'nothing doubled');
    }
    assert.match(d.stderr, /adopted pid/);

    // Adopted services are still supervised: a death is noticed and the
    // policy applies; a stop works.
    const c0 = coords[1];
    process.kill(want.get(c0).pid, 'SIGKILL');
    const back = await waitSvc(d, c0, (x) => isRunning(x) && x.pid !== want.get(c0).pid, 'back after a kill');
    assert.equal(back.restarts, want.get(c0).restarts + 1);
    assert.equal(history(d, c0).at(-1).reason, 'restart');
    const c2 = coords[2];
    assert.equal((await post(d, c2, 'stop')).status, 200);
    const st = await waitSvc(d, c2, (x) => x.state === 'stopped', 'stopped');
    assert.equal(st.pid, null);
    assert.equal(alive(want.get(c2).pid), false);

    // A clean stop of nodee leaves them running, too, and they are adopted again.
    const pids = new Map((await d.req({ path: '/api/v1/services' })).json.services.map((s) => [s.coordinate, s.pid]));
    await stopClean(d);
    const adopted = q(prefix, "select count(*) n from service_runs where reason = 'adopted'")[0].n;
    d = await startDaemon(prefix);
    await waitFor(() => q(d, "select count(*) n from service_runs where reason = 'adopted'")[0].n === adopted + 19,
      '19 adoptions after a clean stop');
    for (const s of (await d.req({ path: '/api/v1/services' })).json.services) {
      if (s.coordinate === c2) {
        assert.equal(s.state, 'stopped', 'a stopped service stays stopped');
      } else {
        assert.equal(s.pid, pids.get(s.coordinate));
        assert.equal(s.state, 'running');
      }
    }
    await removeAll(d);
    await stopClean(d);
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
  }
});

test('a stop the killed nodee began goes on under the next one (SIGKILL after the timeout)', async () => {
  const prefix = newPrefix();
  let d = await startDaemon(prefix);
  try {
    await installArtifact(d, GAV);
    const c = '1.stopkill.tst.cell';
    const s = await putRunning(d, c, { artifact: GAV, command: 'bin/stubborn', stop: { timeout_s: 2 } });
    await waitFile(path.join(rundir(prefix, c), 'ready'));
    const r = await post(d, c, 'stop');
    assert.equal(r.json.state, 'stopping');
    await d.stop('SIGKILL');
    assert.ok(alive(s.pid), 'TERM is ignored');
    const t0 = Date.now();
    d = await startDaemon(prefix);
    const st = await waitSvc(d, c, (x) => x.state === 'stopped', 'stopped', 10000);
    assert.ok(Date.now() - t0 < 6000, 'within the stop timeout, not never');
    assert.equal(st.desired_state, 'stopped');
    assert.equal(st.pid, null);
    assert.equal(alive(s.pid), false);
    assert.deepEqual(history(d, c).map((x) => x.reason), ['api', 'adopted']);
    await sleep(300);
    assert.equal((await get(d, c)).json.state, 'stopped', 'not started again');
    await removeAll(d);
    await stopClean(d);
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
  }
});

test('logs are rotated by size (copy-truncate): the service keeps writing to the same file', async () => {
  const prefix = newPrefix();
  const d = await startDaemon(prefix, { env: { NODEE_LOG_MAX: '4096', NODEE_LOG_KEEP: '2', NODEE_LOG_CHECK_S: '1' } });
  try {
    await installArtifact(d, GAV);
    const c = '1.chatty.tst.cell';
    const dir = rundir(prefix, c);
    const s = await putRunning(d, c, { artifact: GAV, command: 'bin/chatty' });
    await waitFile(path.join(dir, 'ready'));
    // The rotation may come before or after `running` (a second after the
    // start): the copy tells that more than log_max was written.
    const old = await waitFile(path.join(dir, 'log/stdout.1'), /first-99-/, 12000);
    assert.ok(Buffer.byteLength(old) > 4096, `${Buffer.byteLength(old)} bytes rotated`);
    assert.match(old, /^first-0-/);
    assert.equal(old.split('\n').length, 101);
    fs.writeFileSync(path.join(dir, 'go'), '');
    await waitFile(path.join(dir, 'done'));
    const now = fs.readFileSync(path.join(dir, 'log/stdout'));
    assert.equal(now.toString(), 'after-rotation\n', 'appended at the start of the truncated file, no hole');
    assert.equal(s.pid, (await get(d, c)).json.pid);
    await removeAll(d);
    await stopClean(d);
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
  }
});

test('a process that is the service but was never recorded (nodee died between fork and record) is adopted, not doubled', async () => {
  const prefix = newPrefix();
  let d = await startDaemon(prefix);
  try {
    await installArtifact(d, GAV);
    const c = '1.unrecorded.tst.cell';
    const s = await putRunning(d, c, { artifact: GAV });
    await d.stop('SIGKILL');
    // What the store holds if nodee died right after fork().
    execFileSync('sqlite3', [db(prefix), `update services set pid = NULL, proc_start = NULL where coordinate = '${c}'`]);
    // An operator's process in the same directory, without the session
    // or the coordinate, must not be taken for it.
    const shell = spawn('sleep', ['1000'], { cwd: rundir(prefix, c), stdio: 'ignore' });
    strays.add(shell);
    d = await startDaemon(prefix);
    const s2 = await waitSvc(d, c, isRunning, 'running');
    assert.equal(s2.pid, s.pid, 'the same process, adopted');
    assert.deepEqual(serviceGroups(prefix), [s.pid], 'one process, not two');
    assert.equal(events(d, c, 'service.adopted').length, 1);
    assert.ok(alive(shell.pid));
    shell.kill('SIGKILL');
    strays.delete(shell);
    await removeAll(d);
    await stopClean(d);
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
  }
});

test('a reused pid (an unrelated process with the recorded pid) is not adopted: the service starts anew', async () => {
  const prefix = newPrefix();
  let d = await startDaemon(prefix);
  let other;
  try {
    await installArtifact(d, GAV);
    const c = '1.reused.tst.cell';
    const s = await putRunning(d, c, { artifact: GAV });
    await d.stop('SIGKILL');
    process.kill(-s.pid, 'SIGKILL');
    await waitFor(() => !alive(s.pid), 'the service dead');
    other = spawn('sleep', ['1000'], { stdio: 'ignore' });
    strays.add(other);
    await waitFor(() => alive(other.pid), 'the unrelated process');
    execFileSync('sqlite3', [db(prefix), `update services set pid = ${other.pid} where coordinate = '${c}'`]);
    d = await startDaemon(prefix);
    const s2 = await waitSvc(d, c, (x) => isRunning(x) && x.pid !== other.pid, 'started anew');
    assert.notEqual(s2.pid, s.pid);
    assert.notEqual(s2.pid, other.pid);
    await sleep(200);
    assert.ok(alive(other.pid), 'the unrelated process is left alone');
    assert.equal(other.exitCode, null);
    assert.equal(other.signalCode, null);
    const h = history(d, c);
    assert.deepEqual(h.map((x) => x.reason), ['api', 'boot']);
    assert.equal(h[1].pid, s2.pid);
    assert.equal(events(d, c, 'service.adopted').length, 0);
    assert.deepEqual(serviceGroups(prefix), [s2.pid]);
    await removeAll(d);
    assert.ok(alive(other.pid), 'still left alone after the service is deleted');
    await stopClean(d);
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
    if (other) { other.kill('SIGKILL'); strays.delete(other); }
  }
});

test('after a reboot (nodee and all services gone): desired running come back, stopped stay stopped', async () => {
  const prefix = newPrefix();
  let d = await startDaemon(prefix);
  try {
    await installArtifact(d, GAV);
    const a = '1.boota.tst.cell';
    const b = '1.bootb.tst.cell';
    const stopped = '1.bootc.tst.cell';
    const sa = await putRunning(d, a, { artifact: GAV, args: ['boot-a'] });
    const sb = await putRunning(d, b, { artifact: GAV, command: 'bin/cprog', args: ['boot-b'] });
    await putRunning(d, stopped, { artifact: GAV });
    await post(d, stopped, 'stop');
    await waitSvc(d, stopped, (x) => x.state === 'stopped', 'stopped');
    // One that gave up stays failed until someone starts it, reboot or not.
    const gaveUp = '1.bootd.tst.cell';
    const rg = await put(d, gaveUp, { artifact: GAV, command: 'bin/crash', start: { min_uptime_ms: 0 },
      restart: { delay_ms: 10, max_restarts: 1, period_s: 60 } });
    assert.equal(rg.status, 201, rg.text);
    await waitSvc(d, gaveUp, (x) => x.state === 'failed', 'failed', 30000);
    const gaveUpRuns = history(d, gaveUp).length;
    await d.stop('SIGKILL');
    for (const pid of [sa.pid, sb.pid]) process.kill(-pid, 'SIGKILL');
    await waitFor(() => !alive(sa.pid) && !alive(sb.pid), 'all services dead');
    assert.deepEqual(serviceGroups(prefix), []);

    d = await startDaemon(prefix);
    // The store still says running with the old pids until the supervisor
    // has loaded: wait for the new incarnations.
    const [na, nb] = await Promise.all([
      waitSvc(d, a, (x) => isRunning(x) && x.pid !== sa.pid, 'back'),
      waitSvc(d, b, (x) => isRunning(x) && x.pid !== sb.pid, 'back')]);
    assert.notEqual(na.pid, sa.pid);
    assert.notEqual(nb.pid, sb.pid);
    assert.equal(na.restarts, sa.restarts);
    assert.deepEqual(history(d, a).map((x) => x.reason), ['api', 'boot']);
    assert.deepEqual(history(d, b).map((x) => x.reason), ['api', 'boot']);
    assert.equal(history(d, a)[0].exit, 'unknown', 'it died while no nodee watched');
    await waitFile(path.join(rundir(prefix, b), 'log/stdout'), /cprog argv\[1\]=<boot-b>[\s\S]*cprog argv\[1\]=<boot-b>/);
    await sleep(300);
    const c = (await get(d, stopped)).json;
    assert.equal(c.state, 'stopped');
    assert.equal(c.desired_state, 'stopped');
    assert.equal(c.pid, null);
    assert.deepEqual(history(d, stopped).map((x) => x.reason), ['api']);
    const g = (await get(d, gaveUp)).json;
    assert.equal(g.state, 'failed');
    assert.match(g.reason, /gave up/);
    assert.equal(history(d, gaveUp).length, gaveUpRuns, 'not started again by the daemon start');
    assert.deepEqual(serviceGroups(prefix), sorted([na.pid, nb.pid]));
    await removeAll(d);
    await stopClean(d);
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
  }
});
