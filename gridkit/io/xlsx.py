"""Read XLSX workbooks as streams of text rows (openpyxl, read-only): see gridkit.io.tables."""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path

from gridkit.io.problems import problem
from gridkit.io.tables import _BLOCK, _LOSSY_ABOVE, Table, TableStream, _fatal, _header, _row, at, cell_text, place
from gridkit.messages import Message

__all__ = ["stream_xlsx", "MAX_XLSX_BYTES", "MAX_XLSX_RATIO"]

# A workbook is a zip of XML parts that openpyxl parses as they unpack (shared strings, and any text
# between tags, whole in memory). Limits against a zip bomb, checked on the sizes the zip declares
# before anything is parsed (a member that unpacks past its declared size fails its CRC):
# all parts together unpack to at most MAX_XLSX_BYTES, and a part larger than _RATIO_CHECKED_ABOVE
# compresses at most MAX_XLSX_RATIO times (a real sheet compresses about 10 times; a bomb's
# repeated bytes about 1000 times).
MAX_XLSX_BYTES = 2 * 1024**3
MAX_XLSX_RATIO = 100
_RATIO_CHECKED_ABOVE = 64 * 1024**2
# What openpyxl's XML parsing raises on a damaged part: bad XML (also an entity bomb, which expat
# refuses, or an external entity, which it does not resolve), a CRC or deflate error, a cut-off file.
_DAMAGED = (SyntaxError, zipfile.BadZipFile, zlib.error, EOFError)


def _cell_text(value) -> tuple[str | None, bool]:
    """Return (text, lossy) for an Excel cell value."""
    if value is None:
        return None, False
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE"), False
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None, False
        lossy = abs(value) >= _LOSSY_ABOVE
        return (str(int(value)) if value.is_integer() else repr(value)), lossy
    if isinstance(value, int):
        return str(value), False
    if isinstance(value, (datetime, date, time)):
        return value.isoformat(), False
    text = cell_text(str(value))
    return text or None, False


def _has_formulas(path: Path) -> bool:
    """True when a worksheet of the workbook holds a formula (an <f> element), scanned without unpacking it whole."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                    continue
                with archive.open(name) as member:
                    tail = b""
                    while block := member.read(_BLOCK):
                        if b"<f>" in tail + block or b"<f " in tail + block:
                            return True
                        tail = block[-3:]
    except (zipfile.BadZipFile, OSError, KeyError, zlib.error, EOFError):
        return False  # a damaged part is refused when the rows are read
    return False


def column_letter(i: int) -> str:
    """Return the column letters of the 0-based column `i` (0 → A, 26 → AA), as a sheet names them."""
    letters = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        letters = chr(65 + r) + letters
    return letters


def stream_xlsx(path: Path, sheet: str | None, source: dict, chunk_rows: int) -> TableStream:
    """Open the workbook at `path` (sheet `sheet`, else the first) as a stream of Tables of `chunk_rows` rows."""
    from openpyxl import load_workbook

    display = source["display"]
    _check_sizes(path, source)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (KeyError, OSError, ValueError, *_DAMAGED) as exc:
        raise _unreadable(source, exc) from None
    notes: list[dict] = []
    books = [workbook]
    try:
        chosen = _sheet(workbook.sheetnames, sheet, display, source, notes)
        source.update(driver="XLSX", sheet=chosen, encoding="UTF-8", encoding_source="xlsx")
        rows_iter = workbook[chosen].iter_rows(values_only=True)
        header_cells = next(rows_iter, None)
        if header_cells is None or not any(_cell_text(v)[0] for v in header_cells):
            raise _fatal(source, "no_header", "xlsx_no_header", file=display, sheet=chosen)
        formulas = None
        if _has_formulas(path):
            # Formulas the file holds without a computed value read as empty: find them to refuse them.
            books.append(load_workbook(path, read_only=True, data_only=False))
            formulas = books[-1][chosen].iter_rows(values_only=True)
            next(formulas, None)
    except BaseException:
        workbook.close()
        raise
    names, header_problems = _header([_cell_text(v)[0] for v in header_cells], source, "row")
    header = Table(
        columns=[n for n in names if n is not None],
        rows=[],
        numbers=[],
        unit="row",
        notes=notes,
        problems=header_problems,
        source=source,
    )
    source["rows"] = 0
    progress = [0]
    chunks = _xlsx_chunks(rows_iter, formulas, names, header.columns, source, chunk_rows, progress, books)
    return TableStream(header, chunks, 0, lambda: progress[0])


def _check_sizes(path: Path, source: dict) -> None:
    """Refuse a workbook whose parts unpack past MAX_XLSX_BYTES, or a large part compressed like a zip bomb."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _unreadable(source, exc) from None
    display = source["display"]
    if sum(m.file_size for m in members) > MAX_XLSX_BYTES:
        raise _fatal(source, "too_large", "xlsx_too_large", file=display, gb=MAX_XLSX_BYTES // 1024**3)
    for m in members:
        if m.file_size > _RATIO_CHECKED_ABOVE and m.file_size > MAX_XLSX_RATIO * max(m.compress_size, 1):
            mb, ratio = m.file_size // 1024**2, m.file_size // max(m.compress_size, 1)
            raise _fatal(source, "zip_bomb", "xlsx_zip_bomb", file=display, member=m.filename, mb=mb, ratio=ratio)


def _unreadable(source: dict, exc: BaseException):
    return _fatal(source, "unreadable", "xlsx_unreadable", file=source["display"], error=str(exc) or type(exc).__name__)


def _sheet(sheets: list[str], sheet: str | None, display: str, source: dict, notes: list) -> str:
    """Return the sheet to read: `sheet` (refused if absent), else the first one (noted when there are more)."""
    if sheet is not None:
        if sheet not in sheets:
            raise _fatal(source, "no_such_sheet", "no_such_sheet", file=display, sheet=sheet, sheets=", ".join(sheets))
        return sheet
    if len(sheets) > 1:
        notes.append(
            problem(
                "sheet",
                Message(
                    "imports.first_sheet", file=display, count=len(sheets), sheets=", ".join(sheets), first=sheets[0]
                ),
            )
        )
    return sheets[0]


def _xlsx_chunks(rows_iter, formulas, names, columns, source, chunk_rows, progress, books) -> Iterator[Table]:
    """Yield the rows below the header in Tables of at most `chunk_rows` rows; close the workbooks at the end."""
    display = source["display"]
    try:
        number = 1
        rows_iter = _undamaged(rows_iter, source)
        if formulas is not None:
            formulas = _undamaged(formulas, source)
        while True:
            rows, numbers, problems, lossy, dates = [], [], [], set(), set()
            ended = True
            for values in rows_iter:
                number += 1
                texts = [_cell_text(v) for v in values]
                missing = _uncomputed(next(formulas, ()), values) if formulas is not None else []
                if not any(t for t, _ in texts) and not missing:
                    continue
                position = len(rows)
                for i, (_, is_lossy) in enumerate(texts):
                    if i < len(names) and names[i] is not None:
                        if is_lossy:
                            lossy.add((position, names[i]))
                        if isinstance(values[i], (datetime, date)):
                            dates.add((position, names[i]))
                problems.extend(_formula_problem(display, number, i, names) for i in missing)
                rows.append(_row(names, [t for t, _ in texts], display, "row", number, problems))
                numbers.append(number)
                if len(rows) >= chunk_rows:
                    ended = False
                    break
            source["rows"] += len(rows)
            progress[0] = number
            if rows or problems:
                yield Table(
                    columns=columns,
                    rows=rows,
                    numbers=numbers,
                    unit="row",
                    lossy=lossy,
                    dates=dates,
                    problems=problems,
                    source=source,
                )
            if ended:
                return
    finally:
        for book in books:
            book.close()


def _undamaged(rows: Iterator, source: dict) -> Iterator:
    """Yield the rows of `rows`; a part found damaged while it is read is the whole file's error, not a traceback."""
    try:
        yield from rows
    except _DAMAGED as exc:
        raise _unreadable(source, exc) from None


def _formula_problem(display: str, number: int, i: int, names: list) -> dict:
    name = names[i] if i < len(names) else None
    return problem(
        "formula_without_value",
        at(place(display, "row", number), Message("imports.formula", cell=f"{column_letter(i)}{number}", column=name)),
        index=number,
        field=name,
    )


def _uncomputed(formula_values, values) -> list[int]:
    """Return the positions of cells holding a formula whose computed value the file does not have."""
    return [
        i
        for i, (f, v) in enumerate(zip(formula_values, values))
        if v is None and isinstance(f, str) and f.startswith("=")
    ]
