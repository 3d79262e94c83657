"""Geometry helpers: EPSG:4547 metres ↔ EPSG:4490 lon/lat, adjacency, and exact polygons from one arrangement."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon

from .constants import GRID, METRIC_EPSG, MIN_SHARED_EDGE_M, ROW_BAND_M, SLIVER_DEG2, SRID

_TO_METRIC = Transformer.from_crs(SRID, METRIC_EPSG, always_xy=True)
_TO_LONLAT = Transformer.from_crs(METRIC_EPSG, SRID, always_xy=True)


def _apply(transformer: Transformer):
    def transform(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return transform


def to_metric(geom):
    """Return geom moved from EPSG:4490 lon/lat to metres in EPSG:4547."""
    return shapely.transform(geom, _apply(_TO_METRIC))


def to_lonlat(geom):
    """Return geom moved from metres in EPSG:4547 to EPSG:4490 lon/lat."""
    return shapely.transform(geom, _apply(_TO_LONLAT))


def polygons_of(geom) -> list[Polygon]:
    """Return the non-empty polygons of any geometry."""
    return [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]


def as_multipolygon(geom) -> MultiPolygon:
    """Return geom as a MultiPolygon (admin units are always multi)."""
    return MultiPolygon(polygons_of(geom))


def shared_length(a, b, tolerance: float = 0.01) -> float:
    """Return the length of a's boundary lying within `tolerance` (metres) of b: their common edge."""
    return shapely.intersection(a.boundary, b.buffer(tolerance, quad_segs=2)).length


def adjacency(polys: list, tolerance: float = 0.01) -> dict[int, dict[int, float]]:
    """Return {i: {j: shared edge length}} for polygons (in metres) that share an edge, not just a corner."""
    tree = shapely.STRtree(polys)
    result: dict[int, dict[int, float]] = defaultdict(dict)
    for i, poly in enumerate(polys):
        for j in sorted(int(k) for k in tree.query(poly.buffer(tolerance, quad_segs=2))):
            if j <= i:
                continue
            length = shared_length(poly, polys[j], tolerance)
            if length > MIN_SHARED_EDGE_M:
                result[i][j] = result[j][i] = length
    return result


def row_order_key(point_xy: tuple[float, float], north_edge: float) -> tuple[int, float]:
    """Sort key for numbering: 500 m rows from the north edge (north→south), then west→east."""
    x, y = point_xy
    return (int((north_edge - y) // ROW_BAND_M), x)


def rebuild_exact(labelled: list[tuple[str, object]]) -> dict[str, list[Polygon]]:
    """Return {label: faces}: all boundaries snap-rounded to GRID together and re-polygonised.

    Snap rounding nodes every boundary against every other one, so neighbouring polygons (at any
    level) end up with identical shared edges; each face goes to the input polygon covering most of it.
    """
    geoms = [g for _, g in labelled]
    noded = shapely.union_all([shapely.boundary(g) for g in geoms], grid_size=GRID)
    faces = polygons_of(shapely.polygonize(shapely.get_parts(noded)))
    tree = shapely.STRtree(geoms)
    result: dict[str, list[Polygon]] = defaultdict(list)
    for face in faces:
        candidates = sorted(int(k) for k in tree.query(face, predicate="intersects"))
        overlaps = [(shapely.intersection(face, geoms[k]).area, -k) for k in candidates]
        if not overlaps:
            continue
        # A face mostly outside every input is a hole in the whole arrangement: leave it out.
        # Anything else, including slivers where inputs overlapped or missed by millimetres, is kept.
        if sum(area for area, _ in overlaps) > 0.5 * face.area or face.area < SLIVER_DEG2:
            _, neg_k = max(overlaps)
            result[labelled[-neg_k][0]].append(face)
    return result


def dissolve(polys: list):
    """Return the union of polygons that are already on the grid and share identical edges.

    No grid_size here on purpose: snapping again could collapse a thin part of the union that the
    separate children keep, and then a parent would no longer equal the union of its children.
    """
    return shapely.union_all(polys)


def single_polygons(cells: dict[str, object], community_of: dict[str, str]) -> dict[str, Polygon]:
    """Return cells as single Polygons: stray parts (snapping noise) join the neighbour sharing most edge."""
    cells = dict(cells)
    for _ in range(100):
        multi = sorted(code for code, g in cells.items() if len(polygons_of(g)) > 1)
        if not multi:
            return {code: polygons_of(g)[0] for code, g in cells.items()}
        code = multi[0]
        parts = sorted(polygons_of(cells[code]), key=lambda p: -p.area)
        cells[code] = parts[0]
        tree_codes = sorted(cells)
        tree = shapely.STRtree([cells[c] for c in tree_codes])
        for part in parts[1:]:
            best = None
            for k in sorted(int(k) for k in tree.query(part, predicate="intersects")):
                other = tree_codes[k]
                if other == code:
                    continue
                length = shapely.intersection(part.boundary, cells[other].boundary).length
                same = community_of[other] == community_of[code]
                key = (same, length, other)
                if length > 0 and (best is None or key > best):
                    best = key
            if best is None:
                raise RuntimeError(f"cell part of {code} has no neighbour")
            other = best[2]
            cells[other] = dissolve([cells[other], part])
    raise RuntimeError("cells did not become single polygons")
