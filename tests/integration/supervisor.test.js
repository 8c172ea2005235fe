// The supervisor's security and robustness holes, each reproduced against
// the real daemon (as root, as in CI: services run as dynamic uids in a
// private mount namespace):
//
//   a service that swaps log/ or a log file for a symlink, so that root
//   chowns, appends to or truncates a file of its choosing;
//   dynamic uids that two daemons (or a deleted service's leftovers) share,
//   so a purge kills another's processes;
//   a commit that fails on a full disk with the process already forked;
//   a root service remounting the software tree read-write;
//   a low soft fd limit that loses services at adoption; a low hard one
//   that leaves adopted processes without a pidfd, unnoticed when they die;
//   start failures shown as `running`, backoff without a reason;
//   a restart loop without a floor;
//   a prepare outcome lost across a daemon restart;
//   backoff jitter that is the same on every daemon.
//
// Test files run in parallel with each other (and perhaps with another
// `make test`): nothing here assumes it is alone on the machine; every wait
// is for a condition with a generous deadline, and something that must not
// happen is checked after an event that orders after it.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const {
  startNodee, sanitizerReport, sqlRows, sleep, tmpdir, waitFor, readIf, waitFile, procStat,
  serviceGroups, stopClean, db, q, esc, rundir, alive, procStart, killLeftovers,
  waitJob, installArtifact, svcGet: get, svcPut: put, isRunning,
  waitSvc: waitSvcLib,
} = require('./lib');
const { makeZip } = require('./zipper');
const { Depot, sha256 } = require('./depot');

const GAV = 'com.test:sup:1';
const UID_MIN = 70000;
const UID_MAX = 79999;

// ---------------------------------------------------------------- artifact

// One line of ~60 bytes, 100 times: more than log_max (4096).
const BATCH = 'batch() { i=0; while [ $i -lt 100 ]; do ' +
  'echo "$1-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done; }';

const SCRIPTS = {
  'bin/idle': '#!/bin/sh\nexec sleep 1000\n',
  'bin/crash': '#!/bin/sh\necho "crash $$"\nexit 1\n',
  // First run: replaces log/ with a symlink to $EVIL and fails; later
  // runs (if nodee starts one) sleep.
  'bin/loglink': `#!/bin/sh
if [ ! -e planted ]; then
  echo planted > planted
  rm -rf log || exit 3
  ln -s "$EVIL" log || exit 4
  exit 1
fi
echo "second run $$"
echo "second run $$" >&2
exec sleep 1000
`,
  // Replaces log/$LINK with a symlink to $VICTIM, then writes more than
  // log_max to the other stream, waits until that was rotated, and does
  // it again: the second rotation orders after every check of the first.
  'bin/rotlink': `#!/bin/sh
${BATCH}
if [ "$LINK" = stderr ]; then other=stdout; else other=stderr; fi
rm -f "log/$LINK" && ln -s "$VICTIM" "log/$LINK" || exit 3
echo planted > planted
if [ $other = stdout ]; then batch first; else batch first >&2; fi
while [ ! -e "log/$other.1" ]; do sleep 0.1; done
if [ $other = stdout ]; then batch second; else batch second >&2; fi
echo done > done
exec sleep 1000
`,
  // Leaves a process of its own session behind, its pid in escaped.pid.
  'bin/escape': `#!/bin/sh
setsid sh -c 'echo $$ > escaped.pid.tmp && mv escaped.pid.tmp escaped.pid && exec sleep 1000' </dev/null >/dev/null 2>&1 &
exec sleep 1000
`,
  // As root: tries to make the software tree writable and to write it.
  'bin/remount': `#!/bin/sh
mount -o remount,bind,rw "$SW" 2>>attempt.err; echo "remount=$?" > attempt.out
touch "$SW/evil-$NODEE_COORDINATE" 2>>attempt.err; echo "touch=$?" >> attempt.out
echo done >> attempt.out
exec sleep 1000
`,
  // Fails to start the way servers do: a message on stderr, exit 1.
  'bin/portfail': `#!/bin/sh
echo "booting"
echo "loading configuration" >&2
sleep 0.2
echo "error: port 8080 already in use" >&2
exit 1
`,
  'bin/ready': '#!/bin/sh\necho ready > ready\nexec sleep 1000\n',
};

function supZip() {
  return makeZip([
    { name: 'bin/', dir: true },
    ...Object.entries(SCRIPTS).map(([name, data]) => ({ name, data, mode: 0o755 })),
    { name: 'conf/', dir: true },
    { name: 'conf/app.properties', data: 'x=1\n' },
  ]);
}

// ------------------------------------------------------------------ helpers

const prefixes = new Set();
const strays = new Map(); // pid -> start time: processes services left behind
const mounts = new Set();

function newPrefix(parent) {
  const p = parent ? fs.mkdtempSync(path.join(parent, 'sup-')) : tmpdir('sup');
  fs.chmodSync(p, 0o755);
  prefixes.add(p);
  return p;
}

async function startDaemon(prefix, extra = {}) {
  return startNodee({ prefix, args: ['--depot', depot.url], ...extra });
}


const post = (d, c, op) => d.req({ method: 'POST', path: `/api/v1/services/${c}/${op}` });
const del = (d, c, purge) => d.req({ method: 'DELETE',
  path: `/api/v1/services/${c}${purge ? '?purge=true' : ''}` });
function logTail(d) {
  return d.stderr.split('\n').slice(-30).join('\n');
}

// The supervisor's tests wait longer: restarts back off.
const waitSvc = (d, coord, pred, what, timeoutMs = 30000) => waitSvcLib(d, coord, pred, what, timeoutMs);

function status(pid) {
  return readIf(`/proc/${pid}/status`) || '';
}

function uidOf(pid) {
  const m = status(pid).match(/^Uid:\s+(\d+)/m);
  return m ? Number(m[1]) : null;
}

// A SIGKILL sent to a process is pending (SigPnd or ShdPnd, bit 9) until
// it dies: a process alive without one pending was not killed.
function killPending(pid) {
  const st = status(pid);
  return ['SigPnd', 'ShdPnd'].some((k) => {
    const m = st.match(new RegExp(`^${k}:\\s+([0-9a-f]+)$`, 'm'));
    return m && (BigInt(`0x${m[1]}`) & 0x100n) !== 0n;
  });
}

// Alive, the same process (start time), and no SIGKILL on its way.
function untouched(pid, start) {
  return alive(pid) && procStart(pid) === start && !killPending(pid);
}

// Live processes of this prefix's service coord (by their environment).
function coordProcs(prefix, coord) {
  const out = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const env = readIf(`/proc/${e}/environ`);
    if (!env || !alive(Number(e))) continue;
    const vars = env.split('\0');
    if (vars.includes(`NODEE_COORDINATE=${coord}`) &&
      vars.some((x) => x.startsWith(`NODEE_RUNTIME_DIR=${prefix}/`))) out.push(Number(e));
  }
  return out.sort((a, b) => a - b);
}

function killStrays() {
  for (const [pid, start] of strays) {
    if (procStart(pid) === start) {
      try { process.kill(pid, 'SIGKILL'); } catch (_) { /* gone */ }
    }
    strays.delete(pid);
  }
}

function unmount(dir) {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch (_) {
    try { execFileSync('umount', ['-l', dir], { stdio: 'ignore' }); } catch (__) { /* not mounted */ }
  }
  mounts.delete(dir);
}

process.on('exit', () => {
  for (const p of prefixes) killLeftovers(p);
  killStrays();
  for (const m of [...mounts]) unmount(m);
});

// At most n of fn at a time over items.
async function pool(items, n, fn) {
  const out = [];
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

async function list(d) {
  const r = await d.req({ path: '/api/v1/services' });
  assert.equal(r.status, 200, r.text);
  return r.json.services;
}

// Deletes every service (purging), a few at a time, waits until they are
// gone and checks nothing of them still runs.
async function removeAll(d) {
  const all = await list(d);
  await pool(all, 8, (s) => del(d, s.coordinate, true));
  await waitFor(async () => (await list(d)).length === 0, 'every service deleted', 60000);
  await sleep(50);
  assert.deepEqual(killLeftovers(d.prefix), [], 'no service process outlives its DELETE');
}


function events(d, coord, kind) {
  return q(d, `select kind, detail from events where subject = '${esc(coord)}' and kind = '${esc(kind)}' order by id`);
}

function runs(d, coord) {
  return q(d, `select pid, reason, started_at from service_runs where coordinate = '${esc(coord)}' order by id`);
}

function prepareJobs(d, coord) {
  return q(d, `select id, state from jobs where kind = 'service.prepare' and subject = '${esc(coord)}' order by id`);
}

// A directory's owner, mode and entries (name, owner, mode, size, digest).
function snapshotDir(dir) {
  const st = fs.lstatSync(dir);
  const out = [`. ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${st.isDirectory() ? 'dir' : 'not a dir'}`];
  for (const name of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    const s = fs.lstatSync(p);
    out.push(`${name} ${s.uid}:${s.gid} ${(s.mode & 0o7777).toString(8)} ${s.size} ${
      s.isFile() ? sha256(fs.readFileSync(p)) : ''}`);
  }
  return out;
}

// A root-owned file of `size` random bytes, mode 0600, in a directory of
// its own outside every prefix: what a service must never reach.
function victimFile(size) {
  const dir = tmpdir('victim');
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, 'precious.bin');
  const data = crypto.randomBytes(size);
  fs.writeFileSync(file, data, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return { dir, file, size, digest: sha256(data) };
}

// ------------------------------------------------------------------- setup

let depot;
let D; // the shared daemon

test.before(async () => {
  depot = await new Depot().start();
  depot.put('com.test', 'sup', '1', supZip());
  D = await startDaemon(newPrefix());
  await installArtifact(D, GAV);
});

test.afterEach(async () => {
  if (D && !D.exited) await removeAll(D);
  killStrays();
});

test.after(async () => {
  try {
    if (D && !D.exited) {
      await removeAll(D);
      await stopClean(D);
    }
  } finally {
    for (const p of prefixes) killLeftovers(p);
    killStrays();
    if (depot) await depot.stop();
    for (const m of [...mounts]) unmount(m);
    for (const p of prefixes) fs.rmSync(p, { recursive: true, force: true });
  }
});

// -------------------------------------------------------------- log doors

test('log/ replaced by a symlink to a root directory: on the restart nodee neither chowns nor writes it; the service fails', async () => {
  const evil = tmpdir('evil');
  fs.chmodSync(evil, 0o755);
  fs.writeFileSync(path.join(evil, 'keep.txt'), 'root\'s own\n');
  try {
    const before = snapshotDir(evil);
    const c = '1.loglink.sup.cell';
    const r = await put(D, c, { artifact: GAV, command: 'bin/loglink', env: { EVIL: evil },
      restart: { policy: 'on-failure', delay_ms: 100 } });
    assert.equal(r.status, 201, r.text);
    // Settled: failed (fixed), or running again through the symlink.
    const s = await waitSvc(D, c, (x) => x.state === 'failed' || (isRunning(x) && x.restarts >= 1),
      'failed, or restarted through the symlink', 60000);
    assert.ok(fs.lstatSync(path.join(rundir(D.prefix, c), 'log')).isSymbolicLink(), 'the service planted its link');
    assert.deepEqual(snapshotDir(evil), before,
      'the directory the link points to: same owner, mode and contents (no stdout/stderr)');
    assert.equal(s.state, 'failed', JSON.stringify(s));
    assert.equal(s.pid, null);
    assert.match(s.reason || '', /log\//, `reason: ${s.reason}`);
    assert.match(s.reason || '', /symbolic link/, `reason: ${s.reason}`);
  } finally {
    fs.rmSync(evil, { recursive: true, force: true });
  }
});

// Rotation with log_max 4096, checked every second: a service replaces
// log/<link> with a symlink to an 11 MB root file, then makes the other
// stream rotate twice.
async function rotationDoor(link) {
  const other = link === 'stderr' ? 'stdout' : 'stderr';
  const prefix = newPrefix();
  const victim = victimFile(11 * 1024 * 1024);
  const d = await startDaemon(prefix, { env: { NODEE_LOG_MAX: '4096', NODEE_LOG_CHECK_S: '1' } });
  try {
    await installArtifact(d, GAV);
    const c = `1.rot${link}.sup.cell`;
    const dir = rundir(prefix, c);
    const r = await put(d, c, { artifact: GAV, command: 'bin/rotlink', env: { LINK: link, VICTIM: victim.file } });
    assert.equal(r.status, 201, r.text);
    await waitFile(path.join(dir, 'planted'), /planted/, 30000);
    // A rotation of this service after the link was planted...
    await waitFor(() => fs.existsSync(path.join(dir, `log/${other}.1`)), `log/${other}.1`, 30000);
    // ...and one after it, so that every check the first one made is over
    // (or the service was stopped for its link).
    let last;
    await waitFor(async () => {
      if (fs.existsSync(path.join(dir, `log/${other}.2`))) return true;
      last = (await get(d, c)).json;
      return last && !['running', 'starting'].includes(last.state);
    }, `log/${other}.2 (a second rotation), or the service stopped`, 30000);
    assert.ok(fs.lstatSync(path.join(dir, `log/${link}`)).isSymbolicLink(), 'the service planted its link');
    const st = fs.statSync(victim.file);
    assert.equal(st.size, victim.size, `the file log/${link} points to keeps its size`);
    assert.equal(sha256(fs.readFileSync(victim.file)), victim.digest, 'and its content');
    assert.equal(st.uid, 0);
    assert.equal(st.mode & 0o7777, 0o600);
    assert.deepEqual(fs.readdirSync(victim.dir), ['precious.bin'], 'nothing added beside it');
    await removeAll(d);
    await stopClean(d);
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
    fs.rmSync(victim.dir, { recursive: true, force: true });
  }
}

test('rotation: log/stderr replaced by a symlink to an 11 MB root file; rotations leave that file alone', async () => {
  await rotationDoor('stderr');
});

test('rotation: log/stdout replaced by a symlink to an 11 MB root file; rotations leave that file alone', async () => {
  await rotationDoor('stdout');
});

// ------------------------------------------------------------ dynamic uids

test('two daemons on one machine: different dynamic uids; a purge in one never kills the other\'s service', async () => {
  const pa = newPrefix();
  const pb = newPrefix();
  const [a, b] = await Promise.all([startDaemon(pa), startDaemon(pb)]);
  try {
    await Promise.all([installArtifact(a, GAV), installArtifact(b, GAV)]);
    const c = '1.twin.sup.cell';
    const [ra, rb] = await Promise.all([put(a, c, { artifact: GAV, command: 'bin/idle' }),
      put(b, c, { artifact: GAV, command: 'bin/idle' })]);
    assert.equal(ra.status, 201, ra.text);
    assert.equal(rb.status, 201, rb.text);
    const [sa, sb] = await Promise.all([waitSvc(a, c, isRunning, 'running'), waitSvc(b, c, isRunning, 'running')]);
    const startB = procStart(sb.pid);
    assert.equal(uidOf(sa.pid), sa.uid);
    assert.equal(uidOf(sb.pid), sb.uid);

    const r = await del(a, c, true);
    assert.equal(r.status, 200, r.text);
    await waitFor(async () => (await get(a, c)).status === 404, 'deleted in a');
    // The purge is over once the runtime dir is gone: whatever it killed
    // is dead or has its SIGKILL pending by now.
    await waitFor(() => !fs.existsSync(rundir(pa, c)), 'purged in a');
    assert.equal(alive(sa.pid), false);
    assert.ok(untouched(sb.pid, startB), `b's service (pid ${sb.pid}, uid ${sb.uid}) survives a's purge (a's uid ${sa.uid})`);
    const sb2 = (await get(b, c)).json;
    assert.equal(sb2.pid, sb.pid);
    assert.equal(sb2.restarts, 0);
    assert.notEqual(sa.uid, sb.uid, 'two daemons never hand out the same dynamic uid');
    for (const s of [sa, sb]) assert.ok(s.uid >= UID_MIN && s.uid <= UID_MAX, `dynamic uid ${s.uid} in ${UID_MIN}-${UID_MAX}`);
    await removeAll(b);
    await removeAll(a);
    await Promise.all([stopClean(a), stopClean(b)]);
  } finally {
    for (const d of [a, b]) if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(pa);
    killLeftovers(pb);
  }
});

test('a deleted service\'s escaped process keeps its uid: a new service does not get that uid', async () => {
  const c = '1.escape.sup.cell';
  const dir = rundir(D.prefix, c);
  const r = await put(D, c, { artifact: GAV, command: 'bin/escape' });
  assert.equal(r.status, 201, r.text);
  const s = await waitSvc(D, c, isRunning, 'running');
  const esc1 = Number(await waitFile(path.join(dir, 'escaped.pid'), /^\d+\n$/));
  await waitFor(() => uidOf(esc1) === s.uid, 'the escaped process runs as the service\'s uid');
  strays.set(esc1, procStart(esc1));
  assert.notEqual(Number(procStat(esc1)[3]), s.pid, 'a session of its own');

  const d1 = await del(D, c, false);
  assert.equal(d1.status, 200, d1.text);
  await waitFor(async () => (await get(D, c)).status === 404, `${c} deleted`);
  assert.equal(alive(s.pid), false);
  assert.ok(untouched(esc1, strays.get(esc1)), 'the escaped process outlives a delete without purge');
  assert.equal(uidOf(esc1), s.uid);

  const c2 = '1.after.sup.cell';
  const r2 = await put(D, c2, { artifact: GAV, command: 'bin/idle' });
  assert.equal(r2.status, 201, r2.text);
  const s2 = await waitSvc(D, c2, (x) => x.pid > 0 && ['starting', 'running'].includes(x.state), 'a process');
  const u2 = uidOf(s2.pid);
  assert.equal(u2, s2.uid, 'the API shows the uid the process has');
  assert.notEqual(u2, s.uid, `uid ${s.uid} still has a live process (pid ${esc1}): not handed out again`);
  assert.ok(u2 >= UID_MIN && u2 <= UID_MAX, `dynamic uid ${u2}`);
  // It belongs to no service any more: ended here, before the check that
  // no service process outlives its DELETE.
  killStrays();
  await waitFor(() => !alive(esc1), 'the escaped process ended');
});

// --------------------------------------------------------------- full disk

test('a PUT whose commit fails on a full disk: an error answer, no untracked process; after space returns it works and is adopted', async () => {
  const mnt = tmpdir('full');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0755', 'tmpfs', mnt]);
  mounts.add(mnt);
  const prefix = newPrefix(mnt);
  const filler = path.join(mnt, 'filler');
  let d = await startDaemon(prefix);
  try {
    await installArtifact(d, GAV);
    // Fill the file system up to its last byte.
    const fd = fs.openSync(filler, 'w');
    try {
      for (const size of [1 << 20, 4096, 1]) {
        const buf = Buffer.alloc(size, 0x78);
        for (;;) {
          try { fs.writeSync(fd, buf); } catch (e) {
            if (e.code !== 'ENOSPC') throw e;
            break;
          }
        }
      }
    } finally {
      fs.closeSync(fd);
    }
    const c = '1.full.sup.cell';
    const spec = { artifact: GAV, command: 'bin/idle' };
    const r = await put(d, c, spec);
    assert.equal(d.exited, null, `nodee exited on a full disk:\n${logTail(d)}`);
    const procs = coordProcs(prefix, c);
    const g = await get(d, c);
    assert.ok(![200, 201, 202].includes(r.status), `a PUT that could not be recorded must not succeed: ${r.status} ${r.text}`);
    assert.deepEqual(procs, [], `no process of the refused service runs (answer ${r.status} ${r.text})`);
    assert.equal(r.status, 503, r.text);
    assert.match(r.headers['content-type'] || '', /^application\/problem\+json/);
    assert.match(r.json.detail, /full|space/i, 'the store\'s reason');
    // The store and the processes agree: no service, no process.
    assert.equal(g.status, 404, g.text);
    assert.deepEqual(coordProcs(prefix, c), []);

    fs.rmSync(filler);
    const r2 = await put(d, c, spec);
    assert.equal(r2.status, 201, r2.text);
    const s = await waitSvc(d, c, isRunning, 'running');
    assert.deepEqual(coordProcs(prefix, c), [s.pid], 'one process, the recorded one');
    await d.stop('SIGTERM');
    assert.ok(alive(s.pid), 'a daemon stop leaves services running');
    d = await startDaemon(prefix);
    const s2 = await waitSvc(d, c, isRunning, 'running after the restart');
    assert.equal(s2.pid, s.pid, 'adopted: the same pid');
    assert.equal(events(d, c, 'service.adopted').length, 1);
    assert.deepEqual(coordProcs(prefix, c), [s.pid]);
    await removeAll(d);
    await stopClean(d);
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
    fs.rmSync(filler, { force: true });
    fs.rmSync(prefix, { recursive: true, force: true });
    prefixes.delete(prefix);
    unmount(mnt);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------ root services

test('a root service cannot remount the software tree read-write nor write it', async () => {
  const c = '1.remount.sup.cell';
  const sw = path.join(D.prefix, 'software');
  const r = await put(D, c, { artifact: GAV, command: 'bin/remount', user: 'root', env: { SW: sw } });
  assert.equal(r.status, 201, r.text);
  const s = await waitSvc(D, c, (x) => x.pid > 0, 'a process');
  assert.equal(s.uid, 0);
  const out = await waitFile(path.join(rundir(D.prefix, c), 'attempt.out'), /^done$/m, 30000);
  const err = readIf(path.join(rundir(D.prefix, c), 'attempt.err'));
  assert.equal(fs.existsSync(path.join(sw, `evil-${c}`)), false, `a file appeared under software/:\n${out}${err}`);
  assert.match(out, /^remount=[1-9]\d*$/m, `the remount is refused:\n${out}${err}`);
  assert.match(out, /^touch=[1-9]\d*$/m, `${out}${err}`);
});

test('capabilities: a root service\'s bounding set is empty, or exactly what the spec names', async () => {
  const bnd = (pid) => {
    const m = status(pid).match(/^CapBnd:\s+([0-9a-f]+)$/m);
    return m ? BigInt(`0x${m[1]}`) : null;
  };
  const c1 = '1.nocaps.sup.cell';
  const r1 = await put(D, c1, { artifact: GAV, command: 'bin/idle', user: 'root' });
  assert.equal(r1.status, 201, r1.text);
  const s1 = await waitSvc(D, c1, (x) => x.pid > 0, 'a process');
  await waitFor(() => readIf(`/proc/${s1.pid}/cmdline`) === 'sleep\u00001000\u0000', 'the command exec\'d');
  assert.equal(bnd(s1.pid), 0n, `CapBnd of a root service without capabilities: ${bnd(s1.pid).toString(16)}`);

  const c2 = '1.caps.sup.cell';
  const r2 = await put(D, c2, { artifact: GAV, command: 'bin/idle', user: 'root', capabilities: ['NET_BIND_SERVICE'] });
  assert.equal(r2.status, 201, r2.text);
  assert.match(JSON.stringify(r2.json.spec.capabilities), /NET_BIND_SERVICE/, 'kept in the spec');
  const s2 = await waitSvc(D, c2, (x) => x.pid > 0, 'a process');
  await waitFor(() => readIf(`/proc/${s2.pid}/cmdline`) === 'sleep\u00001000\u0000', 'the command exec\'d');
  assert.equal(bnd(s2.pid), 0x400n, `CapBnd with NET_BIND_SERVICE: ${bnd(s2.pid).toString(16)}`);
});

// ---------------------------------------------------------------- fd limit

// A process's soft and hard RLIMIT_NOFILE, as /proc shows them.
function fdLimits(pid) {
  return readIf(`/proc/${pid}/limits`).match(/^Max open files\s+(\S+)\s+(\S+)/m).slice(1, 3);
}

// A daemon under `prlimit --nofile=<nofile>` gets n services of bin/idle
// (`<i>.<tag>.sup.cell`) and runs them all; it is killed with SIGKILL and
// another starts under the same limit, which must adopt every service as
// it was (the same process, no restart, adoptions only) with its soft fd
// limit raised to the hard one.  Then more(d, services) runs against that
// second daemon; at the end every service is purged and it stops cleanly.
async function adoptedUnderLimit(nofile, n, tag, more = async () => {}) {
  const wrap = ['prlimit', `--nofile=${nofile}`, '--'];
  const prefix = newPrefix();
  let d = await startDaemon(prefix, { wrap });
  try {
    await installArtifact(d, GAV);
    const coords = Array.from({ length: n }, (_, i) => `${i}.${tag}.sup.cell`);
    await pool(coords, 8, async (c) => {
      const r = await put(d, c, { artifact: GAV, command: 'bin/idle' });
      assert.equal(r.status, 201, r.text);
    });
    let last = [];
    await waitFor(async () => {
      last = await list(d);
      return last.length === n && last.every(isRunning);
    }, `${n} services running`, 180000).catch((e) => {
      e.message += `\nnot running: ${JSON.stringify(last.filter((s) => !isRunning(s)).slice(0, 5))}\n${logTail(d)}`;
      throw e;
    });
    const want = new Map(last.map((s) => [s.coordinate, { pid: s.pid, start: procStart(s.pid), restarts: s.restarts }]));
    const runs0 = q(d, 'select count(*) n from service_runs')[0].n;

    const ex = await d.stop('SIGKILL');
    assert.equal(ex.signal, 'SIGKILL');
    d = await startDaemon(prefix, { wrap });
    // Settled: nothing is starting any more.
    await waitFor(async () => {
      last = await list(d);
      return last.length === n && last.every((s) => !['starting', 'preparing'].includes(s.state));
    }, 'every service settled after the restart', 120000);
    const wrong = last.filter((s) => {
      const w = want.get(s.coordinate);
      return s.state !== 'running' || s.pid !== w.pid || s.restarts !== w.restarts || procStart(w.pid) !== w.start;
    });
    assert.deepEqual(wrong.map((s) => `${s.coordinate}: ${s.state} pid ${s.pid} ${s.reason || ''}`).slice(0, 10), [],
      `${wrong.length} of ${n} services not adopted as they were`);
    assert.equal(q(d, 'select count(*) n from service_runs')[0].n - runs0, n, 'adoptions only');
    assert.equal(q(d, "select count(*) n from service_runs where reason = 'adopted'")[0].n, n);
    const [soft, hard] = fdLimits(d.pid);
    assert.equal(soft, hard, 'nodee raised its soft fd limit to the hard one');
    await more(d, last);
    await removeAll(d);
    await stopClean(d);
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
  }
}

test('under a soft fd limit of 256, 300 services are all adopted after a kill -9 (nodee raises its soft limit)', async () => {
  const hard = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  await adoptedUnderLimit(`256:${hard}`, 300, 'fd');
});

test('under a hard fd limit of 420, 200 services are all adopted after a kill -9; those without a pidfd are polled and restarted when they die', async () => {
  await adoptedUnderLimit('420:420', 200, 'fdhard', async (d, services) => {
    assert.deepEqual(fdLimits(d.pid), ['420', '420'], 'the hard limit it was given');
    // Past the reserve of 256 descriptors, no pidfd: these are polled.
    const unwatched = [...d.stderr.matchAll(/(\S+): adopted pid (\d+) \(unwatched: no descriptor left; polled\)/g)]
      .map((x) => ({ coordinate: x[1], pid: Number(x[2]) }));
    assert.ok(unwatched.length >= 1, `no adoption logged as unwatched:\n${logTail(d)}`);
    const byCoord = new Map(services.map((s) => [s.coordinate, s]));
    for (const u of unwatched) assert.equal(byCoord.get(u.coordinate)?.pid, u.pid, `${u.coordinate} as logged`);
    const r = await d.req({ path: '/healthz' });
    assert.equal(r.status, 200, r.text);
    assert.equal((await list(d)).length, services.length, 'the API still answers');

    // One of them dies: only the poll can notice.
    const v = byCoord.get(unwatched.at(-1).coordinate);
    process.kill(-v.pid, 'SIGKILL');
    const s = await waitSvc(d, v.coordinate, (x) => isRunning(x) && x.pid !== v.pid, 'running again, a new process', 30000);
    assert.equal(s.restarts, v.restarts + 1, JSON.stringify(s));
    // Ordered after that restart: every other service still runs as it was.
    const others = (await list(d)).filter((x) => x.coordinate !== v.coordinate);
    const moved = others.filter((x) => {
      const w = byCoord.get(x.coordinate);
      return !isRunning(x) || x.pid !== w.pid || x.restarts !== w.restarts;
    });
    assert.deepEqual(moved.map((x) => `${x.coordinate}: ${x.state} pid ${x.pid}`), [], 'only the killed one restarted');
  });
});

// ----------------------------------------------------------- start failures

test('a start that fails within min_uptime_ms: starting, never running; backoff names the last stderr lines', async () => {
  const c = '1.portfail.sup.cell';
  const r = await put(D, c, { artifact: GAV, command: 'bin/portfail', restart: { delay_ms: 5000, max_delay_ms: 5000 } });
  assert.equal(r.status, 201, r.text);
  const g = await get(D, c);
  const seen = [r.json.state, g.json.state];
  const s = await waitSvc(D, c, (x) => {
    seen.push(x.state);
    return x.state === 'backoff' || x.state === 'failed';
  }, 'backoff', 30000);
  assert.equal(s.state, 'backoff', JSON.stringify(s));
  assert.notEqual(s.reason, null, `backoff with reason null: ${JSON.stringify(s)}`);
  assert.match(s.reason, /port 8080 already in use/);
  assert.equal(r.json.state, 'starting', 'the PUT answer');
  assert.equal(seen.includes('running'), false, `never shown running: ${seen.join(' ')}`);
});

test('a service that stays up: starting for min_uptime_ms (default 1000), then running', async () => {
  const c = '1.staysup.sup.cell';
  const r = await put(D, c, { artifact: GAV, command: 'bin/idle' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.state, 'starting', 'the PUT answer');
  assert.ok(r.json.pid > 0, r.text);
  assert.equal(r.json.spec.start && r.json.spec.start.min_uptime_ms, 1000, 'the default filled in');
  const s = await waitSvc(D, c, isRunning, 'running');
  assert.equal(s.pid, r.json.pid, 'the same process');
  assert.equal(s.restarts, 0);
});

test('start.min_uptime_ms 0: running at once', async () => {
  const c = '1.nouptime.sup.cell';
  const r = await put(D, c, { artifact: GAV, command: 'bin/idle', start: { min_uptime_ms: 0 } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.state, 'running', 'the PUT answer');
  assert.ok(r.json.pid > 0);
});

// ----------------------------------------------------------- restart floor

test('a restart floor: a command that exits at once with delay_ms 0 is started at most about once a second', async () => {
  const c = '1.floor.sup.cell';
  const r = await put(D, c, { artifact: GAV, command: 'bin/crash',
    restart: { policy: 'always', delay_ms: 0, max_restarts: 1000000, period_s: 60 } });
  assert.equal(r.status, 201, r.text);
  let rs;
  try {
    rs = await waitFor(() => { const x = runs(D, c); return x.length >= 5 ? x : null; }, 'five starts', 60000);
  } finally {
    await post(D, c, 'stop');
  }
  await waitSvc(D, c, (x) => x.state === 'stopped', 'stopped');
  const starts = rs.slice(0, 5).map((x) => x.started_at);
  const gaps = starts.slice(1).map((t, i) => t - starts[i]);
  assert.ok(gaps.every((x) => x >= 900), `gaps between starts (ms): ${gaps.join(', ')}`);
});

// --------------------------------------------------------- daemon restarts

test('a prepare job that succeeded while no supervisor listened: the next daemon starts the service without preparing again', async () => {
  const prefix = newPrefix();
  let d = await startDaemon(prefix);
  try {
    await installArtifact(d, GAV);
    const c = '1.prepared.sup.cell';
    const r = await put(d, c, { artifact: GAV, command: 'bin/ready', prepare: [{ copy: 'conf/', to: 'conf/' }] });
    assert.ok([201, 202].includes(r.status), r.text);
    const s = await waitSvc(d, c, isRunning, 'running');
    await waitFile(path.join(rundir(prefix, c), 'ready'));
    assert.equal(readIf(path.join(rundir(prefix, c), 'conf/app.properties')), 'x=1\n');
    const jobs0 = prepareJobs(d, c);
    const done = jobs0.filter((j) => j.state === 'succeeded').at(-1);
    assert.ok(done, JSON.stringify(jobs0));

    await d.stop('SIGTERM');
    process.kill(-s.pid, 'SIGKILL');
    await waitFor(() => !alive(s.pid), 'the service dead');
    // The store as a daemon leaves it when the job ends while no
    // supervisor listens: preparing, the job recorded, no process.
    execFileSync('sqlite3', [db(prefix), `update services set state = 'preparing', job_id = ${done.id}, ` +
      `pid = NULL, proc_start = NULL where coordinate = '${esc(c)}'`]);
    d = await startDaemon(prefix);
    const s2 = await waitSvc(d, c, (x) => isRunning(x) && x.pid !== s.pid, 'running again');
    assert.deepEqual(prepareJobs(d, c), jobs0, 'no new service.prepare job: the one that succeeded stands');
    assert.equal(s2.job, null);
    await removeAll(d);
    await stopClean(d);
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
  }
});

test('backoff jitter differs between two daemons', async () => {
  const pa = newPrefix();
  const pb = newPrefix();
  const [a, b] = await Promise.all([startDaemon(pa), startDaemon(pb)]);
  try {
    await Promise.all([installArtifact(a, GAV), installArtifact(b, GAV)]);
    const c = '1.jitter.sup.cell';
    const spec = { artifact: GAV, command: 'bin/crash',
      restart: { policy: 'always', delay_ms: 2000, max_delay_ms: 2000, max_restarts: 1000, period_s: 60 } };
    const rs = await Promise.all([put(a, c, spec), put(b, c, spec)]);
    rs.forEach((r) => assert.equal(r.status, 201, r.text));
    const delays = await Promise.all([a, b].map((d) => waitFor(() => {
      const e = events(d, c, 'service.backoff');
      return e.length >= 3 ? e.slice(0, 3).map((x) => JSON.parse(x.detail).delay_ms) : null;
    }, 'three backoffs', 60000)));
    for (const ds of delays) assert.ok(ds.every((x) => Number.isInteger(x) && x > 0), `delays: ${ds}`);
    assert.notDeepEqual(delays[0], delays[1], `two daemons, the same jitter: ${delays[0]} and ${delays[1]}`);
    await removeAll(a);
    await removeAll(b);
    await Promise.all([stopClean(a), stopClean(b)]);
  } finally {
    for (const d of [a, b]) if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(pa);
    killLeftovers(pb);
  }
});
