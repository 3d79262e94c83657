"""CSV files as tables of text rows: decoded strictly (gridkit.io.csvdecode), streamed in chunks (see
gridkit.io.tables for the rules).

A file whose whole text decodes with one encoding is streamed (`_stream_csv`: memory flat in the
number of rows); one that does not is read whole (`_read_csv`) so that every bad line is named,
and is refused anyway.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from gridkit.io.csvdecode import _decode_csv, _streamable_codec
from gridkit.io.csvdialect import DELIMITER_NAMES, csv_delimiter
from gridkit.io.problems import problem
from gridkit.io.tables import (
    STRIPPED,
    ColumnRows,
    Table,
    TableStream,
    _chunked,
    _fatal,
    _header,
    _row,
    at,
    cell_text,
    place,
)
from gridkit.messages import Message

__all__ = ["stream_csv"]


# -- CSV ----------------------------------------------------------------------------------------------

# Every reader is strict: a quote left open to the end of the file is an error, not a last cell holding
# every line after it (rows silently lost), and so is text after a closing quote ("a"b).


def _csv_error(exc: csv.Error) -> Message:
    """Return what a csv.Error means for the user: a runaway cell (past the csv module's limit), or bad quotes."""
    if "field larger than field limit" in str(exc):
        return Message("imports.runaway_cell", limit=csv.field_size_limit())
    if "unexpected end of data" in str(exc):
        return Message("imports.quote_open_to_end")
    if "expected after" in str(exc):
        return Message("imports.text_after_quote")
    return Message("imports.bad_quotes", error=str(exc))


def _read_csv(path: Path, encoding: str | None, source: dict) -> Table:
    notes: list[dict] = []
    problems: list[dict] = []
    text = _decode_csv(path.read_bytes(), encoding, source, notes, problems)
    first_line = text.split("\n", 1)[0]
    delimiter = csv_delimiter(path, first_line)
    source.update(driver="CSV", delimiter=DELIMITER_NAMES[delimiter])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    display = source["display"]
    names, header_problems = _stream_header(reader, source)
    problems.extend(header_problems)
    rows, numbers = [], []
    previous = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(
                problem(
                    "bad_row",
                    at(place(display, "line", previous + 1), _csv_error(exc)),
                    index=previous + 1,
                )
            )
            break
        number, previous = previous + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        row = _row(names, cells, display, "line", number, problems)
        rows.append(row)
        numbers.append(number)
    source["rows"] = len(rows)
    return Table(
        columns=[n for n in names if n is not None],
        rows=rows,
        numbers=numbers,
        unit="line",
        notes=notes,
        problems=problems,
        source=source,
    )


# -- streaming CSV ------------------------------------------------------------------------------


def _nul_problem(display: str, unit: str, number: int, name) -> dict:
    return problem(
        "nul_byte",
        at(place(display, unit, number), Message("imports.nul_byte", column=name)),
        index=number,
        field=name,
    )


def stream_csv(path: Path, encoding: str | None, source: dict, chunk_rows: int) -> TableStream:
    """Open the CSV file at `path` as a stream of Tables of at most `chunk_rows` rows."""
    notes: list[dict] = []
    codec = _streamable_codec(path, encoding, source, notes)
    if codec is None:  # undecodable or mixed text: read whole to name every bad line (refused anyway)
        return _chunked(
            _read_csv(path, encoding, {k: source[k] for k in ("path", "display")}), chunk_rows, path.stat().st_size
        )
    with path.open(encoding=codec, newline="") as f:
        first_line = f.readline().rstrip("\r\n")
    delimiter = csv_delimiter(path, first_line)
    source.update(driver="CSV", delimiter=DELIMITER_NAMES[delimiter])
    raw = path.open("rb")
    try:
        header_bytes = raw.readline()
        fast = codec in _BLOCK_CODECS and header_bytes.count(b'"') % 2 == 0 and b"\r" not in header_bytes[:-2]
        if not fast:
            raw.seek(0)
            return _legacy_stream(path, raw, codec, delimiter, notes, source, chunk_rows)
        header_text = header_bytes.decode(codec).rstrip("\r\n")
        reader = csv.reader([header_text], delimiter=delimiter)
        names, header_problems = _stream_header(reader, source)
    except BaseException:
        raw.close()
        raise
    if None in names:  # unnamed or repeated columns: the per-row reader says what each row holds
        raw.seek(0)
        return _legacy_stream(path, raw, codec, delimiter, notes, source, chunk_rows)
    header = _header_table(names, notes, header_problems, source)
    chunks = _block_chunks(raw, codec, delimiter, names, source, min(chunk_rows, BLOCK_ROWS))
    return TableStream(header, chunks, path.stat().st_size, lambda: 0 if raw.closed else raw.tell())


def _header_table(names: list, notes: list, problems: list, source: dict) -> Table:
    """Return the stream's header: a table of the named columns, no rows yet (source's row count reset)."""
    source["rows"] = 0
    return Table(
        columns=[n for n in names if n is not None],
        rows=[],
        numbers=[],
        unit="line",
        notes=notes,
        problems=problems,
        source=source,
    )


def _legacy_stream(path: Path, raw, codec: str, delimiter: str, notes: list, source: dict, chunk_rows: int):
    """Stream the whole file with Python's csv reader (UTF-16/32 text, header cells in quotes over lines …)."""
    text = io.TextIOWrapper(raw, encoding=codec, newline="")
    nul = [False]
    reader = csv.reader(_nul_watch(text, nul), delimiter=delimiter, strict=True)
    try:
        names, header_problems = _stream_header(reader, source)
    except BaseException:
        raw.close()
        raise
    header = _header_table(names, notes, header_problems, source)
    chunks = _csv_chunks(reader, names, header.columns, source, chunk_rows, nul, raw)
    return TableStream(header, chunks, path.stat().st_size, lambda: 0 if raw.closed else raw.tell())


def _nul_watch(lines, nul: list):
    for line in lines:
        if "\x00" in line:
            nul[0] = True
        yield line


def _stream_header(reader, source: dict) -> tuple[list[str | None], list[dict]]:
    """Read line 1 and return its column names and problems; raise TableReadError if it holds none."""
    display = source["display"]
    try:
        header_cells = next(reader, None)
    except csv.Error as exc:
        raise _fatal(source, "unreadable", "csv_header_unreadable", file=display, error=str(exc))
    if not header_cells or not any(c.strip() for c in header_cells):
        raise _fatal(source, "no_header", "csv_no_header", file=display)
    names, problems = _header(header_cells, source, "line")
    if len(header_cells) == 1 and (separator := next((c for c in _OTHER_SEPARATORS if c in header_cells[0]), None)):
        header = _preview(header_cells[0], 60)
        said = Message("imports.other_separator", file=display, header=header, separator=separator)
        problems.append(problem("csv_separator", said))
    return names, problems


# Separators a one-column header may show that gridkit does not split on (csvdialect: comma, semicolon, tab):
# full-width commas typed with a Chinese input method, and the bars some case systems export. Read as separators,
# the commas in addresses (福田区，深南大道) would shift the cells of every row that has one.
_OTHER_SEPARATORS = ("，", "|", "、")


def _preview(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _csv_chunks(
    reader, names: list, columns: list, source: dict, chunk_rows: int, nul: list, raw, before: int = 0
) -> Iterator[Table]:
    """Yield the rows after the header in Tables of at most `chunk_rows` rows; close `raw` at the end.

    `before`: the lines of the file before the reader's first one (when it starts mid-file)."""
    display = source["display"]
    plain = None not in names
    previous = before + reader.line_num
    try:
        while True:
            rows, numbers, problems = [], [], []
            broken = False
            while len(rows) < chunk_rows:
                try:
                    cells = next(reader)
                except StopIteration:
                    broken = True
                    break
                except csv.Error as exc:
                    problems.append(
                        problem(
                            "bad_row",
                            at(place(display, "line", previous + 1), _csv_error(exc)),
                            index=previous + 1,
                        )
                    )
                    broken = True
                    break
                number, previous = previous + 1, before + reader.line_num
                row = _csv_row(names, cells, plain, display, number, problems, nul[0])
                if row is not None:
                    rows.append(row)
                    numbers.append(number)
            source["rows"] += len(rows)
            if rows or problems:
                yield Table(columns=columns, rows=rows, numbers=numbers, unit="line", problems=problems, source=source)
            if broken:
                return
    finally:
        raw.close()


def _csv_row(names: list, cells: list, plain: bool, display: str, number: int, problems: list, nul: bool):
    """Return the row of `cells` as {column: text} (None for a blank line), recording its problems."""
    if plain and len(cells) == len(names):
        values = [cell_text(v) or None for v in cells]
        if not any(values):
            return None
        row = dict(zip(names, values))
    else:
        if not any(c.strip() for c in cells):
            return None
        row = _row(names, cells, display, "line", number, problems)
    if nul:
        for k, v in row.items():
            if v is not None and "\x00" in v:
                problems.append(_nul_problem(display, "line", number, k))
                row[k] = v.replace("\x00", "")
    return row


# -- streaming CSV with pyarrow ---------------------------------------------------------------------------
#
# A block of whole lines is parsed by pyarrow (C++, all cells as text) when every line is one row:
# no blank line, no NUL, no carriage return alone, quotes balanced on each line. Row i of the block
# is then line first + i, as Python's reader would number it. Otherwise the block goes through the
# per-row reader (`_csv_row`: blank lines skipped, ragged rows and NUL bytes reported), and a quote
# left open at the end of a line (a cell over several lines) hands the rest of the file to it.


# Rows per block: checked and COPYed as fast as larger ones, and what a chunk holds at a time (several copies
# of it: bytes, parsed text, checked values, the CSV for COPY, the one being sent) keeps the peak low.
BLOCK_ROWS = 25_000

# Encodings in which a newline, quote, comma or tab byte is always that character (never part of another).
_BLOCK_CODECS = ("utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312", "ascii")


class _Chained(io.RawIOBase):
    """Bytes already read, then the rest of a file: what the per-row reader takes over from a block."""

    def __init__(self, head: bytes, raw):
        self._head, self._raw = io.BytesIO(head), raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._head.readinto(buffer)
        return n if n else self._raw.readinto(buffer)


def _block_chunks(raw, codec: str, delimiter: str, names: list, source: dict, chunk_rows: int) -> Iterator[Table]:
    """Yield Tables of at most `chunk_rows` rows read block by block (see above); close `raw` at the end."""
    import itertools

    display = source["display"]
    line = 1  # lines read so far (the header)
    columns = list(names)
    try:
        while True:
            lines = list(itertools.islice(raw, chunk_rows))
            if not lines:
                return
            block = b"".join(lines)
            odd_quotes = b'"' in block and any(x.count(b'"') % 2 for x in lines)
            blank = any(not x.strip() for x in lines)
            count = len(lines)
            del lines  # the block holds the same bytes
            if odd_quotes or (b"\r" in block and block.count(b"\r") != block.count(b"\r\n")):
                # A cell over several lines, or lines ended by a carriage return alone: the per-row reader
                # takes the rest of the file (it numbers rows by the line they start on).
                yield from _rest_per_row(block, raw, codec, delimiter, names, columns, source, chunk_rows, line)
                return
            first = line + 1
            line += count
            chunk = None
            if b"\x00" not in block and not blank:
                chunk = _arrow_block(block, codec, delimiter, columns, first)
            if chunk is None:
                chunk = _per_row_block(block.decode(codec), delimiter, names, columns, display, first)
            chunk.source = source
            source["rows"] += len(chunk.numbers)
            if chunk.numbers or chunk.problems:
                yield chunk
    finally:
        raw.close()


def _rest_per_row(block: bytes, raw, codec, delimiter, names, columns, source, chunk_rows, line) -> Iterator[Table]:
    text = io.TextIOWrapper(io.BufferedReader(_Chained(block, raw)), encoding=codec, newline="")
    nul = [False]
    reader = csv.reader(_nul_watch(text, nul), delimiter=delimiter, strict=True)
    yield from _csv_chunks(reader, names, columns, source, chunk_rows, nul, raw, before=line)


def _arrow_block(block: bytes, codec: str, delimiter: str, columns: list, first: int) -> Table | None:
    """Return the block's rows parsed by pyarrow, or None when a row has another number of cells."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    if codec not in ("utf-8", "utf-8-sig"):
        block = block.decode(codec).encode("utf-8")
    names = [f"c{i}" for i in range(len(columns))]
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(block),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=max(len(block) + 1, 1 << 20)),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    data = {}
    filled = None
    for name, column in zip(names, columns):
        values = pc.utf8_trim(table.column(name).combine_chunks(), characters=STRIPPED)
        values = pc.if_else(pc.equal(pc.utf8_length(values), 0), pa.scalar(None, pa.string()), values)
        data[column] = values
        filled = values.is_valid() if filled is None else pc.or_(filled, values.is_valid())
    numbers = np.arange(first, first + table.num_rows)
    if filled is not None and filled.false_count:  # rows of empty cells only are blank lines
        data = {c: v.filter(filled) for c, v in data.items()}
        numbers = numbers[filled.to_numpy(zero_copy_only=False)]
    n = len(numbers)
    return Table(columns=columns, rows=ColumnRows(data, n), numbers=numbers.tolist(), unit="line", data=data)


def _per_row_block(text: str, delimiter: str, names: list, columns: list, display: str, first: int) -> Table:
    """Return the block's rows read by Python's csv reader, one by one (blank lines, ragged rows, NUL bytes)."""
    import pyarrow as pa

    problems: list[dict] = []
    rows, numbers = [], []
    nul = "\x00" in text
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    previous = first - 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # the reader goes on at the next line
            problems.append(
                problem("bad_row", at(place(display, "line", previous + 1), _csv_error(exc)), index=previous + 1)
            )
            previous = first - 1 + reader.line_num
            continue
        number, previous = previous + 1, first - 1 + reader.line_num
        row = _csv_row(names, cells, True, display, number, problems, nul)
        if row is not None:
            rows.append(row)
            numbers.append(number)
    data = {c: pa.array([r.get(c) for r in rows], type=pa.string()) for c in columns}
    return Table(columns=columns, rows=rows, numbers=numbers, unit="line", problems=problems, data=data)
