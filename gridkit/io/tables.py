"""Read CSV, XLSX and vector files as tables of text: one dict per row, the row number the user sees.

What `read_table` does, and why:

- CSV (.csv, .txt, .tsv): the bytes are decoded strictly. A UTF-8 byte order mark means UTF-8
  (Excel's "CSV UTF-8"), a UTF-16 one UTF-16; otherwise UTF-8 if the whole file is UTF-8, else
  GB18030 (a superset of GBK and GB2312, what Chinese Excel writes), or the encoding forced by the
  caller. A line that decodes with neither is refused naming the line, and so is a file mixing
  UTF-8 lines with GBK ones (GB18030 would read the UTF-8 lines as mojibake): importing garbled
  text would silently corrupt every name. The delimiter is a comma, or a tab for .tsv files and for files
  whose header line has tabs and no comma. The header is line 1; rows are numbered by the line
  they start on, as a text editor (and Excel, when no cell holds a line break) shows them.
- XLSX (.xlsx, .xlsm): read with openpyxl in read-only mode, cached formula values. The sheet is
  `sheet` or else the first one; the header is row 1 and rows keep their Excel row numbers.
  Numbers of 16 digits or more held as numbers (not text) have lost digits in Excel: such cells
  are listed in `Table.lossy` so importers can say so instead of reporting a wrong checksum.
- Shapefile, GeoPackage, GeoJSON (and a .zip or folder holding a shapefile): read with
  `gridkit.io.vector.read_vector_collecting`, so encodings, CRS (`src_crs`, including gcj02),
  repairs and the China check are the same as for grid imports. Rows are numbered by feature id;
  `Table.geometries` holds each feature's geometry in EPSG:4490 (None where it had a problem).

Every value is text (stripped; empty → None; integral numbers without ".0"). File-level problems
(no such file, unknown format, unreadable workbook, no header) raise `TableReadError` at once;
row-level ones (undecodable lines, ragged rows, bad geometries) are returned in `Table.problems`
so that one run reports them all.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gridkit.io.vector import VectorReadError, _codec, _polygonal_part, problem, read_vector_collecting, text_value

__all__ = [
    "Table",
    "TableReadError",
    "TableStream",
    "open_table",
    "read_table",
    "TABLE_SUFFIXES",
    "SPATIAL_SUFFIXES",
    "CHUNK_ROWS",
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

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class TableReadError(VectorReadError):
    """A table cannot be read at all; `problems` says why, `source` what was opened."""


@dataclass
class Table:
    """A file read as text rows: columns, rows, the number each row has for the user, geometries if spatial."""

    columns: list[str]
    rows: list[dict]
    numbers: list[int]
    unit: str  # "line" (CSV), "row" (XLSX) or "feature" (vector)
    geometries: list | None = None  # shapely, EPSG:4490, vector files only
    lossy: set = field(default_factory=set)  # (position, column) of numbers Excel has rounded
    notes: list[dict] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)
    source: dict = field(default_factory=dict)

    @property
    def spatial(self) -> bool:
        """True for Shapefile, GeoPackage and GeoJSON input: locations come from the geometry."""
        return self.geometries is not None

    def where(self, position: int) -> str:
        """Return 'file.csv, line 7' for the row at `position`, as the user finds it."""
        return f"{self.source.get('display')}, {self.unit} {self.numbers[position]}"


@dataclass
class TableStream:
    """A file opened for reading in chunks: `header` holds columns, unit, source, notes and file-level
    problems (a Table without rows); iterating yields Tables of at most `chunk_rows` rows each, whose
    positions restart at 0 and whose row problems are their own. `size` is the file's bytes and
    `done` how many were read so far (for progress bars)."""

    header: Table
    chunks: Iterator[Table]
    size: int = 0
    position: Callable[[], int] | None = None

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
) -> TableStream:
    """Open the file at `path` for reading in chunks of rows; raise TableReadError if it cannot be read.

    The same rules as `read_table`. CSV and XLSX are read as a stream (memory flat in the number of
    rows); a CSV whose text does not decode cleanly is read whole, to name every bad line. Vector
    files are read whole by the vector reader and handed out in chunks.
    """
    path = Path(path)
    chunk_rows = chunk_rows or CHUNK_ROWS
    source = {"path": str(path), "display": path.name or str(path)}
    _check_path(path, source, encoding=encoding, sheet=sheet, layer=layer)
    suffix = path.suffix.lower()
    size = path.stat().st_size if path.is_file() else 0
    if path.is_dir() or suffix in SPATIAL_SUFFIXES:
        return _chunked(_read_spatial(path, encoding=encoding, layer=layer, src_crs=src_crs), chunk_rows, size)
    if suffix in CSV_SUFFIXES:
        return _stream_csv(path, encoding, source, chunk_rows)
    from gridkit.io.xlsx import stream_xlsx  # here: xlsx builds on this module

    return stream_xlsx(path, sheet, source, chunk_rows)


def _check_path(path: Path, source: dict, *, encoding, sheet, layer) -> None:
    """Refuse what cannot be read at all: a missing or empty file, a wrong option, an unknown format."""
    if not path.exists():
        raise _fatal(source, "not_found", f"{path} does not exist: check the path.")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in SPATIAL_SUFFIXES:
        if sheet is not None:
            raise _fatal(
                source,
                "bad_option",
                f"{source['display']} is a map layer file, not a workbook: leave out "
                "--sheet (a GeoPackage layer is chosen with --layer).",
            )
        return
    if layer is not None:
        raise _fatal(
            source,
            "bad_option",
            f"{path.name} is a table, not a map layer file: leave out --layer (an Excel sheet is chosen with --sheet).",
        )
    if path.stat().st_size == 0:
        raise _fatal(source, "empty_file", f"{path.name} is empty (0 bytes): export the table again.")
    if suffix in CSV_SUFFIXES:
        if sheet is not None:
            raise _fatal(source, "bad_option", f"{path.name} is a CSV file: it has no sheets, leave out --sheet.")
        return
    if suffix in XLSX_SUFFIXES:
        if encoding is not None:
            raise _fatal(
                source,
                "bad_option",
                f"{path.name} is an Excel workbook, whose text is always Unicode: leave out --encoding.",
            )
        return
    if suffix in (".xls", ".et"):
        raise _fatal(
            source,
            "unreadable",
            f"{path.name} is an old-style Excel file (.xls): open it in Excel or WPS and save it as .xlsx or CSV.",
        )
    raise _fatal(
        source,
        "unreadable",
        f"{path.name}: gridkit reads CSV (.csv, .txt, .tsv), Excel (.xlsx) and "
        "Shapefile (.shp, a folder or .zip), GeoPackage (.gpkg) or GeoJSON (.geojson) files.",
    )


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


def _fatal(source: dict, kind: str, message: str) -> TableReadError:
    return TableReadError(message, problems=[problem(kind, message)], source=source)


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
    rows, numbers, lossy, problems = [], [], set(), list(header.problems)
    geometries = [] if header.spatial else None
    for chunk in stream:
        offset = len(rows)
        rows.extend(chunk.rows)
        numbers.extend(chunk.numbers)
        lossy.update((p + offset, c) for p, c in chunk.lossy)
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
        notes=header.notes,
        problems=problems,
        source=header.source,
    )


# -- CSV ----------------------------------------------------------------------------------------------


def _ascii_compatible(codec: str) -> bool:
    try:
        return "a,\n".encode(codec) == b"a,\n"
    except (UnicodeError, LookupError):
        return False


def _bad_lines(data: bytes, codec: str) -> list[tuple[int, bytes, int]]:
    """Return (line number, line bytes, byte offset) of every line that does not decode with `codec`."""
    if not _ascii_compatible(codec):
        try:
            data.decode(codec)
            return []
        except UnicodeDecodeError as exc:
            line = data[: exc.start].decode(codec, "replace").count("\n") + 1
            return [(line, data[exc.start :], 0)]
    bad = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode(codec)
        except UnicodeDecodeError as exc:
            bad.append((number, line, exc.start))
    return bad


def _decode_csv(data: bytes, forced: str | None, source: dict, notes: list, problems: list) -> str:
    display = source["display"]

    def undecodable(lines, said, advice):
        for number, line, pos in lines:
            problems.append(
                problem(
                    "undecodable_text",
                    f"{display}, line {number}: the text cannot be decoded as {said} (bytes "
                    f"{line[pos : pos + 4].hex(' ')} at byte {pos} of the line). {advice}",
                    index=number,
                )
            )

    if forced is not None:
        codec = _codec(forced)
        if codec is None:
            raise _fatal(
                source, "unknown_encoding", f"unknown encoding {forced!r}: use e.g. UTF-8, GB18030, GBK or BIG5."
            )
        if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        source.update(encoding=codecs.lookup(codec).name.upper(), encoding_source="given")
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            undecodable(
                _bad_lines(data, codec),
                f"{forced} (the encoding given)",
                "Give the file's real encoding with --encoding (e.g. UTF-8, GB18030), or leave it out "
                "to let gridkit detect UTF-8 or GB18030.",
            )
            return data.decode(codec, "replace")
    for bom, codec in _BOMS:
        if data.startswith(bom):
            source.update(encoding=codecs.lookup(codec).name.upper(), encoding_source="byte order mark")
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                undecodable(
                    _bad_lines(data, codec),
                    f"{codec.upper()} (as its byte order mark says)",
                    "Save the file again from Excel as 'CSV UTF-8', or fix the text in the source.",
                )
                return data.decode(codec, "replace")
    try:
        text = data.decode("utf-8")
        source.update(encoding="UTF-8", encoding_source="detected")
        return text
    except UnicodeDecodeError:
        pass
    # Not UTF-8 as a whole. Lines that are neither UTF-8 nor GB18030 are refused by number; then a
    # file part UTF-8, part GBK; else the whole file is GB18030.
    utf8_bad = _bad_lines(data, "utf-8")
    gb_bad = {number: (number, line, pos) for number, line, pos in _bad_lines(data, "gb18030")}
    both = [gb_bad[number] for number, _, _ in utf8_bad if number in gb_bad]
    mixed = _utf8_and_not(data)
    if not both and not mixed and not gb_bad:
        source.update(encoding="GB18030", encoding_source="detected")
        notes.append(
            problem(
                "encoding",
                f"{display}: the text is not UTF-8; it was decoded as GB18030 (covers "
                "GBK and GB2312, what Chinese Excel writes). Check a few names; if they look wrong, "
                "give the right encoding with --encoding.",
            )
        )
        return data.decode("gb18030")
    source.update(encoding=None, encoding_source="detected")
    if both:
        undecodable(
            both,
            "UTF-8 or GB18030",
            "Give the file's real encoding with --encoding (e.g. BIG5), or fix "
            "the text in the source; gridkit does not import text it cannot read.",
        )
    else:
        utf8, other = mixed or ([n for n in gb_bad], [n for n, _, _ in utf8_bad])
        problems.append(
            problem(
                "mixed_encoding",
                f"{display} mixes encodings: lines {_lines(utf8)} are UTF-8 "
                f"and lines {_lines(other)} are not (GBK?). Save the file again in one encoding "
                "(UTF-8 is best).",
            )
        )
    # The import is refused; decode each line as well as possible so the other checks still run.
    return "\n".join(_best_effort(line) for line in data.split(b"\n"))


def _utf8_and_not(data: bytes) -> tuple[list[int], list[int]] | None:
    """For a file that is not UTF-8 as a whole: the lines holding Chinese in UTF-8 and those not UTF-8, if both.

    GB18030 decodes UTF-8 Chinese without error (as mojibake), so a file that is part UTF-8, part
    GBK would otherwise import half of its names garbled. A GBK line with a Chinese character is
    practically never valid UTF-8 with a 3-byte character, which is what UTF-8 Chinese is.
    """
    utf8, other = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError:
            other.append(number)
            continue
        if any(ord(c) >= 0x800 for c in decoded):
            utf8.append(number)
    return (utf8, other) if utf8 and other else None


def _lines(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:20])) + (" …" if len(numbers) > 20 else "")


def _best_effort(line: bytes) -> str:
    for codec in ("utf-8", "gb18030"):
        try:
            return line.decode(codec)
        except UnicodeDecodeError:
            pass
    return line.decode("utf-8", "replace")


def _header(cells: list[str], source: dict, where: str) -> tuple[list[str | None], list[dict]]:
    """Return the column name per position (None for unnamed) and problems with the header."""
    names: list[str | None] = []
    problems = []
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells, start=1):
        name = (cell or "").strip().lstrip("\ufeff").strip() or None
        if name is not None and name in seen:
            problems.append(
                problem(
                    "duplicate_column",
                    f"{source['display']}: column {name!r} appears twice in "
                    f"{where} (columns {seen[name]} and {i}). Rename one of them.",
                    field=name,
                )
            )
            name = None
        if name is not None:
            seen[name] = i
        names.append(name)
    return names, problems


def _read_csv(path: Path, encoding: str | None, source: dict) -> Table:
    notes: list[dict] = []
    problems: list[dict] = []
    text = _decode_csv(path.read_bytes(), encoding, source, notes, problems)
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if path.suffix.lower() == ".tsv" or ("\t" in first_line and "," not in first_line) else ","
    source.update(driver="CSV", delimiter="tab" if delimiter == "\t" else "comma")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    display = source["display"]
    try:
        header_cells = next(reader, None)
    except csv.Error as exc:
        raise _fatal(source, "unreadable", f"{display}, line 1: {exc}. Export the table again.")
    if not header_cells or not any(c.strip() for c in header_cells):
        raise _fatal(
            source,
            "no_header",
            f"{display}: line 1 must hold the column names, but it is empty. Put the column names in the first line.",
        )
    names, header_problems = _header(header_cells, source, "line 1")
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
                    f"{display}, line {previous + 1}: {exc}. Check the quotes on this line.",
                    index=previous + 1,
                )
            )
            break
        number, previous = previous + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        row = _row(names, cells, display, f"line {number}", number, problems)
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


def _row(names: list, cells: list, display: str, where: str, number: int, problems: list) -> dict:
    row = {}
    for i, value in enumerate(cells):
        text = value.strip() if isinstance(value, str) else value
        if i >= len(names):
            if text not in (None, ""):
                problems.append(
                    problem(
                        "bad_row",
                        f"{display}, {where}: has {len(cells)} cells but the header has "
                        f"{len(names)} columns; cell {i + 1} ({_preview(text)}) has no column. Check "
                        "for an unquoted comma or a missing column name.",
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


def _read_spatial(path: Path, *, encoding, layer, src_crs) -> Table:
    try:
        read, problems = read_vector_collecting(path, layer=layer, encoding=encoding, src_crs=src_crs)
    except VectorReadError as exc:
        raise TableReadError(exc.message, problems=exc.problems, notes=exc.notes, source=exc.source) from None
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
    for geom in gdf.geometry.values:
        if geom is not None and geom.geom_type == "GeometryCollection":
            geom = _polygonal_part(geom) or geom  # make_valid may leave slivers of lines beside polygons
        geometries.append(geom)
    return Table(
        columns=columns,
        rows=rows,
        numbers=[int(i) for i in gdf.index],
        unit="feature",
        geometries=geometries,
        lossy=lossy,
        notes=read.notes,
        problems=problems,
        source=read.source,
    )


# -- streaming CSV ------------------------------------------------------------------------------


def _decodes(path: Path, codec: str) -> bool:
    """True when the whole file decodes with `codec` (read block by block: memory stays flat)."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    try:
        with path.open("rb") as f:
            while block := f.read(_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _mixed_lines(path: Path) -> bool:
    """True when a file that is not UTF-8 as a whole has lines of UTF-8 Chinese too (see _utf8_and_not)."""
    utf8 = other = False
    with path.open("rb") as f:
        for line in f:
            if line.isascii():
                continue
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError:
                other = True
            else:
                utf8 = utf8 or any(ord(c) >= 0x800 for c in decoded)
            if utf8 and other:
                return True
    return False


def _streamable_codec(path: Path, forced: str | None, source: dict, notes: list) -> str | None:
    """Return the codec to stream the CSV with, the source's encoding set as `_decode_csv` sets it; None when
    the text does not decode cleanly (then the file is read whole, so that every bad line is named)."""
    with path.open("rb") as f:
        start = f.read(4)
    if forced is not None:
        codec = _codec(forced)
        if codec is None:
            raise _fatal(
                source, "unknown_encoding", f"unknown encoding {forced!r}: use e.g. UTF-8, GB18030, GBK or BIG5."
            )
        if codec == "utf-8" and start.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        if not _decodes(path, codec):
            return None
        source.update(encoding=codecs.lookup(codec).name.upper(), encoding_source="given")
        return codec
    for bom, codec in _BOMS:
        if start.startswith(bom):
            if not _decodes(path, codec):
                return None
            source.update(encoding=codecs.lookup(codec).name.upper(), encoding_source="byte order mark")
            return codec
    if _decodes(path, "utf-8"):
        source.update(encoding="UTF-8", encoding_source="detected")
        return "utf-8"
    if _decodes(path, "gb18030") and not _mixed_lines(path):
        source.update(encoding="GB18030", encoding_source="detected")
        notes.append(
            problem(
                "encoding",
                f"{source['display']}: the text is not UTF-8; it was decoded as GB18030 "
                "(covers GBK and GB2312, what Chinese Excel writes). Check a few names; if they look "
                "wrong, give the right encoding with --encoding.",
            )
        )
        return "gb18030"
    return None


def _nul_problem(display: str, where: str, number: int, name) -> dict:
    return problem(
        "nul_byte",
        f"{display}, {where}: column {name!r} holds a NUL byte (\\x00), which text "
        "cannot hold (often a sign of a binary file, or a UTF-16 file read as another encoding). "
        "Remove it, or export the table again as CSV UTF-8.",
        index=number,
        field=name,
    )


def _stream_csv(path: Path, encoding: str | None, source: dict, chunk_rows: int) -> TableStream:
    notes: list[dict] = []
    codec = _streamable_codec(path, encoding, source, notes)
    if codec is None:  # undecodable or mixed text: read whole to name every bad line (refused anyway)
        return _chunked(
            _read_csv(path, encoding, {k: source[k] for k in ("path", "display")}), chunk_rows, path.stat().st_size
        )
    with path.open(encoding=codec, newline="") as f:
        first_line = f.readline().rstrip("\r\n")
    delimiter = "\t" if path.suffix.lower() == ".tsv" or ("\t" in first_line and "," not in first_line) else ","
    source.update(driver="CSV", delimiter="tab" if delimiter == "\t" else "comma")
    display = source["display"]
    raw = path.open("rb")
    text = io.TextIOWrapper(raw, encoding=codec, newline="")
    nul = [False]

    def lines():
        for line in text:
            if "\x00" in line:
                nul[0] = True
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    try:
        header_cells = next(reader, None)
    except csv.Error as exc:
        raw.close()
        raise _fatal(source, "unreadable", f"{display}, line 1: {exc}. Export the table again.")
    if not header_cells or not any(c.strip() for c in header_cells):
        raw.close()
        raise _fatal(
            source,
            "no_header",
            f"{display}: line 1 must hold the column names, but it is empty. Put the column names in the first line.",
        )
    names, header_problems = _header(header_cells, source, "line 1")
    columns = [n for n in names if n is not None]
    header = Table(
        columns=columns, rows=[], numbers=[], unit="line", notes=notes, problems=header_problems, source=source
    )
    plain = None not in names
    source["rows"] = 0

    def chunks() -> Iterator[Table]:
        previous = reader.line_num
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
                                f"{display}, line {previous + 1}: {exc}. Check the quotes on this line.",
                                index=previous + 1,
                            )
                        )
                        broken = True
                        break
                    number, previous = previous + 1, reader.line_num
                    if plain and len(cells) == len(names):
                        row = {k: v.strip() or None for k, v in zip(names, cells)}
                        if not any(row.values()):
                            continue
                    else:
                        if not any(c.strip() for c in cells):
                            continue
                        row = _row(names, cells, display, f"line {number}", number, problems)
                    if nul[0]:
                        for k, v in row.items():
                            if v is not None and "\x00" in v:
                                problems.append(_nul_problem(display, f"line {number}", number, k))
                                row[k] = v.replace("\x00", "")
                    rows.append(row)
                    numbers.append(number)
                source["rows"] += len(rows)
                if rows or problems:
                    yield Table(
                        columns=columns, rows=rows, numbers=numbers, unit="line", problems=problems, source=source
                    )
                if broken:
                    return
        finally:
            raw.close()

    return TableStream(header, chunks(), path.stat().st_size, lambda: 0 if raw.closed else raw.tell())
