"""Reprojection noise: densify projected input, snap what lies closer than the tolerance, measure widths.

Surveyors draw in a Gauss-Kruger zone (e.g. EPSG:4547). A straight edge there is not straight in
EPSG:4490 lon/lat: reprojecting only its end points moves its middle by millimetres to centimetres
(8 mm at the middle of a 950 m edge 20 km from the central meridian), while a neighbour's vertex in
the middle of that edge moves to its exact place. Two rules keep clean data clean:

1. `densify_projected`: a geometry read in a projected CRS gets a vertex at least every
   DENSIFY_M metres before reprojection, so its edges stay within 0.1 mm of their course.
2. `snap_together`: vertices closer than the tolerance (default 5 cm) to a neighbour's vertex or
   edge, or to the parent's boundary, are moved onto it, and a neighbour's vertex lying on an edge
   is inserted there (T-junctions become shared vertices), so the pieces tile exactly.

Snapping runs in a local plane: lon/lat shifted to the data's centre and scaled to metres
(x·cos φ₀). That map is affine, so a straight edge of the stored EPSG:4490 geometry stays the same
straight edge and a point put on it lies on it after the way back; a Gauss-Kruger round trip would
bend long edges of stored parents by centimetres again. Over a city the scale is right to < 1 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry import GeometryCollection, MultiPolygon, Polygon

__all__ = ["DENSIFY_M", "DEFAULT_TOLERANCE_M", "densify_projected", "snap_together", "Snapped", "LocalPlane"]

# Longest segment (metres) of a geometry read in a projected CRS, before it is reprojected.
DENSIFY_M = 100.0
# Width (metres) below which an overlap, gap or part outside the parent is reprojection noise.
DEFAULT_TOLERANCE_M = 0.05
# Metres per degree of latitude on the CGCS2000 ellipsoid near 20-45°N (varies by < 0.2 %).
_M_PER_DEG = 110_900.0


# Most vertices a geometry may have once densified. A city boundary needs thousands; a geometry that would need
# more has a coordinate far off (a few digits too many: x = 5000000000 in a Gauss-Kruger zone), which the
# China check refuses after reprojection. Densified, one such vertex took gigabytes (or GEOS refused it).
DENSIFY_MAX_POINTS = 100_000


def densify_projected(geoms: np.ndarray, crs: pyproj.CRS, step_m: float = DENSIFY_M) -> np.ndarray:
    """Return `geoms` (in `crs`) with a vertex at least every `step_m` metres when `crs` is projected.

    A geometry that would get more than DENSIFY_MAX_POINTS vertices (or is not finite) is returned as it is. An
    invalid polygon keeps its shape (`_segmentize_as_drawn`), so that its repair is made and told by the reader."""
    if crs is None or not crs.is_projected:
        return geoms
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    step = step_m / (unit or 1.0)
    geoms = np.asarray(geoms, dtype=object)
    with np.errstate(invalid="ignore", over="ignore"):
        points = shapely.get_num_coordinates(geoms) + shapely.length(geoms) / step
    fits = np.isfinite(points) & (points <= DENSIFY_MAX_POINTS)
    dense = geoms.copy()
    valid = fits & shapely.is_valid(geoms)
    dense[valid] = shapely.segmentize(geoms[valid], step)
    for i in np.flatnonzero(fits & ~valid):
        dense[i] = _segmentize_as_drawn(geoms[i], step)
    return dense


def _segmentize_as_drawn(geom, step: float):
    """Return an invalid geometry densified ring by ring, as it is drawn.

    GEOS's densifier "repairs" an invalid polygonal result with buffer(0), which keeps one lobe of a bow-tie: a
    community drawn as a figure of eight lost half its area with no word, where the reader's repair
    (shapely.make_valid) keeps both and notes it. Rings and lines are densified as they are."""
    if isinstance(geom, Polygon):
        holes = [shapely.segmentize(ring, step) for ring in geom.interiors]
        return Polygon(shapely.segmentize(geom.exterior, step), holes)
    if isinstance(geom, (MultiPolygon, GeometryCollection)):
        parts = [_segmentize_as_drawn(part, step) for part in geom.geoms]
        return type(geom)(parts)
    return shapely.segmentize(geom, step)


class LocalPlane:
    """An affine map from EPSG:4490 lon/lat to metres around (lon0, lat0), and back."""

    def __init__(self, lon0: float, lat0: float):
        self.origin = np.array([lon0, lat0])
        self.scale = np.array([_M_PER_DEG * math.cos(math.radians(lat0)), _M_PER_DEG])

    @classmethod
    def around(cls, geoms) -> LocalPlane:
        """Return the plane centred on the bounds of `geoms`."""
        x0, y0, x1, y1 = shapely.total_bounds(np.asarray(geoms, dtype=object))
        return cls((x0 + x1) / 2, (y0 + y1) / 2)

    def to_metres(self, geoms):
        """Return `geoms` (lon/lat) in the local metric plane."""
        return shapely.transform(geoms, lambda xy: (xy - self.origin) * self.scale)

    def to_degrees(self, geoms):
        """Return `geoms` (local metres) in lon/lat."""
        return shapely.transform(geoms, lambda xy: xy / self.scale + self.origin)


@dataclass
class Snapped:
    """One geometry that snapping changed: its position, how far it moved (m) and what it met."""

    index: int
    moved_m: float
    neighbours: list[int]
    parent: bool


def _onto(geom, reference, tolerance: float):
    """Return `geom` snapped onto `reference` (lines): vertex to vertex, then vertex to edge."""
    snapped = shapely.snap(geom, reference, tolerance)
    boundary = reference
    coords = shapely.get_coordinates(snapped)
    points = shapely.points(coords)
    distance = shapely.distance(points, boundary)
    near = (distance > 0) & (distance < tolerance)
    if near.any():
        ends = shapely.get_coordinates(shapely.shortest_line(points[near], boundary)).reshape(-1, 2, 2)[:, 1]
        coords[near] = ends
        snapped = shapely.set_coordinates(snapped, coords)
    return snapped


def _polygonal(geom, single: bool):
    """Return a valid polygon/multipolygon from a snapped geometry, or None if snapping collapsed it."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = (
        [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
        if not isinstance(geom, (Polygon, MultiPolygon))
        else list(shapely.get_parts(geom))
    )
    if not parts:
        return None
    if single:
        return parts[0] if len(parts) == 1 else None
    return MultiPolygon(parts)


def _back(plane: LocalPlane, geom, exact: list):
    """Return `geom` (local metres) in lon/lat, reusing the exact lon/lat of every vertex it shares.

    A vertex snapped onto a neighbour's vertex must be bit-identical to it in EPSG:4490, not just
    within a rounding error of the affine round trip.
    """
    originals = np.array(exact, dtype=object)
    degrees = shapely.get_coordinates(originals).tolist()
    known = dict(zip(map(tuple, shapely.get_coordinates(plane.to_metres(originals)).tolist()), degrees))
    coords = shapely.get_coordinates(geom)
    out = coords / plane.scale + plane.origin
    for k, xy in enumerate(map(tuple, coords.tolist())):
        hit = known.get(xy)
        if hit is not None:
            out[k] = hit
    return shapely.set_coordinates(geom, out)


def _dirty(local: np.ndarray, local_parents: np.ndarray, present: np.ndarray, tolerance: float) -> np.ndarray:
    """Return which features snapping could change, found in bulk (vectorised) so clean ones cost nothing.

    A feature is dirty when a vertex (its own, a neighbour's or its parent's) lies within the
    tolerance of its boundary without being exactly one of its vertices, or when one of its own
    vertices lies near, but not on, a neighbour's or its parent's boundary.
    """
    dirty = np.zeros(len(local), dtype=bool)
    idx = np.flatnonzero(present)
    coords, at = shapely.get_coordinates(local[idx], return_index=True)
    owner = idx[at]
    vertices = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "cell": owner}).drop_duplicates()
    vertices["hit"] = True
    points = shapely.points(coords)
    boundaries = shapely.boundary(local[idx])
    near_point, near_cell = shapely.STRtree(boundaries).query(points, predicate="dwithin", distance=tolerance)
    other = owner[near_point] != idx[near_cell]
    near_point, near_cell = near_point[other], near_cell[other]

    def mark(point_coords, cells, distance, owners=None):
        found = pd.DataFrame({"x": point_coords[:, 0], "y": point_coords[:, 1], "cell": cells})
        hit = found.merge(vertices, on=["x", "y", "cell"], how="left")["hit"].notna().to_numpy()
        bad = (distance > 0) | ~hit
        dirty[cells[bad]] = True
        if owners is not None:
            dirty[owners[bad & (distance > 0)]] = True

    if len(near_point):
        distance = shapely.distance(points[near_point], boundaries[near_cell])
        mark(coords[near_point], idx[near_cell], distance, owner[near_point])
    with_parent = np.array([local_parents[o] is not None for o in owner])
    if with_parent.any():
        edges = shapely.boundary(np.array([local_parents[o] for o in owner[with_parent]], dtype=object))
        distance = shapely.distance(points[with_parent], edges)
        dirty[owner[with_parent][(distance > 0) & (distance < tolerance)]] = True
        children: dict[int, list[int]] = {}
        for i in idx:
            if local_parents[i] is not None:
                children.setdefault(id(local_parents[i]), []).append(i)
        for members in children.values():
            parent, cells = local_parents[members[0]], np.array(members)
            parent_coords = shapely.get_coordinates(parent)
            tree = shapely.STRtree(shapely.boundary(local[cells]))
            pp, pc = tree.query(shapely.points(parent_coords), predicate="dwithin", distance=tolerance)
            if len(pp):
                mark(parent_coords[pp], cells[pc], np.zeros(len(pp)))
    return dirty


def snap_together(
    geoms, parents=None, *, tolerance_m: float = DEFAULT_TOLERANCE_M, single: bool = True
) -> tuple[np.ndarray, list[Snapped]]:
    """Return lon/lat polygons snapped to each other and to their parent within `tolerance_m`, and what moved.

    `geoms` are EPSG:4490 polygons in a fixed order (file order); `parents[i]` is the boundary
    polygon feature i must lie in (or None). Feature i snaps to its parent and to the already
    snapped features before it (so two near edges meet once instead of swapping), then every
    feature takes the vertices its final neighbours have on its edges. A feature snapping would
    collapse or split (`single`: a Polygon must stay one) is left as it was; validation reports it.
    """
    geoms = np.asarray(geoms, dtype=object)
    result = geoms.copy()
    present = np.array([g is not None for g in geoms])
    if present.sum() == 0:
        return result, []
    plane = LocalPlane.around(geoms[present])
    local = np.full(len(geoms), None, dtype=object)
    local[present] = plane.to_metres(geoms[present])
    local_parents = np.full(len(geoms), None, dtype=object)
    if parents is not None:
        # Many features share one parent: transform each parent once, and keep it one object.
        unique = {id(p): p for p, here in zip(parents, present) if p is not None and here}
        moved = dict(zip(unique, plane.to_metres(np.array(list(unique.values()), dtype=object))))
        for i, p in enumerate(parents):
            if p is not None and present[i]:
                local_parents[i] = moved[id(p)]
    tree = shapely.STRtree(local)
    first, second = tree.query(local, predicate="dwithin", distance=tolerance_m)
    neighbours: dict[int, list[int]] = {}
    for i, j in zip(first, second):
        if i != j:
            neighbours.setdefault(int(i), []).append(int(j))
    final = local.copy()
    dirty = _dirty(local, local_parents, present, tolerance_m)
    for i in np.flatnonzero(dirty):
        refs = [final[j] for j in neighbours.get(int(i), []) if j < i]
        if local_parents[i] is not None:
            refs.append(shapely.boundary(local_parents[i]))
        if refs:
            # A collection, not a union: snapping only needs the reference's vertices and segments.
            final[i] = _onto(
                final[i],
                shapely.geometrycollections(
                    [shapely.boundary(r) if r.geom_type.endswith("Polygon") else r for r in refs]
                ),
                tolerance_m,
            )
    for i in np.flatnonzero(dirty):  # T-junctions: a neighbour's vertex on my edge becomes mine too
        around = [final[j] for j in neighbours.get(int(i), [])]
        if around:
            final[i] = shapely.snap(
                final[i], shapely.geometrycollections([shapely.boundary(g) for g in around]), tolerance_m
            )
    changed: list[Snapped] = []
    for i in np.flatnonzero(dirty):
        if shapely.equals_exact(final[i], local[i], 0.0):
            continue
        cleaned = _polygonal(final[i], single)
        if cleaned is None:
            continue
        moved = float(shapely.hausdorff_distance(cleaned, local[i]))
        around = np.array(neighbours.get(int(i), []), dtype=int)
        met = around[shapely.distance(local[i], local[around]) < tolerance_m].tolist() if len(around) else []
        touches_parent = (
            local_parents[i] is not None
            and shapely.distance(shapely.boundary(local_parents[i]), local[i]) < tolerance_m
        )
        exact = [geoms[i]] + [geoms[j] for j in met] + ([parents[i]] if touches_parent else [])
        result[i] = _back(plane, cleaned, exact)
        changed.append(Snapped(int(i), moved, sorted(met), bool(touches_parent)))
    return result, changed
