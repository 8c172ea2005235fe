#!/usr/bin/env python3
"""Writes the zip seeds of corpus/unzip/: small honest archives and the
hostile ones unzip.c must refuse, byte by byte where zipfile would not
write them.  Deterministic; run again after a change:
  python3 tests/fuzz/mkzips.py tests/fuzz/corpus/unzip
"""
import os
import struct
import sys
import zlib

UNIX = 3 << 8 | 20          # "version made by": unix, 2.0
S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR = 0o100000, 0o040000, 0o120000, 0o020000


def ent(name, data=b'', mode=None, **kw):
    """An entry: name (bytes or str), data, unix mode; kw overrides
    method, flags, crc, usize, csize, offset (of another entry, by index),
    extra."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(data, str):
        data = data.encode()
    if mode is None:
        mode = S_IFDIR | 0o755 if name.endswith(b'/') else S_IFREG | 0o644
    return dict(name=name, data=data, mode=mode, **kw)


def build(entries, eocds=1, zip64=False):
    out, cdir, offs = b'', b'', []
    for e in entries:
        method = e.get('method', 0)
        body = e['data']
        if method == 8:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            body = c.compress(body) + c.flush()
        crc = e.get('crc', zlib.crc32(e['data']))
        usize = e.get('usize', len(e['data']))
        csize = e.get('csize', len(body))
        flags = e.get('flags', 0)
        extra = e.get('extra', b'')
        if 'offset' in e:
            offs.append(offs[e['offset']])
        else:
            offs.append(len(out))
            out += struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, flags, method,
                               0, 0x21, crc, csize, usize, len(e['name']),
                               len(extra)) + e['name'] + extra + body
        off = offs[-1]
        if zip64:
            extra = struct.pack('<HHQ', 1, 8, off)
            off = 0xffffffff
        cdir += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, UNIX, 20,
                            flags, method, 0, 0x21, crc, csize, usize,
                            len(e['name']), len(extra), 0, 0, 0,
                            e['mode'] << 16, off) + e['name'] + extra
    cdoff = len(out)
    out += cdir
    n = len(entries)
    end = b''
    if zip64:
        end64 = len(out)
        end += struct.pack('<IQHHIIQQQQ', 0x06064b50, 44, UNIX, 45, 0, 0,
                           n, n, len(cdir), cdoff)
        end += struct.pack('<IIQI', 0x07064b50, 0, end64, 1)
    eocd = struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, n, n, len(cdir),
                       cdoff, 0)
    if eocds == 2:
        # a second record inside the comment of the first
        return out + end + eocd[:-2] + struct.pack('<H', 22) + eocd
    return out + end + eocd


SEEDS = {
    'good': [ent('a.txt', 'a\n'), ent('dir/'), ent('dir/b.txt', 'b\n'),
             ent('bin/run', '#!/bin/sh\necho run\n', S_IFREG | 0o755),
             ent('link', 'dir/b.txt', S_IFLNK | 0o777)],
    'good-deflate': [ent('www/index.html', '<p>hello</p>\n' * 40, method=8),
                     ent('www/up', '../www', S_IFLNK | 0o777)],
    'good-zip64': ([ent('x/y.txt', 'y\n')], 'zip64'),
    'empty': [],
    'dotdot': [ent('../evil.txt', 'x')],
    'dotdot-inside': [ent('a/../../evil.txt', 'x')],
    'absolute': [ent('/tmp/nodee-evil', 'x')],
    'backslash': [ent('..\\evil.txt', 'x')],
    'drive': [ent('C:evil.txt', 'x')],
    'nul-name': [ent(b'a\x00b', 'x')],
    'control-name': [ent('a\x1bb', 'x')],
    'dot-component': [ent('a/./b', 'x')],
    'duplicate': [ent('a', '1'), ent('a', '2')],
    'duplicate-dir': [ent('a'), ent('a/')],
    'file-dir-clash': [ent('a', 'x'), ent('a/b', 'y')],
    'overlap': [ent('a', 'x' * 64), ent('b', 'x' * 64, offset=0)],
    'symlink-out': [ent('l', '../x', S_IFLNK | 0o777)],
    'symlink-absolute': [ent('l', '/etc/passwd', S_IFLNK | 0o777)],
    'symlink-chain': [ent('d/'), ent('d/up', '..', S_IFLNK | 0o777),
                      ent('e', 'd/up/..', S_IFLNK | 0o777)],
    'symlink-loop': [ent('a', 'b/x', S_IFLNK | 0o777),
                     ent('b', 'a/x', S_IFLNK | 0o777)],
    'symlink-write-through': [ent('l', 'd', S_IFLNK | 0o777), ent('d/'),
                              ent('l/x', 'x')],
    'symlink-dir-name': [ent('l/', 'x', S_IFLNK | 0o777)],
    'device': [ent('dev', '', S_IFCHR | 0o644)],
    'setuid': [ent('s', 'x', S_IFREG | 0o4777)],
    'bad-crc': [ent('a', 'hello', crc=0x12345678)],
    'size-lies': [ent('a', 'hello', usize=1)],
    'size-short': [ent('a', 'hello', usize=9)],
    'size-huge': [ent('a', 'x', usize=0xfffffff0, method=8)],
    'encrypted': [ent('a', 'x', flags=1)],
    'two-eocd': ([ent('a', 'x')], 'two'),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'corpus/unzip'
    os.makedirs(out, exist_ok=True)
    for name, spec in SEEDS.items():
        how = None
        if isinstance(spec, tuple):
            spec, how = spec
        data = build(spec, eocds=2 if how == 'two' else 1,
                     zip64=how == 'zip64')
        with open(os.path.join(out, name + '.zip'), 'wb') as f:
            f.write(data)
    # Not a zip at all, and one cut short.
    with open(os.path.join(out, 'not-zip'), 'wb') as f:
        f.write(b'hello, not a zip\n')
    with open(os.path.join(out, 'truncated.zip'), 'wb') as f:
        f.write(build(SEEDS['good'])[:-30])


if __name__ == '__main__':
    main()
