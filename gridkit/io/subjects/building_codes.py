"""The buildings a residents file names by code, found on the client (gridkit.io.subjects.residents).

A residents import reads every building's (code, id, base cell) once, before its staging COPY starts, and
looks each chunk's codes up in a hash table of them: the staged rows then carry their building's id and cell,
and no statement joins the staging table to `building` again (the unknown codes' report, the INSERT of
the residents and the INSERT of their cells each joined it: 1M residents, ~4 of 18 server CPU s; the
lookup costs the client ~0.5 s, run while the server parses the COPY).

Codes are compared byte for byte, as `building.code = staged code` compares them (equal strings under any
deterministic collation are equal bytes). Memory: the buildings' codes, ids and cells (~20 bytes a building).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.db.arrays import decode_array

__all__ = ["SLICE_BUILDINGS", "BuildingCodes"]

# Buildings read in one statement (their codes, ids and cells: ~50 bytes a building in flight).
SLICE_BUILDINGS = 1 << 19


class BuildingCodes:
    """Every building's code, id and base cell, read by `load` (while the connection is free); `find` looks codes up.

    An open-addressing hash table in numpy arrays (a 64-bit hash of each code, slots twice the buildings, the
    next slot on a collision): every step is one vector operation over the codes still looking, one or two
    steps a lookup; each hit is checked on the whole code."""

    def __init__(self) -> None:
        self._keys: np.ndarray | None = None
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._ids = self._cells = np.zeros(0, dtype=np.int32)
        self._slots = np.full(1, -1, dtype=np.int32)
        self._bits = 0
        self._width = 8

    def load(self, session: Session) -> None:
        """Read the buildings (once), SLICE_BUILDINGS at a time in id order: the client holds one slice's columns
        besides the table (~56 bytes a building), not the whole city's at once (a single read of 3,000,000 buildings
        peaked at ~580 MB over the table's ~290 MB)."""
        if self._keys is not None:
            return
        with db.driver_connection(session).cursor(binary=True) as cur:
            cur.execute("SELECT count(*), coalesce(max(octet_length(code)), 0) FROM building")
            expected, longest = cur.fetchone()
            columns = _Columns(int(expected), int(longest))
            after = None
            while True:
                # Whole columns in one row (binary arrays, the codes' bytes end to end): no Python object per building.
                cur.execute(
                    "SELECT convert_to(string_agg(code, ''), 'UTF8'), array_send(array_agg(octet_length(code))), "
                    "array_send(array_agg(id)), array_send(array_agg(coalesce(base_cell_id, 0))) FROM "
                    f"(SELECT code, id, base_cell_id FROM building {'' if after is None else 'WHERE id > %(after)s'} "
                    "ORDER BY id LIMIT %(n)s) AS b",
                    {"after": after, "n": SLICE_BUILDINGS},
                )
                data, lengths, ids, cells = cur.fetchone()
                lengths = decode_array(lengths, "i")
                if len(lengths):
                    ids = decode_array(ids, "i")
                    columns.add(data, lengths, ids, decode_array(cells, "i"))
                    after = int(ids[-1])
                if len(lengths) < SLICE_BUILDINGS:
                    break
        self._keys, self._hashes, self._ids, self._cells = columns.done()
        self._width = columns.width
        if not len(self._keys):
            return
        self._bits = max(1, int(2 * len(self._keys) - 1).bit_length())
        # Linear probing filled in the order of the codes' home slots: each code takes the slot after the previous
        # one's, or its home if that is further (a running maximum), so every slot from a code's home to its own is
        # taken and a search stops at the first free one. The table runs past its end instead of wrapping round,
        # and ends with a free slot. (int32 positions: a building table has far fewer than 2**31 rows.)
        home = self._home(self._hashes).astype(np.int32)
        order = np.argsort(home, kind="stable").astype(np.int32)
        at = home[order]
        del home
        rank = np.arange(len(order), dtype=np.int32)
        at -= rank
        np.maximum.accumulate(at, out=at)
        at += rank
        del rank
        self._slots = np.full(max(1 << self._bits, int(at[-1]) + 1) + 1, -1, dtype=np.int32)  # building positions
        self._slots[at] = order

    def _home(self, hashes: np.ndarray) -> np.ndarray:
        return (hashes >> np.uint64(64 - self._bits)).astype(np.int64)

    def find(self, codes: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Return the building id and base cell (int32, 0 where none) of each code (null: none)."""
        n = len(codes)
        ids, cells = np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int32)
        if not len(self._keys) or not n:
            return ids, cells
        # Longer than every building's code, or with a NUL byte (the fixed-width keys pad with NUL): no building.
        usable = pc.and_(
            pc.less_equal(pc.binary_length(codes), self._width), pc.invert(pc.match_substring(codes, "\x00"))
        )
        looking = np.flatnonzero(pc.fill_null(usable, False).to_numpy(zero_copy_only=False))
        query = _fixed(pc.if_else(usable, codes, ""), self._width)
        hashes = _hash(query)
        at = self._home(hashes[looking])
        while len(looking):
            slot = self._slots[at]
            filled = slot != -1
            hit = np.zeros(len(looking), dtype=bool)
            hit[filled] = (self._hashes[slot[filled]] == hashes[looking[filled]]) & (
                self._keys[slot[filled]] == query[looking[filled]]
            )
            ids[looking[hit]], cells[looking[hit]] = self._ids[slot[hit]], self._cells[slot[hit]]
            going = filled & ~hit  # an empty slot ends the search: no building has the code
            looking, at = looking[going], at[going] + 1
        return ids, cells


class _Columns:
    """The buildings' fixed-width codes, their hashes, ids and cells, filled a slice at a time into arrays sized
    for the count read first (grown if buildings were added since)."""

    def __init__(self, expected: int, longest: int) -> None:
        width = _key_width(longest)
        self.width, self.filled = width, 0
        self.keys = np.zeros(expected, dtype=f"S{width}")
        self.hashes = np.zeros(expected, dtype=np.uint64)
        self.ids = np.zeros(expected, dtype=np.int32)
        self.cells = np.zeros(expected, dtype=np.int32)

    def add(self, data: bytes, lengths: np.ndarray, ids: np.ndarray, cells: np.ndarray) -> None:
        n, start = len(lengths), self.filled
        if start + n > len(self.keys) or int(lengths.max()) > self.width:
            self._grow(start + n, int(lengths.max()))
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        codes = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        keys = self.keys[start : start + n]
        keys[:] = _fixed(codes, self.width)
        self.hashes[start : start + n] = _hash(keys)
        self.ids[start : start + n], self.cells[start : start + n] = ids, cells
        self.filled += n

    def _grow(self, rows: int, longest: int) -> None:
        """Make room for `rows` buildings with codes up to `longest` bytes (buildings added or codes made longer
        since the count: rare, the keys and hashes made again at the new width)."""
        width = max(self.width, _key_width(longest))
        keys = np.zeros(max(rows, len(self.keys)), dtype=f"S{width}")
        keys[: self.filled] = self.keys[: self.filled]
        self.keys, self.width = keys, width
        self.hashes = np.resize(self.hashes, len(keys))
        if self.filled:
            self.hashes[: self.filled] = _hash(keys[: self.filled])
        self.ids, self.cells = np.resize(self.ids, len(keys)), np.resize(self.cells, len(keys))

    def done(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return the keys, hashes, ids and cells of the buildings read (fewer than counted if some were deleted)."""
        n = self.filled
        return self.keys[:n], self.hashes[:n], self.ids[:n], self.cells[:n]


def _key_width(longest: int) -> int:
    """Return the width of the fixed keys for codes up to `longest` bytes: whole 8-byte words (at least one)."""
    return -(-longest // 8) * 8 or 8


def _hash(keys: np.ndarray) -> np.ndarray:
    """Return a 64-bit hash of each fixed-width key (a width of whole 8-byte words)."""
    words = keys.view(np.uint8).reshape(len(keys), -1).view("<u8")
    out = np.full(len(keys), 0xCBF29CE484222325, dtype=np.uint64)
    for j in range(words.shape[1]):
        out ^= words[:, j]
        out *= np.uint64(0x9E3779B97F4A7C15)
        out ^= out >> np.uint64(29)
    return out


def _fixed(strings: pa.Array, width: int) -> np.ndarray:
    """Return the strings (none longer than `width` bytes, no null) as a numpy array of `width`-byte keys."""
    strings = pa.array(strings, pa.string()) if not isinstance(strings, pa.Array) else strings.cast(pa.string())
    n = len(strings)
    if n and pc.all(pc.string_is_ascii(strings)).as_py():
        # ASCII (the usual codes): padded in C++ to `width` characters, i.e. bytes, end to end.
        padded = pc.utf8_rpad(strings, width, padding="\x00")
        offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32)[padded.offset : padded.offset + n + 1]
        if offsets[-1] - offsets[0] == n * width:
            return np.frombuffer(padded.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]].view(f"S{width}")
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[strings.offset : strings.offset + n + 1]
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8) if strings.buffers()[2] is not None else None
    out = np.zeros(n * width, dtype=np.uint8)
    lengths = np.diff(offsets)
    if data is not None and lengths.sum():
        # Byte k of row i goes to i * width + (k - the row's first byte).
        shift = np.repeat(offsets[:-1] - np.arange(n, dtype=np.int64) * width, lengths)
        source = np.arange(offsets[0], offsets[-1], dtype=np.int64)
        out[source - shift] = data[offsets[0] : offsets[-1]]
    return out.view(f"S{width}")
