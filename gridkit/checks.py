"""Validation results of base grid editions as a map layer, computed once per edition change and stored.

Validating a large edition takes seconds to minutes (gridkit.grids.validate); the result is kept
in `edition_check` with the fingerprint of the edition's cells and of the admin units, and requests
read it until they change (a cell or admin unit added, removed or redrawn changes the fingerprint).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Numeric, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gridkit.errors import NotFound
from gridkit.layers import edition_dict, edition_or_current, feature_collection
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition, EditionCheck


def edition_fingerprint(session: Session, edition: BaseGridEdition) -> tuple[str, int]:
    """Return (fingerprint, cell count) of an edition's cells (count, ids, codes, vertices and area) and of the
    admin units they are validated against."""
    cells = select(BaseCell).where(BaseCell.edition_id == edition.id).subquery()
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(cells.c.id), 0),
            func.coalesce(func.sum(func.hashtext(cells.c.code)), 0),
            func.coalesce(func.sum(func.ST_NPoints(cells.c.geom)), 0),
            func.coalesce(func.round(func.sum(func.ST_Area(cells.c.geom)).cast(Numeric), 14), 0),
            func.md5(func.coalesce(func.string_agg(func.md5(func.ST_AsBinary(cells.c.geom)), ""), "")),
        ).select_from(cells)
    ).one()
    # Validation measures the cells against the admin units (gaps, parts outside their community, communities
    # without cells): a unit added, removed or redrawn (`admin import --replace`) changes the result too.
    units = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(func.hashtext(AdminUnit.code)), 0),
            func.md5(func.coalesce(func.string_agg(func.md5(func.ST_AsBinary(AdminUnit.geom)), ""), "")),
        )
    ).one()
    text = f"{edition.id}|{edition.status}|" + "|".join(str(v) for v in (*row, *units))
    return hashlib.sha256(text.encode()).hexdigest(), row[0]


def _validate(session: Session, edition: BaseGridEdition) -> list[dict]:
    from shapely import wkt
    from shapely.geometry import mapping

    from gridkit.grids.validate import validate_base_grid

    features = []
    for number, problem in enumerate(validate_base_grid(session, edition), start=1):
        data = problem.to_dict()
        geom = wkt.loads(data["location"]) if data["location"] else None
        if geom is not None and geom.is_empty:
            geom = None
        features.append(
            {
                "type": "Feature",
                "id": number,
                "geometry": mapping(geom) if geom is not None else None,
                "properties": {
                    "type": data["type"],
                    "codes": data["codes"],
                    "area_m2": data["area_m2"],
                    "message": str(data["message"]),
                    "bbox": list(geom.bounds) if geom is not None else None,
                },
            }
        )
    return features


def base_grid_problems_geojson(session: Session, edition_id: int | None = None) -> dict:
    """Return the validation problems of base grid edition `edition_id` (None: the current one) as a
    GeoJSON FeatureCollection, from the stored result when the edition has not changed since.

    Each feature's geometry is the problem's location (lon/lat, None when the problem has none);
    properties: type, codes, area_m2, message and bbox ([minx, miny, maxx, maxy] or None). The
    collection carries `edition`, `cells` and `checked_at`. Validating (when needed) stores the
    result in the caller's transaction: commit it to keep it.
    """
    edition = edition_or_current(session, edition_id)
    if edition is None:
        raise NotFound("layers.no_edition")
    fingerprint, cells = edition_fingerprint(session, edition)
    stored = session.get(EditionCheck, edition.id)
    if stored is None or stored.fingerprint != fingerprint:
        features = _validate(session, edition)
        session.execute(
            insert(EditionCheck)
            .values(edition_id=edition.id, fingerprint=fingerprint, result={"features": features})
            .on_conflict_do_update(
                index_elements=[EditionCheck.edition_id],
                set_={"fingerprint": fingerprint, "result": {"features": features}, "checked_at": func.now()},
            )
        )
        session.expire_all()
        stored = session.get(EditionCheck, edition.id)
    return feature_collection(
        stored.result["features"], edition=edition_dict(edition), cells=cells, checked_at=stored.checked_at.isoformat()
    )
