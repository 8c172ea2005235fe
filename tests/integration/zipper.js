// A small ZIP writer for tests: it makes well-formed archives and, on
// purpose, the malformed and hostile ones no ordinary tool would write
// (path tricks, symlinks out of the tree, duplicates, overlapping entries,
// wrong CRCs and sizes).  Test tooling only; nodee itself reads archives
// with libzip.
'use strict';

const zlib = require('node:zlib');

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// entries: [{ name, data, mode, symlink, dir, deflate, os, crc, size }]
//   name   string or Buffer (a Buffer can carry a NUL)
//   mode   unix mode bits (default 0644 files, 0755 dirs)
//   os     'unix' (default) or 'dos' (no unix mode)
//   crc, size: override the recorded CRC or uncompressed size
// opts.overlap: [[i, j], ...] make central entry j point at entry i's data
function makeZip(entries, opts = {}) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  const offsets = [];
  entries.forEach((e) => {
    const name = Buffer.isBuffer(e.name) ? e.name : Buffer.from(e.name, 'utf8');
    let data = e.symlink !== undefined ? Buffer.from(e.symlink) : Buffer.from(e.data || '');
    const raw = data;
    const method = e.deflate ? 8 : 0;
    if (e.deflate) data = zlib.deflateRawSync(raw);
    const crc = e.crc !== undefined ? e.crc : crc32(raw);
    const usize = e.size !== undefined ? e.size : raw.length;
    let mode;
    if (e.symlink !== undefined) mode = 0o120000 | 0o777;
    else if (e.dir) mode = 0o040000 | (e.mode !== undefined ? e.mode : 0o755);
    else mode = 0o100000 | (e.mode !== undefined ? e.mode : 0o644);
    const unix = (e.os || 'unix') === 'unix';

    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0x0800, 6); // UTF-8 names
    lh.writeUInt16LE(method, 8);
    lh.writeUInt16LE(0, 10);
    lh.writeUInt16LE(0x21, 12);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(data.length, 18);
    lh.writeUInt32LE(usize, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(0, 28);
    offsets.push(offset);
    locals.push(lh, name, data);
    offset += lh.length + name.length + data.length;

    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(unix ? (3 << 8) | 20 : 20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0x0800, 8);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt16LE(0, 12);
    ch.writeUInt16LE(0x21, 14);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(data.length, 20);
    ch.writeUInt32LE(usize, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt16LE(0, 30);
    ch.writeUInt16LE(0, 32);
    ch.writeUInt16LE(0, 34);
    ch.writeUInt16LE(0, 36);
    ch.writeUInt32LE(unix ? ((mode << 16) >>> 0) : (e.dir ? 0x10 : 0), 38);
    ch.writeUInt32LE(0, 42); // offset, patched below
    centrals.push({ ch, name });
  });
  (opts.overlap || []).forEach(([i, j]) => { offsets[j] = offsets[i]; });
  const cdParts = [];
  centrals.forEach(({ ch, name }, i) => {
    ch.writeUInt32LE(offsets[i], 42);
    cdParts.push(ch, name);
  });
  const cd = Buffer.concat(cdParts);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

module.exports = { makeZip, crc32 };
