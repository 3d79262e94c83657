"""How a CSV file is written: its delimiter (comma, semicolon or tab), read from its header line, and the
decimal commas a semicolon-separated file may hold (Excel's CSV where the comma is the decimal mark).

One rule for every CSV reader: subjects (gridkit.io.csvtable) and historic cases (gridkit.incidents).
"""

from __future__ import annotations

import re
from pathlib import Path

DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon"}


def csv_delimiter(path: Path, first_line: str) -> str:
    """Return the delimiter: a tab for .tsv files and for a header with tabs and no comma; a semicolon for a
    header with semicolons and neither (what Excel writes where the comma is the decimal mark); else a comma."""
    if path.suffix.lower() == ".tsv" or ("\t" in first_line and "," not in first_line):
        return "\t"
    if ";" in first_line and "," not in first_line and "\t" not in first_line:
        return ";"
    return ","


# A number written with a decimal comma (114,05): digits, one comma, digits. In a semicolon-separated file
# the comma cannot be the delimiter, so it is the decimal mark (Excel's CSV where the comma is the decimal
# mark: most of Europe); elsewhere it is refused, saying so (imports.decimal_comma).
_DECIMAL_COMMA = r"^(\s*[+-]?\d+),(\d+\s*)$"
_DECIMAL_POINT = r"\1.\2"


def reads_decimal_commas(delimiter: str | None) -> bool:
    """Return whether a CSV with this delimiter (the character, or its name in a table's source) has its
    numbers read with a decimal comma: a semicolon-separated one."""
    return delimiter in (";", DELIMITER_NAMES[";"])


def decimal_points(values):
    """Return `values` (a pyarrow string array, or a pandas Series of text) with each number written with a
    decimal comma written with a point instead (114,05 → 114.05); any other text as it was."""
    if hasattr(values, "str"):
        return values.str.replace(_DECIMAL_COMMA, _DECIMAL_POINT, regex=True)
    import pyarrow.compute as pc

    return pc.replace_substring_regex(values, _DECIMAL_COMMA, _DECIMAL_POINT)


def has_decimal_comma(text) -> bool:
    """Return whether `text` is a number written with a decimal comma (114,05)."""
    return isinstance(text, str) and re.match(_DECIMAL_COMMA, text) is not None
