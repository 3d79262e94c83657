"""A map layer for judging a (draft) edition against a target: cells with their building counts and status.

The counts are made by the building rule in SQL (`gridkit.rules.building_cell`), so a draft shows
the counts it will have after publishing. The web serves this as GeoJSON next to the base cells.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import Numeric, and_, func, or_, select
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.grids.generate.target import Target
from gridkit.models import SRID, BaseCell, BaseGridEdition, Building
from gridkit.rules import building_cell

# At most this many cells in one answer: the caller zooms in (a bbox) rather than getting a cut list.
CELL_LIMIT = 5000
# The note generate_base_grid writes on its draft: "generated along roads, target 20–150 buildings"
# (Target.describe(), English), or "… target 20,000–400,000 m²".
_GENERATED_NOTE = re.compile(r"generated along roads, target ([\d,.]+)–([\d,.]+) (buildings|m²)")


def edition_target(session: Session, edition_id: int) -> Target | None:
    """Return the target an edition was generated to (from the note generate_base_grid wrote), or None."""
    edition = session.get(BaseGridEdition, edition_id)
    if edition is None:
        raise NotFound("generate.edition_not_found", edition=edition_id)
    match = _GENERATED_NOTE.search(edition.note or "")
    if match is None:
        return None
    low, high = (float(g.replace(",", "")) for g in match.group(1, 2))
    return Target("buildings" if match.group(3) == "buildings" else "area", low, high)


def target_cells_geojson(
    session: Session,
    edition_id: int,
    target: Target,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int = CELL_LIMIT,
) -> dict:
    """Return the edition's cells (within `bbox`, lon/lat) as GeoJSON with buildings, area_m2 and status.

    status: 'ok', 'below' or 'above' the target (buildings counted by the building rule, or the
    area on the CGCS2000 ellipsoid). More than `limit` cells raise ValidationError.
    """
    edition = session.get(BaseGridEdition, edition_id)
    if edition is None:
        raise NotFound("generate.edition_not_found", edition=edition_id)
    where = [BaseCell.edition_id == edition_id]
    envelope = None
    if bbox is not None:
        envelope = func.ST_MakeEnvelope(*bbox, SRID)
        where.append(func.ST_Intersects(BaseCell.geom, envelope))
    cells = session.execute(
        select(
            BaseCell.id,
            BaseCell.code,
            BaseCell.community_code,
            func.ST_AsGeoJSON(BaseCell.geom, 9),
            func.round(func.ST_Area(func.geography(BaseCell.geom)).cast(Numeric), 1),
        )
        .where(*where)
        .order_by(BaseCell.code)
        .limit(limit + 1)
    ).all()
    if len(cells) > limit:
        raise ValidationError("generate.layer_too_many", limit=limit)
    counts = _building_counts(session, edition_id, envelope)
    features = []
    for cell_id, code, community, geometry, area in cells:
        buildings = counts.get(cell_id, 0)
        size = buildings if target.measure == "buildings" else float(area)
        status = "below" if size < target.min else "above" if size > target.max else "ok"
        features.append(
            {
                "type": "Feature",
                "id": code,
                "geometry": json.loads(geometry),
                "properties": {
                    "code": code,
                    "community_code": community,
                    "buildings": buildings,
                    "area_m2": float(area),
                    "status": status,
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "edition": {"id": edition.id, "name": edition.name, "status": edition.status},
        "target": {"measure": target.measure, "min": target.min, "max": target.max},
    }


def _building_counts(session: Session, edition_id: int, envelope=None) -> dict[int, int]:
    """Return {cell id: buildings} by the building rule, for buildings touching `envelope` (None: all)."""
    located = or_(Building.footprint.is_not(None), Building.geom.is_not(None))
    if envelope is not None:
        located = and_(located, func.ST_Intersects(func.coalesce(Building.footprint, Building.geom), envelope))
    cell = building_cell(BaseCell, edition_id, Building.footprint, Building.geom).label("cell")
    per_building = select(cell).where(located).subquery()
    rows = session.execute(
        select(per_building.c.cell, func.count()).where(per_building.c.cell.is_not(None)).group_by(per_building.c.cell)
    ).all()
    return {cell_id: n for cell_id, n in rows}
