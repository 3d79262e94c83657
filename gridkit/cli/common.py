"""Helpers shared by the nouns that need gridkit services: imports with reports, problem lists."""

from __future__ import annotations

import sys

import click

from gridkit import db
from gridkit.cli.output import echo_json, echo_table  # noqa: F401
from gridkit.config import Settings
from gridkit.errors import ValidationError
from gridkit.io.report import write_report

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def run_import(settings: Settings, name: str, as_json: bool, work) -> None:
    """Run an import in one transaction; on refusal write the report and say where it is."""
    try:
        with db.transaction(settings) as session:
            result = work(session)
            summary = result.summary()
    except ValidationError as exc:
        json_path, text_path = write_report(settings.home, name, exc.problems, getattr(exc, "notes", []),
                                            {"refused": True, "message": exc.message})
        message = exc.message if "Nothing was imported" in exc.message else f"{exc.message} Nothing was imported."
        raise ValidationError(f"{message} Report: {text_path} (JSON: {json_path})",
                              problems=exc.problems) from None
    json_path, text_path = write_report(settings.home, name, [], result.notes, summary)
    summary["report"] = str(json_path)
    summary["notes"] = len(result.notes)
    if as_json:
        echo_json(summary)
        return
    click.echo(", ".join(f"{k} {v}" for k, v in summary.items() if k not in ("report", "notes")))
    if result.notes:
        click.echo(f"{len(result.notes)} notes (repairs, dropped Z …): see {text_path}")


def echo_problems(problems: list[dict], as_json: bool) -> None:
    """Print validation problems (JSON list, or one line each) and exit 1 if there are any."""
    if as_json:
        echo_json(problems)
    elif not problems:
        click.echo("no problems")
    else:
        for p in problems:
            area = f" {p['area_m2']} m²" if p.get("area_m2") is not None else ""
            click.echo(f"{p['type']:20} {','.join(p['codes'])}{area}: {p['message']}")
        click.echo(f"{len(problems)} problems")
    if problems:
        sys.exit(1)
