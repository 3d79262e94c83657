"""Text cells of the CSV and XLSX files gridkit writes stay text: a name or address that starts like a formula
('=HYPERLINK(…)', '+cmd|…', '@SUM(…)') is never run by Excel or WPS when the file is opened (CSV / formula
injection). Every CSV and XLSX writer passes its rows through here.

- XLSX: such a value is written as a string cell (openpyxl would otherwise store '=…' as a formula); the
  value itself is unchanged.
- XLSX cannot hold most control characters (XML 1.0 has no \x00-\x08, \x0b, \x0c, \x0e-\x1f): openpyxl refused
  the whole file for one address with a vertical tab (text pasted from Word). A vertical tab or form feed is
  written as the line break it stands for, the others are left out; CSV keeps them as they are.
- CSV has no cell types, so a text value starting with = + - @ or a tab / carriage return gets a leading
  apostrophe, which spreadsheets show as text and hide ("'=1+1" displays as =1+1). Numbers written as text
  ('-5', '+8') are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["NOT_IN_XLSX", "csv_column", "csv_row", "xlsx_row", "xlsx_text"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A text starting as a formula, in texts each behind a line break.
_FORMULA_LINE = re.compile(r"\n[=+\-@\t\r]")
# The control characters an XLSX cell cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE), and what stands for each.
NOT_IN_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_LINE_BREAKS = {"\x0b": "\n", "\x0c": "\n"}


def xlsx_text(value: str) -> str:
    """Return text an XLSX cell can hold: a vertical tab or form feed as a line break, other control
    characters left out (NOT_IN_XLSX)."""
    return NOT_IN_XLSX.sub(lambda m: _LINE_BREAKS.get(m.group(), ""), value)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_row(values: Iterable) -> list:
    """Return the row for csv.writer: None as an empty cell, formula-like text behind an apostrophe."""
    row = []
    for value in values:
        if value is None:
            value = ""
        elif isinstance(value, str) and value.startswith(_FORMULA_STARTS) and not _number(value):
            value = "'" + value
        row.append(value)
    return row


def csv_column(values: list) -> list:
    """Return the values of one column as `csv_row` returns each (one pass over a column of an export)."""
    # Most columns hold no formula-like text: one search over their text joined finds that (a line break inside a
    # value may start a false alarm, never hide one), and the column goes to csv.writer as it is (None is an
    # empty cell there too). Else every value is looked at.
    try:
        joined = "\n" + "\n".join(filter(None, values))  # a column of text (and None): no Python call per value
    except TypeError:  # numbers, dates: their text, if any
        joined = "\n" + "\n".join([v for v in values if isinstance(v, str)])
    if not _FORMULA_LINE.search(joined):
        return values
    return [
        ("'" + v if v.startswith(_FORMULA_STARTS) and not _number(v) else v)
        if isinstance(v, str)
        else ("" if v is None else v)
        for v in values
    ]


def xlsx_row(sheet, values: Iterable) -> list:
    """Return the row for sheet.append (normal or write-only): text starting with '=' as a string cell, control
    characters an XLSX cannot hold replaced (vertical tab, form feed) or left out."""
    from openpyxl.cell import WriteOnlyCell  # here: most callers of this module write CSV only

    row = []
    for value in values:
        if isinstance(value, str) and NOT_IN_XLSX.search(value):
            value = xlsx_text(value)
        if isinstance(value, str) and value.startswith("="):
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            value = cell
        row.append(value)
    return row
