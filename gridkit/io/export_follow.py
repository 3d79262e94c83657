"""Deflate a shapefile's records while GDAL is still appending them: zipping after the write shrinks.

    follower = Follower([(folder / "x.shp", "shp"), (folder / "x.dbf", "dbf")])
    ...                     # the writing child appends records to x.shp and x.dbf
    ahead = follower.stop() # once GDAL closed the files
    write_zip(path, [(folder / "x.dbf", "x.dbf", ahead[1]), ...])

GDAL (shapelib) appends each record at the end of the .shp and the .dbf and rewrites only their
headers when it closes them (the .shx is written whole at the close). A process of its own, at the
lowest priority (it uses what CPU the writing child and the reading parent leave, and, being a
process, never holds this one's GIL), reads what has been appended up to a margin before the end
(the last record may be half flushed; the .dbf's end-of-file byte comes only after the close,
`export_writers.DBF_END`) and deflates it in pieces, each ending on a sync flush as `export_zip` joins them, into a
spool file beside it, with the CRC-32 of the bytes read. `write_zip` then deflates only the header
and the rest, after checking that the part followed still has that CRC: a file rewritten in
between (say GDAL widening a field) is deflated again from the start.

Run as a script (`python -P export_follow.py '{"files": [[path, "dbf"]], ...}'`) it needs the
standard library only; it prints one JSON line per piece spooled ([file index, start, end, CRC,
spooled bytes]) and is killed when the files are closed (it ends by itself when its standard input
closes: the parent gone). Pieces being deflated at that moment are simply lost.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path

LEVEL = 1  # most of deflate's size gain at a fraction of its time (.dbf padding compresses well)
PIECE_BYTES = 4 << 20
WORKERS = os.cpu_count() or 1
MARGIN = 1 << 20  # bytes before the end left alone while the file grows
PAUSE = 0.05  # seconds between looks at files that have not grown enough
SHP_HEADER = 100
NICE = 19  # the follower's priority: the lowest
F_SETPIPE_SZ = 1031  # Linux


def deflate_piece(piece: bytes, last: bool) -> bytes:
    """Return `piece` as raw deflate, ending on a sync flush (joinable) or, when `last`, finished."""
    c = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return c.compress(piece) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _header_size(kind: str, fh) -> int | None:
    """Return the size of a .shp header (fixed) or of a .dbf header (bytes 8-9; None before written)."""
    if kind == "shp":
        return SHP_HEADER
    fh.seek(8)
    raw = fh.read(2)
    return (struct.unpack("<H", raw)[0] if len(raw) == 2 else 0) or None


class Followed:
    """What was deflated ahead of one growing file: bytes [start, end), their CRC-32, deflated as
    the first `spooled` bytes of `spool`."""

    def __init__(self, path, kind: str, start=None, end: int = 0, crc: int = 0, spooled: int = 0, ok: bool = True):
        self.path, self.kind = Path(path), kind
        self.spool = self.path.with_name(self.path.name + ".deflated")
        self.start, self.end, self.crc, self.spooled, self.ok = start, end, crc, spooled, ok

    @property
    def usable(self) -> bool:
        """Return whether some of the file was deflated ahead (else it is zipped the usual way)."""
        return self.ok and self.start is not None and self.end > self.start

    def report(self, index: int) -> str:
        """Return the line the script prints after each piece: [file index, start, end, crc, spooled]."""
        return json.dumps([index, self.start, self.end, self.crc, self.spooled]) + "\n"


class Follower:
    """The process deflating the files of `files` [(path, "shp" or "dbf")] as they grow."""

    def __init__(self, files: list[tuple[Path, str]], piece_bytes: int | None = None, margin: int | None = None):
        config = {
            "files": [[str(path), kind] for path, kind in files],
            "piece": piece_bytes or PIECE_BYTES,
            "margin": MARGIN if margin is None else margin,
            "nice": NICE,
        }
        self.files = files
        self.proc = subprocess.Popen(
            [sys.executable, "-P", __file__, json.dumps(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        try:
            fcntl.fcntl(self.proc.stdout.fileno(), F_SETPIPE_SZ, 1 << 20)  # room for every report
        except OSError:
            pass

    def stop(self) -> list[Followed]:
        """Stop following and return what each file has ahead (nothing if the process failed).

        The process reports each piece once it is in the spool, so it is killed rather than asked
        to stop: at the lowest priority on a busy machine it could take a while to wake up."""
        self.proc.kill()
        self.proc.wait()
        followed = [Followed(path, kind) for path, kind in self.files]
        try:
            for line in self.proc.stdout.read().splitlines():
                try:
                    index, start, end, crc, spooled = json.loads(line)
                except ValueError:
                    continue  # a line cut by the kill
                followed[index] = Followed(self.files[index][0], self.files[index][1], start, end, crc, spooled)
        finally:
            self.proc.stdout.close()
            self.proc.stdin.close()
        return followed


def _step(
    f: Followed, index: int, pool: ThreadPoolExecutor, piece_bytes: int, margin: int, stop: threading.Event
) -> bool:
    """Deflate what `f` gained since the last look, piece by piece; return whether it did.

    A piece counts (in `f.end` and `f.crc`) once its deflated bytes are in the spool; pieces still
    being deflated when `stop` is set are dropped, so stopping never waits for them."""
    try:
        size = f.path.stat().st_size
    except FileNotFoundError:
        return False
    if size - margin - f.end < piece_bytes:
        return False
    with open(f.path, "rb") as fh:
        if f.start is None:
            start = _header_size(f.kind, fh)
            if start is None or size - margin - start < piece_bytes:
                return False
            f.start = f.end = start
        fh.seek(f.end)
        read, crc = f.end, f.crc
        window: deque = deque()  # (deflating, piece length, CRC up to the piece's end), in file order
        with open(f.spool, "ab") as out:
            while not stop.is_set() and size - margin - read >= piece_bytes:
                piece = fh.read(piece_bytes)
                read += len(piece)
                crc = zlib.crc32(piece, crc)
                window.append((pool.submit(deflate_piece, piece, False), len(piece), crc))
                while len(window) > WORKERS and _spool(f, index, window, out, stop):
                    pass
            while window and _spool(f, index, window, out, stop):
                pass
    return True


def _spool(f: Followed, index: int, window: deque, out, stop: threading.Event) -> bool:
    """Append the first piece of `window` to the spool once deflated and report it on standard
    output; False if `stop` came first."""
    deflating, length, crc = window[0]
    while not stop.is_set():
        try:
            data = deflating.result(timeout=PAUSE)
        except FuturesTimeout:
            continue
        out.write(data)
        out.flush()
        window.popleft()
        f.crc, f.end, f.spooled = crc, f.end + length, f.spooled + len(data)
        sys.stdout.write(f.report(index))
        sys.stdout.flush()
        return True
    window.clear()
    return False


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """Return the CRC-32 of A + B from crc1 = CRC(A), crc2 = CRC(B) and len(B) (zlib's method)."""
    if len2 <= 0:
        return crc1

    def times(mat, vec):
        total, i = 0, 0
        while vec:
            if vec & 1:
                total ^= mat[i]
            vec >>= 1
            i += 1
        return total

    def square(mat):
        return [times(mat, mat[n]) for n in range(32)]

    op = square(square([0xEDB88320] + [1 << n for n in range(31)]))  # four zero bits
    while len2:
        op = square(op)  # one zero byte, then two, four … (2**k bytes at bit k of len2)
        if len2 & 1:
            crc1 = times(op, crc1)
        len2 >>= 1
    return crc1 ^ crc2


def main(argv: list[str]) -> None:
    """Follow the files named in argv[1], reporting each piece deflated, until killed or until
    standard input closes (the parent gone)."""
    config = json.loads(argv[1])
    try:
        os.nice(config["nice"])
    except OSError:
        pass
    followed = [Followed(path, kind) for path, kind in config["files"]]
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), stop.set()), daemon=True).start()
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    while not stop.is_set():
        grown = False
        for index, f in enumerate(followed):
            if f.ok:
                try:
                    grown = _step(f, index, pool, config["piece"], config["margin"], stop) or grown
                except Exception:
                    f.ok = False
        if not grown:
            stop.wait(PAUSE)
    os._exit(0)  # pieces still being deflated are dropped, not waited for


if __name__ == "__main__":
    main(sys.argv)
