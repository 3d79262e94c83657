"""The base cell numbering rule: west→east inside row bands, bands north→south (DESIGN.md).

One rule, shared by generation (grids/generate.py) and renumbering of stored cells
(grids/renumber.py), so that both give a community's cells the same codes:

1. Take one point per cell: its representative point (shapely `representative_point()`, which is
   GEOS InteriorPoint, the same as PostGIS `ST_PointOnSurface`), in EPSG:4490 lon/lat for stored
   cells. Centroids are not used: the centroid of an L-shaped cell can lie in another cell.
2. Band height h = the median height (max y − min y of the bounding box) of the community's cells,
   in the same units as the points.
3. Rows north→south: a row starts at the northernmost point not yet numbered and takes every
   remaining point less than h/2 south of it (each row anchored on its own first point, so
   floating-point noise never splits or merges the rows of a regular grid).
4. Inside a row: by x (west first), then by y (north first), then by input position, which
   makes the order total and deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import median

__all__ = ["order_west_east_north_south", "band_height_of", "cell_order"]


def order_west_east_north_south(points_xy: Sequence[tuple[float, float]], band_height: float) -> list[int]:
    """Return the indices of points_xy in numbering order: rows north→south, west→east in a row.

    A row starts at the northernmost point not yet numbered and takes every remaining point
    less than band_height / 2 south of it; inside a row points go by x, then y (north first),
    then input position. Each row is anchored on its own first point, so a regular grid, whose
    rows lie exactly one band height apart, never has rows split or merged by floating-point
    noise, and errors do not add up from row to row. points_xy are (x, y) with x growing east
    and y north; band_height is in the same units. A band height that is not a positive finite
    number puts every point in one row (pure west→east order).
    """
    if not points_xy:
        return []
    if band_height is None or not math.isfinite(band_height) or band_height <= 0:
        return sorted(range(len(points_xy)), key=lambda i: (points_xy[i][0], -points_xy[i][1], i))
    half = band_height / 2
    # North first; the members of a row are then a run at the front of what is left.
    by_y = sorted(range(len(points_xy)), key=lambda i: (-points_xy[i][1], points_xy[i][0], i))
    ordered: list[int] = []
    start = 0
    while start < len(by_y):
        top = points_xy[by_y[start]][1]
        end = start + 1
        while end < len(by_y) and points_xy[by_y[end]][1] > top - half:
            end += 1
        ordered += sorted(by_y[start:end], key=lambda i: (points_xy[i][0], -points_xy[i][1], i))
        start = end
    return ordered


def band_height_of(polygons) -> float:
    """Return the median bounding-box height of the polygons (the rule's band height), 0.0 if none."""
    heights = [p.bounds[3] - p.bounds[1] for p in polygons if not p.is_empty]
    return float(median(heights)) if heights else 0.0


def cell_order(polygons) -> list[int]:
    """Return the indices of the polygons in numbering order (representative points, median band height)."""
    points = [(pt.x, pt.y) for pt in (p.representative_point() for p in polygons)]
    return order_west_east_north_south(points, band_height_of(polygons))
