"""Validation results of base grid editions as a map layer, computed once per edition change.

Validating a large edition takes seconds to minutes (gridkit.grids.validate); requests read the
result kept for the edition's current state instead of validating again.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit.errors import NotFound
from gridkit.layers import edition_dict, edition_or_current, feature_collection
from gridkit.models import BaseCell

# Problem layers kept per base grid edition; a few editions are looked at, never hundreds.
PROBLEM_CACHE_SIZE = 8


def base_grid_problems_geojson(session: Session, edition_id: int | None = None, *, cache=None) -> dict:
    """Return the validation problems of base grid edition `edition_id` (None: the current one) as a GeoJSON FeatureCollection.

    Each feature's geometry is the problem's location (lon/lat, None when the problem has none);
    properties: type, codes, area_m2, message and bbox ([minx, miny, maxx, maxy] or None).
    `cache`, a dict the caller keeps, holds results per (edition id, cell count).
    """
    from shapely import wkt
    from shapely.geometry import mapping

    from gridkit.grids.validate import validate_base_grid

    edition = edition_or_current(session, edition_id)
    if edition is None:
        raise NotFound("layers.no_edition")
    cells = session.scalar(select(func.count()).select_from(BaseCell).where(BaseCell.edition_id == edition.id))
    key = (edition.id, cells)
    if cache is not None and key in cache:
        return cache[key]
    features = []
    for number, problem in enumerate(validate_base_grid(session, edition), start=1):
        data = problem.to_dict()
        geom = wkt.loads(data["location"]) if data["location"] else None
        if geom is not None and geom.is_empty:
            geom = None
        features.append({"type": "Feature", "id": number,
                         "geometry": mapping(geom) if geom is not None else None,
                         "properties": {"type": data["type"], "codes": data["codes"],
                                        "area_m2": data["area_m2"], "message": data["message"],
                                        "bbox": list(geom.bounds) if geom is not None else None}})
    result = feature_collection(features, edition=edition_dict(edition), cells=cells)
    if cache is not None:
        while len(cache) >= PROBLEM_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = result
    return result
