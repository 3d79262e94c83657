"""Read CSV, XLSX and vector files as tables of text: one dict per row, the row number the user sees.

What `read_table` does, and why:

- CSV (.csv, .txt, .tsv): the bytes are decoded strictly. A UTF-8 byte order mark means UTF-8
  (Excel's "CSV UTF-8"), a UTF-16 one UTF-16; text whose first bytes are NUL every other byte is UTF-16 without
  one (SQL Server's bcp), noted; otherwise UTF-8 if the whole file is UTF-8, else
  GB18030 (a superset of GBK and GB2312, what Chinese Excel writes), or the encoding forced by the
  caller. A line that decodes with neither is refused naming the line, and so is a file mixing
  UTF-8 lines with GBK ones (GB18030 would read the UTF-8 lines as mojibake): importing garbled
  text would silently corrupt every name. The delimiter is a comma, or a tab for .tsv files and for files
  whose header line has tabs and no comma, or a semicolon when the header has semicolons and neither.
  The header is line 1; rows are numbered by the line they start on, as a text editor (and Excel,
  when no cell holds a line break) shows them.
- XLSX (.xlsx, .xlsm): read with openpyxl in read-only mode, cached formula values. The sheet is
  `sheet` or else the first one; the header is row 1 and rows keep their Excel row numbers.
  Numbers of 16 digits or more held as numbers (not text) have lost digits in Excel: such cells
  are listed in `Table.lossy` so importers can say so instead of reporting a wrong checksum.
- Shapefile, GeoPackage, GeoJSON (and a .zip or folder holding a shapefile): read in batches of
  features with `gridkit.io.vector_batches` (the rules of `gridkit.io.vector.read_vector_collecting`),
  so encodings, CRS (`src_crs`, including gcj02), repairs and the China check are the same as for
  grid imports. Rows are numbered by feature id;
  `Table.geometries` holds each feature's geometry in EPSG:4490 (None where it had a problem).

CSV streaming lives in `gridkit.io.csvtable`, its decoding in `gridkit.io.csvdecode`, XLSX in `gridkit.io.xlsx`.

Every value is text (stripped; empty → None; integral numbers without ".0"). File-level problems
(no such file, unknown format, unreadable workbook, no header) raise `TableReadError` at once;
row-level ones (undecodable lines, ragged rows, bad geometries) are returned in `Table.problems`
so that one run reports them all.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gridkit.io.problems import VectorReadError, problem
from gridkit.messages import Message

__all__ = [
    "Table",
    "TableReadError",
    "TableStream",
    "open_table",
    "read_table",
    "TABLE_SUFFIXES",
    "SPATIAL_SUFFIXES",
    "CHUNK_ROWS",
    "ColumnRows",
]

# Rows per chunk of a streamed table: big enough for vectorised checks, small enough for flat memory.
CHUNK_ROWS = 50_000
# Bytes read at a time when checking a CSV file's encoding before streaming it.
_BLOCK = 1 << 20

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
SPATIAL_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".zip")
TABLE_SUFFIXES = CSV_SUFFIXES + XLSX_SUFFIXES

# Numbers with this many significant digits or more cannot be held exactly by Excel (15 digits).
_LOSSY_ABOVE = 1e15
# A number as a spreadsheet shows it in scientific notation (4.40304E+17): never a code someone chose.
SPREADSHEET_NUMBER = re.compile(r"^[0-9](\.[0-9]+)?[eE]\+[0-9]{2}$")

# What is stripped from the ends of every cell: white space (str.strip's) and the invisible characters text copied
# from web pages and Word, or two exports concatenated (a byte order mark in the middle of the file), leave there.
# Kept, "\ufeffB002" or "B001\u200b" was stored as a code no one can type, and never matched again.
INVISIBLE = "\ufeff\u200b\u200e\u200f\u2060"
STRIPPED = "".join(c for c in map(chr, range(0x3000 + 1)) if c.isspace()) + INVISIBLE


def cell_text(value: str) -> str:
    """Return a cell's text without white space or invisible characters at its ends (STRIPPED)."""
    return value.strip(STRIPPED)


_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class TableReadError(VectorReadError):
    """A table cannot be read at all: a code (key error.<code>) and params; `problems` says why, `source` what."""


@dataclass
class Table:
    """A file read as text rows: columns, rows, the number each row has for the user, geometries if spatial."""

    columns: list[str]
    rows: list[dict]
    numbers: list[int]
    unit: str  # "line" (CSV), "row" (XLSX) or "feature" (vector)
    geometries: list | None = None  # shapely, EPSG:4490, vector files only
    lossy: set = field(default_factory=set)  # (position, column) of numbers Excel has rounded
    dates: set = field(default_factory=set)  # (position, column) of XLSX cells typed as dates (3-12 typed in Excel)
    notes: list[dict] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)
    source: dict = field(default_factory=dict)
    # Columnar chunks (CSV read with pyarrow): {column: pyarrow string array, null where empty}; `rows`
    # is then a ColumnRows built from it on first use.
    data: dict | None = None

    @property
    def spatial(self) -> bool:
        """True for Shapefile, GeoPackage and GeoJSON input: locations come from the geometry."""
        return self.geometries is not None

    def values(self, column: str):
        """Return the column's text as a pyarrow string array (null where empty), one value per row."""
        if self.data is not None:
            return self.data[column]
        import pyarrow as pa

        return pa.array([r.get(column) for r in self.rows], type=pa.string())

    def cell(self, position: int, column: str) -> str | None:
        """Return the text of one cell (None where empty or absent)."""
        if self.data is not None:
            values = self.data.get(column)
            return None if values is None else values[position].as_py()
        return self.rows[position].get(column)

    def where(self, position: int) -> str:
        """Return 'file.csv, line 7' for the row at `position`, as the user finds it."""
        return f"{self.source.get('display')}, {self.unit} {self.numbers[position]}"

    def place(self, position: int) -> Message:
        """Return 'file.csv, line 7' for the row at `position` as a Message, in the reader's language."""
        return place(self.source.get("display"), self.unit, self.numbers[position])


class ColumnRows(Sequence):
    """The rows of a columnar chunk as {column: text} dicts, built on first use (for per-row readers)."""

    def __init__(self, data: dict, n: int):
        self._data, self._n, self._rows = data, n, None

    def _built(self) -> list[dict]:
        if self._rows is None:
            names = list(self._data)
            columns = [self._data[c].to_pylist() for c in names]
            self._rows = [dict(zip(names, values)) for values in zip(*columns)] if names else [{}] * self._n
        return self._rows

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        return self._built()[index]

    def __iter__(self):
        return iter(self._built())


def place(display, unit: str, number) -> Message:
    """Return 'file.csv, line 7' (unit "line", "row" or "feature") as a Message."""
    return Message(f"imports.place.{unit}", file=display, number=number)


def at(where, message: Message) -> Message:
    """Return '<where>: <message>' as a Message (`where` a place() or a file name)."""
    return Message("imports.at", where=where, message=message)


@dataclass
class TableStream:
    """A file opened for reading in chunks: `header` holds columns, unit, source, notes and file-level
    problems (a Table without rows); iterating yields Tables of at most `chunk_rows` rows each, whose
    positions restart at 0 and whose row problems are their own. `size` is the file's bytes and
    `done` how many were read so far (for progress bars); for vector files `reads()` counts the
    batches read from the file so far."""

    header: Table
    chunks: Iterator[Table]
    size: int = 0
    position: Callable[[], int] | None = None
    reads: Callable[[], int] | None = None

    def __iter__(self) -> Iterator[Table]:
        return self.chunks

    @property
    def done(self) -> int:
        return self.position() if self.position is not None else 0


def open_table(
    path,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    layer: str | None = None,
    src_crs: str | None = None,
    chunk_rows: int | None = None,
    city: tuple | None = None,
    personal: bool = False,
) -> TableStream:
    """Open the file at `path` for reading in chunks of rows; raise TableReadError if it cannot be read.

    The same rules as `read_table`. CSV and XLSX are read as a stream (memory flat in the number of
    rows); a CSV whose text does not decode cleanly is read whole, to name every bad line. Vector
    files are read `chunk_rows` features at a time (gridkit.io.vector_batches): memory flat too. `city`: the
    extent of the city's admin units (gridkit.admin.city_extent), for the advice to a vector file without a CRS.
    `personal`: the points are people's homes (residents), never named exactly in a vector file's problems.
    """
    path = Path(path)
    chunk_rows = chunk_rows or CHUNK_ROWS
    source = {"path": str(path), "display": path.name or str(path)}
    _check_path(path, source, encoding=encoding, sheet=sheet, layer=layer)
    suffix = path.suffix.lower()
    size = path.stat().st_size if path.is_file() else 0
    if path.is_dir() or suffix in SPATIAL_SUFFIXES:
        return _stream_spatial(
            path,
            encoding=encoding,
            layer=layer,
            src_crs=src_crs,
            chunk_rows=chunk_rows,
            size=size,
            city=city,
            personal=personal,
        )
    if suffix in CSV_SUFFIXES:
        from gridkit.io.csvtable import stream_csv  # here: csvtable builds on this module

        return stream_csv(path, encoding, source, chunk_rows)
    from gridkit.io.xlsx import stream_xlsx  # here: xlsx builds on this module

    return stream_xlsx(path, sheet, source, chunk_rows)


def _check_path(path: Path, source: dict, *, encoding, sheet, layer) -> None:
    """Refuse what cannot be read at all: a missing or empty file, a wrong option, an unknown format."""
    if not path.exists():
        raise _fatal(source, "not_found", "table_not_found", path=str(path))
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in SPATIAL_SUFFIXES:
        if sheet is not None:
            raise _fatal(source, "bad_option", "sheet_of_layer", file=source["display"])
        return
    if layer is not None:
        raise _fatal(source, "bad_option", "layer_of_table", file=path.name)
    if path.stat().st_size == 0:
        raise _fatal(source, "empty_file", "table_empty", file=path.name)
    if suffix in CSV_SUFFIXES:
        if sheet is not None:
            raise _fatal(source, "bad_option", "sheet_of_csv", file=path.name)
        return
    if suffix in XLSX_SUFFIXES:
        if encoding is not None:
            raise _fatal(source, "bad_option", "encoding_of_xlsx", file=path.name)
        return
    if suffix in (".xls", ".et"):
        raise _fatal(source, "unreadable", "old_xls", file=path.name)
    raise _fatal(source, "unreadable", "unknown_format", file=path.name)


def _chunked(table: Table, chunk_rows: int, size: int) -> TableStream:
    """Hand out a Table read whole as a stream of chunks (its problems go with the chunk of their row)."""
    header = Table(
        columns=table.columns,
        rows=[],
        numbers=[],
        unit=table.unit,
        geometries=[] if table.spatial else None,
        notes=table.notes,
        problems=[p for p in table.problems if p.get("index") is None],
        source=table.source,
    )
    done = [0]

    def chunks() -> Iterator[Table]:
        by_number: dict = {}
        for found in table.problems:
            if found.get("index") is not None:
                by_number.setdefault(found["index"], []).append(found)
        for start in range(0, len(table.rows), chunk_rows):
            stop = min(start + chunk_rows, len(table.rows))
            numbers = table.numbers[start:stop]
            yield Table(
                columns=table.columns,
                rows=table.rows[start:stop],
                numbers=numbers,
                unit=table.unit,
                geometries=None if table.geometries is None else table.geometries[start:stop],
                lossy={(p - start, c) for p, c in table.lossy if start <= p < stop},
                problems=[f for n in numbers for f in by_number.get(n, ())],
                source=table.source,
            )
            done[0] = size * stop // max(len(table.rows), 1)

    return TableStream(header, chunks(), size, lambda: done[0])


def _fatal(source: dict, kind: str, name: str, /, **params) -> TableReadError:
    """Return the error for a file that cannot be read at all (key error.imports.<name>)."""
    message = Message(f"error.imports.{name}", **params)
    return TableReadError(f"imports.{name}", problems=[problem(kind, message)], source=source, **params)


def read_table(
    path, *, encoding: str | None = None, sheet: str | None = None, layer: str | None = None, src_crs: str | None = None
) -> Table:
    """Return the file at `path` as a Table of text rows, or raise TableReadError if it cannot be read.

    `encoding` forces the text encoding (CSV and vector files); `sheet` chooses the XLSX sheet;
    `layer` and `src_crs` are passed to the vector reader (for CSV/XLSX, `src_crs` is the
    importer's business: it applies to coordinate columns).
    """
    stream = open_table(path, encoding=encoding, sheet=sheet, layer=layer, src_crs=src_crs)
    header = stream.header
    rows, numbers, lossy, dates, problems = [], [], set(), set(), list(header.problems)
    geometries = [] if header.spatial else None
    for chunk in stream:
        offset = len(rows)
        rows.extend(chunk.rows)
        numbers.extend(chunk.numbers)
        lossy.update((p + offset, c) for p, c in chunk.lossy)
        dates.update((p + offset, c) for p, c in chunk.dates)
        problems.extend(chunk.problems)
        if geometries is not None:
            geometries.extend(chunk.geometries)
    return Table(
        columns=header.columns,
        rows=rows,
        numbers=numbers,
        unit=header.unit,
        geometries=geometries,
        lossy=lossy,
        dates=dates,
        notes=header.notes,
        problems=problems,
        source=header.source,
    )


# -- rows shared by CSV and XLSX ----------------------------------------------------------------------


def _header(cells: list[str], source: dict, unit: str) -> tuple[list[str | None], list[dict]]:
    """Return the column name per position (None for unnamed) and problems with the header (`unit` 1)."""
    names: list[str | None] = []
    problems = []
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells, start=1):
        name = cell_text(cell or "") or None
        if name is not None and name in seen:
            problems.append(
                problem(
                    "duplicate_column",
                    Message(
                        "imports.duplicate_column",
                        file=source["display"],
                        column=name,
                        where=Message(f"imports.unit.{unit}", number=1),
                        first=seen[name],
                        i=i,
                    ),
                    field=name,
                )
            )
            name = None
        if name is not None:
            seen[name] = i
        names.append(name)
    return names, problems


def _row(names: list, cells: list, display: str, unit: str, number: int, problems: list) -> dict:
    row = {}
    for i, value in enumerate(cells):
        text = cell_text(value) if isinstance(value, str) else value
        if i >= len(names):
            if text not in (None, ""):
                problems.append(
                    problem(
                        "bad_row",
                        at(
                            place(display, unit, number),
                            Message(
                                "imports.extra_cell",
                                cells=len(cells),
                                columns=len(names),
                                cell=i + 1,
                                preview=_preview(text),
                            ),
                        ),
                        index=number,
                    )
                )
                break
            continue
        if names[i] is not None:
            row[names[i]] = text or None
    return row


def _preview(text) -> str:
    text = str(text)
    return repr(text if len(text) <= 12 else text[:10] + "…")


# -- vector files ---------------------------------------------------------------------------------------


def _stream_spatial(
    path: Path, *, encoding, layer, src_crs, chunk_rows: int, size: int, city=None, personal: bool = False
) -> TableStream:
    """Open a vector file as a stream of Tables, `chunk_rows` features read from the file at a time."""
    from gridkit.io.vector_batches import open_vector_batches  # here: it builds on gridkit.io.vector

    try:
        batches = open_vector_batches(
            path, layer=layer, encoding=encoding, src_crs=src_crs, batch_size=chunk_rows, city=city, personal=personal
        )
    except VectorReadError as exc:
        raise TableReadError(
            exc.code, problems=exc.problems, notes=exc.notes, source=exc.source, **exc.params
        ) from None
    header = Table(
        columns=batches.fields,
        rows=[],
        numbers=[],
        unit="feature",
        geometries=[],
        notes=batches.notes,
        source=batches.source,
    )
    done = [0]

    def chunks() -> Iterator[Table]:
        for read, problems in batches:
            chunk = _spatial_table(read, problems)
            done[0] = min(size, done[0] + size * len(chunk.rows) // max(batches.features, 1))
            yield chunk

    return TableStream(header, chunks(), size, lambda: done[0], lambda: batches.reads)


def _parts_dropped(source: dict, index: int) -> dict:
    from gridkit.io.vector import _on_feature

    message = _on_feature(source.get("display", ""), index, None, "parts_dropped")
    return problem("parts_dropped", message, index=index, field="geometry")


def _spatial_table(read, problems: list[dict]) -> Table:
    """Return one batch of a vector file (a VectorRead) as a Table of text rows with their geometries."""
    from gridkit.io.vector import _polygonal_part, text_value  # here: only vector files need the vector stack

    gdf = read.gdf
    columns = read.fields
    values = {c: gdf[c].tolist() for c in columns}
    rows, lossy = [], set()
    for position in range(len(gdf)):
        row = {}
        for c in columns:
            value = values[c][position]
            if isinstance(value, float) and math.isfinite(value) and abs(value) >= _LOSSY_ABOVE:
                lossy.add((position, c))
            row[c] = text_value(value)
        rows.append(row)
    geometries = []
    repaired = None
    for position, geom in enumerate(gdf.geometry.values):
        if geom is not None and geom.geom_type == "GeometryCollection":
            part = _polygonal_part(geom)
            if part is not None:
                # make_valid may leave slivers of lines beside polygons (its repair is noted already); a collection
                # drawn so in the file loses its points and lines, which is said.
                if repaired is None:
                    repaired = {n["index"] for n in read.notes if n["kind"] == "geometry_repaired"}
                index = int(gdf.index[position])
                if index not in repaired:
                    read.notes.append(_parts_dropped(read.source, index))
                geom = part
        geometries.append(geom)
    return Table(
        columns=columns,
        rows=rows,
        numbers=[int(i) for i in gdf.index],
        unit="feature",
        geometries=geometries,
        lossy=lossy,
        problems=problems,
        source=read.source,
    )
