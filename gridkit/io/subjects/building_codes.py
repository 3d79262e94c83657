"""The buildings a residents file names by code, found on the client (gridkit.io.subjects.residents).

A residents import reads every building's (code, id, base cell) once, before its staging COPY starts, and
looks each chunk's codes up in that sorted array: the staged rows then carry their building's id and cell,
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

from gridkit.db.arrays import decode_array

__all__ = ["BuildingCodes"]


class BuildingCodes:
    """Every building's code, id and base cell, read by `load` (while the connection is free); `find` looks codes up.

    Kept in the order of a 64-bit hash of each code (numpy's binary search of strings is slow, of integers fast);
    every hit is then checked on the whole code."""

    def __init__(self) -> None:
        self._keys: np.ndarray | None = None
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._ids = self._cells = np.zeros(0, dtype=np.int32)
        self._width = 8

    def load(self, session: Session) -> None:
        """Read the buildings (once)."""
        if self._keys is not None:
            return
        session.flush()
        with session.connection().connection.driver_connection.cursor(binary=True) as cur:
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
        keys = _fixed(codes, self._width)
        hashes = _hash(keys)
        order = np.argsort(hashes, kind="stable")
        self._keys, self._hashes = keys[order], hashes[order]
        self._ids, self._cells = decode_array(ids, "i")[order], decode_array(cells, "i")[order]

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
        usable = pc.fill_null(usable, False)
        query = _fixed(pc.if_else(usable, codes, ""), self._width)
        hashes = _hash(query)
        # Searched in ascending order: each search starts where the last ended (half the time of random order).
        order = np.argsort(hashes)
        at = np.empty(n, dtype=np.int64)
        at[order] = np.minimum(np.searchsorted(self._hashes, hashes[order]), len(self._keys) - 1)
        usable = usable.to_numpy(zero_copy_only=False)
        hit = usable & (self._keys[at] == query)
        # Two codes with one hash (about one pair in 10^7 for a million buildings): the next ones of that hash.
        for i in np.flatnonzero(usable & ~hit & (self._hashes[at] == hashes)).tolist():
            j = at[i] + 1
            while j < len(self._keys) and self._hashes[j] == hashes[i] and not hit[i]:
                at[i], hit[i] = j, self._keys[j] == query[i]
                j += 1
        ids[hit], cells[hit] = self._ids[at[hit]], self._cells[at[hit]]
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
