// A real HTTP depot for tests on a free loopback port: serves files from
// memory in the Maven layout nodee asks for, counts requests per path, and
// can misbehave on purpose (close the connection halfway, trickle slowly,
// answer 500).
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');

class Depot {
  constructor() {
    this.files = new Map(); // path -> Buffer
    this.behaviour = new Map(); // path -> 'close-halfway' | 'slow' | 'hang' | 500
    this.counts = new Map();
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.sockets = new Set();
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  start() {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port;
        this.url = `http://127.0.0.1:${this.port}`;
        resolve(this);
      });
    });
  }

  stop() {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  static zipPath(g, a, v) {
    return `/${g}/${a}/${v}/${a}-${v}.zip`;
  }

  // Puts an artifact in the depot; sidecar: 'sha256', 'sha1', or none.
  put(g, a, v, buf, sidecar) {
    const p = Depot.zipPath(g, a, v);
    this.files.set(p, buf);
    if (sidecar === 'sha256') {
      this.files.set(`${p}.sha256`, Buffer.from(`${sha256(buf)}  ${a}-${v}.zip\n`));
    } else if (sidecar === 'sha1') {
      this.files.set(`${p}.sha1`, Buffer.from(`${crypto.createHash('sha1').update(buf).digest('hex')}\n`));
    }
    return p;
  }

  count(p) {
    return this.counts.get(p) || 0;
  }

  handle(req, res) {
    const p = decodeURIComponent(req.url.split('?')[0]);
    this.counts.set(p, this.count(p) + 1);
    const b = this.behaviour.get(p);
    if (b === 'hang') return; // accept, never answer
    if (b === 500) {
      res.writeHead(500);
      res.end('broken');
      return;
    }
    const body = this.files.get(p);
    if (!body) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/zip', 'Content-Length': body.length });
    if (b === 'close-halfway') {
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      setTimeout(() => res.socket.destroy(), 20);
      return;
    }
    if (b === 'slow') {
      let off = 0;
      const tick = () => {
        if (res.destroyed || off >= body.length) { res.end(); return; }
        const n = Math.min(4096, body.length - off);
        res.write(body.subarray(off, off + n));
        off += n;
        setTimeout(tick, 50);
      };
      tick();
      return;
    }
    res.end(body);
  }
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

module.exports = { Depot, sha256 };
