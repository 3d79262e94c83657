"""`gridkit export LAYER -o PATH`: one layer to Shapefile (zip), GeoPackage, GeoJSON, CSV or XLSX."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from gridkit import db
from gridkit.cli import GridkitCommand, actor, as_option, output, say, with_settings
from gridkit.errors import NotFound
from gridkit.io.export import (
    FORMATS,
    ExportOptions,
    export_layer,
    format_for_path,
    parse_where,
    small_counts_note,
)
from gridkit.messages import Message
from gridkit.models import User


def acting_user(session, name: str | None) -> User | None:
    """Return the active user named by --as / GRIDKIT_USER, or None when none is named."""
    if not name:
        return None
    user = session.scalar(select(User).where(User.name == name, User.active.is_(True)))
    if user is None:
        raise NotFound("export.unknown_user", user=name)
    return user


@click.command("export", cls=GridkitCommand)
@click.argument("layer", metavar="LAYER")
@click.option(
    "-o",
    "--output",
    "path",
    required=True,
    type=click.Path(dir_okay=False),
    help="File to write (shp: a .zip with .shp .shx .dbf .prj .cpg and fields.csv).",
)
@click.option("--format", "format_", help=f"One of {', '.join(FORMATS)} (default: from the file suffix).")
@click.option(
    "--crs",
    default="EPSG:4490",
    show_default=True,
    help="Output CRS: an EPSG code (EPSG:4490, EPSG:4326, EPSG:4547 …), gcj02, or a PROJ string or WKT (an old datum "
    "with its +towgs84 parameters).",
)
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of shp/csv: utf-8 or gbk.")
@click.option("--area", help="Only what lies in this admin unit (district, street or community code).")
@click.option("--where", multiple=True, metavar="FIELD=VALUE", help="Only rows whose field equals the value.")
@click.option("--dept", help="Department: work cells of it; subjects get its work cell and coordinator.")
@click.option("--version", "version", type=int, help="Work grid version number of --dept (default: in force).")
@click.option("--at", help="The time the work grid and base grid are taken at (ISO-8601; default now).")
@click.option(
    "--unmasked",
    is_flag=True,
    help="Personal data in full: names, phones, birth dates; residents' exact points, buildings and households "
    "(roles allowed only; audited). Masked, a resident is placed to about 100 m, without building, with a "
    "household pseudonym of this export only.",
)
@as_option()
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@output.command_output
@with_settings
def export(settings, layer, path, format_, crs, encoding, area, where, dept, version, at, unmasked, as_user, force):
    """Export LAYER: admin-units, base-cells, work-cells, buildings, building-footprints, residents, entities,
    components, incidents or cell-stats."""
    options = ExportOptions(
        layer=layer,
        format=format_ or format_for_path(path),
        path=Path(path),
        crs=crs,
        encoding=encoding.lower(),
        area=area,
        where=parse_where(where),
        dept=dept,
        version=version,
        at=at,
        unmasked=unmasked,
        force=force,
        max_features=settings.export_max_features,
    )
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = output.progress(length=total, label=say(f"analyst.layer.{layer}"))
            bar.__enter__()
        bar.update(done - bar.pos)

    summary = None
    try:
        with db.transaction(settings) as session:
            user = acting_user(session, as_user)
            summary = export_layer(session, options, user=user, actor=user.name if user else actor(), progress=progress)
    except BaseException:
        # Written, but its transaction failed (an unmasked export's audit row with it): no file stays.
        if summary is not None:
            Path(summary["path"]).unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    lines = [
        say(
            "export.written" if summary["encoding"] else "export.written_no_encoding",
            count=summary["features"],
            layer=summary["layer"],
            layer_name=Message(f"analyst.layer.{summary['layer']}"),
            path=summary["path"],
            format=summary["format"],
            crs=summary["crs"],
            encoding=summary["encoding"],
            seconds=summary["seconds"],
        )
    ]
    for full, short in summary.get("shapefile_fields", {}).items():
        lines.append(f"  {full} → {short}")
    cut = "export.xlsx_truncated" if summary["format"] == "xlsx" else "export.truncated"
    for field, count in summary.get("truncated", {}).items():
        lines.append(say(cut, field=field, count=count))
    for field, count in summary.get("cleaned", {}).items():
        lines.append(say("export.xlsx_cleaned", field=field, count=count))
    hidden = small_counts_note(summary)
    if hidden is not None:
        lines.append(say(hidden.key, **hidden.params))
    if summary.get("dates_only"):
        lines.append(say("export.dates_only", fields=", ".join(summary["dates_only"])))
    return output.Result(summary, lines=lines)
