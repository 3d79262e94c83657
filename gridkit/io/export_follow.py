"""Deflate a shapefile's records while GDAL is still appending them: zipping after the write shrinks.

    follower = Follower([(folder / "x.shp", "shp"), (folder / "x.dbf", "dbf")])
    ...                     # the writing child appends records to x.shp and x.dbf
    ahead = follower.stop() # once GDAL closed the files
    write_zip(path, [(folder / "x.dbf", "x.dbf", ahead[1]), ...])

GDAL (shapelib) appends each record at the end of the .shp and the .dbf and rewrites only their
headers when it closes them (the .shx is written whole at the close). A process of its own, at the
lowest priority (it uses what CPU the writing child and the reading parent leave, and, being a
process, never holds this one's GIL), reads what has been appended up to a margin before the end
(the last record may be half flushed, and the .dbf's end-of-file byte is overwritten by the next
record) and deflates it in pieces, each ending on a sync flush as `export_zip` joins them, into a
spool file beside it, with the CRC-32 of the bytes read. `write_zip` then deflates only the header
and the rest, after checking that the part followed still has that CRC: a file rewritten in
between (say GDAL widening a field) is deflated again from the start.

Run as a script (`python -P export_follow.py '{"files": [[path, "dbf"]], ...}'`) it needs the
standard library only; it follows until its standard input closes, then prints one JSON line.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LEVEL = 1  # most of deflate's size gain at a fraction of its time (.dbf padding compresses well)
PIECE_BYTES = 4 << 20
WORKERS = os.cpu_count() or 1
MARGIN = 1 << 20  # bytes before the end left alone while the file grows
PAUSE = 0.05  # seconds between looks at files that have not grown enough
SHP_HEADER = 100
NICE = 19  # the follower's priority: the lowest


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
    """What was deflated ahead of one growing file: bytes [start, end) as `spool`, their CRC-32."""

    def __init__(self, path, kind: str, start=None, end: int = 0, crc: int = 0, ok: bool = True):
        self.path, self.kind = Path(path), kind
        self.spool = self.path.with_name(self.path.name + ".deflated")
        self.start, self.end, self.crc, self.ok = start, end, crc, ok

    @property
    def usable(self) -> bool:
        """Return whether some of the file was deflated ahead (else it is zipped the usual way)."""
        return self.ok and self.start is not None and self.end > self.start

    def as_json(self) -> list:
        """Return [path, kind, start, end, crc, ok] (what the script prints)."""
        return [str(self.path), self.kind, self.start, self.end, self.crc, self.ok]


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

    def stop(self) -> list[Followed]:
        """Stop following (pieces in flight are finished) and return what each file has ahead;
        nothing is ahead if the process failed."""
        try:
            self.proc.stdin.close()
            line = self.proc.stdout.readline()
            self.proc.wait()
            self.proc.stdout.close()
            if self.proc.returncode == 0 and line:
                return [Followed(*item) for item in json.loads(line)]
        except (OSError, ValueError):
            self.proc.kill()
            self.proc.wait()
        return [Followed(path, kind, ok=False) for path, kind in self.files]


def _step(f: Followed, pool: ThreadPoolExecutor, piece_bytes: int, margin: int, stop: threading.Event) -> bool:
    """Deflate what `f` gained since the last look, piece by piece; return whether it did."""
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
        window: deque = deque()
        with open(f.spool, "ab") as out:
            while not stop.is_set() and size - margin - f.end >= piece_bytes:
                piece = fh.read(piece_bytes)
                f.crc = zlib.crc32(piece, f.crc)
                f.end += len(piece)
                window.append(pool.submit(deflate_piece, piece, False))
                while len(window) > WORKERS:
                    out.write(window.popleft().result())
            while window:
                out.write(window.popleft().result())
    return True


def main(argv: list[str]) -> int:
    """Follow the files named in argv[1] until standard input closes; print what each has ahead."""
    config = json.loads(argv[1])
    try:
        os.nice(config["nice"])
    except OSError:
        pass
    followed = [Followed(path, kind) for path, kind in config["files"]]
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), stop.set()), daemon=True).start()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        while not stop.is_set():
            grown = False
            for f in followed:
                if f.ok:
                    try:
                        grown = _step(f, pool, config["piece"], config["margin"], stop) or grown
                    except Exception:
                        f.ok = False
            if not grown:
                stop.wait(PAUSE)
    sys.stdout.write(json.dumps([f.as_json() for f in followed]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
