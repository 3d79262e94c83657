"""Import admin units and base cells from Shapefile, GeoPackage or GeoJSON: all or nothing.

Both services read the file with `gridkit.io.vector`, check every feature, and only then write, in
bulk, inside a savepoint. On any problem they raise `ImportRefused` (a ValidationError) whose
`problems` list every problem found (feature index, code, field, kind, message) and whose `notes`
and `source` say what was read; nothing is written. The caller owns the transaction and writes the
report (`gridkit.io.report.write_report`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time

import numpy as np
import pandas as pd
import shapely
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gridkit.config import Settings
from gridkit.errors import ValidationError
from gridkit.grids.tolerance import snap_together
from gridkit.grids.validate import validate_admin_units, validate_base_grid
from gridkit.io.vector import VectorReadError, problem, read_vector_collecting, refusal, text_value
from gridkit.messages import Message
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition
from gridkit.rules import SRID, EditionState
from gridkit.standard.codes import PROFILES, CodeProfile, admin_level_of_code, check_base_cell_code

__all__ = [
    "ImportResult",
    "ImportRefused",
    "import_admin_units",
    "import_base_cells",
    "IMPORT_LEVELS",
    "DUPLICATE_OVERLAP",
]

IMPORT_LEVELS = ("city", "district", "street", "community")
_RANK = {level: i for i, level in enumerate(IMPORT_LEVELS)}
_PARENT_LEVEL = {"district": "city", "street": "district", "community": "street"}
_NAME_LENGTH = 100

# Two cells of one file overlapping by at least this share of the smaller one are the same cell
# twice (a copied feature, a re-digitised cell). Smaller overlaps with different codes are
# imported: `gridkit basegrid validate` reports them with their area and location.
DUPLICATE_OVERLAP = 0.95
# Snapping moves smaller than this (metres) are not noted one by one: they only join T-junctions.
SNAP_NOTE_M = 0.0005


class ImportRefused(VectorReadError):
    """An import found problems and wrote nothing; `problems`, `notes` and `source` say what and where."""


@dataclass
class ImportResult:
    """What an import wrote: counts, the notes on what was changed on the way, the source, the edition."""

    created: int
    updated: int = 0
    notes: list[dict] = field(default_factory=list)
    source: dict = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)
    edition: str | None = None
    edition_id: int | None = None

    def summary(self) -> dict:
        """Return the counts and source as a flat dict, for reports and CLI output."""
        out = {
            "file": self.source.get("path"),
            "layer": self.source.get("layer"),
            "driver": self.source.get("driver"),
            "encoding": self.source.get("encoding"),
            "crs": self.source.get("crs"),
            "features": self.source.get("features"),
            "created": self.created,
            "updated": self.updated,
        }
        if self.levels:
            out["levels"] = dict(self.levels)
        if self.edition is not None:
            out["edition"] = self.edition
        return out


def _resolve_field(
    fields: list[str], name: str | None, option: str, display: str, notes: list, problems: list
) -> str | None:
    """Return the field to use for `name` (exact, or the one field equal ignoring case), else record a problem."""
    if name is None:
        return None
    if name in fields:
        return name
    folded = [f for f in fields if f.casefold() == name.casefold()]
    if len(folded) == 1:
        notes.append(
            problem(
                "field_case",
                Message("geometry.import.field_case", file=display, name=name, used=folded[0]),
                field=folded[0],
            )
        )
        return folded[0]
    listed = ", ".join(fields) if fields else "none"
    problems.append(
        problem(
            "missing_field",
            Message("geometry.import.missing_field", file=display, name=name, option=option, listed=listed),
            field=name,
        )
    )
    return None


def _records(gdf, *columns):
    """Yield one dict per feature holding `columns` (None ones skipped), "geometry" and "attributes".

    "attributes" holds every other field of the file, JSON-ready (faster than iterrows).
    """
    wanted = [c for c in columns if c is not None]
    others = [c for c in gdf.columns if c != gdf.geometry.name and c not in wanted]
    values = [gdf[c].tolist() for c in wanted]
    other_values = [gdf[c].tolist() for c in others]
    geoms = list(gdf.geometry.values)
    for i, geom in enumerate(geoms):
        record = {c: v[i] for c, v in zip(wanted, values)}
        record["geometry"] = geom
        record["attributes"] = {c: json_value(v[i]) for c, v in zip(others, other_values)}
        yield record


def json_value(value):
    """Return an attribute value as JSON: numbers, text, true/false, ISO dates, or None for empty/NaN."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (datetime, date, time, pd.Timestamp)):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _snap_notes(rows: list[dict], changed, tolerance_m: float, display: str, what: str, notes: list) -> None:
    """Add a note per feature that snapping moved by 0.5 mm or more, and one for shared vertices only."""
    moved = [c for c in changed if c.moved_m >= SNAP_NOTE_M]
    for c in moved:
        row = rows[c.index]
        onto = ", ".join(rows[j]["code"] for j in c.neighbours)
        sentence = ("snapped_parent" if onto else "snapped_parent_only") if c.parent else "snapped"
        notes.append(
            problem(
                "snapped",
                _at(
                    display,
                    row["index"],
                    row["code"],
                    sentence,
                    cm=c.moved_m * 100,
                    onto=onto,
                    what=Message(f"geometry.import.{what}"),
                    tolerance_cm=tolerance_m * 100,
                ),
                index=row["index"],
                code=row["code"],
                field="geometry",
            )
        )
    shared = len(changed) - len(moved)
    if shared:
        notes.append(
            problem(
                "vertices_shared",
                Message("geometry.import.vertices_shared", file=display, count=shared),
                field="geometry",
            )
        )


def _tolerance_notes(thin, display: str, notes: list) -> None:
    """Add a note per overlap, gap or part outside the parent narrower than the tolerance left after snapping."""
    for p in thin:
        notes.append(
            problem(
                "thin_" + p.type,
                Message("geometry.import.left_after_snapping", file=display, text=Message(p.key, **p.params)),
                code=p.codes[0] if p.codes else None,
                field="geometry",
            )
        )


def _refuse(source: dict, problems: list, notes: list) -> ImportRefused:
    code, params = refusal(source.get("display", source.get("path", "the file")), problems, "imported")
    return ImportRefused(code, problems=problems, notes=notes, source=source, **params)


def _level(level: str | None) -> Message:
    return Message(f"geometry.level.{level or 'none'}")


def _at(display: str, index, code, sentence: str, /, **params) -> Message:
    """Return "<file>, feature <index> (code <code>): <geometry.import.<sentence>>" as a Message."""
    label = Message("geometry.vector.code_label", code=code) if code else ""
    return Message(
        "geometry.vector.on_feature",
        file=display,
        index=index,
        code_label=label,
        text=Message(f"geometry.import.{sentence}", **params),
    )


def import_admin_units(
    session: Session,
    path,
    *,
    level: str | None,
    code_field: str,
    name_field: str,
    parent_field: str | None = None,
    encoding: str | None = None,
    src_crs: str | None = None,
    replace: bool = False,
    layer: str | None = None,
    settings: Settings | None = None,
) -> ImportResult:
    """Import the admin units of one file (all or nothing) and return what was created and updated.

    `level` is city, district, street or community; None takes each feature's level from its
    code (6 digits ending in 00: city, other 6: district, 9: street, 12: community), so one file
    may hold a city and its districts. The parent comes from `parent_field`, else from the code:
    community → first 9 digits, street → first 6, district → the city with its first 4 digits +
    "00". It must exist in the database or in the same file. Existing codes are refused unless
    `replace`, which updates their name, parent and boundary. Boundaries are stored as
    MultiPolygons in EPSG:4490; every other field of the file is kept in `attributes`.

    Reprojection noise (gridkit.grids.tolerance): each level is snapped, in file order, to its
    parents' boundaries and to its siblings in the file within `settings.sliver_tolerance_m`; every
    unit moved is noted, and whatever narrower than the tolerance is left after writing (a part
    outside the parent, an overlap of siblings) is noted too. Wider ones are left to
    `validate_admin_units`, which reports them as errors. `settings` default: Settings() (not the
    environment; the caller passes its own). Never commits.
    """
    settings = settings or Settings()
    if level is not None and level not in IMPORT_LEVELS:
        raise ValidationError("geometry.unknown_level", level=level, levels=", ".join(IMPORT_LEVELS))
    read, problems = read_vector_collecting(
        path,
        layer=layer,
        encoding=encoding,
        src_crs=src_crs,
        multipart="keep",
        code_field=code_field,
        max_vertices=settings.max_vertices,
    )
    notes, source, gdf = read.notes, read.source, read.gdf
    display = source["display"]
    fields = read.fields
    code_col = _resolve_field(fields, code_field, "--code-field", display, notes, problems)
    name_col = _resolve_field(fields, name_field, "--name-field", display, notes, problems)
    parent_col = _resolve_field(fields, parent_field, "--parent-field", display, notes, problems)

    rows: dict[str, dict] = {}  # code → row, for features whose code is usable
    first_seen: dict[str, object] = {}
    if code_col is not None:
        for index, feature in zip(gdf.index, _records(gdf, code_col, name_col, parent_col)):
            row = _admin_row(
                index, feature, level, code_col, name_col, parent_col, parent_field, display, first_seen, problems
            )
            if row is not None:
                rows[row["code"]] = row
    _check_admin_against_database(session, rows, replace, display, problems)
    if problems:
        raise _refuse(source, problems, notes)

    _snap_admin_units(session, rows, settings.sliver_tolerance_m, display, notes)
    created = [r for r in rows.values() if not r["exists"]]
    updated = [r for r in rows.values() if r["exists"]]
    with session.begin_nested():
        if created:
            # Parents first: a district may name a city inserted by the same statement batch.
            created.sort(key=lambda r: (_RANK[r["level"]], r["code"]))
            session.execute(
                insert(AdminUnit),
                [
                    {
                        "code": r["code"],
                        "name": r["name"],
                        "level": r["level"],
                        "parent_code": r["parent"],
                        "geom": from_shape(r["geom"], srid=SRID),
                        "attributes": r["attributes"],
                    }
                    for r in created
                ],
            )
        if updated:
            existing = {
                u.code: u
                for u in session.scalars(select(AdminUnit).where(AdminUnit.code.in_([r["code"] for r in updated])))
            }
            for r in updated:
                unit = existing[r["code"]]
                unit.name, unit.parent_code = r["name"], r["parent"]
                unit.geom = from_shape(r["geom"], srid=SRID)
                unit.attributes = r["attributes"]
            session.flush()
        thin: list = []
        validate_admin_units(session, tolerance_m=settings.sliver_tolerance_m, notes=thin)
        _tolerance_notes([p for p in thin if set(p.codes) & set(rows)], display, notes)
    levels = Counter(r["level"] for r in rows.values())
    return ImportResult(created=len(created), updated=len(updated), notes=notes, source=source, levels=dict(levels))


def _admin_row(
    index, feature, level, code_col, name_col, parent_col, parent_field, display, first_seen, problems
) -> dict | None:
    code = text_value(feature[code_col])

    def add(kind, sentence, field_=code_col, **params):
        problems.append(
            problem(kind, _at(display, index, code, sentence, **params), index=index, code=code, field=field_)
        )

    if code is None:
        add("missing_code", "missing_code", field=code_col)
        return None
    try:
        found = admin_level_of_code(code)
    except ValueError as exc:
        add("bad_code", "bad_code", reason=str(exc))
        return None
    if found == "province":
        add("wrong_level", "province_code", code=code)
        return None
    if level is not None and found != level:
        add("wrong_level", "wrong_level", code=code, found=_level(found), level=_level(level), found_name=found)
        return None
    if code in first_seen:
        add("duplicate_code", "duplicate_admin_code", code=code, first=first_seen[code])
        return None
    first_seen[code] = index

    name = text_value(feature[name_col]) if name_col is not None else None
    if name_col is not None and name is None:
        add("missing_name", "missing_name", name_col, field=name_col)
    elif name is not None and len(name) > _NAME_LENGTH:
        add("name_too_long", "name_too_long", name_col, length=len(name), limit=_NAME_LENGTH)

    parent = None
    if found != "city":
        derived = {"community": code[:9], "street": code[:6], "district": code[:4] + "00"}[found]
        parent = derived
        if parent_col is not None:
            given = text_value(feature[parent_col])
            if given is None:
                add("bad_parent", "missing_parent_code", parent_col, field=parent_field, derived=derived)
                parent = None
            else:
                parent = given
                prefix_ok = code[:4] == given[:4] if found == "district" else code.startswith(given)
                if not prefix_ok:
                    add(
                        "code_prefix",
                        "district_prefix" if found == "district" else "parent_prefix",
                        parent_col,
                        code=code,
                        given=given,
                        field=parent_field,
                    )
                    parent = None
    geom = feature["geometry"]
    return {
        "index": index,
        "code": code,
        "name": name,
        "level": found,
        "parent": parent,
        "geom": geom,
        "exists": False,
        "attributes": feature["attributes"],
    }


def _snap_admin_units(session: Session, rows: dict, tolerance_m: float, display: str, notes: list) -> None:
    """Snap the units of each level, parents first, to their parent and to each other (gridkit.grids.tolerance)."""
    wanted = {r["parent"] for r in rows.values() if r["parent"] and r["parent"] not in rows}
    stored = (
        {
            code: to_shape(geom)
            for code, geom in session.execute(select(AdminUnit.code, AdminUnit.geom).where(AdminUnit.code.in_(wanted)))
        }
        if wanted
        else {}
    )
    for level in IMPORT_LEVELS:
        same = [r for r in rows.values() if r["level"] == level and r["geom"] is not None]
        if not same:
            continue
        parents = [rows[r["parent"]]["geom"] if r["parent"] in rows else stored.get(r["parent"]) for r in same]
        snapped, changed = snap_together([r["geom"] for r in same], parents, tolerance_m=tolerance_m, single=False)
        for r, geom in zip(same, snapped):
            r["geom"] = geom
        _snap_notes(same, changed, tolerance_m, display, "unit", notes)


def _check_admin_against_database(session: Session, rows: dict, replace: bool, display: str, problems: list) -> None:
    wanted = set(rows) | {r["parent"] for r in rows.values() if r["parent"]}
    in_db = (
        dict(session.execute(select(AdminUnit.code, AdminUnit.level).where(AdminUnit.code.in_(wanted))).all())
        if wanted
        else {}
    )
    for code, row in rows.items():

        def add(kind, sentence, _row=row, _code=code, **params):
            problems.append(
                problem(kind, _at(display, _row["index"], _code, sentence, **params), index=_row["index"], code=_code)
            )

        if code in in_db:
            if not replace:
                add("exists", "exists", code=code)
            elif in_db[code] != row["level"]:
                add(
                    "level_mismatch",
                    "level_mismatch",
                    code=code,
                    stored=_level(in_db[code]),
                    level=_level(row["level"]),
                )
            else:
                row["exists"] = True
        parent = row["parent"]
        if parent is None or row["level"] == "city":
            continue
        expected = _PARENT_LEVEL[row["level"]]
        parent_level = rows[parent]["level"] if parent in rows else in_db.get(parent)
        if parent_level is None:
            add("missing_parent", "missing_parent", parent=parent, expected=_level(expected))
        elif parent_level != expected:
            add("bad_parent", "bad_parent", parent=parent, parent_level=_level(parent_level), expected=_level(expected))


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
    base = f"导入 {datetime.now():%Y-%m-%d %H:%M}"
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
    read, problems = read_vector_collecting(
        path,
        layer=layer,
        encoding=encoding,
        src_crs=src_crs,
        multipart="single",
        code_field=code_field,
        max_vertices=settings.max_vertices,
    )
    notes, source, gdf = read.notes, read.source, read.gdf
    display = source["display"]
    if edition is not None:
        if not edition.strip() or len(edition) > 100:
            problems.append(problem("edition_exists", Message("geometry.import.edition_name", edition=edition)))
        elif session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.name == edition)) is not None:
            problems.append(problem("edition_exists", Message("geometry.import.edition_exists", edition=edition)))
    fields = read.fields
    code_col = _resolve_field(fields, code_field, "--code-field", display, notes, problems)
    community_col = _resolve_field(fields, community_field, "--community-field", display, notes, problems)
    name_col = _resolve_field(fields, name_field, "--name-field", display, notes, problems)

    cells = []
    if code_col is not None:
        first_seen: dict[str, object] = {}
        for index, feature in zip(gdf.index, _records(gdf, code_col, community_col, name_col)):
            cell = _cell_row(
                index, feature, code_col, community_col, community_field, code_profile, display, first_seen, problems
            )
            if cell is not None:
                cell["name"] = _cell_name(feature, name_col, cell, display, problems)
                cells.append(cell)
    _check_communities(session, cells, display, problems)
    _check_duplicate_geometries(cells, display, problems)
    if problems:
        raise _refuse(source, problems, notes)

    _snap_cells(session, cells, settings.sliver_tolerance_m, display, notes)
    with session.begin_nested():
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
            thin: list = []
            validate_base_grid(session, ed, profile=code_profile, tolerance_m=settings.sliver_tolerance_m, notes=thin)
            _tolerance_notes(thin, display, notes)
    return ImportResult(created=len(cells), notes=notes, source=source, edition=ed.name, edition_id=ed.id)


def _cell_row(
    index, feature, code_col, community_col, community_field, profile, display, first_seen, problems
) -> dict | None:
    code = text_value(feature[code_col])

    def add(kind, sentence, field_=code_col, **params):
        problems.append(
            problem(kind, _at(display, index, code, sentence, **params), index=index, code=code, field=field_)
        )

    if code is None:
        add("missing_code", "missing_code", field=code_col)
        return None
    try:
        check_base_cell_code(code, profile)
    except ValueError as exc:
        add("bad_code", "bad_code", reason=str(exc))
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
    if name is not None and len(name) > _NAME_LENGTH:
        problems.append(
            problem(
                "name_too_long",
                _at(display, cell["index"], cell["code"], "name_too_long", length=len(name), limit=_NAME_LENGTH),
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
    _snap_notes(cells, changed, tolerance_m, display, "cell", notes)


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
                    _at(display, c["index"], c["code"], "missing_community", community=c["community"]),
                    index=c["index"],
                    code=c["code"],
                )
            )
        elif level != "community":
            problems.append(
                problem(
                    "not_a_community",
                    _at(
                        display, c["index"], c["code"], "not_a_community", community=c["community"], level=_level(level)
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
                _at(
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
