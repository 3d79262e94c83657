"""Generate base cells along roads and rivers (issue 3, part 4): a pure-geometry core and a database part.

Core (`generate_cells`, one metric CRS, metres):

1. **Faces.** The community boundary, the roads, the outlines of water areas and river lines are
   noded together (one `unary_union`) and polygonized. Every face is a single polygon, and
   neighbouring faces share their vertices exactly, so the faces tile the community exactly.
   Which roads cut is decided by `road_lines`: streets of every class and surface railways do;
   tunnels (metro, under-river road tunnels), ferries, piers, service roads and, by default,
   footways and paths do not. Water areas by `water_features`: pools and fountains do not.
2. **Water.** A water area whose part inside the community is at least `water_min_m2` is cut out
   as faces of its own (water faces); smaller ponds stay inside the land face around them. Water
   faces must still be covered by cells, because cells tile the community:
   - area target: water faces are cells like land (merged when too small, split when too large),
     except that they merge into water neighbours first;
   - building target: water has no buildings by nature, so the target does not apply. All water
     faces of one connected water body become one cell (status ``water``, with that reason); a
     water body smaller than `water_min_m2` after clipping is merged into the land next to it.
3. **Merge.** Groups of faces below the minimum, and slivers (mean width 2·area/perimeter below
   `min_width_m`), are merged, smallest first, into the neighbour with which they share the
   longest boundary, where a boundary along a major road counts only MAJOR_ROAD_WEIGHT of its
   length (blocks merge across minor streets first). Land prefers land neighbours and water water
   neighbours; among those, a neighbour that stays within the maximum after the merge comes first.
   Merging only along shared edges of positive length keeps every cell one polygon.
4. **Split.** Groups above the maximum are cut by a straight line perpendicular to the long axis
   of their minimum rotated rectangle (the short axis is tried when that cut would leave a piece
   below the minimum). A group of n > max is meant to become k = ceil(n / max) cells, so the cut
   divides it k//2 : k − k//2: by building count (the cut passes midway between two buildings
   ordered along the axis) or by area (position found by bisection). Cut lines are noded into the
   same line set and everything is polygonized again, so cells still share vertices exactly.
   Pieces a cut leaves below the minimum are merged again; this repeats until no cell can be split
   (at most `max_rounds` rounds).
5. **Numbering.** Cells come back in the order of `gridkit.grids.numbering` (bands north→south,
   west→east inside a band); `number_cells` gives the codes.

Every cell left outside the target carries a reason. The database part (`generate_base_grid`)
reads communities and buildings, works in the CGCS2000 Gauss-Kruger zone of each community and
writes a draft base grid edition (never commits); `to_storage` brings cells back to EPSG:4490
without opening gaps between them.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import shapely
from geoalchemy2.shape import from_shape, to_shape
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Polygon
from sqlalchemy import and_, exists, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from gridkit.coords import gauss_kruger_epsg
from gridkit.errors import Conflict, NotFound, ValidationError
from gridkit.grids.base import current_edition
from gridkit.grids.numbering import cell_order
from gridkit.models import SRID, AdminUnit, BaseCell, BaseGridEdition, Building
from gridkit.standard.codes import DEFAULT_PROFILE, PROFILES, CodeProfile, base_cell_code

__all__ = [
    "Target",
    "GeneratedCell",
    "GenerationResult",
    "generate_cells",
    "number_cells",
    "road_lines",
    "water_features",
    "read_layer",
    "CellProblem",
    "CommunityReport",
    "GenerationReport",
    "generate_base_grid",
    "to_storage",
]

# Water areas smaller than this (inside the community) are not cut out as faces of their own.
WATER_MIN_M2 = 10_000.0
# Cut lines overshoot the cell they split by this much (metres) so that noding always crosses
# the cell boundary; the overshoot is a dangle that polygonize drops.
_CUT_OVERSHOOT_M = 0.01
# Preferred gap (metres) between the two buildings a cut passes between.
_CUT_CLEARANCE_M = 1.0
# Generated vertices are rounded to this many degrees when stored (as ST_SnapToGrid would): ~0.1 mm.
STORAGE_GRID_DEG = 1e-9
# A generated vertex this close to the community boundary (metres) lies on it: it is a crossing
# computed by noding, off the exact line only by floating-point error.
_ON_BOUNDARY_M = 1e-6
# When a small group picks the neighbour to merge into, a boundary along a major road counts this
# share of its length: blocks merge across minor streets before they merge across main roads.
MAJOR_ROAD_WEIGHT = 0.1
# Strips narrower than this on average (2·area / perimeter, metres) are merged whatever their size:
# a road a few metres inside a community boundary that follows it cuts off such slivers.
MIN_WIDTH_M = 8.0


# --------------------------------------------------------------------------------------- target


@dataclass(frozen=True)
class Target:
    """How big a cell should be: min..max buildings per cell, or min..max square metres."""

    measure: str  # "buildings" | "area"
    min: float
    max: float

    def __post_init__(self):
        if self.measure not in ("buildings", "area"):
            raise ValidationError(f"A target counts 'buildings' or 'area', not {self.measure!r}.")
        if not (math.isfinite(self.min) and math.isfinite(self.max)) or self.min < 0 or self.max <= 0:
            raise ValidationError(f"Target {self.min:g}-{self.max:g}: give two positive numbers.")
        if self.min > self.max:
            raise ValidationError(f"Target {self.min:g}-{self.max:g}: the minimum is larger than the maximum.")

    @classmethod
    def buildings(cls, min_: int, max_: int) -> "Target":
        """Return a target of min_..max_ buildings per cell."""
        return cls("buildings", float(min_), float(max_))

    @classmethod
    def area_m2(cls, min_: float, max_: float) -> "Target":
        """Return a target of min_..max_ square metres per cell."""
        return cls("area", float(min_), float(max_))

    @classmethod
    def parse(cls, text: str, measure: str) -> "Target":
        """Return the target written as 'MIN-MAX' (e.g. '20-150' buildings or '20000-400000' m²)."""
        parts = str(text).replace("–", "-").replace(",", "").split("-")
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise ValidationError(f"Target {text!r}: write it as MIN-MAX, e.g. 20-150.") from None
        return cls(measure, low, high)

    def describe(self) -> str:
        """Return the target as text, e.g. '20–150 buildings'."""
        if self.measure == "buildings":
            return f"{self.min:g}–{self.max:g} buildings"
        return f"{self.min:,.0f}–{self.max:,.0f} m²"

    def _fmt(self, value: float) -> str:
        return f"{value:g} buildings" if self.measure == "buildings" else f"{value:,.0f} m²"


# --------------------------------------------------------------------------------------- results


@dataclass
class GeneratedCell:
    """One generated cell in the metric CRS, with its measures and target status."""

    polygon: Polygon
    area_m2: float
    buildings: int
    water: bool
    status: str  # "ok" | "below" | "above" | "water"
    reason: str | None = None


@dataclass
class GenerationResult:
    """The cells of one community in numbering order, plus what the algorithm did."""

    cells: list[GeneratedCell]
    target: Target
    faces: int = 0  # faces after splitting along roads and rivers
    merges: int = 0
    splits: int = 0
    rounds: int = 0
    tiling_error_m2: float = 0.0  # area of (union of cells) △ community
    overlap_m2: float = 0.0  # sum of cell areas − area of their union
    seconds: float = 0.0

    @property
    def outside(self) -> list[GeneratedCell]:
        """Return the cells not within the target (water cells included: they carry a reason too)."""
        return [c for c in self.cells if c.status != "ok"]

    @property
    def in_target(self) -> int:
        """Return how many cells meet the target."""
        return sum(c.status == "ok" for c in self.cells)

    @property
    def in_target_share(self) -> float:
        """Return the share of cells the target applies to (not water cells) that meet it."""
        applicable = [c for c in self.cells if c.status != "water"]
        return sum(c.status == "ok" for c in applicable) / len(applicable) if applicable else 1.0


# --------------------------------------------------------------------------------------- core


def generate_cells(community, roads: Iterable, water: Iterable | None, buildings: Iterable | None,
                   target: Target, *, major_roads: Iterable | None = None, water_min_m2: float = WATER_MIN_M2,
                   min_width_m: float = MIN_WIDTH_M, max_rounds: int = 30) -> GenerationResult:
    """Return cells that tile `community` exactly, split along roads and water, merged/split to `target`.

    All geometry is in one metric CRS (metres). `roads`: LineStrings (or MultiLineStrings);
    `water`: Polygons (water areas) and/or LineStrings (rivers, canals); `buildings`: Points (or
    (x, y) pairs), needed for a building target. Roads and water outside the community are
    ignored. `major_roads` (optional, also in `roads`) are main roads: small faces merge across
    them only when no boundary along a minor road is available (see MAJOR_ROAD_WEIGHT). Cells come
    back in numbering order (see gridkit.grids.numbering).
    """
    started = time.perf_counter()
    community = shapely.make_valid(community) if not community.is_valid else community
    community = _polygonal(community)
    if community.is_empty or community.area <= 0:
        raise ValidationError("The community has no area: nothing to generate cells in.")
    if target.measure == "buildings" and buildings is None:
        raise ValidationError("A building target needs buildings: load them, or give an area target instead.")
    gen = _Generator(community, list(roads or []), list(water or []), buildings, target, water_min_m2,
                     major_roads=list(major_roads or []), min_width_m=min_width_m)
    gen.run(max_rounds)
    result = gen.result()
    result.seconds = time.perf_counter() - started
    return result


def _polygonal(geom):
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
    if not parts:
        return Polygon()
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def _line_parts(geoms) -> list:
    """Return the non-empty LineStrings in geoms (multi-parts and collections exploded)."""
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
                out.extend(_line_parts([part]))
    return out


def _as_points(buildings) -> np.ndarray:
    if buildings is None:
        return np.empty((0, 2))
    xy = []
    for b in buildings:
        if hasattr(b, "geom_type"):
            if b.is_empty:
                continue
            pt = b if b.geom_type == "Point" else b.centroid
            xy.append((pt.x, pt.y))
        else:
            xy.append((float(b[0]), float(b[1])))
    return np.asarray(xy, dtype=float).reshape(-1, 2)


@dataclass
class _Stats:
    """Per-group sums: area, buildings, water area, perimeter and shared boundaries with neighbours."""

    area: dict = field(default_factory=lambda: defaultdict(float))
    count: dict = field(default_factory=lambda: defaultdict(int))
    water_area: dict = field(default_factory=lambda: defaultdict(float))
    perimeter: dict = field(default_factory=lambda: defaultdict(float))
    neighbours: dict = field(default_factory=dict)  # g → h → shared length, major roads weighted
    shared: dict = field(default_factory=dict)  # g → h → shared length in metres

    def merge(self, g: int, h: int) -> None:
        """Fold group g into its neighbour h."""
        self.perimeter[h] += self.perimeter.pop(g) - 2 * self.shared[g][h]
        self.area[h] += self.area.pop(g)
        self.count[h] += self.count.pop(g)
        self.water_area[h] += self.water_area.pop(g, 0.0)
        for table in (self.neighbours, self.shared):
            for n, length in table.pop(g).items():
                del table[n][g]
                if n != h:
                    table[h][n] += length
                    table[n][h] += length


class _Generator:
    """The state of one community's generation: faces, their groups (future cells) and the lines."""

    def __init__(self, community, roads, water, buildings, target: Target, water_min_m2: float, major_roads=(),
                 min_width_m: float = 0.0):
        self.community = community
        self.min_width_m = min_width_m
        self.target = target
        self.water_min_m2 = water_min_m2
        self.points = _as_points(buildings)
        self.point_geoms = shapely.points(self.points) if len(self.points) else np.empty(0, dtype=object)
        self.merges = 0
        self.splits = 0
        self.rounds = 0
        self.stuck: dict[int, str] = {}  # group label → why it cannot be split further
        self.next_label = 0
        shapely.prepare(community)
        major = _line_parts(major_roads)
        self.major = shapely.STRtree(major) if major else None

        # Clip to a slightly larger community so that every line crossing the boundary still
        # crosses it after clipping (an exact clip could end a hair short and leave a dangle).
        clip = community.buffer(1.0)
        shapely.prepare(clip)
        water_polys = [p for w in water for p in shapely.get_parts(w) if p.geom_type == "Polygon"]
        water_lines = _line_parts([w for w in water if w.geom_type not in ("Polygon", "MultiPolygon")])
        kept_water, water_outlines = [], []
        for poly in water_polys:
            inside = _polygonal(poly.intersection(community))
            if inside.area >= water_min_m2:
                kept_water.append(inside)
                # The outline of the whole water area, not of the clipped part: a clipped copy of
                # the community boundary would be noded against the boundary itself into slivers.
                water_outlines.append(poly.boundary)
        self.water_area = shapely.union_all(kept_water) if kept_water else Polygon()
        lines = _line_parts(roads) + water_lines + _line_parts(water_outlines)
        lines = [c for c in (shapely.intersection(ln, clip) for ln in lines if clip.intersects(ln))
                 if not c.is_empty]
        lines = _line_parts(lines)
        self.noded = shapely.union_all([community.boundary, *lines])

        self.faces = self._polygonize(self.noded)
        reps = shapely.point_on_surface(self.faces)
        if self.water_area.is_empty:
            self.face_water = np.zeros(len(self.faces), dtype=bool)
        else:
            shapely.prepare(self.water_area)
            self.face_water = shapely.contains(self.water_area, reps)
        self.initial_faces = len(self.faces)
        self.labels = np.arange(len(self.faces))
        self.next_label = len(self.faces)
        self._measure_faces()
        self._merge_small()

    # ---- faces

    def _polygonize(self, noded) -> np.ndarray:
        faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
        faces = faces[shapely.area(faces) > 0]
        # Faces in holes of the community (or, with an irregular clip, just outside) are dropped.
        inside = shapely.contains(self.community, shapely.point_on_surface(faces))
        return faces[inside]

    def _measure_faces(self) -> None:
        self.face_area = shapely.area(self.faces)
        self.face_points = _point_faces(self.faces, self.point_geoms)
        self.face_count = np.bincount(self.face_points[self.face_points >= 0], minlength=len(self.faces))
        self.face_perimeter = shapely.length(self.faces)
        self.adj_i, self.adj_j, self.adj_len, self.adj_weight = _face_adjacency(self.faces, self.major)

    # ---- groups

    def _groups(self) -> "_Stats":
        st = _Stats()
        for f, g in enumerate(self.labels):
            st.area[g] += self.face_area[f]
            st.count[g] += int(self.face_count[f])
            st.perimeter[g] += self.face_perimeter[f]
            if self.face_water[f]:
                st.water_area[g] += self.face_area[f]
        st.neighbours = {g: defaultdict(float) for g in st.area}
        st.shared = {g: defaultdict(float) for g in st.area}
        for i, j, length, weight in zip(self.adj_i, self.adj_j, self.adj_len, self.adj_weight):
            gi, gj = self.labels[i], self.labels[j]
            if gi != gj:
                st.neighbours[gi][gj] += weight
                st.neighbours[gj][gi] += weight
                st.shared[gi][gj] += length
                st.shared[gj][gi] += length
            else:
                st.perimeter[gi] -= 2 * length
        return st

    def _size(self, st: "_Stats", g: int) -> float:
        return st.count[g] if self.target.measure == "buildings" else st.area[g]

    def _is_water(self, st: "_Stats", g: int) -> bool:
        return st.water_area.get(g, 0.0) > 0.5 * st.area[g]

    def _exempt(self, st: "_Stats", g: int) -> bool:
        """True for water cells under a building target: they have no buildings by nature."""
        return self.target.measure == "buildings" and self._is_water(st, g) and st.area[g] >= self.water_min_m2

    def _sliver(self, st: "_Stats", g: int) -> bool:
        """True for a strip narrower than min_width_m on average (2·area / perimeter)."""
        return st.perimeter[g] > 0 and 2 * st.area[g] / st.perimeter[g] < self.min_width_m

    def _below(self, st: "_Stats", g: int) -> bool:
        """True for groups to merge: below the minimum, slivers, or (building target) water next to water."""
        if self._sliver(st, g):
            return True
        if self.target.measure == "buildings" and self._is_water(st, g):
            # One water cell per connected water body; water pieces too small to stand alone join land.
            return st.area[g] < self.water_min_m2 or any(self._is_water(st, h) for h in st.neighbours[g])
        return self._size(st, g) < self.target.min

    def _merge_small(self) -> None:
        """Merge groups below the minimum into neighbours, smallest first (see module docstring)."""
        st = self._groups()
        parent: dict[int, int] = {}
        heap = [(self._size(st, g), st.area[g], g) for g in st.area if self._below(st, g)]
        heapq.heapify(heap)
        while heap:
            size, a, g = heapq.heappop(heap)
            if g in parent or (self._size(st, g), st.area[g]) != (size, a):
                continue
            if not st.neighbours[g] or not self._below(st, g):
                continue
            water = self._is_water(st, g)

            def preference(h):
                fits = self._size(st, g) + self._size(st, h) <= self.target.max
                return (self._is_water(st, h) == water, fits, st.neighbours[g][h], -h)

            h = max(st.neighbours[g], key=preference)
            st.merge(g, h)
            parent[g] = h
            self.stuck.pop(h, None)
            self.merges += 1
            if self._below(st, h):
                heapq.heappush(heap, (self._size(st, h), st.area[h], h))

        def root(g):
            while g in parent:
                g = parent[g]
            return g

        self.labels = np.array([root(g) for g in self.labels], dtype=int)

    # ---- splitting

    def run(self, max_rounds: int) -> None:
        """Split groups above the maximum, round by round, merging small leftovers after each round."""
        for _ in range(max_rounds):
            st = self._groups()
            members = defaultdict(list)
            for f, g in enumerate(self.labels):
                members[g].append(f)
            cuts = {}
            for g in sorted(st.area):
                if g in self.stuck or self._exempt(st, g) or self._size(st, g) <= self.target.max:
                    continue
                cut = self._plan_cut(g, members[g], st.area[g], st.count[g])
                if isinstance(cut, str):
                    self.stuck[g] = cut
                else:
                    cuts[g] = cut
            if not cuts:
                return
            self.rounds += 1
            self._apply_cuts(cuts)
            self._merge_small()
        st = self._groups()
        for g in st.area:
            if not self._exempt(st, g) and self._size(st, g) > self.target.max:
                self.stuck.setdefault(g, f"above maximum: still {self.target._fmt(self._size(st, g))} "
                                         f"after {max_rounds} rounds of splitting")

    def _plan_cut(self, g: int, faces: list[int], area: float, count: int):
        """Return (origin, axis, offset, segments) of the cut for group g, or a reason why there is none."""
        target = self.target
        size = count if target.measure == "buildings" else area
        k = math.ceil(size / target.max)
        if k * target.min > size:
            return (f"above maximum: {target._fmt(size)} cannot be divided into parts of "
                    f"{target.describe()} (the range is too narrow)")
        k1 = k // 2
        poly = shapely.coverage_union_all(self.faces[faces])
        if poly.geom_type != "Polygon":
            poly = shapely.union_all(self.faces[faces])
        rect = shapely.oriented_envelope(poly)
        if rect.geom_type != "Polygon":
            return "above maximum: the cell is too thin to cut"
        corners = np.asarray(rect.exterior.coords)[:4]
        e1, e2 = corners[1] - corners[0], corners[2] - corners[1]
        long_axis, short_axis = (e1, e2) if np.hypot(*e1) >= np.hypot(*e2) else (e2, e1)
        origin = np.asarray(poly.centroid.coords[0])
        reach = math.hypot(poly.bounds[2] - poly.bounds[0], poly.bounds[3] - poly.bounds[1]) + 10.0
        pts = self.points[np.isin(self.face_points, faces)] if target.measure == "buildings" else None

        candidates = []
        for axis in (long_axis, short_axis):
            axis = axis / np.hypot(*axis)
            if target.measure == "buildings":
                offsets = _count_cut_offsets(pts, origin, axis, k, k1, target)
            else:
                offsets = [_area_cut_offset(poly, origin, axis, area * k1 / k, reach)]
            for offset in offsets:
                bad = self._bad_pieces(poly, origin, axis, offset, reach, pts)
                candidates.append((bad, len(candidates), axis, offset))
                if bad == 0:
                    break
            if candidates and candidates[-1][0] == 0:
                break
        if not candidates:
            return (f"above maximum: its {count} buildings cannot be separated by a straight cut "
                    "(they share one location)")
        _, _, axis, offset = min(candidates, key=lambda c: (c[0], c[1]))
        segments = _cut_segments(poly, origin, axis, offset, reach)
        if not segments:
            return "above maximum: no cut line crosses the cell"
        return origin, axis, offset, segments

    def _bad_pieces(self, poly, origin, axis, offset, reach, pts) -> int:
        """Return how many pieces a cut would leave below the minimum (a non-convex cell can fall apart)."""
        low = _halfplane(origin, axis, offset, reach)
        bad = 0
        for side in (poly.intersection(low), poly.difference(low)):
            for piece in shapely.get_parts(side):
                if piece.geom_type != "Polygon" or piece.area <= 0:
                    continue
                if self.target.measure == "buildings":
                    size = int(shapely.contains_xy(piece, pts[:, 0], pts[:, 1]).sum()) if len(pts) else 0
                else:
                    size = piece.area
                bad += size < self.target.min
        return bad

    def _apply_cuts(self, cuts: dict) -> None:
        """Node the cut lines into the line set, polygonize again and relabel faces (one cell per piece)."""
        old_faces, old_labels, old_water = self.faces, self.labels, self.face_water
        segments = [s for cut in cuts.values() for s in cut[3]]
        self.noded = shapely.union_all([self.noded, *segments])
        self.faces = self._polygonize(self.noded)
        reps = shapely.point_on_surface(self.faces)
        parent_face = _containing(old_faces, reps)
        self.face_water = old_water[parent_face]
        self._measure_faces()
        labels = old_labels[parent_face]
        # Faces of a cut group go to the side of the cut line their interior point is on; each
        # side's connected pieces then become groups of their own.
        rep_xy = shapely.get_coordinates(reps)
        keys: list = []
        for f, g in enumerate(labels):
            if g in cuts:
                origin, axis, offset, _ = cuts[g]
                keys.append((int(g), bool((rep_xy[f] - origin) @ axis > offset)))
            else:
                keys.append(None)
        parent = list(range(len(labels)))

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for i, j in zip(self.adj_i, self.adj_j):
            if keys[i] is not None and keys[i] == keys[j]:
                parent[find(i)] = find(j)
        fresh: dict[int, int] = {}
        new_labels = labels.copy()
        for f, key in enumerate(keys):
            if key is None:
                continue
            r = find(f)
            if r not in fresh:
                fresh[r] = self.next_label
                self.next_label += 1
            new_labels[f] = fresh[r]
        self.splits += len(cuts)
        self.labels = new_labels

    # ---- result

    def result(self) -> GenerationResult:
        st = self._groups()
        members = defaultdict(list)
        for f, g in enumerate(self.labels):
            members[g].append(f)
        target = self.target
        groups = sorted(members)
        polygons = []
        for g in groups:
            # The faces of a group share exact edges, so their coverage union dissolves the inner
            # edges and keeps every vertex, and neighbouring cells keep sharing vertices.
            poly = shapely.coverage_union_all(self.faces[members[g]])
            if poly.geom_type != "Polygon":
                raise RuntimeError(f"cell of faces {members[g]} is {poly.geom_type}, not one Polygon")
            polygons.append(poly)
        cells = []
        for g, poly in zip(groups, polygons):
            water = self._is_water(st, g)
            size = self._size(st, g)
            status, reason = "ok", None
            if self._exempt(st, g):
                status, reason = "water", "water body: the building target does not apply"
            elif size < target.min:
                status = "below"
                if not st.neighbours[g]:
                    whole = abs(st.area[g] - self.community.area) < 1e-6 * self.community.area
                    reason = (f"below minimum: the whole community has only {target._fmt(size)}" if whole else
                              f"below minimum: {target._fmt(size)} and no neighbouring cell to merge with")
                else:
                    reason = f"below minimum: {target._fmt(size)}"
            elif size > target.max:
                status = "above"
                reason = self.stuck.get(g, f"above maximum: {target._fmt(size)}")
            cells.append(GeneratedCell(poly, float(poly.area), int(st.count[g]), bool(water), status, reason))
        cells = [cells[i] for i in cell_order([c.polygon for c in cells])]
        union = shapely.coverage_union_all([c.polygon for c in cells])
        total = sum(c.area_m2 for c in cells)
        return GenerationResult(
            cells=cells, target=target, faces=self.initial_faces, merges=self.merges, splits=self.splits,
            rounds=self.rounds, tiling_error_m2=float(union.symmetric_difference(self.community).area),
            overlap_m2=float(max(total - shapely.union_all([c.polygon for c in cells]).area, 0.0)))


def _face_adjacency(faces: np.ndarray, major=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (i, j, shared length, weighted shared length) for every pair of faces sharing edges.

    Faces from one noded polygonize share their edges exactly (same vertex coordinates), so shared
    edges are found by matching segments, without any geometric tolerance. Edges on a major road
    (an STRtree of major road lines) count MAJOR_ROAD_WEIGHT of their length.
    """
    if len(faces) == 0:
        return np.empty(0, int), np.empty(0, int), np.empty(0), np.empty(0)
    rings, face_of_ring = shapely.get_rings(faces, return_index=True)
    coords, ring_of_coord = shapely.get_coordinates(rings, return_index=True)
    same = ring_of_coord[1:] == ring_of_coord[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    face = face_of_ring[ring_of_coord[:-1][same]]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    p = np.where(swap[:, None], b, a)
    q = np.where(swap[:, None], a, b)
    length = np.hypot(*(q - p).T)
    weight = length.copy()
    if major is not None and len(length):
        on_major, _ = major.query(shapely.points((p + q) / 2), predicate="dwithin", distance=1e-3)
        weight[np.unique(on_major)] *= MAJOR_ROAD_WEIGHT
    _, inverse = np.unique(np.hstack([p, q]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    inv_s, face_s = inverse[order], face[order]
    pair = np.nonzero(inv_s[1:] == inv_s[:-1])[0]
    fi, fj = face_s[pair], face_s[pair + 1]
    lengths, weights = length[order][pair], weight[order][pair]
    keep = fi != fj
    fi, fj = np.minimum(fi, fj)[keep], np.maximum(fi, fj)[keep]
    lengths, weights = lengths[keep], weights[keep]
    if len(fi) == 0:
        return fi, fj, lengths, weights
    pairs, inv = np.unique(np.stack([fi, fj], axis=1), axis=0, return_inverse=True)
    inv = inv.ravel()
    return pairs[:, 0], pairs[:, 1], np.bincount(inv, weights=lengths), np.bincount(inv, weights=weights)


def _point_faces(faces: np.ndarray, points: np.ndarray) -> np.ndarray:
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


def _containing(old_faces: np.ndarray, reps: np.ndarray) -> np.ndarray:
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


def _halfplane(origin, axis, offset, reach) -> Polygon:
    """Return a polygon covering every point p near origin with (p − origin)·axis ≤ offset."""
    normal = np.array([-axis[1], axis[0]])
    base = origin + axis * offset
    far = base - axis * 2 * reach
    return Polygon([base + normal * reach, base - normal * reach, far - normal * reach, far + normal * reach])


def _area_cut_offset(poly, origin, axis, wanted: float, reach: float) -> float:
    """Return the offset along axis at which the part of poly on the low side has area `wanted`."""
    proj = (np.asarray(shapely.get_coordinates(poly)) - origin) @ axis
    lo, hi = float(proj.min()), float(proj.max())
    for _ in range(60):
        mid = (lo + hi) / 2
        got = poly.intersection(_halfplane(origin, axis, mid, reach)).area
        if abs(got - wanted) <= 1e-4 * poly.area:
            return mid
        lo, hi = (mid, hi) if got < wanted else (lo, mid)
    return (lo + hi) / 2


def _count_cut_offsets(pts, origin, axis, k: int, k1: int, target: Target, tries: int = 8) -> list[float]:
    """Return up to `tries` cut offsets along axis that leave building counts splittable k1 : k−k1.

    The cut passes midway between two consecutive buildings along the axis, nearest the wanted
    rank first; gaps of at least _CUT_CLEARANCE_M come before narrower ones, so that a building
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
        (wide if gap >= _CUT_CLEARANCE_M else narrow).append(float((proj[r - 1] + proj[r]) / 2))
        if len(wide) >= tries:
            break
    return (wide + narrow)[:tries]


def _cut_segments(poly, origin, axis, offset, reach) -> list[LineString]:
    """Return the pieces of the cut line inside poly, each overshooting its ends by a centimetre."""
    normal = np.array([-axis[1], axis[0]])
    base = origin + axis * offset
    line = LineString([base - normal * reach, base + normal * reach])
    out = []
    for part in _line_parts([poly.intersection(line)]):
        start, end = np.asarray(part.coords[0]), np.asarray(part.coords[-1])
        direction = (end - start) / np.hypot(*(end - start))
        out.append(LineString([start - direction * _CUT_OVERSHOOT_M, end + direction * _CUT_OVERSHOOT_M]))
    return out


# --------------------------------------------------------------------------------------- numbering


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
            f"Community {community_code} would get {len(polygons)} cells, but the {profile.name} code profile "
            f"numbers at most {limit}: choose a larger target.")
    codes = [""] * len(polygons)
    for seq, i in enumerate(cell_order(polygons), start=1):
        codes[i] = base_cell_code(community_code, seq, profile)
    return codes


# --------------------------------------------------------------------------------------- input layers

_TRUE = {"1", "1.0", "true", "yes", "t", "y"}

# Tilezen / Nextzen road kinds (OSM-derived vector tiles) and OSM `highway` values.
_CUT_ROAD_KINDS = {"highway", "major_road", "minor_road"}
_MAJOR_ROAD_KINDS = {"highway", "major_road"}
_NO_CUT_ROAD_DETAILS = {"service", "track", "construction", "proposed", "raceway", "bus_guideway", "platform"}
_STREET_PATH_DETAILS = {"pedestrian", "living_street"}
_PATH_DETAILS = {"footway", "path", "cycleway", "steps", "bridleway", "corridor", "pedestrian", "living_street"}
_CUT_RAIL_DETAILS = {"rail", "light_rail", "narrow_gauge", "preserved"}
_OSM_CUT_HIGHWAYS = {"motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential",
                     "motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link",
                     "living_street", "pedestrian", "road"}
_OSM_MAJOR_HIGHWAYS = {"motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link", "trunk_link",
                       "primary_link", "secondary_link", "tertiary_link"}
_NO_CUT_WATER_KINDS = {"swimming_pool", "fountain", "reflecting_pool"}
_CUT_WATER_LINE_KINDS = {"river", "canal", "stream", "drain", "ditch"}


def _truthy(value) -> bool:
    return value is not None and str(value).strip().lower() in _TRUE


def _tunnel(*values) -> bool:
    """True when a Tilezen `is_tunnel`, OSM `tunnel` (yes, culvert, building_passage) or Geofabrik T says so."""
    return any(v is not None and str(v).strip().lower() in _TRUE | {"culvert", "building_passage"} for v in values)


def _column(frame, name):
    return frame[name] if name in frame.columns else [None] * len(frame)


def road_lines(frame, *, paths: bool = False, major: bool = False) -> list:
    """Return the geometries of a road layer that split cells (a GeoDataFrame in; lines out).

    Kept: streets and roads of every class (major and minor), surface railways. Dropped, because
    they do not divide the ground into blocks: tunnels (including metro lines and the under-river
    road tunnels), ferries, piers, service roads (driveways and parking aisles inside compounds)
    and, unless paths=True, footways, cycleways, steps and paths (they also run along streets as
    separately mapped sidewalks and would cut slivers). Pedestrian streets and living streets are
    streets and are kept. Understood schemas: Tilezen/Nextzen (`kind`, `kind_detail`, `is_tunnel`),
    OSM (`highway`, `railway`, `tunnel`) and Geofabrik (`fclass`, `tunnel`); a layer with none of
    these columns is taken as all roads. With major=True only main roads are returned (Tilezen
    `highway` / `major_road`, OSM motorway to tertiary and their links, surface railways); a layer
    without a known schema has none.
    """
    columns = set(frame.columns)
    out = []
    for geom, kind, detail, highway, railway, fclass, tunnel_a, tunnel_b in zip(
            frame.geometry, _column(frame, "kind"), _column(frame, "kind_detail"), _column(frame, "highway"),
            _column(frame, "railway"), _column(frame, "fclass"), _column(frame, "is_tunnel"),
            _column(frame, "tunnel")):
        if geom is None or geom.is_empty or _tunnel(tunnel_a, tunnel_b):
            continue
        main = False
        if "kind" in columns:
            kind, detail = str(kind or ""), str(detail or "")
            if kind in _CUT_ROAD_KINDS:
                keep = detail not in _NO_CUT_ROAD_DETAILS
                main = kind in _MAJOR_ROAD_KINDS
            elif kind == "path":
                keep = detail in _STREET_PATH_DETAILS or (paths and detail != "pier")
            elif kind == "rail":
                keep = main = detail in _CUT_RAIL_DETAILS
            else:
                keep = False
        elif "highway" in columns or "railway" in columns:
            value = str(highway or "")
            keep = (value in _OSM_CUT_HIGHWAYS or (paths and value in _PATH_DETAILS)
                    or str(railway or "") in _CUT_RAIL_DETAILS)
            main = value in _OSM_MAJOR_HIGHWAYS or str(railway or "") in _CUT_RAIL_DETAILS
        elif "fclass" in columns:
            value = str(fclass or "")
            keep = (value in _OSM_CUT_HIGHWAYS or (paths and value in _PATH_DETAILS) or value in _CUT_RAIL_DETAILS)
            main = value in _OSM_MAJOR_HIGHWAYS or value in _CUT_RAIL_DETAILS
        else:
            keep = True
        if keep and (main or not major):
            out.append(geom)
    return out


def water_features(frame) -> list:
    """Return the geometries of a water layer that bound cells: water areas and river/canal lines.

    Swimming pools and fountains are dropped. Lines are kept only when they are rivers, canals,
    streams, drains or ditches (Tilezen `kind`, OSM `waterway`, Geofabrik `fclass`); outlines of
    water areas (Tilezen `boundary`) are dropped, the areas themselves carry them. Culverts and
    tunnels are dropped.
    """
    out = []
    for geom, kind, waterway, fclass, boundary, tunnel_a, tunnel_b in zip(
            frame.geometry, _column(frame, "kind"), _column(frame, "waterway"), _column(frame, "fclass"),
            _column(frame, "boundary"), _column(frame, "is_tunnel"), _column(frame, "tunnel")):
        if geom is None or geom.is_empty or _tunnel(tunnel_a, tunnel_b):
            continue
        label = str(kind or waterway or fclass or "")
        if label in _NO_CUT_WATER_KINDS:
            continue
        if geom.geom_type in ("Polygon", "MultiPolygon"):
            out.append(geom)
        elif geom.geom_type in ("LineString", "MultiLineString"):
            if _truthy(boundary):
                continue
            if label and label not in _CUT_WATER_LINE_KINDS:
                continue
            out.append(geom)
    return out


def read_layer(path, crs: int = 4490, *, src_crs: str | None = None, encoding: str | None = None):
    """Return a road or water file as a GeoDataFrame in EPSG:`crs`, read by gridkit.io.read_vector.

    So road files get the same handling as every import: encodings, .prj / --src-crs (gcj02 too),
    safe zips, repairs reported; a file without a CRS is refused.
    """
    from gridkit.io.vector import read_vector

    frame = read_vector(path, src_crs=src_crs, encoding=encoding, target_srid=crs).gdf
    return frame[frame.geometry.notna() & ~frame.geometry.is_empty]


# --------------------------------------------------------------------------------------- database part


@dataclass
class CellProblem:
    """A generated cell left outside the target, with the reason."""

    code: str
    status: str
    reason: str
    buildings: int
    area_m2: float


@dataclass
class CommunityReport:
    """What generation did in one community."""

    code: str
    name: str
    epsg: int
    faces: int
    cells: int
    in_target: int
    water_cells: int
    buildings: int
    area_m2: float
    tiling_error_m2: float
    seconds: float
    outside: list[CellProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class GenerationReport:
    """The result of generate_base_grid: the draft edition, per-community counts and timings."""

    edition: str
    edition_id: int
    target: str
    communities: list[CommunityReport]
    copied_cells: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def cells(self) -> int:
        """Return the number of generated cells."""
        return sum(c.cells for c in self.communities)

    @property
    def in_target(self) -> int:
        """Return the number of generated cells within the target."""
        return sum(c.in_target for c in self.communities)

    def as_dict(self) -> dict:
        """Return the report as plain JSON-ready data."""
        data = asdict(self)
        data.update(cells=self.cells, in_target=self.in_target)
        return data

    def text(self) -> str:
        """Return the report as readable lines for the CLI."""
        lines = [f"Draft edition {self.edition!r}: {self.cells} cells in {len(self.communities)} communities, "
                 f"{self.in_target} within the target {self.target}."]
        if self.copied_cells:
            lines.append(f"{self.copied_cells} cells of other communities copied from the current edition.")
        for c in self.communities:
            lines.append(f"  {c.code} {c.name}: {c.faces} faces → {c.cells} cells ({c.in_target} in target, "
                         f"{c.water_cells} water), {c.buildings} buildings, {c.area_m2:,.0f} m², "
                         f"EPSG:{c.epsg}, {c.seconds:.2f} s")
            for note in c.notes:
                lines.append(f"    note: {note}")
            for p in c.outside:
                lines.append(f"    {p.code}: {p.reason} ({p.buildings} buildings, {p.area_m2:,.0f} m²)")
        lines.append("Timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))
        return "\n".join(lines)


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
        hit, seg = shapely.STRtree(segments).query(shapely.points(coords[free]), predicate="dwithin",
                                                   distance=_ON_BOUNDARY_M)
        order = np.argsort(hit, kind="stable")
        hit, seg = hit[order], seg[order]
        first = np.r_[True, hit[1:] != hit[:-1]] if len(hit) else np.empty(0, bool)
        hit, seg = hit[first], seg[first]
        p = coords[free[hit]]
        a, b = starts_m[seg], ends_m[seg]
        t = np.clip(np.einsum("ij,ij->i", p - a, b - a) / np.einsum("ij,ij->i", b - a, b - a), 0.0, 1.0)
        out[free[hit]] = starts[seg] + t[:, None] * (ends[seg] - starts[seg])
    return shapely.transform(polygons, lambda _: out)


def generate_base_grid(session: Session, *, communities: list[str] | None = None, roads_path, water_path=None,
                       target: Target, edition_name: str | None = None,
                       profile: CodeProfile | str = DEFAULT_PROFILE, paths: bool = False,
                       water_min_m2: float = WATER_MIN_M2, keep_other_communities: bool = True,
                       src_crs: str | None = None, encoding: str | None = None) -> GenerationReport:
    """Generate base cells for communities (None = all) and write them as a new draft edition; never commits.

    Roads and water are read from files (any CRS, reprojected to EPSG:4490); buildings come from
    the building table (point, or footprint centroid). Each community is worked in its CGCS2000
    Gauss-Kruger zone (metres) and brought back to EPSG:4490: community boundary vertices keep their
    stored coordinates, other vertices are rounded to 1e-9°. `water_path` may be one path or a list
    (e.g. a polygon and a line file). With keep_other_communities, the cells of communities not
    generated are copied from the current edition, so the draft is a whole city grid.
    """
    profile = PROFILES[profile] if isinstance(profile, str) else profile
    timings: dict[str, float] = {}
    started = time.perf_counter()

    query = select(AdminUnit).where(AdminUnit.level == "community").order_by(AdminUnit.code)
    if communities is not None:
        wanted = list(dict.fromkeys(communities))
        query = query.where(AdminUnit.code.in_(wanted))
    units = list(session.scalars(query))
    if communities is not None:
        missing = sorted(set(wanted) - {u.code for u in units})
        if missing:
            raise NotFound(f"No community with code {', '.join(missing)}: see `gridkit admin list`.")
    if not units:
        raise NotFound("There are no communities yet: import them with `gridkit admin import`.")

    edition_name = edition_name or f"generated-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.name == edition_name)) is not None:
        raise Conflict(f"A base grid edition named {edition_name!r} exists already: choose another name.")

    road_frame = read_layer(roads_path, src_crs=src_crs, encoding=encoding)
    roads = np.asarray(road_lines(road_frame, paths=paths), dtype=object)
    majors = np.asarray(road_lines(road_frame, paths=paths, major=True), dtype=object)
    water_paths = [] if water_path is None else (
        [water_path] if isinstance(water_path, (str, Path)) else list(water_path))
    water = np.asarray([g for p in water_paths for g in water_features(read_layer(p, src_crs=src_crs, encoding=encoding))], dtype=object)
    road_tree = shapely.STRtree(roads) if len(roads) else None
    major_tree = shapely.STRtree(majors) if len(majors) else None
    water_tree = shapely.STRtree(water) if len(water) else None
    timings["read"] = time.perf_counter() - started

    point_sql = func.coalesce(Building.geom, func.ST_Centroid(Building.footprint))
    # Spelled out so that both spatial indexes (point, footprint) can be used.
    in_community = or_(
        func.ST_Intersects(AdminUnit.geom, Building.geom),
        and_(Building.geom.is_(None), func.ST_Intersects(AdminUnit.geom, Building.footprint),
             func.ST_Intersects(AdminUnit.geom, func.ST_Centroid(Building.footprint))))
    if target.measure == "buildings" and not session.scalar(select(exists(
            select(Building.id).join(AdminUnit, in_community).where(AdminUnit.code.in_([u.code for u in units]))))):
        raise ValidationError("A building target needs buildings, but none are loaded in these communities: "
                              "import buildings first, or give an area target (--target-area-m2).")
    reports, rows = [], []
    generate_started = time.perf_counter()
    for unit in units:
        unit_started = time.perf_counter()
        community = to_shape(unit.geom)
        epsg = gauss_kruger_epsg(community.centroid.x)
        forward = Transformer.from_crs(SRID, epsg, always_xy=True)
        inverse = Transformer.from_crs(epsg, SRID, always_xy=True)

        # Vertex by vertex, keeping the structure: to_storage pairs metric and stored vertices.
        original = shapely.get_coordinates(community)
        x, y = forward.transform(original[:, 0], original[:, 1])
        metric_xy = np.column_stack([x, y])
        community_m = shapely.transform(community, lambda _: metric_xy)

        def to_metric(geoms):
            geoms = np.asarray(geoms, dtype=object)
            if not len(geoms):
                return []
            return list(shapely.transform(geoms, lambda c: np.column_stack(forward.transform(c[:, 0], c[:, 1]))))

        search = community.buffer(1e-4)  # ~10 m, so lines ending on the boundary are still found
        local_roads = roads[road_tree.query(search, predicate="intersects")] if road_tree else []
        local_majors = majors[major_tree.query(search, predicate="intersects")] if major_tree else []
        local_water = water[water_tree.query(search, predicate="intersects")] if water_tree else []
        building_xy = session.execute(
            select(func.ST_X(point_sql), func.ST_Y(point_sql)).join(AdminUnit, AdminUnit.code == unit.code)
            .where(in_community)).all()
        buildings_m = None
        if building_xy:
            bx, by = forward.transform([r[0] for r in building_xy], [r[1] for r in building_xy])
            buildings_m = list(zip(bx, by))
        elif target.measure == "buildings":
            buildings_m = []

        result = generate_cells(community_m, to_metric(local_roads), to_metric(local_water), buildings_m,
                                target, major_roads=to_metric(local_majors), water_min_m2=water_min_m2)

        notes = []
        metric_cells = [c.polygon for c in result.cells]
        stored = to_storage(metric_cells, inverse.transform, community_m, community)
        if not shapely.is_valid(stored).all():
            # Rounding to 1e-9° can fold a sub-millimetre edge; keep full precision for this community.
            stored = to_storage(metric_cells, inverse.transform, community_m, community, grid=None)
            notes.append("vertices kept at full precision: rounding to 1e-9° made a cell invalid")
        if not shapely.is_valid(stored).all():
            raise RuntimeError(f"generated cells of community {unit.code} are invalid after transformation")
        codes = number_cells(list(stored), unit.code, profile)
        outside = []
        for cell, polygon, code in zip(result.cells, stored, codes):
            rows.append({"code": code, "community_code": unit.code, "geom": from_shape(polygon, srid=SRID)})
            if cell.status != "ok":
                outside.append(CellProblem(code, cell.status, cell.reason or "", cell.buildings,
                                           round(cell.area_m2, 1)))
        outside.sort(key=lambda p: p.code)
        reports.append(CommunityReport(
            code=unit.code, name=unit.name, epsg=int(epsg), faces=int(result.faces), cells=len(result.cells),
            in_target=int(result.in_target), water_cells=int(sum(c.water for c in result.cells)),
            buildings=len(building_xy), area_m2=round(float(community_m.area), 1),
            tiling_error_m2=float(result.tiling_error_m2), seconds=round(time.perf_counter() - unit_started, 3),
            outside=outside, notes=notes))
    timings["generate"] = time.perf_counter() - generate_started

    write_started = time.perf_counter()
    edition = BaseGridEdition(name=edition_name, status="draft", code_profile=profile.name,
                              note=f"generated along roads, target {target.describe()}")
    session.add(edition)
    session.flush()
    for row in rows:
        row["edition_id"] = edition.id
    if rows:
        session.execute(insert(BaseCell), rows)
    copied = 0
    source = current_edition(session) if keep_other_communities else None
    if source is not None:
        copied = _copy_cells(session, source.id, edition.id, [u.code for u in units])
    session.flush()
    timings["write"] = time.perf_counter() - write_started
    timings["total"] = time.perf_counter() - started
    return GenerationReport(edition=edition.name, edition_id=edition.id, target=target.describe(),
                            communities=reports, copied_cells=copied,
                            timings={k: round(v, 3) for k, v in timings.items()})


def _copy_cells(session: Session, source_id: int, edition_id: int, skip_communities: list[str]) -> int:
    """Copy the cells of every community not in skip_communities from one edition to another; return how many."""
    others = select(literal(edition_id), BaseCell.code, BaseCell.community_code, BaseCell.geom).where(
        BaseCell.edition_id == source_id, BaseCell.community_code.not_in(skip_communities))
    result = session.execute(insert(BaseCell).from_select(["edition_id", "code", "community_code", "geom"], others)
                             .returning(BaseCell.id))
    return len(result.all())
