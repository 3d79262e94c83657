"""PostgreSQL's binary array format (array_send / array_recv) to and from numpy columns: whole columns
read or bound in one value, with no Python object per element (gridkit.assign reads points and writes
cells this way); and the framing of its binary COPY format, for rows built as numpy records
(gridkit.resident_cells writes them, gridkit.io.copy_binary reads them) or column by column
(gridkit.db.copy_rows)."""

from __future__ import annotations

import struct

import numpy as np
from psycopg.adapt import Dumper
from psycopg.pq import Format

__all__ = [
    "COPY_HEADER",
    "COPY_SIGNATURE",
    "COPY_TRAILER",
    "BinaryArray",
    "Float8Array",
    "Int4Array",
    "TextArray",
    "bind_arrays",
    "decode_array",
]

# A binary COPY stream starts with the signature, an int32 of flags and the int32 length of a header
# extension (both 0 when written here), and ends with an int16 field count of -1.
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_HEADER = COPY_SIGNATURE + bytes(8)
COPY_TRAILER = b"\xff\xff"


def decode_array(buf: bytes | None, kind: str) -> np.ndarray:
    """Decode PostgreSQL's binary array format (array_send) of int4, int8 or float8 without NULLs."""
    dtype = np.dtype({"i": ">i4", "q": ">i8", "f": ">f8"}[kind])
    if buf is None:
        return np.zeros(0, dtype=dtype.newbyteorder("="))
    ndim, has_null, _oid = struct.unpack_from(">iiI", buf, 0)
    if ndim == 0:
        return np.zeros(0, dtype=dtype.newbyteorder("="))
    if ndim != 1 or has_null:
        raise ValueError("expected a one-dimensional array without NULLs")
    (n,) = struct.unpack_from(">i", buf, 12)
    rows = np.frombuffer(buf, dtype=np.dtype([("len", ">i4"), ("v", dtype)]), count=n, offset=20)
    if n and not (rows["len"] == dtype.itemsize).all():
        raise ValueError("unexpected element size in binary array")
    return rows["v"].astype(dtype.newbyteorder("="))


class BinaryArray:
    """A one-dimensional array without NULLs, already in PostgreSQL's binary array format (array_send)."""

    def __init__(self, values: np.ndarray, kind: str):
        dtype, self.element = {"i": (">i4", 23), "f": (">f8", 701)}[kind]
        n = len(values)
        self.data = np.empty(20 + n * (4 + np.dtype(dtype).itemsize), dtype=np.uint8)
        self.data[:20] = np.frombuffer(struct.pack(">iiIii", 1, 0, self.element, n, 1), dtype=np.uint8)
        rows = self.data[20:].view([("len", ">i4"), ("v", dtype)])
        rows["len"] = np.dtype(dtype).itemsize
        rows["v"] = values


class Int4ArrayDumper(Dumper):
    format = Format.BINARY
    oid = 1007  # int4[]

    def dump(self, obj):
        return memoryview(obj.data)  # sent as is, not copied


class Float8ArrayDumper(Int4ArrayDumper):
    oid = 1022  # float8[]


class Int4Array(BinaryArray):
    def __init__(self, values: np.ndarray):
        super().__init__(values, "i")


class Float8Array(BinaryArray):
    def __init__(self, values: np.ndarray):
        super().__init__(values, "f")


class TextArray:
    """A one-dimensional text array without NULLs, already in PostgreSQL's binary array format (built from a
    pyarrow column by gridkit.db.copy_rows.text_array)."""

    def __init__(self, data):
        self.data = data


class TextArrayDumper(Int4ArrayDumper):
    oid = 1009  # text[]


def bind_arrays(cur) -> None:
    """Let `cur` send numpy columns (and pyarrow texts) as binary arrays: no Python object per element."""
    cur.adapters.register_dumper(Int4Array, Int4ArrayDumper)
    cur.adapters.register_dumper(Float8Array, Float8ArrayDumper)
    cur.adapters.register_dumper(TextArray, TextArrayDumper)
