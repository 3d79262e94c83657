"""Zip files with deflate spread over every core (pigz's way): the shapefile export's last step.

    write_zip(Path("out.zip"), [(Path("x.dbf"), "x.dbf"), ...])

A shapefile's .dbf is large and mostly padding; zipping it with one core took about 40% of the
time GDAL spent writing it. Each file is cut into pieces compressed at once in threads (zlib
releases the GIL); every piece but the last ends on a sync flush, so the pieces joined are one
valid deflate stream. Memory stays bounded by a few pieces in flight, whatever the file size.
Archives that would need ZIP64 (4 GiB and more) are written by `zipfile` instead, on one core.
"""

from __future__ import annotations

import struct
import time
import zipfile
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gridkit.io.export_follow import LEVEL, PIECE_BYTES, WORKERS, crc32_combine, deflate_piece

ZIP32_LIMIT = 0xF000_0000  # leaves room for deflate's worst-case growth under 4 GiB
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_UTF8_NAME = 0x800


def _dos_time(t: float) -> tuple[int, int]:
    y, mo, d, h, mi, s = time.localtime(t)[:6]
    return (h << 11) | (mi << 5) | (s // 2), ((max(y, 1980) - 1980) << 9) | (mo << 5) | d


def _deflate_file(src: Path, out, pool: ThreadPoolExecutor, piece_bytes: int, followed=None) -> tuple[int, int, int]:
    """Append `src` deflated to `out`; return (crc32, compressed size, size).

    With `followed` (`export_follow.Followed`), the part of `src` deflated while it was written is
    taken from its spool once its CRC is checked: only the header and the rest are deflated here."""
    size = src.stat().st_size
    with open(src, "rb") as fh:
        crc, written, done = 0, 0, 0
        if followed is not None and followed.usable and followed.end <= size:
            head = fh.read(followed.start)
            body = _crc_of(fh, followed.end - followed.start)
            if body == followed.crc:
                data = deflate_piece(head, last=False)
                out.write(data)
                with open(followed.spool, "rb") as spool:
                    left = followed.spooled
                    while left > 0:
                        block = spool.read(min(left, 1 << 20))
                        if not block:
                            raise OSError(f"{followed.spool} is shorter than reported")
                        out.write(block)
                        left -= len(block)
                written = len(data) + followed.spooled
                crc = crc32_combine(zlib.crc32(head), body, followed.end - followed.start)
                done = followed.end
            fh.seek(done)
        window: deque = deque()  # pieces being compressed, in file order
        while True:
            piece = fh.read(piece_bytes)
            done += len(piece)
            last = not piece or done >= size
            crc = zlib.crc32(piece, crc)  # continues the CRC of what was taken from the spool
            window.append(pool.submit(deflate_piece, piece, last))
            while window and (last or len(window) > 2 * WORKERS):
                data = window.popleft().result()
                out.write(data)
                written += len(data)
            if last:
                return crc, written, done


def _crc_of(fh, n: int) -> int:
    """Return the CRC-32 of the next `n` bytes of `fh`."""
    crc = 0
    while n > 0:
        block = fh.read(min(n, 8 << 20))
        if not block:
            return -1
        crc = zlib.crc32(block, crc)
        n -= len(block)
    return crc


def write_zip(path: Path, members: list[tuple], piece_bytes: int = PIECE_BYTES) -> None:
    """Write `path`: a zip of each (file, name in the archive[, what `export_follow` deflated of it
    ahead]) of `members`, deflated."""
    if sum(src.stat().st_size for src, *_ in members) >= ZIP32_LIMIT:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=LEVEL) as zf:
            for src, name, *_ in members:
                zf.write(src, name)
        return
    entries = []
    with open(path, "wb") as out, ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for src, name, *ahead in members:
            raw = name.encode("utf-8")
            flags = 0 if raw.isascii() else _UTF8_NAME
            dtime, ddate = _dos_time(src.stat().st_mtime)
            offset = out.tell()
            out.write(_LOCAL.pack(0x04034B50, 20, flags, 8, dtime, ddate, 0, 0, 0, len(raw), 0) + raw)
            crc, csize, size = _deflate_file(src, out, pool, piece_bytes, *ahead)
            end = out.tell()
            out.seek(offset + 14)
            out.write(struct.pack("<III", crc, csize, size))
            out.seek(end)
            entries.append((raw, flags, dtime, ddate, crc, csize, size, offset))
        start = out.tell()
        for raw, flags, dtime, ddate, crc, csize, size, offset in entries:
            out.write(
                _CENTRAL.pack(
                    0x02014B50,
                    0x0314,
                    20,
                    flags,
                    8,
                    dtime,
                    ddate,
                    crc,
                    csize,
                    size,
                    len(raw),
                    0,
                    0,
                    0,
                    0,
                    0o100644 << 16,
                    offset,
                )
                + raw
            )
        out.write(_END.pack(0x06054B50, 0, 0, len(entries), len(entries), out.tell() - start, start, 0))
