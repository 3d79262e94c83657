"""The `gridkit workgrid` commands: departmental work grid versions."""

from __future__ import annotations

import click

from gridkit import db, rules
from gridkit.cli import GridkitGroup, actor, cli_language, codes_list, file_options, output, say, with_settings
from gridkit.cli.common import run_import
from gridkit.errors import ValidationError
from gridkit.grids.balance import balance_draft, describe_balance
from gridkit.grids.work import (
    cells_in_admin_unit,
    cells_in_polygon,
    diff_versions,
    draft,
    exclude_cells,
    polygon_in_file,
    publish,
    rollback,
    set_members,
    start_draft,
    validate_version,
    version_history,
)
from gridkit.grids.work.import_polygons import import_work_cells

REVISION = click.option("--revision", type=int, help="Refuse the change if the draft is no longer at this revision.")


@click.group(cls=GridkitGroup)
def workgrid():
    """Departmental work grids: drafts, editing, validation, publishing, history."""


@workgrid.command("history")
@click.option("--dept", "dept_code", required=True, help="Department code.")
@output.command_output
@with_settings
def workgrid_history(settings, dept_code):
    """List every version of a department's work grid."""
    with db.transaction(settings) as session:
        rows = version_history(session, dept_code)
    return output.Result(
        rows, rows=rows, columns=["id", "number", "status", "work_cells", "valid_from", "valid_to", "created_by"]
    )


@workgrid.command("draft")
@click.option("--dept", "dept_code", required=True, help="Department code.")
@click.option("--from", "from_version", type=int, help="Version number to copy (default: the current one).")
@click.option("--note", help="What this draft is for.")
@output.command_output
@with_settings
def workgrid_draft(settings, dept_code, from_version, note):
    """Start a draft copied from the department's published work grid."""
    with db.transaction(settings) as session:
        d = start_draft(session, dept_code, from_version=from_version, by=actor(), note=note)
        result = {"id": d.id, "dept": d.dept_code, "number": d.number, "revision": d.revision}
    return output.Result(result, lines=[say("cli.workgrid.draft_started", draft=d.id, number=d.number)])


@workgrid.command("assign")
@click.option("--draft", "draft_id", type=int, required=True)
@click.option("--work-cell", "work_cell", required=True, help="20-digit work cell code.")
@click.option("--cells", help="Base cell codes, separated by commas.")
@click.option("--polygon", type=click.Path(exists=True), help="A polygon file: base cells mostly inside it.")
@click.option("--admin-unit", help="An admin unit code: all its base cells.")
@click.option(
    "--share",
    type=float,
    default=rules.WORK_CELL_SHARE,
    show_default=True,
    help="With --polygon: the share of a base cell's area that must lie inside.",
)
@click.option("--name", help="Work cell name.")
@REVISION
@file_options
@output.command_output
@with_settings
def workgrid_assign(
    settings, draft_id, work_cell, cells, polygon, admin_unit, share, name, revision, encoding, src_crs, layer
):
    """Put base cells (listed, inside a polygon, or of an admin unit) into a work cell of a draft."""
    if sum(x is not None for x in (cells, polygon, admin_unit)) != 1:
        raise ValidationError("cli.workgrid.one_selection")
    with db.transaction(settings) as session:
        d = draft(session, draft_id)
        if cells is not None:
            codes = codes_list(cells)
        elif admin_unit is not None:
            codes = cells_in_admin_unit(session, d, admin_unit)
        else:
            drawn = polygon_in_file(session, polygon, encoding=encoding, src_crs=src_crs, layer=layer)
            codes = cells_in_polygon(session, d, drawn, threshold=share)
        if not codes:
            raise ValidationError("cli.workgrid.no_cells_matched")
        set_members(session, d, work_cell, codes, name=name, expected_revision=revision, by=actor())
        result = {"draft": d.id, "work_cell": work_cell, "base_cells": codes, "revision": d.revision}
    return output.Result(
        result,
        lines=[
            say(
                "cli.workgrid.assigned",
                count=len(codes),
                work_cell=work_cell,
                draft=draft_id,
                revision=result["revision"],
            )
        ],
    )


@workgrid.command("import")
@click.option("--draft", "draft_id", type=int, required=True)
@click.argument("path", type=click.Path(exists=True))
@click.option("--code-field", required=True, help="Field holding the 20-digit work cell code.")
@click.option("--name-field", help="Field holding the work cell's name (optional).")
@click.option(
    "--share",
    type=float,
    default=rules.WORK_CELL_SHARE,
    show_default=True,
    help="The share of a base cell's area the work cell polygon holding most of it must hold.",
)
@REVISION
@file_options
@output.command_output
@with_settings
def workgrid_import(settings, draft_id, path, code_field, name_field, share, revision, encoding, src_crs, layer):
    """Import a department's drawn work cell polygons into a draft in one go (all-or-nothing)."""
    # Drawn polygons whose shares are computed.
    with output.progress_callback(say("cli.progress.workgrid_import")) as progress:

        def work(session):
            return import_work_cells(
                session,
                draft(session, draft_id),
                path,
                code_field=code_field,
                name_field=name_field,
                layer=layer,
                encoding=encoding,
                src_crs=src_crs,
                share=share,
                expected_revision=revision,
                by=actor(),
                settings=settings,
                progress=progress,
            )

        def describe(result, report):
            s = result.summary()
            counts = {k: s[k] for k in ("draft", "revision", "work_cells", "split", "unassigned")}
            return [
                say(
                    "cli.workgrid.imported",
                    assigned=s["base_cells_assigned"],
                    removed=s["work_cells_removed"],
                    report=report,
                    **counts,
                )
            ]

        return run_import(settings, "workgrid-import", work, describe)


@workgrid.command("exclude")
@click.option("--draft", "draft_id", type=int, required=True)
@click.option("--cells", required=True, help="Base cell codes, separated by commas.")
@click.option("--reason", required=True, help="Why they belong to no work cell (e.g. 水库, 军事管理区).")
@REVISION
@output.command_output
@with_settings
def workgrid_exclude(settings, draft_id, cells, reason, revision):
    """Leave base cells deliberately out of every work cell of a draft."""
    with db.transaction(settings) as session:
        d = draft(session, draft_id)
        n = exclude_cells(session, d, codes_list(cells), reason, expected_revision=revision, by=actor())
        result = {"draft": d.id, "excluded": n, "revision": d.revision}
    return output.Result(result, lines=[say("cli.workgrid.excluded", count=n, draft=draft_id)])


@workgrid.command("balance")
@click.option("--draft", "draft_id", type=int, required=True)
@click.option("--cells", "n", type=int, required=True, help="How many work cells to make.")
@click.option(
    "--by",
    type=click.Choice(["residents", "buildings", "incidents", "area"]),
    required=True,
    help="The load to even out.",
)
@click.option("--area", "area_code", help="Rebalance only this admin unit's base cells.")
@click.option("--within", type=click.Choice(["community"]), help="Never let a work cell cross a community boundary.")
@REVISION
@output.command_output
@with_settings
def workgrid_balance(settings, draft_id, n, by, area_code, within, revision):
    """Group contiguous base cells into N connected work cells with the load as even as possible (负载均衡)."""
    with db.transaction(settings) as session:
        result = balance_draft(
            session,
            draft(session, draft_id),
            n,
            by,
            area_code=area_code,
            within=within,
            expected_revision=revision,
            actor=actor(),
        )
    return output.Result(result.to_dict(), lines=[describe_balance(result, cli_language())])


@workgrid.command("diff")
@click.option("--dept", "dept_code", required=True)
@click.argument("old", type=int)
@click.argument("new", type=int)
@output.command_output
@with_settings
def workgrid_diff(settings, dept_code, old, new):
    """Compare two versions: moved base cells, added/removed work cells, coordinators, affected subjects."""
    with db.transaction(settings) as session:
        result = diff_versions(session, dept_code, old, new)
    a = result["subjects_changing_work_cell"]
    lines = [
        say(
            "cli.workgrid.diff",
            old=old,
            new=new,
            moved=len(result["moved"]),
            added=len(result["added_work_cells"]),
            removed=len(result["removed_work_cells"]),
            coordinators=len(result["coordinator_changes"]),
        ),
        say(
            "cli.workgrid.diff_subjects",
            residents=a["residents"],
            buildings=a["buildings"],
            incidents=a["open_incidents"],
        ),
    ]
    return output.Result(result, lines=lines, rows=result["moved"] or None)


@workgrid.command("rollback")
@click.option("--dept", "dept_code", required=True)
@click.option("--to", "to_number", type=int, required=True, help="Version number to restore.")
@output.command_output
@with_settings
def workgrid_rollback(settings, dept_code, to_number):
    """Publish a copy of an earlier version as a new version."""
    with db.transaction(settings) as session:
        v = rollback(session, dept_code, to_number, by=actor())
        result = {"dept": v.dept_code, "number": v.number, "copy_of": to_number, "valid_from": v.valid_from}
    return output.Result(
        result, lines=[say("cli.workgrid.rolled_back", number=v.number, copy_of=to_number, dept=dept_code)]
    )


@workgrid.command("validate")
@click.option("--draft", "draft_id", type=int, required=True)
@click.option("--coordinator-required", is_flag=True, help="A work cell without coordinator is an error.")
@output.command_output
@with_settings
def workgrid_validate(settings, draft_id, coordinator_required):
    """Check a draft; exit 0 only when it has no errors."""
    with db.transaction(settings) as session:
        found = validate_version(session, draft(session, draft_id), coordinator_required=coordinator_required)
        problems = [p.to_dict(cli_language()) for p in found]
    lines = []
    for p in problems:
        codes = ", ".join(p["codes"][:8]) + (" …" if len(p["codes"]) > 8 else "")
        lines.append(f"{say('cli.severity.' + p['severity'])}  {p['type']}: {p['message']} {codes}")
    if not problems:
        lines.append(say("cli.no_problems"))
    failed = any(p["severity"] == "error" for p in problems)
    return output.Result(problems, lines=lines, exit_code=1 if failed else 0)


@workgrid.command("publish")
@click.option("--draft", "draft_id", type=int, required=True)
@click.option("--coordinator-required", is_flag=True, help="Refuse work cells without coordinator.")
@click.option("--revision", type=int, help="Refuse if the draft changed since this revision.")
@output.command_output
@with_settings
def workgrid_publish(settings, draft_id, coordinator_required, revision):
    """Publish a draft: it becomes immutable and valid from now."""
    with db.transaction(settings) as session:
        v = publish(
            session,
            draft(session, draft_id),
            by=actor(),
            coordinator_required=coordinator_required,
            expected_revision=revision,
        )
        result = {"id": v.id, "dept": v.dept_code, "number": v.number, "valid_from": v.valid_from}
    return output.Result(result, lines=[say("cli.workgrid.published", number=v.number, dept=v.dept_code)])
