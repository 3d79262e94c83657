"""Rows of a PostgreSQL `COPY … TO STDOUT (FORMAT binary)` decoded into Arrow arrays with numpy.

    header = header_length(first_message)          # the first message starts with the stream's header
    batch = decode_rows(block, ends, types, names)  # ends: where each row of `block` ends

PostgreSQL sends one CopyData message per row: the reader joins them into a block and notes where
each ends, so every row's start is known. A row is an int16 field count, then per field an int32
length (-1 for NULL) and that many bytes, all big-endian. Walking the fields of all rows at once
(one gather per column) gives each value's start and length; text and WKB values become Arrow
string/binary views pointing into the block, cast once by Arrow into ordinary arrays; fixed-width
values are gathered from an unaligned big-endian view of the block. No row is ever a Python object.

Which Arrow type comes from which PostgreSQL type is the SELECT's business (`binary_column`): the
value must be sent as text (a string), bytea (binary), int8, float8, bool, date or timestamp.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from gridkit.db.arrays import COPY_HEADER, COPY_SIGNATURE

# The header: signature, int32 flags, int32 length of the header extension (then the extension).
_HEADER = len(COPY_HEADER)
# PostgreSQL's epochs (2000-01-01) in Arrow's (1970-01-01) units.
_EPOCH_DAYS = 10_957
_EPOCH_MS = _EPOCH_DAYS * 86_400_000
# Values standing for ±infinity, which to_char (the text path's dates) turns into NULL.
_INFINITE = {8: (np.iinfo(np.int64).min, np.iinfo(np.int64).max), 4: (np.iinfo(np.int32).min, np.iinfo(np.int32).max)}
# Bytes a string view holds inline (Arrow's layout: int32 length, then 12 bytes of the value, or
# a 4-byte prefix, int32 buffer index and int32 offset).
_INLINE = 12
# By a value's size (13: longer), which of the 8 bytes at its start and of the 4 after those its
# view keeps: all of a short value's own bytes, a long one's first 4.
_FIRST_MASK = np.array([2 ** (8 * min(k, 8)) - 1 for k in range(_INLINE + 1)] + [2**32 - 1], dtype=np.uint64)
_LAST_MASK = np.array([2 ** (8 * max(0, k - 8)) - 1 for k in range(_INLINE + 1)] + [0], dtype=np.uint32)
# Zero bytes a block needs after its last row (a reader may append them to spare a copy).
PADDING = 16


# Variable-width values: read as views into the block, then cast into ordinary arrays.
_VIEWS = {pa.string(): pa.string_view(), pa.binary(): pa.binary_view()}
# Fixed-width values: the numpy type of their binary form.
_FIXED = {pa.int64(): ">i8", pa.float64(): ">f8", pa.bool_(): "u1", pa.date32(): ">i4", pa.timestamp("ms"): ">i8"}


class CopyFormatError(ValueError):
    """The bytes are not the binary COPY rows the SELECT promised (a bug, never user data)."""


def binary_column(expression: str, arrow_type: pa.DataType) -> str:
    """Return the SQL that sends `expression` in the binary form `decode_rows` reads as `arrow_type`.

    A string is the value's text as PostgreSQL prints it for text, varchar and every type whose cast
    to text is its output function (numbers, dates, enums); not for char(n), bool or inet, which
    no layer exports as text. WKB needs no cast (ST_AsBinary gives bytea)."""
    if pa.types.is_string(arrow_type):
        return f"({expression})::text"
    if pa.types.is_int64(arrow_type):
        return f"({expression})::int8"
    if pa.types.is_float64(arrow_type):
        return f"({expression})::float8"
    if pa.types.is_boolean(arrow_type):
        return f"({expression})::bool"
    if pa.types.is_date32(arrow_type):
        return f"({expression})::date"
    if arrow_type == pa.timestamp("ms"):
        return f"({expression})::timestamp"
    raise TypeError(f"no binary COPY decoding for {arrow_type}")


def header_length(message) -> int:
    """Return the length of the binary COPY header that starts `message` (the first one)."""
    head = bytes(message[:_HEADER])
    if len(head) < _HEADER or not head.startswith(COPY_SIGNATURE):
        raise CopyFormatError("not a binary COPY stream")
    return _HEADER + int.from_bytes(head[-4:], "big")


def _unaligned(block, dtype: str) -> np.ndarray:
    """Return a view of `block` holding one `dtype` value starting at every byte."""
    size = np.dtype(dtype).itemsize
    return np.ndarray(shape=(max(len(block) - size + 1, 0),), dtype=dtype, buffer=block, strides=(1,))


def decode_rows(block, ends, types: list[pa.DataType], names: list[str]) -> pa.RecordBatch:
    """Return the rows of `block` (bytes of whole binary COPY rows, the stream's header left out,
    ending where `ends` says; bytes after the last end are ignored) as a record batch of `types`.
    The arrays may share `block`'s memory."""
    ends = np.asarray(ends, dtype=np.int64)
    size = int(ends[-1]) if len(ends) else 0
    if len(block) < size + PADDING:
        # Every value's first bytes are read 12 (or 8) at a time: the last ones need room after them.
        padded = bytearray(size + PADDING)
        padded[:size] = memoryview(block)[:size]
        block = padded
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1]
    counts = _unaligned(block, ">i2")[starts]
    if (counts != len(types)).any():
        raise CopyFormatError("rows do not have the expected columns")
    lengths = _unaligned(block, ">i4")
    position = starts + 2
    columns = []
    buffer = pa.py_buffer(block)
    for arrow_type in types:
        length = lengths[position].astype(np.int64)
        columns.append(_column(block, buffer, position + 4, length, arrow_type))
        position = position + 4 + np.maximum(length, 0)
    if not np.array_equal(position, ends):
        raise CopyFormatError("rows do not end where PostgreSQL said")
    return pa.RecordBatch.from_arrays(columns, names=names)


def _validity(valid: np.ndarray) -> tuple[pa.Buffer | None, int]:
    nulls = len(valid) - int(np.count_nonzero(valid))
    return (pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None), nulls


def _column(block, buffer: pa.Buffer, start: np.ndarray, length: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    n = len(length)
    if arrow_type in _VIEWS:
        return _views(block, buffer, start, length, _VIEWS[arrow_type]).cast(arrow_type)
    code = _FIXED[arrow_type]
    valid = length >= 0
    if ((length != np.dtype(code).itemsize) & valid).any():
        raise CopyFormatError(f"a {arrow_type} value of another width")
    raw = _unaligned(block, code)[start]  # a NULL's start is the next field's: harmless to read
    if arrow_type == pa.bool_():
        validity, nulls = _validity(valid)
        bits = pa.py_buffer(np.packbits(raw != 0, bitorder="little"))
        return pa.Array.from_buffers(arrow_type, n, [validity, bits], null_count=nulls)
    if arrow_type == pa.date32():
        valid &= ~np.isin(raw, _INFINITE[4])
        values = raw.astype(np.int32) + _EPOCH_DAYS
    elif arrow_type == pa.timestamp("ms"):
        valid &= ~np.isin(raw, _INFINITE[8])
        # Microseconds since 2000 in the SELECT's wall clock, floored to milliseconds as to_char does.
        values = raw.astype(np.int64) // 1000 + _EPOCH_MS
    else:
        values = raw.astype(raw.dtype.newbyteorder("="))
    values[~valid] = 0
    validity, nulls = _validity(valid)
    return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(values)], null_count=nulls)


def _views(block, buffer: pa.Buffer, start: np.ndarray, length: np.ndarray, view_type: pa.DataType) -> pa.Array:
    """Return a string or binary view array of the values at `start` of `length` bytes in `block`."""
    n = len(length)
    valid = length >= 0
    size = np.maximum(length, 0)
    # Arrow's view of a value, as four little-endian words: its size, then its 12 bytes zero-padded
    # (up to 12 bytes) or its first 4 bytes, 0 (the block is the only data buffer) and its offset.
    # The 12 bytes are read as one 8-byte and one 4-byte word, masked to the value's own bytes.
    kind = np.minimum(size, _INLINE + 1)
    views = np.empty((n, 4), dtype="<u4")
    views[:, 0] = size
    views[:, 1:3] = (_unaligned(block, "<u8")[start] & _FIRST_MASK[kind]).view("<u4").reshape(n, 2)
    views[:, 3] = np.where(kind > _INLINE, start, _unaligned(block, "<u4")[start + 8] & _LAST_MASK[kind])
    validity, nulls = _validity(valid)
    return pa.Array.from_buffers(view_type, n, [validity, pa.py_buffer(views), buffer], null_count=nulls)
