"""Deflate a shapefile's records while GDAL is still appending them: zipping after the write shrinks.

    follower = Follower([(folder / "x.shp", shp_header), (folder / "x.dbf", dbf_header)])
    ...                     # the writing child appends records to x.shp and x.dbf
    follower.stop()         # once GDAL closed the files
    write_zip(path, [(folder / "x.dbf", "x.dbf", follower.followed[1]), ...])

GDAL (shapelib) appends each record at the end of the .shp and the .dbf and rewrites only their
headers when it closes them (the .shx is written whole at the close). A thread here reads what the
child has appended, up to a margin before the end (the last record may be half flushed, and the
.dbf's end-of-file byte is overwritten by the next record), and deflates it in pieces (each ending
on a sync flush, as `export_zip` joins them) into a spool file beside it, with the CRC-32 of the
bytes read. `write_zip` then only deflates the header and the rest, after checking that the part
followed still has the CRC it had: a file rewritten in between (say GDAL widening a field) is
simply deflated again from the start. The threads run at the lowest priority, so they use what
the writing child and the reading parent leave of the CPU rather than slowing them.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gridkit.io.export_zip import PIECE_BYTES, WORKERS, deflate_piece

MARGIN = 1 << 20  # bytes before the end left alone while the file grows
PAUSE = 0.05  # seconds between looks at a file that has not grown enough
SHP_HEADER = 100


def shp_header(fh) -> int | None:
    """Return the header size of a .shp (fixed)."""
    return SHP_HEADER


def dbf_header(fh) -> int | None:
    """Return the header size a .dbf states (bytes 8-9), or None before it is written."""
    fh.seek(8)
    raw = fh.read(2)
    size = struct.unpack("<H", raw)[0] if len(raw) == 2 else 0
    return size or None


def _lowest_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # this thread only (Linux)
    except (AttributeError, OSError):
        pass


class Followed:
    """What was deflated of one growing file: bytes [start, end) as `spool`, their CRC-32."""

    def __init__(self, path: Path, header: Callable):
        self.path, self.header = path, header
        self.spool = path.with_name(path.name + ".deflated")
        self.start: int | None = None
        self.end = 0
        self.crc = 0
        self.ok = True  # False after any error: the file is deflated whole at the end

    @property
    def usable(self) -> bool:
        """Return whether some of the file was deflated ahead (else zip it the usual way)."""
        return self.ok and self.start is not None and self.end > self.start


class Follower:
    """A thread deflating the files of `files` [(path, header size function)] as they grow."""

    def __init__(self, files: list[tuple[Path, Callable]], piece_bytes: int | None = None, margin: int | None = None):
        self.followed = [Followed(path, header) for path, header in files]
        self.piece_bytes = piece_bytes or PIECE_BYTES
        self.margin = MARGIN if margin is None else margin
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> list[Followed]:
        """Stop following (what is in flight is finished) and return what each file has ahead."""
        self._stop.set()
        self._thread.join()
        return self.followed

    def _run(self) -> None:
        _lowest_priority()
        with ThreadPoolExecutor(max_workers=WORKERS, initializer=_lowest_priority) as pool:
            while not self._stop.is_set():
                grown = False
                for f in self.followed:
                    if f.ok:
                        try:
                            grown = self._step(f, pool) or grown
                        except Exception:
                            f.ok = False
                if not grown:
                    self._stop.wait(PAUSE)

    def _step(self, f: Followed, pool: ThreadPoolExecutor) -> bool:
        """Deflate what `f` gained since the last look, piece by piece; return whether it did."""
        try:
            size = f.path.stat().st_size
        except FileNotFoundError:
            return False
        if size - self.margin - f.end < self.piece_bytes:
            return False
        with open(f.path, "rb") as fh:
            if f.start is None:
                start = f.header(fh)
                if start is None or size - self.margin - start < self.piece_bytes:
                    return False
                f.start = f.end = start
            fh.seek(f.end)
            window: deque = deque()
            with open(f.spool, "ab") as out:
                while not self._stop.is_set() and size - self.margin - f.end >= self.piece_bytes:
                    piece = fh.read(self.piece_bytes)
                    f.crc = zlib.crc32(piece, f.crc)
                    f.end += len(piece)
                    window.append(pool.submit(deflate_piece, piece, False))
                    while len(window) > WORKERS:
                        out.write(window.popleft().result())
                while window:
                    out.write(window.popleft().result())
        return True
