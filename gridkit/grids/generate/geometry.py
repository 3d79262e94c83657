"""Geometry helpers of base cell generation, in one metric CRS (metres): faces, adjacency, cuts."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon

# Cut lines overshoot the cell they split by this much (metres) so that noding always crosses
# the cell boundary; the overshoot is a dangle that polygonize drops.
CUT_OVERSHOOT_M = 0.01
# Preferred gap (metres) between the two buildings a cut passes between.
CUT_CLEARANCE_M = 1.0
# A LineIndex keeps a dense table of its buckets up to this many (8 bytes each).
DENSE_BUCKETS = 4_000_000
# An edge this close (metres) to a major road lies on it.
ON_ROAD_M = 1e-3


def unique(values: np.ndarray) -> np.ndarray:
    """Return the sorted distinct values (np.unique by sorting: faster than its hashing for plain integers)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def polygonal(geom):
    """Return the polygon parts of geom as one Polygon or MultiPolygon (empty Polygon if none)."""
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
    if not parts:
        return Polygon()
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def line_parts(geoms) -> list:
    """Return the non-empty LineStrings in geoms (multi-parts and collections exploded, rings as lines), in order."""
    arr = np.asarray([g for g in geoms if g is not None], dtype=object)
    if not len(arr):
        return []
    parts = shapely.get_parts(arr)
    kinds = shapely.get_type_id(parts)
    if (kinds >= 4).any():  # a collection holding multi-parts: explode it in order, part by part
        return _line_parts_nested(arr)
    rings = kinds == 2
    if rings.any():
        parts[rings] = [LineString(r.coords) for r in parts[rings]]
    keep = ((kinds == 1) | rings) & (shapely.length(parts) > 0)
    return list(parts[keep])


def _line_parts_nested(geoms) -> list:
    out = []
    for g in geoms:
        if g is None or g.is_empty:
            continue
        for part in shapely.get_parts(g):
            if part.geom_type == "LineString" and part.length > 0:
                out.append(part)
            elif part.geom_type == "LinearRing":
                out.append(LineString(part.coords))
            elif part.geom_type in ("MultiLineString", "GeometryCollection"):
                out.extend(_line_parts_nested([part]))
    return out


def face_segments(faces: np.ndarray):
    """Return (p, q, face, length) of every ring segment of faces, each with p before q in (x, y) order."""
    rings, face_of_ring = shapely.get_rings(faces, return_index=True)
    coords, ring_of_coord = shapely.get_coordinates(rings, return_index=True)
    same = ring_of_coord[1:] == ring_of_coord[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    face = face_of_ring[ring_of_coord[:-1][same]]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    p = np.where(swap[:, None], b, a)
    q = np.where(swap[:, None], a, b)
    return p, q, face, np.hypot(*(q - p).T)


class LineIndex:
    """The single segments of some lines in a grid of square buckets (numpy only): a point near a long
    line is found by the few segments in its bucket, not by measuring its distance to the whole
    line, and no geometry object is made per point or segment."""

    BUCKET_M = 15.0

    def __init__(self, lines, bounds=None):
        """`bounds`: (minx, miny, maxx, maxy) of the points to be asked about; segments outside are left out."""
        lines = np.asarray(lines, dtype=object)
        coords, line = shapely.get_coordinates(lines, return_index=True)
        inner = line[1:] == line[:-1]
        self.line_of = line[:-1][inner]
        self.a, self.b = coords[:-1][inner], coords[1:][inner]
        self.n_lines = len(lines)
        lo, hi = np.minimum(self.a, self.b), np.maximum(self.a, self.b)
        if bounds is not None:
            meets = (
                (hi[:, 0] >= bounds[0]) & (hi[:, 1] >= bounds[1]) & (lo[:, 0] <= bounds[2]) & (lo[:, 1] <= bounds[3])
            )
            self.line_of, self.a, self.b, lo, hi = (
                self.line_of[meets],
                self.a[meets],
                self.b[meets],
                lo[meets],
                hi[meets],
            )
        self.origin = lo.min(axis=0) if len(lo) else np.zeros(2)
        first, last = self._bucket(lo), self._bucket(hi)
        self.shape = (last.max(axis=0) + 1) if len(last) else np.ones(2, dtype=np.int64)
        segment, cx, cy = _expand(first, last)
        keys = cx * self.shape[1] + cy
        order = np.argsort(keys, kind="stable")
        self.keys, self.segment = keys[order], segment[order]
        # Where each bucket's segments start (a dense table while the grid is small, else by search).
        buckets = int(self.shape[0] * self.shape[1])
        self.first = (
            np.concatenate([[0], np.cumsum(np.bincount(self.keys, minlength=buckets))])
            if buckets <= DENSE_BUCKETS
            else None
        )

    def _bucket(self, xy: np.ndarray) -> np.ndarray:
        return np.floor((xy - self.origin) / self.BUCKET_M).astype(np.int64)

    def near(self, points, distance: float) -> tuple[np.ndarray, np.ndarray]:
        """Return (point, line) index pairs, each once: points (geometries or x, y rows) near a line (≤ distance)."""
        xy = np.asarray(points)
        if xy.dtype == object:
            xy = shapely.get_coordinates(xy)
        xy = xy.reshape(-1, 2).astype(float)
        empty = np.empty(0, int)
        if not len(xy) or not len(self.keys):
            return empty, empty
        first = np.maximum(self._bucket(xy - distance), 0)
        last = np.minimum(self._bucket(xy + distance), self.shape - 1)
        ok = (first <= last).all(axis=1)
        if (first[ok] == last[ok]).all():  # each point in one bucket (a small distance): no ranges to expand
            point = np.nonzero(ok)[0]
            keys = first[ok, 0] * self.shape[1] + first[ok, 1]
        else:
            point, cx, cy = _expand(first[ok], last[ok])
            point = np.nonzero(ok)[0][point]
            keys = cx * self.shape[1] + cy
        if self.first is not None:
            start = self.first[keys]
            count = self.first[keys + 1] - start
        else:
            start = np.searchsorted(self.keys, keys, side="left")
            count = np.searchsorted(self.keys, keys, side="right") - start
        point = np.repeat(point, count)
        segment = self.segment[np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())]
        a, b, p = self.a[segment], self.b[segment], xy[point]
        d = b - a
        span = np.einsum("ij,ij->i", d, d)
        t = np.clip(np.einsum("ij,ij->i", p - a, d) / np.where(span > 0, span, 1.0), 0.0, 1.0)
        gap = p - (a + t[:, None] * d)
        close = np.einsum("ij,ij->i", gap, gap) <= distance * distance
        keys = unique(point[close].astype(np.int64) * self.n_lines + self.line_of[segment[close]])
        return keys // self.n_lines, keys % self.n_lines


def _expand(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (row, x, y) for every bucket of every row's range of buckets first..last (inclusive)."""
    width = last[:, 0] - first[:, 0] + 1
    count = width * (last[:, 1] - first[:, 1] + 1)
    row = np.repeat(np.arange(len(first)), count)
    k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return row, first[row, 0] + k % width[row], first[row, 1] + k // width[row]


class Polylines:
    """Lines as numpy vertex arrays: points and directions at distances along them, many at once
    and without a geometry object per point."""

    def __init__(self, lines):
        lines = np.asarray(lines, dtype=object)
        self.coords, owner = shapely.get_coordinates(lines, return_index=True)
        rows = np.arange(len(lines))
        self.start = np.searchsorted(owner, rows)
        self.end = np.searchsorted(owner, rows, side="right")
        step = np.hypot(*np.diff(self.coords, axis=0).T)
        step[owner[1:] != owner[:-1]] = 0.0  # no length between the last vertex of a line and the next line
        self.cum = np.concatenate([[0.0], np.cumsum(step)])
        self.length = self.cum[np.maximum(self.end - 1, self.start)] - self.cum[self.start]

    def point_at(self, line: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """Return the (x, y) of the points at `distance` along lines `line` (clamped to the line, as GEOS does)."""
        key = self.cum[self.start[line]] + np.clip(distance, 0.0, self.length[line])
        k = np.clip(np.searchsorted(self.cum, key, side="right") - 1, self.start[line], self.end[line] - 2)
        span = self.cum[k + 1] - self.cum[k]
        t = np.clip((key - self.cum[k]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
        return self.coords[k] + t[:, None] * (self.coords[k + 1] - self.coords[k])

    def direction(self, line: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """Return unit vectors along lines `line` at `distance`: from a metre before to a metre after."""
        d = self.point_at(line, np.minimum(distance + 1.0, self.length[line])) - self.point_at(
            line, np.maximum(distance - 1.0, 0.0)
        )
        norm = np.hypot(d[:, 0], d[:, 1])
        return d / np.where(norm > 0, norm, 1.0)[:, None]


def segments_on(p: np.ndarray, q: np.ndarray, index: LineIndex | None) -> tuple[np.ndarray, np.ndarray]:
    """Return (segment, line) index pairs: segments whose midpoint lies on a line of the LineIndex."""
    if index is None or not len(p):
        return np.empty(0, int), np.empty(0, int)
    return index.near((p + q) / 2, ON_ROAD_M)


def face_adjacency(faces: np.ndarray, major=None, segments=None):
    """Return (i, j, shared length, shared length along major roads, (pair, line)) for faces sharing edges.

    Faces from one noded polygonize share their edges exactly (same vertex coordinates), so shared
    edges are found by matching segments, without any geometric tolerance. `major` is a LineIndex
    of major road lines (or None); (pair, line) lists which major line runs along which pair.
    `segments`: the faces' face_segments and segments_on(…, major) for all of them, when known.
    """
    empty = np.empty(0, int)
    if len(faces) == 0:
        return empty, empty, np.empty(0), np.empty(0), (empty, empty)
    p, q, face, length, on = segments if segments is not None else (*face_segments(faces), None)
    # Equal segments (same two vertices) are next to each other once sorted by their coordinates.
    order = np.lexsort((q[:, 1], q[:, 0], p[:, 1], p[:, 0]))
    ps, qs = p[order], q[order]
    same = np.all(ps[1:] == ps[:-1], axis=1) & np.all(qs[1:] == qs[:-1], axis=1)
    pair = np.nonzero(same)[0]
    face_s = face[order]
    fi, fj = face_s[pair], face_s[pair + 1]
    seg = order[pair]  # one of the two copies of each shared segment
    keep = fi != fj
    fi, fj, seg = np.minimum(fi, fj)[keep], np.maximum(fi, fj)[keep], seg[keep]
    if len(fi) == 0:
        return fi, fj, np.empty(0), np.empty(0), (empty, empty)
    # Only shared segments are tested against the major roads: a point per shared segment.
    on_major = np.zeros(len(seg))
    if on is None:
        hit, line = segments_on(p[seg], q[seg], major)
    else:  # the hits among all segments, as positions in seg (a segment is shared by two faces at most)
        position = np.full(len(p), -1)
        position[seg] = np.arange(len(seg))
        shared = position[on[0]] >= 0
        hit, line = position[on[0][shared]], on[1][shared]
    on_major[np.unique(hit)] = length[seg][np.unique(hit)]
    n = len(faces)
    keys, inv = np.unique(fi.astype(np.int64) * n + fj, return_inverse=True)
    inv = inv.ravel()
    if len(hit):
        pl = np.unique(inv[hit].astype(np.int64) * (int(line.max()) + 1) + line)
        pair_lines = (pl // (int(line.max()) + 1), pl % (int(line.max()) + 1))
    else:
        pair_lines = (empty, empty)
    return (keys // n, keys % n, np.bincount(inv, weights=length[seg]), np.bincount(inv, weights=on_major), pair_lines)


def split_faces(faces: np.ndarray, lines) -> tuple[np.ndarray, np.ndarray]:
    """Return (pieces, face) : faces noded with lines and polygonized again, and the face each piece lies in.

    Parts of lines outside the faces are dangles that polygonize drops; a hole the faces enclose
    (a face not given) comes back from polygonize too and is dropped, as it lies in none of them.
    """
    noded = shapely.union_all([*shapely.boundary(faces), *lines])
    pieces = shapely.get_parts(shapely.polygonize([noded]))
    pieces = pieces[shapely.area(pieces) > 0]
    face = np.full(len(pieces), -1, dtype=int)
    pi, fi = shapely.STRtree(faces).query(shapely.point_on_surface(pieces), predicate="within")
    face[pi] = fi
    inside = face >= 0
    return pieces[inside], face[inside]


def point_faces(faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Return the index of the face covering each point geometry (the smallest on a shared edge), −1 outside."""
    result = np.full(len(points), -1, dtype=int)
    if len(points) == 0 or len(faces) == 0:
        return result
    tree = shapely.STRtree(faces)
    pi, fi = tree.query(points, predicate="intersects")
    order = np.lexsort((fi, pi))
    pi, fi = pi[order], fi[order]
    first = np.r_[True, pi[1:] != pi[:-1]]
    result[pi[first]] = fi[first]
    return result


def containing(old_faces: np.ndarray, reps: np.ndarray) -> np.ndarray:
    """Return, for each point, the index of the old face it lies in (nearest one for a stray point)."""
    tree = shapely.STRtree(old_faces)
    result = np.full(len(reps), -1, dtype=int)
    pi, fi = tree.query(reps, predicate="intersects")
    result[pi[::-1]] = fi[::-1]
    missing = np.nonzero(result < 0)[0]
    if len(missing):
        _, near = tree.query_nearest(reps[missing], return_distance=False, all_matches=False)
        result[missing] = near
    return result


def halfplane(origin, axis, offset, reach) -> Polygon:
    """Return a polygon covering every point p near origin with (p − origin)·axis ≤ offset."""
    normal = np.array([-axis[1], axis[0]])
    base = origin + axis * offset
    far = base - axis * 2 * reach
    return Polygon([base + normal * reach, base - normal * reach, far - normal * reach, far + normal * reach])


def area_cut_offset(poly, origin, axis, wanted: float, reach: float) -> float:
    """Return the offset along axis at which the part of poly on the low side has area `wanted`."""
    proj = (np.asarray(shapely.get_coordinates(poly)) - origin) @ axis
    lo, hi = float(proj.min()), float(proj.max())
    for _ in range(60):
        mid = (lo + hi) / 2
        got = poly.intersection(halfplane(origin, axis, mid, reach)).area
        if abs(got - wanted) <= 1e-4 * poly.area:
            return mid
        lo, hi = (mid, hi) if got < wanted else (lo, mid)
    return (lo + hi) / 2


def count_cut_offsets(pts, origin, axis, k: int, k1: int, target, tries: int = 8) -> list[float]:
    """Return up to `tries` cut offsets along axis that leave building counts splittable k1 : k−k1.

    The cut passes midway between two consecutive buildings along the axis, nearest the wanted
    rank first; gaps of at least CUT_CLEARANCE_M come before narrower ones, so that a building
    point never ends up on the other side after rounding for storage.
    """
    n = len(pts)
    if n < 2:
        return []
    proj = np.sort((pts - origin) @ axis)
    wanted = round(n * k1 / k)
    wide, narrow = [], []
    for r in sorted(range(1, n), key=lambda r: (abs(r - wanted), r)):
        gap = proj[r] - proj[r - 1]
        if gap <= 0:
            continue  # no gap here: a cut cannot pass between these buildings
        if not (k1 * target.min <= r <= k1 * target.max and (k - k1) * target.min <= n - r <= (k - k1) * target.max):
            continue
        (wide if gap >= CUT_CLEARANCE_M else narrow).append(float((proj[r - 1] + proj[r]) / 2))
        if len(wide) >= tries:
            break
    return (wide + narrow)[:tries]


def cut_segments(poly, origin, axis, offset, reach) -> list[LineString]:
    """Return the pieces of the cut line inside poly, each overshooting its ends by a centimetre."""
    normal = np.array([-axis[1], axis[0]])
    base = origin + axis * offset
    line = LineString([base - normal * reach, base + normal * reach])
    out = []
    for part in line_parts([poly.intersection(line)]):
        start, end = np.asarray(part.coords[0]), np.asarray(part.coords[-1])
        direction = (end - start) / np.hypot(*(end - start))
        out.append(LineString([start - direction * CUT_OVERSHOOT_M, end + direction * CUT_OVERSHOOT_M]))
    return out
