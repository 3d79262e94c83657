"""The `gridkit admin` commands: admin units."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitGroup, file_options, with_settings
from gridkit.cli.common import echo_json, echo_problems, echo_table, json_option, run_import


@click.group(cls=GridkitGroup)
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


@admin.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--level", type=click.Choice(["city", "district", "street", "community"]),
              help="Level of every feature (default: from each code's length).")
@click.option("--code-field", required=True, help="Field holding the admin code.")
@click.option("--name-field", required=True, help="Field holding the name.")
@click.option("--parent-field", help="Field holding the parent's code (default: derived from the code).")
@click.option("--replace", is_flag=True, help="Update units whose code exists already.")
@file_options
@json_option
@with_settings
def admin_import(settings, path, level, code_field, name_field, parent_field, replace, encoding, src_crs, layer,
                 as_json):
    """Import admin units from a Shapefile, GeoPackage or GeoJSON (all-or-nothing)."""
    from gridkit.grids.importer import import_admin_units

    run_import(settings, "admin-import", as_json, lambda session: import_admin_units(
        session, path, level=level, code_field=code_field, name_field=name_field, parent_field=parent_field,
        encoding=encoding, src_crs=src_crs, replace=replace, layer=layer))


@admin.command("validate")
@json_option
@with_settings
def admin_validate(settings, as_json):
    """Check admin units: codes, parents, units outside their parent, overlapping siblings."""
    from gridkit.grids.validate import validate_admin_units

    with db.transaction(settings) as session:
        problems = [p.to_dict() for p in validate_admin_units(session)]
    echo_problems(problems, as_json)
