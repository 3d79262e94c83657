"""The `gridkit basegrid` commands: base grid editions and base cells."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitGroup, file_options, with_settings
from gridkit.cli.common import echo_json, echo_problems, echo_table, json_option, run_import
from gridkit.errors import ValidationError


@click.group(cls=GridkitGroup)
def basegrid():
    """The unified base grid: editions and base cells."""


@basegrid.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--code-field", required=True, help="Field holding the base cell code.")
@click.option("--community-field", help="Field holding the community code (default: the code's first 12 digits).")
@click.option("--edition", help="Name of the new draft edition.")
@file_options
@json_option
@with_settings
def basegrid_import(settings, path, code_field, community_field, edition, encoding, src_crs, layer, as_json):
    """Import base cells into a new draft edition (all-or-nothing)."""
    from gridkit.grids.importer import import_base_cells
    from gridkit.standard.codes import PROFILES

    run_import(settings, "basegrid-import", as_json, lambda session: import_base_cells(
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
    echo_problems(problems, as_json)


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
