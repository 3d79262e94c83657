"""Text cells of the CSV and XLSX files gridkit writes stay text: a name or address that starts like a formula
('=HYPERLINK(…)', '+cmd|…', '@SUM(…)') is never run by Excel or WPS when the file is opened (CSV / formula
injection). Every CSV and XLSX writer passes its rows through here.

- XLSX: such a value is written as a string cell (openpyxl would otherwise store '=…' as a formula); the
  value itself is unchanged.
- CSV has no cell types, so a text value starting with = + - @ or a tab / carriage return gets a leading
  apostrophe, which spreadsheets show as text and hide ("'=1+1" displays as =1+1). Numbers written as text
  ('-5', '+8') are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["csv_column", "csv_row", "xlsx_row"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
    return [
        ("'" + v if v.startswith(_FORMULA_STARTS) and not _number(v) else v)
        if isinstance(v, str)
        else ("" if v is None else v)
        for v in values
    ]


def xlsx_row(sheet, values: Iterable) -> list:
    """Return the row for sheet.append (normal or write-only): text starting with '=' as a string cell."""
    from openpyxl.cell import WriteOnlyCell  # here: most callers of this module write CSV only

    row = []
    for value in values:
        if isinstance(value, str) and value.startswith("="):
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            value = cell
        row.append(value)
    return row
