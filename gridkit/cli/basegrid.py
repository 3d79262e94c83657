"""The `gridkit basegrid` commands: base grid editions and base cells."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitGroup, cli_language, file_options, output, say, with_settings
from gridkit.cli.common import problems_result, run_import
from gridkit.errors import ValidationError
from gridkit.grids.base import edition_named, list_base_cells, list_editions
from gridkit.grids.editions import diff_editions, publish_edition
from gridkit.grids.generate import STRADDLE_MAX_M2, Target, check_straddle_max, generate_base_grid
from gridkit.grids.import_cells import import_base_cells
from gridkit.grids.renumber import renumber_base_cells
from gridkit.grids.validate import validate_base_grid
from gridkit.standard.codes import PROFILES


@click.group(cls=GridkitGroup)
def basegrid():
    """The unified base grid: editions and base cells."""


@basegrid.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--code-field", required=True, help="Field holding the base cell code.")
@click.option("--community-field", help="Field holding the community code (default: the code's first 12 digits).")
@click.option("--edition", help="Name of the new draft edition.")
@click.option("--name-field", help="Field holding the cell's name (optional); every other field is kept as attributes.")
@file_options
@output.command_output
@with_settings
def basegrid_import(settings, path, code_field, community_field, edition, name_field, encoding, src_crs, layer):
    """Import base cells into a new draft edition (all-or-nothing)."""
    return run_import(
        settings,
        "basegrid-import",
        lambda session: import_base_cells(
            session,
            path,
            code_field=code_field,
            community_field=community_field,
            edition=edition,
            encoding=encoding,
            src_crs=src_crs,
            layer=layer,
            profile=PROFILES[settings.code_profile],
            name_field=name_field,
            settings=settings,
        ),
    )


@basegrid.command("validate")
@click.option("--edition", help="Edition name (default: the published one, else the newest).")
@click.option("--sliver-m2", type=float, help="Cells smaller than this are slivers (default 50 m²).")
@output.command_output
@with_settings
def basegrid_validate(settings, edition, sliver_m2):
    """Check an edition: gaps, overlaps, slivers, cells outside their community, codes. Exit 0 only when clean."""
    with db.transaction(settings) as session:
        problems = [
            p.to_dict(cli_language())
            for p in validate_base_grid(
                session, edition_named(session, edition), sliver_m2=sliver_m2, tolerance_m=settings.sliver_tolerance_m
            )
        ]
    return problems_result(problems)


@basegrid.command("renumber")
@click.option("--edition", required=True, help="Name of a draft edition.")
@click.option("--community", help="Only this community (12-digit code).")
@output.command_output
@with_settings
def basegrid_renumber(settings, edition, community):
    """Give a draft edition's cells codes by the rule: west→east, north→south inside each community."""
    with db.transaction(settings) as session:
        changes = renumber_base_cells(
            session, edition_named(session, edition), community=community, profile=settings.code_profile
        )
    rows = [{"old": old, "new": new} for old, new in changes]
    return output.Result(rows, lines=[say("cli.basegrid.renumbered", count=len(rows))])


@basegrid.command("publish")
@click.option("--edition", required=True, help="Name of the draft edition to publish.")
@click.option("--sliver-m2", type=float, help="Sliver threshold for the validation (default 50 m²).")
@output.command_output
@with_settings
def basegrid_publish(settings, edition, sliver_m2):
    """Publish a draft edition (refused unless validation is clean); retire the current one; move subjects."""
    with db.transaction(settings) as session:
        result = publish_edition(
            session, edition_named(session, edition), sliver_m2=sliver_m2, tolerance_m=settings.sliver_tolerance_m
        )
    lines = [say("cli.basegrid.published", edition=result["edition"])]
    if result["retired"]:
        lines.append(say("cli.basegrid.retired", edition=result["retired"]))
    if "diff" in result:
        lines.append(say("cli.basegrid.publish_diff", **result["diff"]))
    for gap in result["work_grids_uncovered"]:
        count = len(gap["codes"])
        codes = ", ".join(gap["codes"][:10]) + (f" … (+{count - 10})" if count > 10 else "")
        said = say(
            "cli.basegrid.work_grid_uncovered", dept=gap["dept"], number=gap["version"], count=count, codes=codes
        )
        lines.append(said)
    return output.Result(result, lines=lines, rows=[{"kind": k, **v} for k, v in result["subjects"].items()])


@basegrid.command("diff")
@click.argument("old")
@click.argument("new")
@output.command_output
@with_settings
def basegrid_diff(settings, old, new):
    """Compare two editions: cells added, removed and reshaped (matched by code)."""
    with db.transaction(settings) as session:
        old_, new_ = edition_named(session, old), edition_named(session, new)
        result = diff_editions(session, old_, new_, tolerance_m=settings.sliver_tolerance_m)
    line = say(
        "cli.basegrid.diff",
        old=result["from"],
        new=result["to"],
        added=len(result["added"]),
        removed=len(result["removed"]),
        reshaped=len(result["reshaped"]),
        unchanged=result["unchanged"],
    )
    rows = (
        [{"change": "added", "code": r["code"], "area_m2": r["area_m2"]} for r in result["added"]]
        + [{"change": "removed", "code": r["code"], "area_m2": r["area_m2"]} for r in result["removed"]]
        + [
            {"change": "reshaped", "code": r["code"], "area_m2": f"{r['old_area_m2']} → {r['new_area_m2']}"}
            for r in result["reshaped"]
        ]
    )
    return output.Result(result, lines=[line], rows=rows or None)


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
@click.option("--preview", type=click.Path(dir_okay=False), help="Draw the cells to PATH.png or PATH.html.")
@click.option(
    "--straddle-max-m2",
    default=str(int(STRADDLE_MAX_M2)),
    show_default=True,
    help="A cell merged across a major road stays within this area in m² (0: no cell straddles a major road).",
)
@output.command_output
@with_settings
def basegrid_generate(
    settings,
    communities,
    all_,
    roads,
    water,
    target_buildings,
    target_area_m2,
    edition,
    paths,
    src_crs,
    encoding,
    preview,
    straddle_max_m2,
):
    """Generate base cells along roads and rivers, to a target size, as a new draft edition."""
    if bool(communities) == all_:
        raise ValidationError("cli.basegrid.community_or_all")
    if (target_buildings is None) == (target_area_m2 is None):
        raise ValidationError("cli.basegrid.one_target")
    target = Target.parse(target_buildings, "buildings") if target_buildings else Target.parse(target_area_m2, "area")
    straddle_max_m2 = check_straddle_max(straddle_max_m2)
    with db.transaction(settings) as session:
        report = generate_base_grid(
            session,
            communities=list(communities) or None,
            roads_path=roads,
            water_path=list(water) or None,
            target=target,
            edition_name=edition,
            profile=settings.code_profile,
            paths=paths,
            src_crs=src_crs,
            encoding=encoding,
            preview=preview,
            lang=cli_language(),
            straddle_max_m2=straddle_max_m2,
        )
    return output.Result(report.as_dict(cli_language()), lines=[report.text(cli_language())])


@basegrid.command("editions")
@output.command_output
@with_settings
def basegrid_editions(settings):
    """List base grid editions with their status and cell counts."""
    with db.transaction(settings) as session:
        rows = list_editions(session)
    return output.Result(rows, rows=rows, columns=["name", "status", "cells", "published_at", "retired_at"])


@basegrid.command("cells")
@click.option("--edition", help="Edition name (default: the published one).")
@click.option("--community", help="Only the cells of this 12-digit community code.")
@output.command_output
@with_settings
def basegrid_cells(settings, edition, community):
    """List the base cells of an edition with their community and area."""
    with db.transaction(settings) as session:
        rows = list_base_cells(session, edition_named(session, edition), community=community)
    return output.Result(rows, rows=rows)
