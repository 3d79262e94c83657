"""Incident and component category table: a seed CSV that a deployment can extend.

The seed (`categories.csv` next to this module) follows the common lists of GB/T 30428.2 and
CJ/T 214: components (部件) are coded major + minor ('0101' 上水井盖), events (事件) the same
with an 'E' prefix ('E0101' 暴露垃圾). Minor numbers are this seed's own, not the standards'.
time_limit_hours is the handling time (dispatch → feedback). Optional columns: dept_code, the
department responsible by default (6 digits), and accept_hours, classify_hours, dispatch_hours,
verify_hours, the time allowed for the other steps (empty: STEP_DEFAULT_HOURS), and clock, how the
limits count: working (工作时, in the deployment's working hours: gridkit.incidents.worktime) or
around_the_clock (全天); empty: around the clock for the event major class 突发事件 (urgent cases),
working time for every other category.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from gridkit.standard import InvalidValue
from gridkit.standard.codes import COMPONENT_MAJOR_CLASSES

__all__ = [
    "CATEGORIES_CSV",
    "CLOCKS",
    "COLUMNS",
    "KINDS",
    "OPTIONAL_COLUMNS",
    "STEP_DEFAULT_HOURS",
    "Category",
    "load_categories",
    "categories_from_rows",
]

CATEGORIES_CSV = Path(__file__).with_name("categories.csv")
COLUMNS = ("code", "kind", "major_code", "major_name", "name", "time_limit_hours")
KINDS = ("component", "event")
# Steps with their own time limit besides handling (time_limit_hours), and their default hours (working hours
# unless the category runs around the clock: verify within a working day).
STEP_DEFAULT_HOURS = {"accept": 2, "classify": 2, "dispatch": 4, "verify": 8}
OPTIONAL_COLUMNS = ("dept_code", *(f"{step}_hours" for step in STEP_DEFAULT_HOURS), "clock")
# The words the clock column may hold → around the clock or not; empty: URGENT_MAJOR_NAME's events run around it.
CLOCKS = {"working": False, "工作时": False, "around_the_clock": True, "全天": True}
URGENT_MAJOR_NAME = "突发事件"

_CODE_PATTERN = {"component": re.compile(r"(\d{2})(\d{2})"), "event": re.compile(r"E(\d{2})(\d{2})")}


@dataclass(frozen=True)
class Category:
    """One incident/component category: code, kind, major class and handling time limit."""

    code: str
    kind: str
    major_code: str
    major_name: str
    name: str
    time_limit_hours: int
    dept_code: str | None = None
    step_hours: tuple[tuple[str, int], ...] = tuple(STEP_DEFAULT_HOURS.items())
    around_the_clock: bool = False


def _parse_row(row: dict[str, str]) -> Category:
    """Return the Category a CSV row describes, or raise InvalidValue naming the bad field."""
    values = {key: (row.get(key) or "").strip() for key in COLUMNS}
    for key, value in values.items():
        if not value:
            raise InvalidValue("category.empty", field=key)
    kind = values["kind"]
    if kind not in KINDS:
        raise InvalidValue("category.kind", kind=kind, kinds=", ".join(KINDS))
    code, major_code = values["code"], values["major_code"]
    match = _CODE_PATTERN[kind].fullmatch(code)
    if not match:
        example = "0101" if kind == "component" else "E0101"
        raise InvalidValue("category.code_format", kind=kind, code=code, example=example)
    if match.group(1) != major_code:
        raise InvalidValue("category.code_major", code=code, major=major_code)
    if major_code == "00" or match.group(2) == "00":
        raise InvalidValue("category.code_zero", code=code)
    # Component categories become digits 7-10 of a 16-digit component code, whose major is 01-06.
    if kind == "component" and major_code not in COMPONENT_MAJOR_CLASSES:
        raise InvalidValue("category.component_major", major=major_code)
    try:
        hours = int(values["time_limit_hours"])
    except ValueError:
        raise InvalidValue("category.hours_not_whole", hours=values["time_limit_hours"]) from None
    if hours <= 0:
        raise InvalidValue("category.hours_not_positive", hours=hours)
    dept_code = (row.get("dept_code") or "").strip() or None
    if dept_code is not None and not re.fullmatch(r"\d{6}", dept_code):
        raise InvalidValue("category.dept_code", dept_code=dept_code)
    clock = (row.get("clock") or "").strip()
    if clock and clock.lower() not in CLOCKS:
        raise InvalidValue("category.clock", clock=clock, clocks=", ".join(CLOCKS))
    around = CLOCKS[clock.lower()] if clock else (kind == "event" and values["major_name"] == URGENT_MAJOR_NAME)
    return Category(
        code, kind, major_code, values["major_name"], values["name"], hours, dept_code, _step_hours(row), around
    )


def _step_hours(row: dict[str, str]) -> tuple[tuple[str, int], ...]:
    """Return ((step, hours), …) from the optional *_hours columns, defaults where empty."""
    result = []
    for step, default in STEP_DEFAULT_HOURS.items():
        raw = (row.get(f"{step}_hours") or "").strip()
        if not raw:
            result.append((step, default))
            continue
        try:
            hours = int(raw)
        except ValueError:
            raise InvalidValue("category.step_hours_not_whole", step=step, hours=raw) from None
        if hours <= 0:
            raise InvalidValue("category.step_hours_not_positive", step=step, hours=hours)
        result.append((step, hours))
    return tuple(result)


def load_categories(path: str | Path | None = None) -> list[Category]:
    """Return the categories in a CSV file (default: the packaged seed), in file order.

    Raises InvalidValue (a ValueError) naming the file and line of the first bad row: a missing column, bad code,
    unknown kind, duplicate code, a major class named two ways, or a non-positive time limit.
    """
    path = Path(path) if path is not None else CATEGORIES_CSV
    # utf-8-sig: a table saved from Excel starts with a BOM.
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = tuple(name.strip() for name in reader.fieldnames or ())
        return categories_from_rows(header, ((reader.line_num, row) for row in reader), path)


def categories_from_rows(header, rows, path) -> list[Category]:
    """Return the categories of (line number, row dict) pairs read from the file at `path` with columns `header`;
    raise InvalidValue as `load_categories` does."""
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InvalidValue("category.header", path=str(path), columns=", ".join(COLUMNS), missing=", ".join(missing))
    categories: list[Category] = []
    seen: dict[str, int] = {}
    major_names: dict[tuple[str, str], tuple[str, int]] = {}
    for line, row in rows:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # a blank line at the end of a hand-edited file
        if None in row:
            raise InvalidValue("category.extra_fields", path=str(path), line=line, columns=len(header))
        try:
            category = _parse_row(row)
        except InvalidValue as exc:
            raise InvalidValue("category.bad_row", path=str(path), line=line, reason=exc.as_message()) from None
        if category.code in seen:
            raise InvalidValue(
                "category.duplicate", path=str(path), line=line, code=category.code, first=seen[category.code]
            )
        seen[category.code] = line
        major_key = (category.kind, category.major_code)
        known = major_names.setdefault(major_key, (category.major_name, line))
        if known[0] != category.major_name:
            raise InvalidValue(
                "category.major_renamed",
                path=str(path),
                line=line,
                kind=category.kind,
                major=category.major_code,
                name=category.major_name,
                first_name=known[0],
                first_line=known[1],
            )
        categories.append(category)
    if not categories:
        raise InvalidValue("category.none", path=str(path))
    return categories
