"""Rows of PostgreSQL's binary COPY format built column by column from numpy and pyarrow, with no Python
object per row: the subject imports' first loads (gridkit.io.subjects.building_load, resident_load) write
`building` and `resident` so. The stream's framing is gridkit.db.arrays' COPY_HEADER and COPY_TRAILER.
(A module of its own: pyarrow stays out of what every command imports at start.)"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridkit.db.arrays import TextArray

__all__ = ["copy_tuples", "ewkb_points", "text_array"]

_TEXT_OID = 25


def copy_tuples(n: int, fixed: list[tuple], texts: list[pa.Array]) -> pa.Buffer:
    """Return n rows of binary COPY tuples: the fixed-width fields (numpy, one item per row, and where not NULL),
    then the texts (pyarrow, null where NULL), built column by column with no Python object per row (the
    subject imports' first loads write `building` and `resident` so)."""
    parts = [_fixed_fields(n, len(fixed) + len(texts), fixed)]
    for k, column in enumerate(texts):
        if k:
            parts.append(_lengths(column))
        parts.append(column.cast(pa.binary()).fill_null(b""))
    # The first text's length ends the fixed part: parts alternate lengths and texts from there.
    parts[0] = pc.binary_join_element_wise(parts[0], _lengths(texts[0]), b"")
    rows = pc.binary_join_element_wise(*parts, b"")
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    ends = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset : rows.offset + n + 1]
    return rows.buffers()[2][ends[0] : ends[-1]]


def text_array(column: pa.Array) -> TextArray:
    """Return the texts of `column` (no NULL) as one text[] value in PostgreSQL's binary array format, built with
    no Python object per value: each element is its length and its bytes, as a binary COPY field."""
    n = len(column)
    if not n:
        return TextArray(struct.pack(">iiI", 0, 0, _TEXT_OID))
    elements = pc.binary_join_element_wise(_lengths(column), column.cast(pa.binary()), b"")
    if isinstance(elements, pa.ChunkedArray):
        elements = elements.combine_chunks()
    ends = np.frombuffer(elements.buffers()[1], dtype=np.int32)[elements.offset : elements.offset + n + 1]
    header = struct.pack(">iiIii", 1, 0, _TEXT_OID, n, 1)
    return TextArray(header + elements.buffers()[2][ends[0] : ends[-1]].to_pybytes())


def _fixed_fields(n: int, count: int, fields: list[tuple]) -> pa.Array:
    """Return each row's field count and fixed-width fields (numpy, one item per row, and where not NULL) as
    binary COPY bytes, one binary value per row: a NULL is its length (-1) alone."""
    widths = [data.dtype.itemsize for data, _ in fields]
    full = np.empty((n, 2 + sum(4 + w for w in widths)), dtype=np.uint8)
    full[:, :2] = np.array([count], dtype=">i2").view(np.uint8)
    at, values = 2, []
    for (data, valid), width in zip(fields, widths):
        full[:, at : at + 4] = np.where(valid, width, -1).astype(">i4").view(np.uint8).reshape(n, 4)
        full[:, at + 4 : at + 4 + width] = data.view(np.uint8).reshape(n, width)
        values.append((at + 4, width, valid))
        at += 4 + width
    if all(valid.all() for _, _, valid in values):  # most chunks: rows of one width
        offsets = np.arange(0, at * (n + 1), at, dtype=np.int32)
        return pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(full)])
    keep = np.ones(full.shape, dtype=bool)
    for start, width, valid in values:
        keep[~valid, start : start + width] = False
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    return pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(full[keep])])


def _lengths(column: pa.Array) -> pa.Array:
    """Return each value's length in bytes (-1 where NULL) as binary COPY's 4-byte field length, one binary
    value per row."""
    lengths = pc.binary_length(column).fill_null(-1).to_numpy(zero_copy_only=False).astype(">i4")
    sized = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(lengths), [None, pa.py_buffer(lengths)])
    return sized.cast(pa.binary())


# Little-endian EWKB of a 2D point with an SRID: byte order, type (point | SRID flag), SRID, x, y.
_EWKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("srid", "<i4"), ("x", "<f8"), ("y", "<f8")])


def ewkb_points(lon: np.ndarray, lat: np.ndarray, srid: int) -> np.ndarray:
    """Return the points as EWKB with `srid`, one 25-byte item per row, as PostGIS's binary input reads them."""
    raw = np.empty(len(lon), dtype=_EWKB_POINT)
    raw["order"], raw["type"], raw["srid"], raw["x"], raw["y"] = 1, 0x20000001, srid, lon, lat
    return raw
