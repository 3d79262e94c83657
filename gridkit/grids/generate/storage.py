"""Numbering generated cells and bringing them from the metric CRS back to storage (EPSG:4490)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from gridkit.errors import ValidationError
from gridkit.grids.numbering import cell_order
from gridkit.standard.codes import DEFAULT_PROFILE, PROFILES, CodeProfile, base_cell_code

# Generated vertices are rounded to this many degrees when stored (as ST_SnapToGrid would): ~0.1 mm.
STORAGE_GRID_DEG = 1e-9
# A generated vertex this close to the community boundary (metres) lies on it: it is a crossing
# computed by noding, off the exact line only by floating-point error.
ON_BOUNDARY_M = 1e-6


def number_cells(polygons: Sequence, community_code: str, profile: CodeProfile | str = DEFAULT_PROFILE) -> list[str]:
    """Return the base cell code of each polygon (same order as given), numbered by the default rule.

    The rule (gridkit.grids.numbering): representative points, row bands of the median cell
    height north→south, west→east inside a band. Polygons are in any CRS with x east and y north;
    stored cells are numbered in EPSG:4490 lon/lat, as generate_base_grid does.
    """
    profile = PROFILES[profile] if isinstance(profile, str) else profile
    limit = 10**profile.base_cell_seq_digits - 1
    if len(polygons) > limit:
        raise ValidationError(
            "generate.too_many_cells", community=community_code, cells=len(polygons), profile=profile.name, limit=limit
        )
    codes = [""] * len(polygons)
    for seq, i in enumerate(cell_order(polygons), start=1):
        codes[i] = base_cell_code(community_code, seq, profile)
    return codes


def to_storage(polygons: Sequence, inverse, community_m=None, community=None, grid: float | None = STORAGE_GRID_DEG):
    """Return metric polygons transformed to EPSG:4490 for storage, vertex by vertex.

    `inverse(x, y) -> (lon, lat)` is applied to every vertex; the same input vertex always gives the
    same output, so vertices shared by neighbouring cells stay shared. With the community given
    (metric `community_m` and stored `community`, the same vertices in the same order), a vertex of
    the community gets its stored coordinates back exactly, and a new vertex on the community
    boundary (where a road crosses it) is placed on the stored boundary segment, so that the cells
    tile the stored community. Every other vertex is rounded to `grid` degrees like ST_SnapToGrid
    (rint(v / grid) * grid); grid=None keeps full precision.
    """
    polygons = np.asarray(polygons, dtype=object)
    coords = shapely.get_coordinates(polygons)
    lon, lat = inverse(coords[:, 0], coords[:, 1])
    out = np.column_stack([np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)])
    if grid:
        out = np.rint(out / grid) * grid
    if community is None or not len(coords):
        return shapely.transform(polygons, lambda _: out)
    starts_m, ends_m, starts, ends = [], [], [], []
    rings_m = shapely.get_rings(shapely.get_parts(community_m))
    rings = shapely.get_rings(shapely.get_parts(community))
    for ring_m, ring in zip(rings_m, rings):
        cm, co = shapely.get_coordinates(ring_m), shapely.get_coordinates(ring)
        starts_m.append(cm[:-1]), ends_m.append(cm[1:]), starts.append(co[:-1]), ends.append(co[1:])
    starts_m, ends_m = np.concatenate(starts_m), np.concatenate(ends_m)
    starts, ends = np.concatenate(starts), np.concatenate(ends)
    restore = {tuple(m): o for m, o in zip(starts_m, starts)}
    free = []
    for i, xy in enumerate(map(tuple, coords)):
        original = restore.get(xy)
        if original is None:
            free.append(i)
        else:
            out[i] = original
    if free:
        free = np.asarray(free)
        segments = shapely.linestrings(np.stack([starts_m, ends_m], axis=1))
        hit, seg = shapely.STRtree(segments).query(
            shapely.points(coords[free]), predicate="dwithin", distance=ON_BOUNDARY_M
        )
        order = np.argsort(hit, kind="stable")
        hit, seg = hit[order], seg[order]
        first = np.r_[True, hit[1:] != hit[:-1]] if len(hit) else np.empty(0, bool)
        hit, seg = hit[first], seg[first]
        p = coords[free[hit]]
        a, b = starts_m[seg], ends_m[seg]
        t = np.clip(np.einsum("ij,ij->i", p - a, b - a) / np.einsum("ij,ij->i", b - a, b - a), 0.0, 1.0)
        out[free[hit]] = starts[seg] + t[:, None] * (ends[seg] - starts[seg])
    return shapely.transform(polygons, lambda _: out)
