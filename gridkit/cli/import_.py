"""The `gridkit import` commands: reference tables and subjects."""

from __future__ import annotations

from pathlib import Path

import click

from gridkit import db
from gridkit.cli import GridkitGroup, file_options, output, say, with_settings
from gridkit.cli.common import run_import
from gridkit.incidents.categories import seed_categories
from gridkit.io.subjects import import_subjects, parse_mapping
from gridkit.pii import pii_key


@click.group("import", cls=GridkitGroup)
def import_():
    """Import reference tables and subjects into the database (all-or-nothing)."""


@import_.command("categories")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@output.command_output
@with_settings
def import_categories(settings, path):
    """Add or update incident categories from a CSV (code,kind,major_code,major_name,name,time_limit_hours)."""
    with db.transaction(settings) as session:
        n = seed_categories(session, path)
    return output.Result({"categories": n}, lines=[say("cli.import.categories", count=n, path=path)])


def _subject_import_command(kind: str, help_: str):
    """Build `gridkit import KIND PATH …` for one subject kind."""

    @click.argument("path", type=click.Path(exists=True))
    @click.option(
        "--map",
        "maps",
        multiple=True,
        metavar="FIELD=COLUMN",
        help="Read FIELD from COLUMN (repeatable), e.g. --map id_number=身份证号.",
    )
    @click.option("--sheet", help="Worksheet of an XLSX file (default: the first).")
    @file_options
    @output.command_output
    @with_settings
    def command(settings, path, maps, sheet, encoding, src_crs, layer, **extra):
        key = pii_key(settings) if kind == "residents" else None
        options = {"replace": True} if extra.get("replace") else {}
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        with output.progress(length=max(size, 1), label=say(f"cli.progress.{kind}")) as bar:

            def progress(done: int, total: int) -> None:  # bytes read (CSV), share of features (map files)
                if total and done > bar.pos:
                    bar.update(min(done, bar.length) - bar.pos)

            return run_import(
                settings,
                f"{kind}-import",
                lambda session: import_subjects(
                    session,
                    kind,
                    path,
                    pii_key=key,
                    mapping=parse_mapping(list(maps)),
                    encoding=encoding,
                    src_crs=src_crs,
                    layer=layer,
                    sheet=sheet,
                    progress=progress,
                    **options,
                ),
            )

    command.__doc__ = help_
    if kind != "coordinators":
        command = click.option("--replace", is_flag=True, help="Update rows whose key exists already.")(command)
    return import_.command(kind)(command)


_subject_import_command(
    "buildings", "Import buildings (code, address, lon/lat or footprint) from CSV, XLSX or a map file."
)
_subject_import_command(
    "residents", "Import residents (id_number, name, phone, household, population_type, building_code or lon/lat)."
)
_subject_import_command("entities", "Import legal entities (credit_code, name, lon, lat).")
_subject_import_command("coordinators", "Import a coordinator roster (name, phone, dept, work_cells separated by ';').")

# Components (部件) and historic incidents: their commands live with the incident noun.
from gridkit.cli.incident import import_components_command, import_incidents_command  # noqa: E402

import_.add_command(import_components_command)
import_.add_command(import_incidents_command)
