"""The `gridkit workgrid` commands: departmental work grid versions."""

from __future__ import annotations

import sys

import click

from gridkit import db
from gridkit.cli import GridkitGroup, actor, file_options, with_settings
from gridkit.cli.common import echo_json, echo_table, json_option
from gridkit.errors import ValidationError


@click.group(cls=GridkitGroup)
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
@file_options
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
