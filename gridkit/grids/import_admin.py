"""Import admin units from Shapefile, GeoPackage or GeoJSON: all or nothing (see gridkit.grids.importer)."""

from __future__ import annotations

from collections import Counter

from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gridkit.config import Settings
from gridkit.errors import ValidationError
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
from gridkit.grids.validate_admin import validate_admin_units
from gridkit.io.vector import problem, text_value
from gridkit.messages import Message
from gridkit.models import ADMIN_LEVELS, PARENT_LEVEL, AdminUnit
from gridkit.rules import SRID
from gridkit.standard import InvalidValue
from gridkit.standard.codes import admin_level_of_code, unpadded_admin_code

__all__ = ["import_admin_units"]

_RANK = {level: i for i, level in enumerate(ADMIN_LEVELS)}


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
    if level is not None and level not in ADMIN_LEVELS:
        raise ValidationError("geometry.unknown_level", level=level, levels=", ".join(ADMIN_LEVELS))
    read, problems = read_polygons(
        session,
        path,
        settings,
        multipart="keep",
        layer=layer,
        encoding=encoding,
        src_crs=src_crs,
        code_field=code_field,
    )
    notes, source, gdf = read.notes, read.source, read.gdf
    display = source["display"]
    fields = read.fields
    code_col = resolve_field(fields, code_field, "--code-field", display, notes, problems)
    name_col = resolve_field(fields, name_field, "--name-field", display, notes, problems)
    parent_col = resolve_field(fields, parent_field, "--parent-field", display, notes, problems)

    rows: dict[str, dict] = {}  # code → row, for features whose code is usable
    first_seen: dict[str, object] = {}
    padded: list = []
    if code_col is not None:
        for index, feature in zip(gdf.index, records(gdf, code_col, name_col, parent_col)):
            _unpad_codes(feature, code_col, parent_col, padded)
            row = _admin_row(
                index, feature, level, code_col, name_col, parent_col, parent_field, display, first_seen, problems
            )
            if row is not None:
                rows[row["code"]] = row
    _note_padded(padded, display, code_field, notes)
    _check_admin_against_database(session, rows, replace, display, problems)
    if problems:
        raise refuse(source, problems, notes)

    _snap_admin_units(session, rows, settings.sliver_tolerance_m, display, notes)
    with session.begin_nested():
        created, updated = _write_admin_units(session, rows)
        thin: list = []
        validate_admin_units(session, tolerance_m=settings.sliver_tolerance_m, notes=thin)
        tolerance_notes([p for p in thin if set(p.codes) & set(rows)], display, notes)
    levels = Counter(r["level"] for r in rows.values())
    return ImportResult(created=created, updated=updated, notes=notes, source=source, levels=dict(levels))


def _write_admin_units(session: Session, rows: dict) -> tuple[int, int]:
    """Insert the new units and update the existing ones (rows marked "exists"); return both counts."""
    created = [r for r in rows.values() if not r["exists"]]
    updated = [r for r in rows.values() if r["exists"]]
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
    return len(created), len(updated)


def _note_padded(padded: list, display: str, code_field: str, notes: list) -> None:
    """Note once that the file's 12-digit statistical codes were read as gridkit's codes (first example)."""
    if padded:
        (code, own), count = padded[0], len(padded)
        message = Message("geometry.import.padded_codes", file=display, count=count, code=code, own=own)
        notes.append(problem("padded_codes", message, field=code_field))


def _unpad_codes(feature: dict, code_col, parent_col, padded: list) -> None:
    """Read the 12-digit statistical codes (统计用区划代码) of a feature's code and parent as gridkit's own codes;
    append (given, own) to `padded` for each code so read."""
    for col in (code_col, parent_col):
        if col is None:
            continue
        given = text_value(feature[col])
        own = unpadded_admin_code(given)
        if own != given:
            feature[col] = own
            if col == code_col:
                padded.append((given, own))


def _admin_row(
    index, feature, level, code_col, name_col, parent_col, parent_field, display, first_seen, problems
) -> dict | None:
    code = text_value(feature[code_col])
    add = feature_problems(problems, display, index, code, code_col)

    if code is None:
        add("missing_code", "missing_code", field=code_col)
        return None
    try:
        found = admin_level_of_code(code)
    except InvalidValue as exc:  # its reason in the reader's language, not str(exc)'s English
        add("bad_code", "bad_code", reason=exc.as_message())
        return None
    if found == "province":
        add("wrong_level", "province_code", code=code)
        return None
    if level is not None and found != level:
        add(
            "wrong_level",
            "wrong_level",
            code=code,
            found=level_label(found),
            level=level_label(level),
            found_name=found,
        )
        return None
    if code in first_seen:
        add("duplicate_code", "duplicate_admin_code", code=code, first=first_seen[code])
        return None
    first_seen[code] = index

    name = text_value(feature[name_col]) if name_col is not None else None
    if name_col is not None and name is None:
        add("missing_name", "missing_name", name_col, field=name_col)
    elif name is not None and len(name) > NAME_LENGTH:
        add("name_too_long", "name_too_long", name_col, length=len(name), limit=NAME_LENGTH)

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
    for level in ADMIN_LEVELS:
        same = [r for r in rows.values() if r["level"] == level and r["geom"] is not None]
        if not same:
            continue
        parents = [rows[r["parent"]]["geom"] if r["parent"] in rows else stored.get(r["parent"]) for r in same]
        snapped, changed = snap_together([r["geom"] for r in same], parents, tolerance_m=tolerance_m, single=False)
        for r, geom in zip(same, snapped):
            r["geom"] = geom
        snap_notes(same, changed, tolerance_m, display, "unit", notes)


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
                problem(
                    kind, on_feature(display, _row["index"], _code, sentence, **params), index=_row["index"], code=_code
                )
            )

        if code in in_db:
            if not replace:
                add("exists", "exists", code=code)
            elif in_db[code] != row["level"]:
                add(
                    "level_mismatch",
                    "level_mismatch",
                    code=code,
                    stored=level_label(in_db[code]),
                    level=level_label(row["level"]),
                )
            else:
                row["exists"] = True
        parent = row["parent"]
        if parent is None or row["level"] == "city":
            continue
        expected = PARENT_LEVEL[row["level"]]
        parent_level = rows[parent]["level"] if parent in rows else in_db.get(parent)
        if parent_level is None:
            add("missing_parent", "missing_parent", parent=parent, expected=level_label(expected))
        elif parent_level != expected:
            add(
                "bad_parent",
                "bad_parent",
                parent=parent,
                parent_level=level_label(parent_level),
                expected=level_label(expected),
            )
