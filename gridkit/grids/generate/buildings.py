"""The building rule in memory (shapely), as generation counts buildings.

The rule itself is stated once, in `gridkit.rules.building_cell`: a building with a footprint
belongs to the cell holding the largest part of it (ties: the smallest code; a footprint with no
area inside any cell belongs to none), a building without one to the cell covering its point
(ties: the smallest code). `gridkit.assign` applies it in SQL to stored subjects; this module
applies it to shapely geometry, so that the counts generation reports are the counts after
publishing. Cells are given in code order, so "smallest code" is "smallest index".
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Point


def as_geometries(buildings) -> np.ndarray:
    """Return buildings (Points, Polygons, MultiPolygons or (x, y) pairs) as an array of geometries."""
    out = []
    for b in buildings if buildings is not None else ():
        if hasattr(b, "geom_type"):
            if not b.is_empty:
                out.append(b)
        else:
            out.append(Point(float(b[0]), float(b[1])))
    return np.asarray(out, dtype=object)


def building_parts(
    cells: np.ndarray, buildings: np.ndarray, *, valid: bool = False, points: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (building, cell, part) for every building and cell that share something.

    `part` is the area of the footprint inside the cell (0 pairs dropped), or 1 for a point the
    cell covers. A footprint wholly inside a cell is that cell's alone (no intersection, as
    assignment does); only footprints covered by no cell are intersected. valid=True: the
    footprints are known to be valid (not checked again). `points`: an interior point (x, y) of
    each building (point_on_surface), when known already.
    """
    empty = np.empty(0, int), np.empty(0, int), np.empty(0)
    if not len(cells) or not len(buildings):
        return empty
    # Candidates by box, then predicates with the cells prepared (each cell meets many buildings).
    shapely.prepare(cells)
    b, c = shapely.STRtree(cells).query(buildings)
    if not len(b):
        return empty
    if points is None:
        points = shapely.get_coordinates(shapely.point_on_surface(buildings)).reshape(-1, 2)
    fb, fc = buildings[b], cells[c]
    point = shapely.get_type_id(fb) == 0
    part = np.zeros(len(b))
    # A cell covering a footprint holds its interior point; only those pairs are tested for covers.
    at = np.nonzero(shapely.intersects_xy(fc, points[b, 0], points[b, 1]))[0]
    part[at[point[at]]] = 1.0
    at = at[~point[at]]
    covering = at[shapely.covers(fc[at], fb[at])]
    part[covering] = shapely.area(fb[covering])
    covered = np.zeros(len(buildings), dtype=bool)
    covered[b[covering]] = True
    rest = np.nonzero(~point & ~covered[b])[0]
    rest = rest[shapely.intersects(fc[rest], fb[rest])]
    if len(rest):
        pieces = fb[rest]
        if not valid:
            pieces = np.where(shapely.is_valid(pieces), pieces, shapely.make_valid(pieces))
        part[rest] = shapely.area(shapely.intersection(fc[rest], pieces))
    keep = part > 0
    return b[keep], c[keep], part[keep]


def owners(building: np.ndarray, group: np.ndarray, part: np.ndarray, n: int) -> np.ndarray:
    """Return, for each of n buildings, the group holding its largest summed part (ties: smallest), −1 for none.

    `group` is the group (cell) of each part: faces of one cell add up, as the cell they form does.
    """
    result = np.full(n, -1, dtype=int)
    if not len(building):
        return result
    span = int(group.max()) + 2
    codes, inverse = np.unique(building.astype(np.int64) * span + (group + 1), return_inverse=True)
    sums = np.bincount(inverse.ravel(), weights=part)
    b, g = codes // span, codes % span - 1
    order = np.lexsort((g, -sums, b))
    first = order[np.r_[True, b[order[1:]] != b[order[:-1]]]]
    result[b[first]] = g[first]
    return result


def building_cells(cells, buildings) -> np.ndarray:
    """Return the index of the cell each building belongs to by the building rule (−1: none).

    `cells` in code order (any one CRS; assignment compares parts in EPSG:4490 degrees, which ranks
    them as square metres do across one footprint); `buildings` as for `as_geometries`.
    """
    cells = np.asarray(cells, dtype=object)
    geoms = as_geometries(buildings)
    b, c, part = building_parts(cells, geoms)
    return owners(b, c, part, len(geoms))
