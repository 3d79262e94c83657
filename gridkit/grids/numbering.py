"""The base cell numbering rule: west→east inside row bands, bands north→south (DESIGN.md).

One rule, shared by generation (grids/generate.py) and renumbering of stored cells
(grids/validate.py), so that both give a community's cells the same codes:

1. Take one point per cell: its representative point (shapely `representative_point()`, which is
   GEOS InteriorPoint, the same as PostGIS `ST_PointOnSurface`), in EPSG:4490 lon/lat for stored
   cells. Centroids are not used: the centroid of an L-shaped cell can lie in another cell.
2. Band height h = the median height (max y − min y of the bounding box) of the community's cells,
   in the same units as the points.
3. Band of a point = floor((y_north − y) / h), where y_north is the largest y of all points, so
   band 0 holds the northernmost point.
4. Order by band (north first), then by x (west first), then by y (north first), then by input
   position, which makes the order total and deterministic.
"""

from __future__ import annotations

import math
from statistics import median
from typing import Sequence

__all__ = ["order_west_east_north_south", "band_height_of", "cell_order"]


def order_west_east_north_south(points_xy: Sequence[tuple[float, float]], band_height: float) -> list[int]:
    """Return the indices of points_xy in numbering order: bands north→south, west→east inside a band.

    points_xy are (x, y) with x growing east and y growing north (lon/lat or a projected CRS);
    band_height is in the same units. A band height that is not a positive finite number puts
    every point in a single band (pure west→east order).
    """
    if not points_xy:
        return []
    y_north = max(y for _, y in points_xy)
    banded = band_height is not None and math.isfinite(band_height) and band_height > 0

    def key(i: int):
        x, y = points_xy[i]
        band = math.floor((y_north - y) / band_height) if banded else 0
        return (band, x, -y, i)

    return sorted(range(len(points_xy)), key=key)


def band_height_of(polygons) -> float:
    """Return the median bounding-box height of the polygons (the rule's band height), 0.0 if none."""
    heights = [p.bounds[3] - p.bounds[1] for p in polygons if not p.is_empty]
    return float(median(heights)) if heights else 0.0


def cell_order(polygons) -> list[int]:
    """Return the indices of the polygons in numbering order (representative points, median band height)."""
    points = [(pt.x, pt.y) for pt in (p.representative_point() for p in polygons)]
    return order_west_east_north_south(points, band_height_of(polygons))
