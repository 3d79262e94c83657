"""Import base cells from Shapefile, GeoPackage or GeoJSON into a new draft edition: all or nothing.

See gridkit.grids.importer for what both importers share.
"""

from __future__ import annotations

import numpy as np
import shapely
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gridkit.config import Settings
from gridkit.errors import ValidationError
from gridkit.grids.editions import lock_edition_names
from gridkit.grids.importer import (
    NAME_LENGTH,
    ImportResult,
    feature_problems,
    on_feature,
    read_polygons,
    records,
    refuse,
    resolve_field,
    snap_notes,
    tolerance_notes,
)
from gridkit.grids.problems import level_label
from gridkit.grids.tolerance import snap_together
from gridkit.grids.validate import validate_base_grid
from gridkit.io.vector import problem, text_value
from gridkit.messages import Message
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition
from gridkit.rules import SRID, EditionState, local_now
from gridkit.standard import InvalidValue
from gridkit.standard.codes import PROFILES, CodeProfile, check_base_cell_code

__all__ = ["import_base_cells", "DUPLICATE_OVERLAP"]

# Two cells of one file overlapping by at least this share of the smaller one are the same cell
# twice (a copied feature, a re-digitised cell). Smaller overlaps with different codes are
# imported: `gridkit basegrid validate` reports them with their area and location.
DUPLICATE_OVERLAP = 0.95


def _profile(profile, settings: Settings) -> CodeProfile:
    if isinstance(profile, CodeProfile):
        return profile
    if profile is None:
        profile = settings.code_profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValidationError("geometry.unknown_profile", profile=profile, profiles=", ".join(PROFILES)) from None


def _default_edition_name(session: Session) -> str:
    base = f"导入 {local_now():%Y-%m-%d %H:%M}"
    taken = set(session.scalars(select(BaseGridEdition.name).where(BaseGridEdition.name.like(base + "%"))))
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base} ({n})"
    return name


def import_base_cells(
    session: Session,
    path,
    *,
    code_field: str,
    community_field: str | None = None,
    edition: str | None = None,
    encoding: str | None = None,
    src_crs: str | None = None,
    profile: str | CodeProfile | None = None,
    layer: str | None = None,
    name_field: str | None = None,
    settings: Settings | None = None,
) -> ImportResult:
    """Create a draft base grid edition holding the file's cells (all or nothing) and return what was created.

    Each cell needs a code valid in the code profile (default: `settings.code_profile`), unique in
    the file, in a community that exists (from `community_field`, else the code's first 12 digits)
    and one polygon. Its name comes from `name_field` (optional, may be empty); every other field
    is kept in `attributes`. Two cells covering the same ground (≥ DUPLICATE_OVERLAP of the smaller)
    are refused as duplicates.

    Reprojection noise (gridkit.grids.tolerance): cells are snapped, in file order, to their
    community's boundary and to each other within `settings.sliver_tolerance_m`; every cell moved
    is noted, and after writing the edition is validated again: overlaps, gaps and parts outside the
    community narrower than the tolerance that are left are noted. Wider ones are left to
    validation, which reports them as errors with their location. The edition is named `edition`
    (which must be new) or "导入 <date time>". `settings` default: Settings() (not the environment;
    the caller passes its own). Never commits.
    """
    settings = settings or Settings()
    code_profile = _profile(profile, settings)
    read, problems = read_polygons(
        session,
        path,
        settings,
        multipart="single",
        layer=layer,
        encoding=encoding,
        src_crs=src_crs,
        code_field=code_field,
    )
    notes, source, gdf = read.notes, read.source, read.gdf
    display = source["display"]
    _check_edition_name(session, edition, problems)
    fields = read.fields
    code_col = resolve_field(fields, code_field, "--code-field", display, notes, problems)
    community_col = resolve_field(fields, community_field, "--community-field", display, notes, problems)
    name_col = resolve_field(fields, name_field, "--name-field", display, notes, problems)

    cells = []
    if code_col is not None:
        first_seen: dict[str, object] = {}
        for index, feature in zip(gdf.index, records(gdf, code_col, community_col, name_col)):
            cell = _cell_row(
                index, feature, code_col, community_col, community_field, code_profile, display, first_seen, problems
            )
            if cell is not None:
                cell["name"] = _cell_name(feature, name_col, cell, display, problems)
                cells.append(cell)
    _check_communities(session, cells, display, problems)
    _check_duplicate_geometries(cells, display, problems)
    if problems:
        raise refuse(source, problems, notes)

    _snap_cells(session, cells, settings.sliver_tolerance_m, display, notes)
    with session.begin_nested():
        ed = _write_edition(session, cells, edition, code_profile, source)
        if cells:
            thin: list = []
            validate_base_grid(session, ed, profile=code_profile, tolerance_m=settings.sliver_tolerance_m, notes=thin)
            tolerance_notes(thin, display, notes)
    return ImportResult(created=len(cells), notes=notes, source=source, edition=ed.name, edition_id=ed.id)


def _check_edition_name(session: Session, edition: str | None, problems: list) -> None:
    """Add a problem if the edition name given is blank, too long or taken (checked under lock_edition_names)."""
    lock_edition_names(session)
    if edition is None:
        return
    if not edition.strip() or len(edition) > 100:
        problems.append(problem("edition_exists", Message("geometry.import.edition_name", edition=edition)))
    elif session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.name == edition)) is not None:
        problems.append(problem("edition_exists", Message("geometry.import.edition_exists", edition=edition)))


def _write_edition(
    session: Session, cells: list[dict], edition: str | None, code_profile: CodeProfile, source: dict
) -> BaseGridEdition:
    """Create the draft edition and insert its cells; return the edition."""
    ed = BaseGridEdition(
        name=edition or _default_edition_name(session),
        status=EditionState.DRAFT,
        code_profile=code_profile.name,
        note=f"imported from {source.get('path')}",
    )
    session.add(ed)
    session.flush()
    if cells:
        session.execute(
            insert(BaseCell),
            [
                {
                    "edition_id": ed.id,
                    "code": c["code"],
                    "community_code": c["community"],
                    "name": c["name"],
                    "attributes": c["attributes"],
                    "geom": from_shape(c["geom"], srid=SRID),
                }
                for c in cells
            ],
        )
    return ed


def _cell_row(
    index, feature, code_col, community_col, community_field, profile, display, first_seen, problems
) -> dict | None:
    code = text_value(feature[code_col])
    add = feature_problems(problems, display, index, code, code_col)

    if code is None:
        add("missing_code", "missing_code", field=code_col)
        return None
    try:
        check_base_cell_code(code, profile)
    except InvalidValue as exc:  # its reason in the reader's language, not str(exc)'s English
        add("bad_code", "bad_code", reason=exc.as_message())
        return None
    if code in first_seen:
        add("duplicate_code", "duplicate_cell_code", code=code, first=first_seen[code])
        return None
    first_seen[code] = index
    community = code[: profile.community_digits]
    if community_col is not None:
        given = text_value(feature[community_col])
        if given is None:
            add("missing_community", "missing_community_code", community_col, field=community_field)
            return None
        if given != community:
            add("code_prefix", "community_prefix", community_col, code=code, given=given, field=community_field)
            return None
    return {
        "index": index,
        "code": code,
        "community": community,
        "geom": feature["geometry"],
        "attributes": feature["attributes"],
    }


def _cell_name(feature, name_col, cell: dict, display: str, problems: list) -> str | None:
    if name_col is None:
        return None
    name = text_value(feature[name_col])
    if name is not None and len(name) > NAME_LENGTH:
        problems.append(
            problem(
                "name_too_long",
                on_feature(display, cell["index"], cell["code"], "name_too_long", length=len(name), limit=NAME_LENGTH),
                index=cell["index"],
                code=cell["code"],
                field=name_col,
            )
        )
    return name


def _snap_cells(session: Session, cells: list[dict], tolerance_m: float, display: str, notes: list) -> None:
    """Snap cells to their community's boundary and to each other (gridkit.grids.tolerance)."""
    if not cells:
        return
    wanted = {c["community"] for c in cells}
    communities = {
        code: to_shape(geom)
        for code, geom in session.execute(select(AdminUnit.code, AdminUnit.geom).where(AdminUnit.code.in_(wanted)))
    }
    snapped, changed = snap_together(
        [c["geom"] for c in cells],
        [communities.get(c["community"]) for c in cells],
        tolerance_m=tolerance_m,
        single=True,
    )
    for c, geom in zip(cells, snapped):
        c["geom"] = geom
    snap_notes(cells, changed, tolerance_m, display, "cell", notes)


def _check_communities(session: Session, cells: list[dict], display: str, problems: list) -> None:
    wanted = {c["community"] for c in cells}
    if not wanted:
        return
    levels = dict(session.execute(select(AdminUnit.code, AdminUnit.level).where(AdminUnit.code.in_(wanted))).all())
    for c in cells:
        level = levels.get(c["community"])
        if level is None:
            problems.append(
                problem(
                    "missing_community",
                    on_feature(display, c["index"], c["code"], "missing_community", community=c["community"]),
                    index=c["index"],
                    code=c["code"],
                )
            )
        elif level != "community":
            problems.append(
                problem(
                    "not_a_community",
                    on_feature(
                        display,
                        c["index"],
                        c["code"],
                        "not_a_community",
                        community=c["community"],
                        level=level_label(level),
                    ),
                    index=c["index"],
                    code=c["code"],
                )
            )


def _check_duplicate_geometries(cells: list[dict], display: str, problems: list) -> None:
    """Report pairs of cells covering (nearly) the same ground: the same cell drawn twice."""
    present = [c for c in cells if c["geom"] is not None]
    if len(present) < 2:
        return
    geoms = np.array([c["geom"] for c in present], dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    if len(left) == 0:
        return
    areas = shapely.area(geoms)
    shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    smaller = np.minimum(areas[left], areas[right])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(smaller > 0, shared / smaller, 0.0)
    for i, j, s in zip(left, right, share):
        if s < DUPLICATE_OVERLAP:
            continue
        a, b = present[i], present[j]
        problems.append(
            problem(
                "duplicate_geometry",
                on_feature(
                    display,
                    b["index"],
                    b["code"],
                    "duplicate_geometry",
                    other=a["code"],
                    other_index=a["index"],
                    share=float(s),
                ),
                index=b["index"],
                code=b["code"],
                field="geometry",
            )
        )
