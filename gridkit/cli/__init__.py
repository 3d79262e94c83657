"""The `gridkit` command: parse, call one gridkit service, echo. Each command owns its transaction."""

from __future__ import annotations

import getpass
import json
import socket
import sys
from dataclasses import asdict
from datetime import datetime
from functools import wraps

import click

from gridkit import db
from gridkit.config import Settings, describe_settings
from gridkit.errors import GridkitError, SetupError, ValidationError


class GridkitGroup(click.Group):
    """A click group that turns GridkitError into one line on stderr and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GridkitError as exc:
            raise click.ClickException(exc.render(cli_language())) from None

    def list_commands(self, ctx):
        return list(self.commands)


# Nouns whose commands live in their own module, imported only when that command runs (as kart's
# MODULE_COMMANDS). Each module defines a click command or group named like the noun.
MODULE_COMMANDS: dict[str, str] = {
    "export": "gridkit.cli.export",
    "report": "gridkit.cli.report",
}


class LazyGroup(GridkitGroup):
    """The top-level group: nouns in MODULE_COMMANDS are imported when first used."""

    def list_commands(self, ctx):
        return list(self.commands) + [name for name in MODULE_COMMANDS if name not in self.commands]

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in MODULE_COMMANDS:
            import importlib

            module = importlib.import_module(MODULE_COMMANDS[name])
            command = getattr(module, name.replace("-", "_"))
            self.add_command(command, name)
        return command


def cli_language() -> str:
    """Return the language of the CLI's messages: GRIDKIT_LANG (zh-CN by default)."""
    import os

    from gridkit.messages import DEFAULT_LANGUAGE, normalise

    return normalise(os.environ.get("GRIDKIT_LANG")) or DEFAULT_LANGUAGE


def _settings(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Settings.from_env()
    return root.obj




def with_settings(func):
    """Pass the Settings built from the environment as the first argument."""
    @wraps(func)
    def wrapper(*args, **kwargs):
        return func(_settings(click.get_current_context()), *args, **kwargs)
    return wrapper


def actor() -> str:
    """Return who runs this command, for history and audit rows."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def echo_json(value) -> None:
    """Print `value` as indented UTF-8 JSON."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def echo_table(rows: list[dict], columns: list[str] | None = None) -> None:
    """Print rows as an aligned text table (CJK characters count double)."""
    if not rows:
        click.echo("(none)")
        return
    columns = columns or list(rows[0])

    def width(s: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)

    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(width(c), *(width(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def line(values):
        return "  ".join(v + " " * (w - width(v)) for v, w in zip(values, widths)).rstrip()

    click.echo(line(columns))
    click.echo(line(["-" * w for w in widths]))
    for row in cells:
        click.echo(line(row))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gridkit")
@click.pass_context
def main(ctx):
    """gridkit: the unified spatial base grid and departmental work grids for city grid management.

    \b
    Settings come from GRIDKIT_* environment variables (see `gridkit settings`).
    Without GRIDKIT_DATABASE_URL gridkit runs its own PostGIS under GRIDKIT_HOME.
    """
    try:
        if not isinstance(ctx.obj, Settings):
            ctx.obj = Settings.from_env()
    except GridkitError as exc:
        raise click.ClickException(exc.message) from None


@main.command("settings")
@json_option
def settings_cmd(as_json):
    """List every GRIDKIT_* setting with its default and meaning."""
    rows = [{"variable": v, "default": d, "meaning": h} for v, d, h in describe_settings()]
    echo_json(rows) if as_json else echo_table(rows)


# -- db -----------------------------------------------------------------------------------------

@main.group("db", cls=GridkitGroup)
def db_():
    """The database: start, stop, inspect gridkit's own PostGIS or check an external one."""


@db_.command("up")
@json_option
@with_settings
def db_up(settings, as_json):
    """Make the database ready: initdb, start, create, migrate (harmless when already done)."""
    done = db.up(settings)
    if as_json:
        echo_json(done)
        return
    if settings.embedded:
        cluster = db.cluster_for(settings)
        click.echo(f"embedded database {'started' if done['started'] else 'already running'} "
                   f"in {cluster.data_dir} (socket {cluster.socket_dir})")
    click.echo(f"schema {'migrated to' if done['migrated'] else 'already at'} {db.head_revision()}")


@db_.command("down")
@json_option
@with_settings
def db_down(settings, as_json):
    """Stop gridkit's own database server (never an external one)."""
    if not settings.embedded:
        raise SetupError("GRIDKIT_DATABASE_URL is set: gridkit does not run that server and will not stop it.")
    stopped = db.cluster_for(settings).stop()
    echo_json({"stopped": stopped}) if as_json else click.echo(
        "embedded database stopped" if stopped else "embedded database was not running")


@db_.command("status")
@json_option
@with_settings
def db_status(settings, as_json):
    """Report whether the database is running and at the current schema."""
    if settings.embedded:
        status = asdict(db.cluster_for(settings).status())
        status["mode"] = "embedded"
    else:
        status = {"mode": "external", "url": db.safe_url(db.database_url(settings))}
    status["schema_head"] = db.head_revision()
    status["schema_current"] = None
    if not settings.embedded or status["running"]:
        engine = db.make_engine(db.database_url(settings))
        try:
            db.check_connection(engine, what="the database")
            status["reachable"] = True
            status["schema_current"] = db.current_revision(engine)
        except SetupError as exc:
            status["reachable"] = False
            status["error"] = exc.message
        finally:
            engine.dispose()
    if as_json:
        echo_json(status)
        return
    for key, value in status.items():
        click.echo(f"{key:15} {value}")


@db_.command("url")
@with_settings
def db_url(settings):
    """Print the database URL gridkit uses (password hidden)."""
    click.echo(db.safe_url(db.database_url(settings)))


# -- admin units ----------------------------------------------------------------------------------

@main.group(cls=GridkitGroup)
def admin():
    """Admin units: city › district › street › community."""


@admin.command("list")
@click.option("--level", type=click.Choice(["city", "district", "street", "community"]))
@click.option("--parent", help="Only the children of this admin unit code.")
@json_option
@with_settings
def admin_list(settings, level, parent, as_json):
    """List admin units with their codes and areas."""
    from gridkit.admin import list_admin_units

    with db.transaction(settings) as session:
        rows = list_admin_units(session, level=level, parent=parent)
    echo_json(rows) if as_json else echo_table(rows)


def _file_options(func):
    """Options shared by every command that reads a vector file."""
    for option in reversed([
        click.option("--encoding", help="Text encoding of the attributes (default: .cpg, else UTF-8, else GB18030)."),
        click.option("--src-crs", help="CRS of a file that has none: EPSG code, PROJ string, WKT or gcj02."),
        click.option("--layer", help="Layer of a GeoPackage, or the shapefile inside a folder/zip."),
    ]):
        func = option(func)
    return func


def _run_import(settings: Settings, name: str, as_json: bool, work) -> None:
    """Run an import in one transaction; on refusal write the report and say where it is."""
    from gridkit.io.report import write_report

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


@admin.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--level", type=click.Choice(["city", "district", "street", "community"]),
              help="Level of every feature (default: from each code's length).")
@click.option("--code-field", required=True, help="Field holding the admin code.")
@click.option("--name-field", required=True, help="Field holding the name.")
@click.option("--parent-field", help="Field holding the parent's code (default: derived from the code).")
@click.option("--replace", is_flag=True, help="Update units whose code exists already.")
@_file_options
@json_option
@with_settings
def admin_import(settings, path, level, code_field, name_field, parent_field, replace, encoding, src_crs, layer,
                 as_json):
    """Import admin units from a Shapefile, GeoPackage or GeoJSON (all-or-nothing)."""
    from gridkit.grids.importer import import_admin_units

    _run_import(settings, "admin-import", as_json, lambda session: import_admin_units(
        session, path, level=level, code_field=code_field, name_field=name_field, parent_field=parent_field,
        encoding=encoding, src_crs=src_crs, replace=replace, layer=layer))


def _echo_problems(problems: list[dict], as_json: bool) -> None:
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


@admin.command("validate")
@json_option
@with_settings
def admin_validate(settings, as_json):
    """Check admin units: codes, parents, units outside their parent, overlapping siblings."""
    from gridkit.grids.validate import validate_admin_units

    with db.transaction(settings) as session:
        problems = [p.to_dict() for p in validate_admin_units(session)]
    _echo_problems(problems, as_json)


# -- base grid -------------------------------------------------------------------------------------

@main.group(cls=GridkitGroup)
def basegrid():
    """The unified base grid: editions and base cells."""


@basegrid.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--code-field", required=True, help="Field holding the base cell code.")
@click.option("--community-field", help="Field holding the community code (default: the code's first 12 digits).")
@click.option("--edition", help="Name of the new draft edition.")
@_file_options
@json_option
@with_settings
def basegrid_import(settings, path, code_field, community_field, edition, encoding, src_crs, layer, as_json):
    """Import base cells into a new draft edition (all-or-nothing)."""
    from gridkit.grids.importer import import_base_cells
    from gridkit.standard.codes import PROFILES

    _run_import(settings, "basegrid-import", as_json, lambda session: import_base_cells(
        session, path, code_field=code_field, community_field=community_field, edition=edition,
        encoding=encoding, src_crs=src_crs, layer=layer, profile=PROFILES[settings.code_profile]))


@basegrid.command("validate")
@click.option("--edition", help="Edition name (default: the published one, else the newest).")
@click.option("--sliver-m2", type=float, help="Cells smaller than this are slivers (default 50 m²).")
@json_option
@with_settings
def basegrid_validate(settings, edition, sliver_m2, as_json):
    """Check an edition: gaps, overlaps, slivers, cells outside their community, codes. Exit 0 only when clean."""
    from gridkit.grids.base import edition_named
    from gridkit.grids.validate import validate_base_grid

    with db.transaction(settings) as session:
        problems = [p.to_dict() for p in validate_base_grid(session, edition_named(session, edition),
                                                            sliver_m2=sliver_m2)]
    _echo_problems(problems, as_json)


@basegrid.command("renumber")
@click.option("--edition", required=True, help="Name of a draft edition.")
@click.option("--community", help="Only this community (12-digit code).")
@json_option
@with_settings
def basegrid_renumber(settings, edition, community, as_json):
    """Give a draft edition's cells codes by the rule: west→east, north→south inside each community."""
    from gridkit.grids.base import edition_named
    from gridkit.grids.validate import renumber_base_cells

    with db.transaction(settings) as session:
        changes = renumber_base_cells(session, edition_named(session, edition), community=community,
                                      profile=settings.code_profile)
    rows = [{"old": old, "new": new} for old, new in changes]
    echo_json(rows) if as_json else click.echo(f"{len(rows)} codes changed")


@basegrid.command("publish")
@click.option("--edition", required=True, help="Name of the draft edition to publish.")
@click.option("--sliver-m2", type=float, help="Sliver threshold for the validation (default 50 m²).")
@json_option
@with_settings
def basegrid_publish(settings, edition, sliver_m2, as_json):
    """Publish a draft edition (refused unless validation is clean); retire the current one; move subjects."""
    from gridkit.grids.base import edition_named
    from gridkit.grids.editions import publish_edition

    with db.transaction(settings) as session:
        result = publish_edition(session, edition_named(session, edition), sliver_m2=sliver_m2)
    if as_json:
        echo_json(result)
        return
    click.echo(f"edition {result['edition']} published" + (f"; {result['retired']} retired" if result["retired"] else ""))
    if "diff" in result:
        d = result["diff"]
        click.echo(f"cells added {d['added']}, removed {d['removed']}, reshaped {d['reshaped']}, unchanged {d['unchanged']}")
    echo_table([{"kind": k, **v} for k, v in result["subjects"].items()])


@basegrid.command("diff")
@click.argument("old")
@click.argument("new")
@json_option
@with_settings
def basegrid_diff(settings, old, new, as_json):
    """Compare two editions: cells added, removed and reshaped (matched by code)."""
    from gridkit.grids.base import edition_named
    from gridkit.grids.editions import diff_editions

    with db.transaction(settings) as session:
        result = diff_editions(session, edition_named(session, old), edition_named(session, new))
    if as_json:
        echo_json(result)
        return
    click.echo(f"{result['from']} → {result['to']}: {len(result['added'])} added, {len(result['removed'])} removed, "
               f"{len(result['reshaped'])} reshaped, {result['unchanged']} unchanged")
    rows = ([{"change": "added", "code": r["code"], "area_m2": r["area_m2"]} for r in result["added"]] +
            [{"change": "removed", "code": r["code"], "area_m2": r["area_m2"]} for r in result["removed"]] +
            [{"change": "reshaped", "code": r["code"], "area_m2": f"{r['old_area_m2']} → {r['new_area_m2']}"}
             for r in result["reshaped"]])
    if rows:
        echo_table(rows)


@basegrid.command("generate")
@click.option("--community", "communities", multiple=True, help="Community code (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Every community.")
@click.option("--roads", required=True, type=click.Path(exists=True), help="Road lines file.")
@click.option("--water", multiple=True, type=click.Path(exists=True), help="River/water file (repeatable).")
@click.option("--target-buildings", help="MIN-MAX buildings per cell (needs buildings loaded).")
@click.option("--target-area-m2", help="MIN-MAX area per cell in m².")
@click.option("--edition", help="Name of the new draft edition.")
@click.option("--paths", is_flag=True, help="Footways and paths cut cells too.")
@click.option("--src-crs", help="CRS of road/water files that have none: EPSG code, PROJ string or gcj02.")
@click.option("--encoding", help="Text encoding of the road/water attributes.")
@json_option
@with_settings
def basegrid_generate(settings, communities, all_, roads, water, target_buildings, target_area_m2, edition, paths,
                      src_crs, encoding, as_json):
    """Generate base cells along roads and rivers, to a target size, as a new draft edition."""
    from gridkit.grids.generate import Target, generate_base_grid

    if bool(communities) == all_:
        raise ValidationError("give --community CODE (one or more) or --all.")
    if (target_buildings is None) == (target_area_m2 is None):
        raise ValidationError("give one of --target-buildings MIN-MAX or --target-area-m2 MIN-MAX.")
    target = (Target.parse(target_buildings, "buildings") if target_buildings
              else Target.parse(target_area_m2, "area"))
    with db.transaction(settings) as session:
        report = generate_base_grid(session, communities=list(communities) or None, roads_path=roads,
                                    water_path=list(water) or None, target=target, edition_name=edition,
                                    profile=settings.code_profile, paths=paths, src_crs=src_crs, encoding=encoding)
    echo_json(report.as_dict()) if as_json else click.echo(report.text())


@basegrid.command("editions")
@json_option
@with_settings
def basegrid_editions(settings, as_json):
    """List base grid editions with their status and cell counts."""
    from gridkit.grids.base import list_editions

    with db.transaction(settings) as session:
        rows = list_editions(session)
    echo_json(rows) if as_json else echo_table(rows, ["name", "status", "cells", "published_at", "retired_at"])


@basegrid.command("cells")
@click.option("--edition", help="Edition name (default: the published one).")
@click.option("--community", help="Only the cells of this 12-digit community code.")
@json_option
@with_settings
def basegrid_cells(settings, edition, community, as_json):
    """List the base cells of an edition with their community and area."""
    from gridkit.grids.base import edition_named, list_base_cells

    with db.transaction(settings) as session:
        rows = list_base_cells(session, edition_named(session, edition), community=community)
    echo_json(rows) if as_json else echo_table(rows)


# -- departments and work grids ------------------------------------------------------------------------

@main.group(cls=GridkitGroup)
def dept():
    """Departments that own work grids (综治, 城管, 民政 …)."""


@dept.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--jurisdiction", help="Admin unit code the work grid must cover (default: the whole city).")
@json_option
@with_settings
def dept_add(settings, code, name, jurisdiction, as_json):
    """Add a department with a 6-digit CODE and a NAME."""
    from gridkit.grids.work import add_department

    with db.transaction(settings) as session:
        d = add_department(session, code, name, jurisdiction=jurisdiction)
        result = {"code": d.code, "name": d.name, "jurisdiction": d.jurisdiction_code}
    echo_json(result) if as_json else click.echo(f"department {code} {name} added")


@dept.command("list")
@json_option
@with_settings
def dept_list(settings, as_json):
    """List departments with their current work grid version."""
    from gridkit.grids.work import list_departments

    with db.transaction(settings) as session:
        rows = list_departments(session)
    echo_json(rows) if as_json else echo_table(rows)


@main.group(cls=GridkitGroup)
def workgrid():
    """Departmental work grids: drafts, editing, validation, publishing, history."""


@workgrid.command("history")
@click.option("--dept", "dept_code", required=True, help="Department code.")
@json_option
@with_settings
def workgrid_history(settings, dept_code, as_json):
    """List every version of a department's work grid."""
    from gridkit.grids.work import version_history

    with db.transaction(settings) as session:
        rows = version_history(session, dept_code)
    echo_json(rows) if as_json else echo_table(
        rows, ["id", "number", "status", "work_cells", "valid_from", "valid_to", "created_by"])


@workgrid.command("draft")
@click.option("--dept", "dept_code", required=True, help="Department code.")
@click.option("--from", "from_version", type=int, help="Version number to copy (default: the current one).")
@click.option("--note", help="What this draft is for.")
@json_option
@with_settings
def workgrid_draft(settings, dept_code, from_version, note, as_json):
    """Start a draft copied from the department's published work grid."""
    from gridkit.grids.work import start_draft

    with db.transaction(settings) as session:
        d = start_draft(session, dept_code, from_version=from_version, by=actor(), note=note)
        result = {"id": d.id, "dept": d.dept_code, "number": d.number, "revision": d.revision}
    echo_json(result) if as_json else click.echo(f"draft {result['id']} (version {result['number']}) started")


@workgrid.command("assign")
@click.option("--draft", "draft_id", type=int, required=True)
@click.option("--work-cell", "work_cell", required=True, help="20-digit work cell code.")
@click.option("--cells", help="Base cell codes, separated by commas.")
@click.option("--polygon", type=click.Path(exists=True), help="A polygon file: base cells mostly inside it.")
@click.option("--admin-unit", help="An admin unit code: all its base cells.")
@click.option("--share", type=float, default=0.5, show_default=True,
              help="With --polygon: the share of a base cell's area that must lie inside.")
@click.option("--name", help="Work cell name.")
@click.option("--revision", type=int, help="Refuse the change if the draft is no longer at this revision.")
@_file_options
@json_option
@with_settings
def workgrid_assign(settings, draft_id, work_cell, cells, polygon, admin_unit, share, name, revision,
                    encoding, src_crs, layer, as_json):
    """Put base cells (listed, inside a polygon, or of an admin unit) into a work cell of a draft."""
    from gridkit.grids.work import cells_in_admin_unit, cells_in_polygon, draft, set_members

    if sum(x is not None for x in (cells, polygon, admin_unit)) != 1:
        raise ValidationError("give exactly one of --cells, --polygon, --admin-unit.")
    with db.transaction(settings) as session:
        d = draft(session, draft_id)
        if cells is not None:
            codes = [c.strip() for c in cells.split(",") if c.strip()]
        elif admin_unit is not None:
            codes = cells_in_admin_unit(session, d, admin_unit)
        else:
            from gridkit.io.vector import read_vector

            shape = read_vector(polygon, encoding=encoding, src_crs=src_crs, layer=layer, multipart="keep").gdf
            codes = cells_in_polygon(session, d, shape.geometry.union_all(), threshold=share)
        if not codes:
            raise ValidationError("no base cells matched: nothing was changed.")
        set_members(session, d, work_cell, codes, name=name, expected_revision=revision, by=actor())
        result = {"draft": d.id, "work_cell": work_cell, "base_cells": codes, "revision": d.revision}
    echo_json(result) if as_json else click.echo(
        f"{len(codes)} base cells now in {work_cell} (draft {draft_id}, revision {result['revision']})")


@workgrid.command("exclude")
@click.option("--draft", "draft_id", type=int, required=True)
@click.option("--cells", required=True, help="Base cell codes, separated by commas.")
@click.option("--reason", required=True, help="Why they belong to no work cell (e.g. 水库, 军事管理区).")
@click.option("--revision", type=int, help="Refuse the change if the draft is no longer at this revision.")
@json_option
@with_settings
def workgrid_exclude(settings, draft_id, cells, reason, revision, as_json):
    """Leave base cells deliberately out of every work cell of a draft."""
    from gridkit.grids.work import draft, exclude_cells

    codes = [c.strip() for c in cells.split(",") if c.strip()]
    with db.transaction(settings) as session:
        d = draft(session, draft_id)
        n = exclude_cells(session, d, codes, reason, expected_revision=revision, by=actor())
        result = {"draft": d.id, "excluded": n, "revision": d.revision}
    echo_json(result) if as_json else click.echo(f"{n} base cells left out of draft {draft_id}")


@workgrid.command("balance")
@click.option("--draft", "draft_id", type=int, required=True)
@click.option("--cells", "n", type=int, required=True, help="How many work cells to make.")
@click.option("--by", type=click.Choice(["residents", "buildings", "incidents", "area"]), required=True,
              help="The load to even out.")
@click.option("--area", "area_code", help="Rebalance only this admin unit's base cells.")
@click.option("--within", type=click.Choice(["community"]), help="Never let a work cell cross a community boundary.")
@click.option("--revision", type=int, help="Refuse the change if the draft is no longer at this revision.")
@json_option
@with_settings
def workgrid_balance(settings, draft_id, n, by, area_code, within, revision, as_json):
    """Group contiguous base cells into N connected work cells with the load as even as possible (负载均衡)."""
    from gridkit.grids.balance import balance_draft, describe_balance
    from gridkit.grids.work import draft

    with db.transaction(settings) as session:
        result = balance_draft(session, draft(session, draft_id), n, by, area_code=area_code, within=within,
                               expected_revision=revision, actor=actor())
    echo_json(result.to_dict()) if as_json else click.echo(describe_balance(result))


@workgrid.command("diff")
@click.option("--dept", "dept_code", required=True)
@click.argument("old", type=int)
@click.argument("new", type=int)
@json_option
@with_settings
def workgrid_diff(settings, dept_code, old, new, as_json):
    """Compare two versions: moved base cells, added/removed work cells, coordinators, affected subjects."""
    from gridkit.grids.work import diff_versions

    with db.transaction(settings) as session:
        result = diff_versions(session, dept_code, old, new)
    if as_json:
        echo_json(result)
        return
    click.echo(f"version {old} → {new}: {len(result['moved'])} base cells moved, "
               f"{len(result['added_work_cells'])} work cells added, {len(result['removed_work_cells'])} removed, "
               f"{len(result['coordinator_changes'])} coordinator changes")
    a = result["subjects_changing_work_cell"]
    click.echo(f"changing work cell: {a['residents']} residents, {a['buildings']} buildings, "
               f"{a['open_incidents']} open incidents")
    if result["moved"]:
        echo_table(result["moved"])


@workgrid.command("rollback")
@click.option("--dept", "dept_code", required=True)
@click.option("--to", "to_number", type=int, required=True, help="Version number to restore.")
@json_option
@with_settings
def workgrid_rollback(settings, dept_code, to_number, as_json):
    """Publish a copy of an earlier version as a new version."""
    from gridkit.grids.work import rollback

    with db.transaction(settings) as session:
        v = rollback(session, dept_code, to_number, by=actor())
        result = {"dept": v.dept_code, "number": v.number, "copy_of": to_number, "valid_from": v.valid_from}
    echo_json(result) if as_json else click.echo(
        f"version {result['number']} (a copy of version {to_number}) is now in force for department {dept_code}")


@workgrid.command("validate")
@click.option("--draft", "draft_id", type=int, required=True)
@click.option("--coordinator-required", is_flag=True, help="A work cell without coordinator is an error.")
@json_option
@with_settings
def workgrid_validate(settings, draft_id, coordinator_required, as_json):
    """Check a draft; exit 0 only when it has no errors."""
    from gridkit.grids.work import draft, validate_version

    with db.transaction(settings) as session:
        problems = [p.to_dict() for p in validate_version(session, draft(session, draft_id),
                                                          coordinator_required=coordinator_required)]
    if as_json:
        echo_json(problems)
    else:
        for p in problems:
            codes = ", ".join(p["codes"][:8]) + (" …" if len(p["codes"]) > 8 else "")
            click.echo(f"{p['severity']:7} {p['type']}: {p['message']} {codes}")
        if not problems:
            click.echo("no problems")
    if any(p["severity"] == "error" for p in problems):
        sys.exit(1)


@workgrid.command("publish")
@click.option("--draft", "draft_id", type=int, required=True)
@click.option("--coordinator-required", is_flag=True, help="Refuse work cells without coordinator.")
@click.option("--revision", type=int, help="Refuse if the draft changed since this revision.")
@json_option
@with_settings
def workgrid_publish(settings, draft_id, coordinator_required, revision, as_json):
    """Publish a draft: it becomes immutable and valid from now."""
    from gridkit.grids.work import draft, publish

    with db.transaction(settings) as session:
        v = publish(session, draft(session, draft_id), by=actor(), coordinator_required=coordinator_required,
                    expected_revision=revision)
        result = {"id": v.id, "dept": v.dept_code, "number": v.number, "valid_from": v.valid_from}
    echo_json(result) if as_json else click.echo(
        f"version {result['number']} of department {result['dept']} published")


# -- coordinators -------------------------------------------------------------------------------------

@main.group(cls=GridkitGroup)
def coordinator():
    """Coordinators (网格员) and the work cells they cover."""


@coordinator.command("add")
@click.argument("name")
@click.option("--phone", required=True)
@click.option("--dept", "dept_code", required=True)
@click.option("--work-cell", "work_cells", required=True, help="Work cell codes, separated by commas.")
@json_option
@with_settings
def coordinator_add(settings, name, phone, dept_code, work_cells, as_json):
    """Add a coordinator covering work cells of a department's current work grid."""
    from gridkit.grids.work import add_coordinator

    codes = [c.strip() for c in work_cells.split(",") if c.strip()]
    with db.transaction(settings) as session:
        c = add_coordinator(session, name, phone, dept_code, codes)
        result = {"id": c.id, "name": c.name, "dept": dept_code, "work_cells": codes}
    echo_json(result) if as_json else click.echo(f"coordinator {c.id} {name} covers {', '.join(codes)}")


@coordinator.command("list")
@click.option("--dept", "dept_code", help="Only this department.")
@click.option("--show-phones", is_flag=True, help="Show phone numbers in clear (recorded in the audit log).")
@json_option
@with_settings
def coordinator_list(settings, dept_code, show_phones, as_json):
    """List coordinators and their work cells (phones masked unless --show-phones)."""
    from gridkit.audit import record
    from gridkit.grids.work import list_coordinators
    from gridkit.standard.ids import mask_phone

    with db.transaction(settings) as session:
        rows = list_coordinators(session, dept_code)
        if show_phones and rows:
            record(session, actor(), "personal_data.read", object_type="coordinator",
                   detail_fields=["phone"], count=len(rows), dept=dept_code)
    for row in rows:
        if row["phone"] and not show_phones:
            row["phone"] = mask_phone(row["phone"])
        row["work_cells"] = list(row["work_cells"])
    echo_json(rows) if as_json else echo_table(
        [dict(r, work_cells=",".join(r["work_cells"])) for r in rows])


# -- whois / assign / subjects ---------------------------------------------------------------------------

@main.command("whois")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--at", "at", help="ISO-8601 time (default: now); answers with the grids valid then.")
@click.option("--show-phones", is_flag=True, help="Show coordinators' phones in clear (audited).")
@json_option
@with_settings
def whois(settings, lon, lat, at, show_phones, as_json):
    """Tell who is responsible for a point (CGCS2000 LON LAT): base cell, community, work cells, coordinators."""
    from gridkit.audit import record
    from gridkit.grids.work import responsibility_at
    from gridkit.standard.ids import mask_phone

    when = _parse_time(at)
    with db.transaction(settings) as session:
        result = responsibility_at(session, lon, lat, when)
        if show_phones:
            record(session, actor(), "personal_data.read", object_type="coordinator",
                   detail_fields=["phone"], lon=lon, lat=lat)
    for d in result["departments"]:
        for c in d["coordinators"]:
            if c["phone"] and not show_phones:
                c["phone"] = mask_phone(c["phone"])
    if as_json:
        echo_json(result)
        return
    if result["base_cell"] is None:
        click.echo(f"({lon}, {lat}) is outside the base grid")
    else:
        click.echo(f"base cell  {result['base_cell']}")
        click.echo(f"community  {result['community']} {result['community_name']}")
    echo_table([{"dept": d["dept"], "name": d["dept_name"], "version": d["version"], "work_cell": d["work_cell"],
                 "coordinators": ", ".join(f"{c['name']} {c['phone'] or ''}".strip() for c in d["coordinators"])}
                for d in result["departments"]])


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"--at {value!r} is not an ISO-8601 time such as 2026-06-01T08:00+08:00.")
    if parsed.tzinfo is None:
        from zoneinfo import ZoneInfo

        parsed = parsed.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return parsed


KIND_CHOICE = click.Choice(["buildings", "residents", "entities", "incidents"])


@main.command("assign")
@click.option("--kind", type=KIND_CHOICE, multiple=True, help="Subject kind (repeatable; default all).")
@json_option
@with_settings
def assign(settings, kind, as_json):
    """Assign subjects to base cells of the published edition; report assigned/unassigned/changed."""
    from gridkit.assign import assign_subjects

    with db.transaction(settings) as session:
        result = assign_subjects(session, list(kind))
    echo_json(result) if as_json else echo_table([{"kind": k, **v} for k, v in result.items()])


@main.group(cls=GridkitGroup)
def subjects():
    """Subjects: buildings, residents, legal entities, incidents."""


@subjects.command("unassigned")
@click.option("--kind", type=KIND_CHOICE)
@click.option("--limit", type=int)
@json_option
@with_settings
def subjects_unassigned(settings, kind, limit, as_json):
    """List subjects that lie outside every base cell."""
    from gridkit.assign import unassigned_subjects

    with db.transaction(settings) as session:
        rows = unassigned_subjects(session, kind, limit)
    echo_json(rows) if as_json else echo_table(rows)


@subjects.command("stats")
@click.option("--by", type=click.Choice(["district", "street", "community", "cell", "work-cell"]),
              default="community", show_default=True)
@click.option("--dept", "dept_code", help="Department (needed with --by work-cell).")
@json_option
@with_settings
def subjects_stats(settings, by, dept_code, as_json):
    """Count residents, households, buildings and legal entities per unit."""
    from gridkit.subjects import subject_stats

    with db.transaction(settings) as session:
        rows = subject_stats(session, by, dept=dept_code)
    echo_json(rows) if as_json else echo_table(rows)


@subjects.command("responsible")
@click.option("--kind", type=KIND_CHOICE, required=True)
@click.argument("key")
@click.option("--at", "at", help="ISO-8601 time (default: now).")
@click.option("--show-phones", is_flag=True, help="Show coordinators' phones in clear (audited).")
@json_option
@with_settings
def subjects_responsible(settings, kind, key, at, show_phones, as_json):
    """Who is responsible for one subject (KEY: building code, credit code, incident code or citizen ID)."""
    from gridkit.audit import record
    from gridkit.pii import pii_key
    from gridkit.standard.ids import mask_phone
    from gridkit.subjects import responsibility_of_subject

    with db.transaction(settings) as session:
        result = responsibility_of_subject(session, kind, key, at=_parse_time(at),
                                           pii_key=pii_key(settings) if kind == "residents" else None)
        if show_phones:
            record(session, actor(), "personal_data.read", object_type=kind[:-1], object_id=result["id"],
                   detail_fields=["coordinator.phone"])
    for d in result["departments"]:
        for c in d["coordinators"]:
            if c["phone"] and not show_phones:
                c["phone"] = mask_phone(c["phone"])
    if as_json:
        echo_json(result)
        return
    click.echo(f"{kind[:-1]} {result['identity']}: base cell {result['base_cell'] or '(unassigned)'}")
    echo_table([{"dept": d["dept"], "name": d["dept_name"], "version": d["version"], "work_cell": d["work_cell"],
                 "coordinators": ", ".join(f"{c['name']} {c['phone'] or ''}".strip() for c in d["coordinators"])}
                for d in result["departments"]])


# -- import ---------------------------------------------------------------------------------------------

@main.group("import", cls=GridkitGroup)
def import_():
    """Import reference tables and subjects into the database (all-or-nothing)."""


@import_.command("categories")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@json_option
@with_settings
def import_categories(settings, path, as_json):
    """Add or update incident categories from a CSV (code,kind,major_code,major_name,name,time_limit_hours)."""
    from gridkit.incidents.categories import seed_categories

    with db.transaction(settings) as session:
        n = seed_categories(session, path)
    echo_json({"categories": n}) if as_json else click.echo(f"{n} categories imported from {path}")


def _subject_import_command(kind: str, help_: str):
    """Build `gridkit import KIND PATH …` for one subject kind."""

    @click.argument("path", type=click.Path(exists=True))
    @click.option("--map", "maps", multiple=True, metavar="FIELD=COLUMN",
                  help="Read FIELD from COLUMN (repeatable), e.g. --map id_number=身份证号.")
    @click.option("--sheet", help="Worksheet of an XLSX file (default: the first).")
    @_file_options
    @json_option
    @with_settings
    def command(settings, path, maps, sheet, encoding, src_crs, layer, as_json, **extra):
        from gridkit.io.subjects import import_subjects, parse_mapping
        from gridkit.pii import pii_key

        key = pii_key(settings) if kind == "residents" else None
        options = {"replace": True} if extra.get("replace") else {}
        _run_import(settings, f"{kind}-import", as_json, lambda session: import_subjects(
            session, kind, path, pii_key=key, mapping=parse_mapping(list(maps)), encoding=encoding,
            src_crs=src_crs, layer=layer, sheet=sheet, **options))

    command.__doc__ = help_
    if kind != "coordinators":
        command = click.option("--replace", is_flag=True, help="Update rows whose key exists already.")(command)
    return import_.command(kind)(command)


_subject_import_command("buildings", "Import buildings (code, address, lon/lat or footprint) from CSV, XLSX or a map file.")
_subject_import_command("residents", "Import residents (id_number, name, phone, household, population_type, building_code or lon/lat).")
_subject_import_command("entities", "Import legal entities (credit_code, name, lon, lat).")
_subject_import_command("coordinators", "Import a coordinator roster (name, phone, dept, work_cells separated by ';').")


# -- users ----------------------------------------------------------------------------------------------

@main.group(cls=GridkitGroup)
def user():
    """Users, their roles and the area they may see."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["admin", "planner", "coordinator", "supervisor", "analyst"]))
@click.option("--scope", help="Admin unit code the user is limited to (default: whole city).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@json_option
@with_settings
def user_add(settings, name, role, scope, password_stdin, as_json):
    """Add a user with a role (and optionally a scope and a password)."""
    from gridkit.users import add_user

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise ValidationError("--password-stdin was given but standard input held no password.")
    with db.transaction(settings) as session:
        u = add_user(session, name, role, scope=scope, password=password)
        result = {"id": u.id, "name": u.name, "role": u.role, "scope": u.scope_code, "has_password": password is not None}
    echo_json(result) if as_json else click.echo(f"user {name} ({role}{', ' + scope if scope else ''}) added")


@user.command("list")
@json_option
@with_settings
def user_list(settings, as_json):
    """List users with their roles and scopes."""
    from gridkit.users import list_users

    with db.transaction(settings) as session:
        rows = [{"name": u.name, "role": u.role, "scope": u.scope_code, "active": u.active,
                 "has_password": bool(u.password_hash)} for u in list_users(session)]
    echo_json(rows) if as_json else echo_table(rows)


# -- serve / demo ------------------------------------------------------------------------------------------

def check_port_free(host: str, port: int) -> None:
    """Raise SetupError if nothing can listen on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise SetupError(f"cannot listen on {host}:{port} ({exc.strerror}): stop the program using "
                             "that port, or choose another with --port or GRIDKIT_PORT.")


def _serve(settings: Settings, host: str | None, port: int | None) -> None:
    host = host or settings.host
    port = port or settings.port
    check_port_free(host, port)
    from web import create_app

    app = create_app(settings)
    click.echo(f"gridkit is serving on http://{host}:{port}/  (Ctrl+C stops it)")
    # waitress: a production WSGI server (threads, no debug reloader), pure Python.
    from waitress import serve as waitress_serve

    waitress_serve(app, host=host, port=port, threads=8, ident="gridkit", _quiet=True)


@main.command("serve")
@click.option("--host", help="Address to bind (default GRIDKIT_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default GRIDKIT_PORT, 5000).")
@with_settings
def serve(settings, host, port):
    """Serve the web application."""
    check_port_free(host or settings.host, port or settings.port)
    db.engine_for(settings)
    _serve(settings, host, port)


@main.command("demo")
@click.option("--serve/--no-serve", default=True, help="Serve the web app after loading (default: yes).")
@click.option("--host", help="Address to bind (default GRIDKIT_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default GRIDKIT_PORT, 5000).")
@json_option
@with_settings
def demo(settings, serve, host, port, as_json):
    """Load the demo city (Shenzhen, 福田区) into the database, then serve it on http://127.0.0.1:5000."""
    from gridkit.demo import DEMO_PASSWORD, DEMO_USERS, load_demo
    from gridkit.pii import pii_key

    if serve:
        check_port_free(host or settings.host, port or settings.port)
    db.up(settings)
    key = pii_key(settings)
    with db.transaction(settings) as session:
        if as_json:
            counts = load_demo(session, key)
        else:
            with click.progressbar(length=10, label="loading the demo city", show_pos=True,
                                   item_show_func=lambda s: s) as bar:
                counts = load_demo(session, key, progress=lambda label, n: bar.update(1, f"{label}: {n}"))
    if as_json:
        echo_json(counts)
    elif counts.get("already"):
        click.echo("the demo city is loaded already")
    else:
        click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))
        click.echo(f"demo users: {', '.join(u for u, _, _ in DEMO_USERS)} (password: {DEMO_PASSWORD})")
    if serve:
        _serve(settings, host, port)
if __name__ == "__main__":
    main()
