"""The one writer of the CLI: a command returns a `Result`; `--json` or text is decided here.

    @incident.command("show")
    @output.command_output
    def show(settings, incident_id):
        data = incidents.show(...)
        return output.Result(data, lines=[f"state  {data['state']}"])

Commands never branch on `--json`. Progress bars (`output.progress`) are hidden with `--json`
or when stderr is not a terminal.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import wraps
from pathlib import Path

import click

from gridkit.cli.language import say
from gridkit.messages import catalogue
from gridkit.rules import local_tz


@dataclass
class Result:
    """What a command reports: `data` for JSON; `lines` and/or a table of `rows` for text."""

    data: object
    lines: list[str] = field(default_factory=list)
    rows: list[dict] | None = None
    columns: list[str] | None = None
    exit_code: int = 0


def _json_default(value):
    if isinstance(value, datetime):
        return _local(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, tuple, frozenset)):
        return list(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _local(value: datetime) -> datetime:
    """Return an aware time in the city's time zone (the database's sessions may run in another zone); naive stays."""
    return value.astimezone(local_tz()) if value.tzinfo is not None else value


def echo_json(value) -> None:
    """Print `value` as indented UTF-8 JSON."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=_json_default))


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def heading(column: str) -> str:
    """Return the heading of table column `column`: message `cli.column.<column>` in the CLI's language.

    A column without a message (a report's columns, already labelled) is headed by its own name.
    """
    key = f"cli.column.{column}"
    return say(key) if key in catalogue("en") else column


# Columns whose values are codes with a name in the catalogue (`<prefix>.<value>`); text only, JSON keeps the code.
VALUE_NAMES = {
    "status": "grids.state",
    "role": "role",
    "state": "incident.state",
    "step": "incident.step",
    "kind": "cli.kind",
    "mode": "cli.db.mode",  # `gridkit db status`: the embedded cluster or an external server
    "incident_states": "incident.state",  # a dict of counts by state: its keys are named
    "level": "geometry.level",  # admin levels: 市, 区, 街道, 社区
    "levels": "geometry.level",  # an admin import's counts by level
}


def cell(value, column: str | None = None) -> str:
    """Return `value` as table text in the CLI's language: nothing for None, yes/no, a code's name."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return say("cli.yes" if value else "cli.no")
    if isinstance(value, dict):  # counts by code (a demo's cases by state): "name count" pairs
        items = say("cli.pairs.counts_between").join(f"{cell(k, column)} {cell(v)}" for k, v in value.items())
        return say("cli.pairs.counts", items=items)
    if isinstance(value, (list, tuple)):  # rows of a file (an import's unassigned rows): never Python's [1, 2]
        return say("cli.list.between").join(cell(v, column) for v in value) if value else say("cli.list.empty")
    if isinstance(value, datetime):
        return str(_local(value))
    prefix = VALUE_NAMES.get(column)
    if prefix and f"{prefix}.{value}" in catalogue("en"):
        return say(f"{prefix}.{value}")
    return str(value)


def pairs(values: dict) -> str:
    """Return `values` as one line of "heading value" pairs in the CLI's language (an import's counts),
    punctuated as the catalogue says (full-width in Chinese)."""
    return say("cli.pairs.between").join(f"{heading(k)} {cell(v, k)}" for k, v in values.items())


def field_lines(values: dict) -> list[str]:
    """Return `values` as aligned "heading  value" lines in the CLI's language (a status); each value
    is named by its column, as in `pairs` and tables."""
    headings = {k: heading(k) for k in values}
    width = max((_width(h) for h in headings.values()), default=0)
    return [f"{headings[k]}{' ' * (width - _width(headings[k]))}  {cell(v, k)}" for k, v in values.items()]


def echo_table(rows: list[dict], columns: list[str] | None = None) -> None:
    """Print rows as an aligned text table under headings in the CLI's language (CJK characters count double)."""
    if not rows:
        click.echo(say("cli.no_rows"))
        return
    columns = columns or list(rows[0])
    cells = [[cell(r.get(c), c) for c in columns] for r in rows]
    headings = [heading(c) for c in columns]
    widths = [max(_width(h), *(_width(row[i]) for row in cells)) for i, h in enumerate(headings)]

    def line(values):
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True)).rstrip()

    click.echo(line(headings))
    click.echo(line(["-" * w for w in widths]))
    for row in cells:
        click.echo(line(row))


def write(result: Result, as_json: bool) -> None:
    """Print `result` as JSON or as text lines and a table."""
    if as_json:
        echo_json(result.data)
    else:
        for text in result.lines:
            click.echo(text)
        if result.rows is not None:
            echo_table(result.rows, result.columns)
    if result.exit_code:
        sys.exit(result.exit_code)


def wants_json() -> bool:
    """True when the running command was given --json."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get("gridkit.json"))


def command_output(func):
    """Add --json to a command; print the `Result` it returns through `write`."""

    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
    @wraps(func)
    def wrapper(*args, as_json=False, **kwargs):
        click.get_current_context().meta["gridkit.json"] = as_json
        result = func(*args, **kwargs)
        if result is not None:
            write(result if isinstance(result, Result) else Result(result), as_json)

    return wrapper


def progress(length: int | None = None, label: str = "", iterable=None, **options):
    """Return a click progress bar on stderr, hidden with --json or when stderr is not a terminal.

    `options` go to `click.progressbar` (e.g. `item_show_func`, `show_pos`).
    """
    hidden = wants_json() or not sys.stderr.isatty()
    return click.progressbar(iterable, length=length, label=label, file=sys.stderr, hidden=hidden, **options)


@contextmanager
def progress_callback(label: str = ""):
    """Yield a `progress(done, total)` callback for a service that finds its total as it goes, drawing a
    progress bar as `progress` does (hidden with --json or off a terminal); `done` past the total is shown
    as the total."""
    with progress(length=1, label=label) as bar:

        def report(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(min(done, bar.length) - bar.pos)

        yield report
