"""One search box: base cell, work cell and building codes, addresses, coordinator and place names,
or "lon,lat". Each hit says what it is and where (a point and a bbox in lon/lat) so a map can go there.

Only what a public map shows is searched: codes, addresses, admin unit names and coordinators'
names (never phones, ID numbers or residents).
"""

from __future__ import annotations

import math
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.grids.base import published_or_newest
from gridkit.models import (
    AdminUnit,
    BaseCell,
    Building,
    Coordinator,
    CoordinatorAssignment,
    Department,
    WorkCell,
    WorkCellMember,
    WorkGridVersion,
)
from gridkit.rules import version_in_force

# Hits of each kind at most; a search box shows a short list.
PER_KIND = 5
MAX_QUERY = 100
_LON_LAT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[,，\s]\s*(-?\d+(?:\.\d+)?)\s*$")


def like_literal(text: str) -> str:
    """Return `text` as a LIKE pattern matched literally ( % and _ escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _box(geom):
    box = func.ST_Extent(geom)
    return func.ST_XMin(box), func.ST_YMin(box), func.ST_XMax(box), func.ST_YMax(box)


def _hit(kind: str, code: str, label: str, row) -> dict:
    x0, y0, x1, y1 = row
    return {
        "kind": kind,
        "code": code,
        "label": label,
        "bbox": [x0, y0, x1, y1],
        "lon": (x0 + x1) / 2,
        "lat": (y0 + y1) / 2,
    }


def _building_point():
    """Return the SQL point of a building: its point, else a point on its footprint."""
    return func.coalesce(Building.geom, func.ST_PointOnSurface(Building.footprint))


def search(session: Session, query: str) -> list[dict]:
    """Return the hits for `query`: [{kind, code, label, lon, lat, bbox}], best kinds first.

    Kinds: point ("lon,lat"), base_cell, work_cell, building (code prefixes), admin_unit (name),
    address (buildings' addresses containing the text), coordinator (name prefix; the bbox of
    their work cells in force).
    """
    text = (query or "").strip()
    if not text:
        raise ValidationError("search.empty")
    if len(text) > MAX_QUERY:
        raise ValidationError("search.too_long", max=MAX_QUERY)
    point = _LON_LAT.match(text)
    if point:
        return [_point_hit(text, point)]
    prefix = like_literal(text) + "%"
    return _code_hits(session, prefix) + _name_hits(session, text, prefix)


def _point_hit(text: str, point: re.Match) -> dict:
    """Return the hit for a "lon,lat" query; ValidationError if it is not a point on the earth."""
    lon, lat = float(point.group(1)), float(point.group(2))
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValidationError("search.bad_point", text=text)
    return {
        "kind": "point",
        "code": f"{lon},{lat}",
        "label": f"{lon}, {lat}",
        "bbox": [lon, lat, lon, lat],
        "lon": lon,
        "lat": lat,
    }


def _code_hits(session: Session, prefix: str) -> list[dict]:
    """Return base cells (of the edition shown), work cells in force and buildings whose code starts so."""
    hits = []
    edition = published_or_newest(session)
    if edition is not None:
        for code, community, *box in session.execute(
            select(BaseCell.code, AdminUnit.name, *_box(BaseCell.geom))
            .join(AdminUnit, AdminUnit.code == BaseCell.community_code)
            .where(BaseCell.edition_id == edition.id, BaseCell.code.like(prefix))
            .group_by(BaseCell.code, AdminUnit.name)
            .order_by(BaseCell.code)
            .limit(PER_KIND)
        ):
            hits.append(_hit("base_cell", code, f"{code} {community}", box))
    for code, name, dept, *box in session.execute(
        select(WorkCell.code, WorkCell.name, Department.name, *_box(BaseCell.geom))
        .join(WorkGridVersion, WorkGridVersion.id == WorkCell.version_id)
        .join(Department, Department.code == WorkGridVersion.dept_code)
        .join(WorkCellMember, WorkCellMember.work_cell_id == WorkCell.id)
        .join(BaseCell, BaseCell.id == WorkCellMember.base_cell_id)
        .where(version_in_force(WorkGridVersion), WorkCell.code.like(prefix))
        .group_by(WorkCell.code, WorkCell.name, Department.name)
        .order_by(WorkCell.code)
        .limit(PER_KIND)
    ):
        hits.append(_hit("work_cell", code, f"{code} {dept} {name or ''}".strip(), box))
    point_of = _building_point()
    for code, address, *box in session.execute(
        select(Building.code, Building.address, *_box(point_of))
        .where(Building.code.like(prefix))
        .group_by(Building.code, Building.address)
        .order_by(Building.code)
        .limit(PER_KIND)
    ):
        hits.append(_hit("building", code, f"{code} {address or ''}".strip(), box))
    return hits


def _name_hits(session: Session, text: str, prefix: str) -> list[dict]:
    """Return admin units and addresses containing `text`, and active coordinators whose name starts so."""
    hits = []
    point_of = _building_point()
    for code, name, *box in session.execute(
        select(AdminUnit.code, AdminUnit.name, *_box(AdminUnit.geom))
        .where(AdminUnit.name.like("%" + like_literal(text) + "%"))
        .group_by(AdminUnit.code, AdminUnit.name)
        .order_by(AdminUnit.code)
        .limit(PER_KIND)
    ):
        hits.append(_hit("admin_unit", code, name, box))
    for code, address, *box in session.execute(
        select(Building.code, Building.address, *_box(point_of))
        .where(Building.address.like("%" + like_literal(text) + "%"))
        .group_by(Building.code, Building.address)
        .order_by(Building.address, Building.code)
        .limit(PER_KIND)
    ):
        hits.append(_hit("address", code, address, box))
    for cid, name, *box in session.execute(
        select(Coordinator.id, Coordinator.name, *_box(BaseCell.geom))
        .join(CoordinatorAssignment, CoordinatorAssignment.coordinator_id == Coordinator.id)
        .join(WorkCell, WorkCell.id == CoordinatorAssignment.work_cell_id)
        .join(WorkGridVersion, WorkGridVersion.id == WorkCell.version_id)
        .join(WorkCellMember, WorkCellMember.work_cell_id == WorkCell.id)
        .join(BaseCell, BaseCell.id == WorkCellMember.base_cell_id)
        .where(Coordinator.active.is_(True), Coordinator.name.like(prefix), version_in_force(WorkGridVersion))
        .group_by(Coordinator.id, Coordinator.name)
        .order_by(Coordinator.name, Coordinator.id)
        .limit(PER_KIND)
    ):
        hits.append(_hit("coordinator", str(cid), name, box))
    return hits
