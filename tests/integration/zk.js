// Real ZooKeeper servers for the registry tests and benchmark: Debian's
// zookeeper package, started here on free loopback ports with a temporary
// zoo.cfg (see ../../../shared/DEPENDENCIES.md), stopped by pid.  One
// server, or a three-server ensemble.  Also a tiny C client (zkcli.c,
// compiled on first use) to read, watch and expire sessions, and zkCli.sh
// for reading a node the way an operator would.
'use strict';

const { spawn, execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { freePort, sleep, tmpdir } = require('./lib');

const CLASSPATH = ['/usr/share/java/zookeeper.jar', '/usr/share/java/slf4j-log4j12.jar',
  '/usr/share/java/log4j-1.2.jar'].join(':');
const ZKCLI_SH = '/usr/share/zookeeper/bin/zkCli.sh';
const servers = new Set();

process.on('exit', () => {
  for (const s of servers) s.killNow();
});

// Sends a four-letter command; resolves with the answer ('' on failure).
// A probe during start-up can hang, hence the timeout.
function fourLetter(port, cmd, timeoutMs = 1000) {
  return new Promise((resolve) => {
    let out = '';
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = () => { sock.destroy(); resolve(out); };
    sock.setTimeout(timeoutMs, done);
    sock.on('connect', () => sock.write(cmd));
    sock.on('data', (d) => { out += d; });
    sock.on('end', done);
    sock.on('error', done);
  });
}

class Server {
  // opts: { dir, port, id, peers (server.N lines) }
  constructor(opts) {
    Object.assign(this, opts);
    this.proc = null;
    this.hosts = `127.0.0.1:${this.port}`;
    fs.mkdirSync(path.join(this.dir, 'data'), { recursive: true });
    const cfg = [
      'tickTime=500',
      'initLimit=10',
      'syncLimit=5',
      `dataDir=${path.join(this.dir, 'data')}`,
      `clientPort=${this.port}`,
      'clientPortAddress=127.0.0.1',
      'maxClientCnxns=0',
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok,srvr,stat,mntr',
      ...(this.peers || []),
    ];
    fs.writeFileSync(path.join(this.dir, 'zoo.cfg'), `${cfg.join('\n')}\n`);
    if (this.id) fs.writeFileSync(path.join(this.dir, 'data', 'myid'), `${this.id}\n`);
  }

  // Starts the JVM; resolves once it serves (alone) or has launched (in
  // an ensemble, which serves only once a quorum is up).
  async start(waitServing = true) {
    const out = fs.openSync(path.join(this.dir, 'zk.out'), 'a');
    const main = this.peers ? 'org.apache.zookeeper.server.quorum.QuorumPeerMain'
      : 'org.apache.zookeeper.server.ZooKeeperServerMain';
    this.proc = spawn('java', ['-Xmx256m', `-Dzookeeper.log.dir=${this.dir}`,
      '-Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties',
      '-Dzookeeper.root.logger=INFO,CONSOLE', '-cp', CLASSPATH, main,
      path.join(this.dir, 'zoo.cfg')], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    servers.add(this);
    const p = this.proc;
    this.exited = new Promise((resolve) => p.on('exit', () => {
      if (this.proc === p) this.proc = null;
      resolve();
    }));
    if (waitServing) await this.waitServing();
  }

  async waitServing(timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.proc) throw new Error(`ZooKeeper on ${this.port} died:\n${this.log()}`);
      if (/Mode: /.test(await fourLetter(this.port, 'srvr'))) return;
      if (Date.now() > deadline) throw new Error(`ZooKeeper on ${this.port} is not serving:\n${this.log()}`);
      await sleep(50);
    }
  }

  async mode() {
    const m = (await fourLetter(this.port, 'srvr')).match(/Mode: (\w+)/);
    return m ? m[1] : null;
  }

  log() {
    try {
      return fs.readFileSync(path.join(this.dir, 'zk.out'), 'utf8').split('\n').slice(-20).join('\n');
    } catch (_) { return ''; }
  }

  // SIGTERM (or sig), then SIGKILL after 10 s; resolves when it is gone.
  async stop(sig = 'SIGTERM') {
    if (!this.proc) return;
    const p = this.proc;
    p.kill(sig);
    const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch (_) { /* gone */ } }, 10000);
    await this.exited;
    clearTimeout(t);
    servers.delete(this);
  }

  killNow() {
    if (this.proc) {
      try { this.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
    }
  }

  remove() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// A single server on a free loopback port (or the given one).
async function startZooKeeper(opts = {}) {
  const s = new Server({ dir: opts.dir || tmpdir('zk'), port: opts.port || await freePort() });
  if (opts.start !== false) await s.start();
  return s;
}

// A three-server ensemble on loopback; resolves when all three serve.
async function startEnsemble(n = 3) {
  const ports = [];
  for (let i = 0; i < n * 3; i++) ports.push(await freePort());
  const peers = [];
  for (let i = 1; i <= n; i++) {
    peers.push(`server.${i}=127.0.0.1:${ports[n + 2 * (i - 1)]}:${ports[n + 2 * (i - 1) + 1]}`);
  }
  const members = [];
  for (let i = 1; i <= n; i++) {
    members.push(new Server({ dir: tmpdir(`zk${i}`), port: ports[i - 1], id: i, peers }));
  }
  await Promise.all(members.map((m) => m.start(false)));
  await Promise.all(members.map((m) => m.waitServing(60000)));
  return {
    members,
    hosts: members.map((m) => m.hosts).join(','),
    async leader() {
      for (const m of members) if (m.proc && await m.mode() === 'leader') return m;
      return null;
    },
    async stop() {
      await Promise.all(members.map((m) => m.stop()));
      members.forEach((m) => m.remove());
    },
  };
}

// --------------------------------------------------------------- clients

let zkcliPath;

// Compiles zkcli.c once per test process.
function zkcli() {
  if (!zkcliPath) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodee-zkcli-'));
    zkcliPath = path.join(dir, 'zkcli');
    execFileSync('cc', ['-O2', '-Wall', '-DTHREADED', '-o', zkcliPath,
      path.join(__dirname, 'zkcli.c'), '-lzookeeper_mt']);
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return zkcliPath;
}

// "{meta}\t<data>" -> { t, exists, owner, version, ..., raw, data }
function parseLine(line) {
  const tab = line.indexOf('\t');
  const meta = JSON.parse(tab >= 0 ? line.slice(0, tab) : line);
  if (meta.exists) {
    meta.raw = line.slice(tab + 1);
    try { meta.data = JSON.parse(meta.raw); } catch (_) { meta.data = undefined; }
  }
  return meta;
}

function run(args, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    execFile(zkcli(), args, { timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`zkcli ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

// The node as ZooKeeper has it now.
async function zkGet(hosts, p) {
  return parseLine((await run(['get', hosts, p])).trimEnd());
}

// Forces the expiry of the session in file (NODEE_DEBUG_ZK_SESSION_FILE)
// that owns the ephemeral node p; resolves with { t (ms, the close that
// ended it), expired (session id), tries }.
async function zkExpire(hosts, file, p) {
  return JSON.parse((await run(['expire', hosts, file, p], 60000)).trim());
}

// Watches one node: every change becomes an entry of .events.
class ZkWatch {
  constructor(hosts, p) {
    this.events = [];
    this.waiters = [];
    this.proc = spawn(zkcli(), ['watch', hosts, p], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.stderr = '';
    let buf = '';
    this.proc.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const e = parseLine(line);
        e.seen = Date.now();
        this.events.push(e);
        this.waiters = this.waiters.filter((w) => !w(e));
      }
    });
    this.proc.stderr.on('data', (d) => { this.stderr += d; });
  }

  // Resolves with the first event (from index `from`) that matches pred.
  waitFor(pred, what, timeoutMs = 15000, from = 0) {
    const hit = this.events.slice(from).find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`watch: timed out waiting for ${what}; last: ${
        JSON.stringify(this.events.slice(-2).map((e) => ({ ...e, raw: undefined })))} ${this.stderr}`)), timeoutMs);
      this.waiters.push((e) => {
        if (!pred(e)) return false;
        clearTimeout(t);
        resolve(e);
        return true;
      });
    });
  }

  close() {
    this.proc.stdin.end();
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null) resolve();
      else this.proc.on('exit', resolve);
    });
  }
}

// zkCli.sh get, as an operator would run it: the node's data (the line
// that is JSON), or null.
function zkCliGet(port, p) {
  const out = execFileSync(ZKCLI_SH, ['-server', `127.0.0.1:${port}`, 'get', p],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 });
  const line = out.split('\n').find((l) => l.startsWith('{'));
  return line ? JSON.parse(line) : null;
}

module.exports = {
  startZooKeeper, startEnsemble, fourLetter, zkcli, zkGet, zkExpire, ZkWatch, zkCliGet,
};
