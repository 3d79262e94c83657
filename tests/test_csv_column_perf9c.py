"""csv_column's fast path (a column with no formula-like text goes to csv.writer as it is) writes the same bytes
as csv_row value by value: formula-like text anywhere in a column, behind a line break inside a value, at its
start, in a column of numbers and None."""

from __future__ import annotations

import csv
import io

import pytest

from gridkit.io.spreadsheet import csv_column, csv_row

COLUMNS = [
    ["王小明", None, "李大力", ""],
    [None, None],
    [1, 2.5, None, 7],
    ["a", "=SUM(A1)", "b"],
    ["a\n=SUM(A1)", "b"],  # a line break inside a value: not a formula, and written as it is
    ["x", "+86 138", "-3", "-x", "@me", "\tTab", "\rCR"],
    ["-1.5", "+2", "=3"],
    [None, 3, "=x", None],
    ["ok\n", "\nok"],
]


def _bytes(rows) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize("column", COLUMNS)
def test_a_column_is_written_as_its_values_one_by_one(column):
    assert _bytes(zip(csv_column(column))) == _bytes([csv_row([v]) for v in column])
