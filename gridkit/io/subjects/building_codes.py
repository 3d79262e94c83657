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

__all__ = ["BuildingCodes"]


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
        """Read the buildings (once)."""
        if self._keys is not None:
            return
        with db.driver_connection(session).cursor(binary=True) as cur:
            # Whole columns in one row (binary arrays, the codes' bytes end to end): no Python object per building.
            cur.execute(
                "SELECT convert_to(string_agg(code, ''), 'UTF8'), array_send(array_agg(octet_length(code))), "
                "array_send(array_agg(id)), array_send(array_agg(coalesce(base_cell_id, 0))) FROM building"
            )
            data, lengths, ids, cells = cur.fetchone()
        lengths = decode_array(lengths, "i")
        if not len(lengths):
            self._keys = np.zeros(0, dtype=f"S{self._width}")
            return
        offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        codes = pa.Array.from_buffers(pa.string(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        self._width = -(-int(lengths.max()) // 8) * 8 or 8  # whole 8-byte words
        self._keys = _fixed(codes, self._width)
        self._hashes = _hash(self._keys)
        self._ids, self._cells = decode_array(ids, "i"), decode_array(cells, "i")
        self._bits = max(1, int(2 * len(lengths) - 1).bit_length())
        # Linear probing filled in the order of the codes' home slots: each code takes the slot after the previous
        # one's, or its home if that is further (a running maximum), so every slot from a code's home to its own is
        # taken and a search stops at the first free one. The table runs past its end instead of wrapping round,
        # and ends with a free slot.
        home = self._home(self._hashes)
        order = np.argsort(home, kind="stable")
        rank = np.arange(len(order))
        at = np.maximum.accumulate(home[order] - rank) + rank
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
