"""The `gridkit admin` commands: admin units."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.admin import list_admin_units
from gridkit.cli import GridkitGroup, cli_language, file_options, output, with_settings
from gridkit.cli.common import problems_result, run_import
from gridkit.grids.import_admin import import_admin_units
from gridkit.grids.validate_admin import validate_admin_units

LEVELS = click.Choice(["city", "district", "street", "community"])


@click.group(cls=GridkitGroup)
def admin():
    """Admin units: city › district › street › community."""


@admin.command("list")
@click.option("--level", type=LEVELS)
@click.option("--parent", help="Only the children of this admin unit code.")
@output.command_output
@with_settings
def admin_list(settings, level, parent):
    """List admin units with their codes and areas."""
    with db.transaction(settings) as session:
        rows = list_admin_units(session, level=level, parent=parent)
    return output.Result(rows, rows=rows)


@admin.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--level", type=LEVELS, help="Level of every feature (default: from each code's length).")
@click.option("--code-field", required=True, help="Field holding the admin code.")
@click.option("--name-field", required=True, help="Field holding the name.")
@click.option("--parent-field", help="Field holding the parent's code (default: derived from the code).")
@click.option("--replace", is_flag=True, help="Update units whose code exists already.")
@file_options
@output.command_output
@with_settings
def admin_import(settings, path, level, code_field, name_field, parent_field, replace, encoding, src_crs, layer):
    """Import admin units from a Shapefile, GeoPackage or GeoJSON (all-or-nothing)."""
    return run_import(
        settings,
        "admin-import",
        lambda session: import_admin_units(
            session,
            path,
            level=level,
            code_field=code_field,
            name_field=name_field,
            parent_field=parent_field,
            encoding=encoding,
            src_crs=src_crs,
            replace=replace,
            layer=layer,
            settings=settings,
        ),
    )


@admin.command("validate")
@output.command_output
@with_settings
def admin_validate(settings):
    """Check admin units: codes, parents, units outside their parent, overlapping siblings."""
    with db.transaction(settings) as session:
        problems = [
            p.to_dict(cli_language()) for p in validate_admin_units(session, tolerance_m=settings.sliver_tolerance_m)
        ]
    return problems_result(problems)
