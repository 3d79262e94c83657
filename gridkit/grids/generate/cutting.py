"""The cutting algorithm: base cells of one community from roads, water and buildings (pure shapely, metres).

1. **Faces.** The community boundary, the roads, the outlines of water areas and river lines are
   noded together and polygonized: the faces tile the community exactly and share vertices. Which
   roads cut is decided in `roads.py` (tunnels never do). Two carriageways of one road (same name
   or ref, parallel, at most CARRIAGEWAY_GAP_M apart) are one road: streets that end on one of
   them are carried across the land between them, and that land (median faces) joins the blocks
   beside it, so no cell is a strip between carriageways.
2. **Water.** A water area of at least `water_min_m2` inside the community is cut out as water
   faces; under a building target each connected water body becomes one cell (status ``water``).
3. **Merge** (smallest first, into the neighbour with the longest shared boundary). First across
   minor roads and paths only: a land group may not take in a neighbour across a major road
   (STRADDLE_M or more of shared boundary along major roads). Then, for groups still below the
   minimum, across a major road — but only into a neighbour that is itself below the minimum:
   a cell straddles a major road only when the blocks on both sides are each below the minimum,
   and the cell carries a note naming the road and both sizes. A group left below the minimum
   because only major roads separate it from cells within the target says so in its reason.
   Slivers (mean width 2·area/perimeter below `min_width_m`), median faces and water merge freely.
4. **Split.** Groups above the maximum, and land groups less compact than MIN_COMPACTNESS
   (Polsby-Popper 4πA/P²) that can be cut into two parts within the target, are cut by straight
   lines (see splitting.py); only the faces the lines touch are split (faces.py); the pieces are
   merged again; this repeats (at most `max_rounds`).
5. **Result.** Cells in numbering order (gridkit.grids.numbering), each counted by the building
   rule (gridkit.rules.building_cell: largest part of the footprint, ties the smallest code), with
   a reason when outside the target and notes when it straddles a major road or stays elongated.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Polygon

from gridkit.errors import ValidationError
from gridkit.grids.generate.buildings import as_geometries
from gridkit.grids.generate.faces import Faces
from gridkit.grids.generate.geometry import LineIndex, line_parts, polygonal
from gridkit.grids.generate.roads import Road, carriageway_pairs, dangle_connectors, median_connectors
from gridkit.grids.generate.splitting import Splitting
from gridkit.grids.generate.target import (
    MIN_COMPACTNESS,
    STRADDLE_MAX_M2,
    GeneratedCell,
    GenerationResult,
    Target,
    check_straddle_max,
    polsby_popper,
)
from gridkit.grids.numbering import cell_order
from gridkit.messages import Message

# Water areas smaller than this (inside the community) are not cut out as faces of their own.
WATER_MIN_M2 = 10_000.0
# Strips narrower than this on average (2·area / perimeter, metres) are merged whatever their size.
MIN_WIDTH_M = 8.0
# A merge takes a major road inside a cell when the two groups share this much of it (metres).
STRADDLE_M = 30.0
# Land this small, mostly bounded by major roads, is a traffic island (between links and ramps):
# part of the road, it joins a neighbour across anything.
ISLAND_M2 = 5_000.0
# Land smaller than ROAD_STRIP_M2, narrower than ROAD_STRIP_WIDTH_M on average (2·area / perimeter)
# with at least ROAD_STRIP_SHARE of its outline along major roads is road land (a median split by
# ramps, a strip between two parallel roads).
ROAD_STRIP_M2 = 15_000.0
ROAD_STRIP_WIDTH_M = 30.0
ROAD_STRIP_SHARE = 0.6


def generate_cells(
    community,
    roads: Iterable,
    water: Iterable | None,
    buildings: Iterable | None,
    target: Target,
    *,
    major_roads: Iterable | None = None,
    water_min_m2: float = WATER_MIN_M2,
    min_width_m: float = MIN_WIDTH_M,
    straddle_max_m2: float = STRADDLE_MAX_M2,
    max_rounds: int = 30,
) -> GenerationResult:
    """Return cells that tile `community` exactly, split along roads and water, merged/split to `target`.

    All geometry is in one metric CRS (metres). `roads`: `roads.Road`s or plain LineStrings (minor
    roads); `major_roads`: more lines that are major roads (optional); `water`: Polygons (water
    areas) and/or LineStrings (rivers, canals); `buildings`: footprints (Polygons), Points or (x, y)
    pairs, needed for a building target. Roads and water outside the community are ignored.
    `straddle_max_m2`: a cell merged across a major road stays within this area (STRADDLE_MAX_M2).
    """
    started = time.perf_counter()
    community = shapely.make_valid(community) if not community.is_valid else community
    community = polygonal(community)
    if community.is_empty or community.area <= 0:
        raise ValidationError("generate.community_empty")
    if target.measure == "buildings" and buildings is None:
        raise ValidationError("generate.buildings_needed")
    straddle_max_m2 = check_straddle_max(straddle_max_m2)
    roads = [r if isinstance(r, Road) else Road(r) for r in (roads or [])]
    roads += [Road(g, major=True) for g in (major_roads or [])]
    gen = _Generator(community, roads, list(water or []), buildings, target, water_min_m2, min_width_m, straddle_max_m2)
    gen.run(max_rounds)
    result = gen.result()
    result.seconds = time.perf_counter() - started
    return result


def _clipped(lines: list, clip) -> np.ndarray:
    """Return the lines that meet `clip` (prepared), each cut to it; lines wholly inside are kept as they are."""
    lines = np.asarray(lines, dtype=object)
    if not len(lines):
        return lines
    # `clip` first: GEOS uses the prepared geometry only as the first argument of a predicate.
    inside = shapely.contains(clip, lines)
    crossing = ~inside & shapely.intersects(clip, lines)
    lines = lines.copy()
    lines[crossing] = shapely.intersection(lines[crossing], clip)
    return lines[inside | crossing]


@dataclass
class _Stats:
    """Per-group sums: area, buildings, water and median area, perimeter, shared boundaries with neighbours."""

    area: dict = field(default_factory=lambda: defaultdict(float))
    count: dict = field(default_factory=lambda: defaultdict(int))
    water_area: dict = field(default_factory=lambda: defaultdict(float))
    median_area: dict = field(default_factory=lambda: defaultdict(float))
    perimeter: dict = field(default_factory=lambda: defaultdict(float))
    shared: dict = field(default_factory=dict)  # g → h → shared length in metres
    major: dict = field(default_factory=dict)  # g → h → shared length along major roads
    road_land: dict = field(default_factory=dict)  # g → whether it is road land, as far as known

    def merge(self, g: int, h: int) -> None:
        """Fold group g into its neighbour h (building counts add up: exact again at the next _groups)."""
        self.road_land.pop(g, None)
        self.road_land.pop(h, None)
        self.perimeter[h] += self.perimeter.pop(g) - 2 * self.shared[g][h]
        for table in (self.area, self.count, self.water_area, self.median_area):
            table[h] += table.pop(g, 0)
        for table in (self.shared, self.major):
            into = table[h]
            for n, length in table.pop(g).items():
                row = table[n]
                del row[g]
                if n != h:
                    into[n] += length
                    row[h] += length

    def compactness(self, g: int) -> float:
        """Return 4πA/P² of group g."""
        return 4 * math.pi * self.area[g] / self.perimeter[g] ** 2 if self.perimeter[g] > 0 else 1.0


class _Generator(Faces, Splitting):
    """The state of one community's generation: faces, their groups (future cells) and the lines."""

    def __init__(
        self,
        community,
        roads: list[Road],
        water,
        buildings,
        target: Target,
        water_min_m2: float,
        min_width_m: float,
        straddle_max_m2: float = STRADDLE_MAX_M2,
    ):
        self.community = community
        self.straddle_max_m2 = straddle_max_m2
        self.min_width_m = min_width_m
        self.target = target
        self.water_min_m2 = water_min_m2
        self.buildings = as_geometries(buildings)
        if len(self.buildings):
            broken = ~shapely.is_valid(self.buildings)
            self.buildings[broken] = shapely.make_valid(self.buildings[broken])
        self.building_area = shapely.area(self.buildings) if len(self.buildings) else np.empty(0)
        reps = shapely.point_on_surface(self.buildings) if len(self.buildings) else np.empty(0, dtype=object)
        self.points = shapely.get_coordinates(reps).reshape(-1, 2)
        self.merges = self.splits = self.rounds = 0
        self.stuck: dict[int, Message] = {}  # group label → why it cannot be split further
        self.elongated: dict[int, Message] = {}  # group label → why it stays less compact than wanted
        self.notes: dict[int, list[Message]] = defaultdict(list)  # group label → notes (straddles)
        self.next_label = 0
        shapely.prepare(community)
        # Clip to a slightly larger community so that every line crossing the boundary still
        # crosses it after clipping (an exact clip could end a hair short and leave a dangle).
        clip = community.buffer(1.0)
        shapely.prepare(clip)
        roads = [r for r in roads if r.geom is not None]
        meets = shapely.intersects(clip, np.asarray([r.geom for r in roads], dtype=object)) if roads else []
        local = [r for r, m in zip(roads, meets) if m]
        majors = [r for r in local if r.major]
        parts, owner = shapely.get_parts(np.asarray([r.geom for r in majors], dtype=object), return_index=True)
        if (shapely.get_type_id(parts) == 1).all():  # plain lines: no collection to explode further
            keep = shapely.length(parts) > 0
            self.major_parts = list(parts[keep])
            keys = [(majors[i].name, majors[i].ref, majors[i].label) for i in owner[keep].tolist()]
        else:
            self.major_parts, keys = [], []
            for road in majors:
                for part in line_parts([road.geom]):
                    self.major_parts.append(part)
                    keys.append((road.name, road.ref, road.label))
        self.major = LineIndex(self.major_parts, clip.bounds) if self.major_parts else None
        self.major_labels = [k[2] for k in keys]
        self.pairs = carriageway_pairs(self.major_parts, [k[:2] for k in keys])
        road_parts = line_parts([r.geom for r in local])
        connectors = median_connectors(self.major_parts, self.pairs, road_parts)
        connectors += dangle_connectors(road_parts)

        water_lines, water_outlines, kept_water = self._water(water)
        lines = road_parts + connectors + water_lines + water_outlines
        lines = line_parts(_clipped(lines, clip))
        self.noded = shapely.union_all([community.boundary, *lines])
        self.water_area = shapely.union_all(kept_water) if kept_water else Polygon()

        self.faces, reps = self._polygonize(self.noded)
        if self.water_area.is_empty:
            self.face_water = np.zeros(len(self.faces), dtype=bool)
        else:
            shapely.prepare(self.water_area)
            self.face_water = shapely.contains(self.water_area, reps)
        self.initial_faces = len(self.faces)
        self.labels = np.arange(len(self.faces))
        self.next_label = len(self.faces)
        self._measure_faces()
        self.face_median = self._median_faces()
        self._merge_small()

    def _water(self, water):
        """Return (river lines, outlines of kept water areas, kept water areas clipped to the community)."""
        polys = [p for w in water for p in shapely.get_parts(w) if p.geom_type == "Polygon"]
        lines = line_parts([w for w in water if w.geom_type not in ("Polygon", "MultiPolygon")])
        kept, outlines = [], []
        for poly in polys:
            inside = polygonal(poly.intersection(self.community))
            if inside.area >= self.water_min_m2:
                kept.append(inside)
                # The outline of the whole water area, not of the clipped part: a clipped copy of
                # the community boundary would be noded against the boundary itself into slivers.
                outlines.append(poly.boundary)
        return lines, line_parts(outlines), kept

    # ---- groups

    def _groups(self) -> _Stats:
        st = _Stats()
        groups, index = np.unique(self.labels, return_inverse=True)
        keys = groups.tolist()
        n = len(groups)

        def sums(values):
            return defaultdict(float, zip(keys, np.bincount(index, weights=values, minlength=n).tolist()))

        st.area = sums(self.face_area)
        st.water_area = sums(np.where(self.face_water, self.face_area, 0.0))
        st.median_area = sums(np.where(self.face_median, self.face_area, 0.0))
        gi, gj = index[self.adj_i], index[self.adj_j]
        inner = gi == gj
        st.perimeter = sums(
            self.face_perimeter
            - np.bincount(self.adj_i[inner], weights=2 * self.adj_len[inner], minlength=len(self.faces))
        )
        self.owner = self._owners(self.labels)
        st.count = defaultdict(
            int, zip(*(a.tolist() for a in np.unique(self.owner[self.owner >= 0], return_counts=True)))
        )
        st.shared = {g: defaultdict(float) for g in keys}
        st.major = {g: defaultdict(float) for g in keys}
        a, b = np.concatenate([gi[~inner], gj[~inner]]), np.concatenate([gj[~inner], gi[~inner]])
        if len(a):
            codes, inv = np.unique(a.astype(np.int64) * n + b, return_inverse=True)
            inv = inv.ravel()
            lengths = np.bincount(inv, weights=np.tile(self.adj_len[~inner], 2)).tolist()
            majors = np.bincount(inv, weights=np.tile(self.adj_major[~inner], 2)).tolist()
            # codes are sorted: each group's neighbours are one run, filled in one go, in the same order
            first = np.flatnonzero(np.r_[True, np.diff(codes // n) != 0])
            last = np.r_[first[1:], len(codes)]
            y = groups[codes % n].tolist()
            for x, a, b in zip(groups[codes[first] // n].tolist(), first.tolist(), last.tolist()):
                st.shared[x] = defaultdict(float, zip(y[a:b], lengths[a:b]))
                st.major[x] = defaultdict(float, zip(y[a:b], majors[a:b]))
        return st

    def _size(self, st: _Stats, g: int) -> float:
        return st.count[g] if self.target.measure == "buildings" else st.area[g]

    def _is_water(self, st: _Stats, g: int) -> bool:
        return st.water_area.get(g, 0.0) > 0.5 * st.area[g]

    def _is_median(self, st: _Stats, g: int) -> bool:
        return st.median_area.get(g, 0.0) >= st.area[g] - 1e-6

    def _exempt(self, st: _Stats, g: int) -> bool:
        """True for water cells under a building target: they have no buildings by nature."""
        return self.target.measure == "buildings" and self._is_water(st, g) and st.area[g] >= self.water_min_m2

    def _sliver(self, st: _Stats, g: int) -> bool:
        """True for a strip narrower than min_width_m on average (2·area / perimeter)."""
        return st.perimeter[g] > 0 and 2 * st.area[g] / st.perimeter[g] < self.min_width_m

    def _island(self, st: _Stats, g: int) -> bool:
        """True for a traffic island: under ISLAND_M2, at least half its outline along major roads."""
        return st.area[g] < ISLAND_M2 and sum(st.major[g].values()) >= 0.5 * st.perimeter[g]

    def _road_land(self, st: _Stats, g: int) -> bool:
        """True for a median or traffic island: land between carriageways, or narrow/small and lined by major roads.

        Known until g takes part in a merge (its neighbours' merges leave its measures as they are).
        """
        known = st.road_land.get(g)
        if known is None:
            known = st.road_land[g] = self._is_road_land(st, g)
        return known

    def _is_road_land(self, st: _Stats, g: int) -> bool:
        if self._is_water(st, g):
            return False
        if self._is_median(st, g):
            return True
        if st.area[g] >= max(ISLAND_M2, ROAD_STRIP_M2):  # too large for either: no need to sum its roads
            return False
        along = sum(st.major[g].values())
        narrow = (
            st.area[g] < ROAD_STRIP_M2 and st.perimeter[g] > 0 and 2 * st.area[g] / st.perimeter[g] < ROAD_STRIP_WIDTH_M
        )
        return self._island(st, g) or (narrow and along >= ROAD_STRIP_SHARE * st.perimeter[g])

    def _free(self, st: _Stats, g: int) -> bool:
        """True for groups that merge across anything: slivers, road land, water."""
        return self._sliver(st, g) or self._road_land(st, g) or self._is_water(st, g)

    def _below(self, st: _Stats, g: int) -> bool:
        """True for groups to merge: below the minimum, slivers, median land, (building target) water next to water."""
        if self._sliver(st, g) or self._is_median(st, g):
            return True
        if self.target.measure == "buildings" and self._is_water(st, g):
            # One water cell per connected water body; water pieces too small to stand alone join land.
            return st.area[g] < self.water_min_m2 or any(self._is_water(st, h) for h in st.shared[g])
        return self._size(st, g) < self.target.min

    def _may_merge(self, st: _Stats, g: int, h: int, across_major: bool, free: bool | None = None) -> bool:
        """True when g may merge into h: across minor roads always, across a major road only when allowed.

        `free`: whether g merges across anything (`_free`), when the caller knows it already.
        """
        if st.major[g][h] < STRADDLE_M or (self._free(st, g) if free is None else free) or self._is_water(st, h):
            return True
        return (
            across_major
            and self._size(st, h) < self.target.min
            and not self._road_land(st, h)
            and st.area[g] + st.area[h] <= self.straddle_max_m2
        )

    def _merge_small(self) -> None:
        """Merge groups below the minimum: across minor roads first, then across major roads (module docstring)."""
        st = self._groups()
        self.parent: dict[int, int] = {}
        for across_major in (False, True):
            self._merge_pass(st, self.parent, across_major)
        self.labels = self._current_labels()
        self.parent = {}

    def _current_labels(self) -> np.ndarray:
        """Return the group of every face, following the merges made since the labels were last set."""
        parent = getattr(self, "parent", {})
        if not parent:
            return self.labels
        root = np.arange(max(self.next_label, int(self.labels.max(initial=0)) + 1))
        root[list(parent)] = list(parent.values())
        while True:  # pointer jumping: every label reaches the group it was merged into at last
            jumped = root[root]
            if np.array_equal(jumped, root):
                return root[self.labels]
            root = jumped

    def _merge_pass(self, st: _Stats, parent: dict, across_major: bool) -> None:
        buildings = self.target.measure == "buildings"
        size_of = st.count if buildings else st.area
        area, shared, major, perimeter = st.area, st.shared, st.major, st.perimeter
        water_area, median_area = st.water_area, st.median_area
        minimum, cap, min_width = self.target.min, self.straddle_max_m2, self.min_width_m
        heap = [(size_of[g], area[g], g) for g in area if self._below(st, g)]
        heapq.heapify(heap)
        while heap:
            size, a, g = heapq.heappop(heap)
            if g in parent or size_of[g] != size or area[g] != a:
                continue
            # _below and _free, inline (this loop is the hot part of generation)
            sliver = perimeter[g] > 0 and 2 * a / perimeter[g] < min_width
            water = water_area.get(g, 0.0) > 0.5 * a
            if not (sliver or median_area.get(g, 0.0) >= a - 1e-6):
                if buildings and water:
                    if not (a < self.water_min_m2 or any(self._is_water(st, h) for h in shared[g])):
                        continue
                elif size >= minimum:
                    continue
            free = sliver or self._road_land(st, g) or water
            if free:  # merges across anything: every neighbour is a candidate
                candidates = list(shared[g])
            else:  # _may_merge, inline: this loop is the hot part of generation
                along = major[g]
                candidates = [
                    h
                    for h in shared[g]
                    if along[h] < STRADDLE_M
                    or self._is_water(st, h)
                    or (across_major and size_of[h] < minimum and not self._road_land(st, h) and a + area[h] <= cap)
                ]
            if not candidates:
                continue
            h = candidates[0] if len(candidates) == 1 else self._preferred(st, g, candidates)
            if major[g][h] >= STRADDLE_M and not (free or self._is_water(st, h)):
                self._note_straddle(st, g, h)
            st.merge(g, h)
            parent[g] = h
            self.notes[h].extend(self.notes.pop(g, []))
            self.stuck.pop(h, None)
            self.elongated.pop(h, None)
            self.merges += 1
            if self._below(st, h):
                heapq.heappush(heap, (size_of[h], area[h], h))

    def _preferred(self, st: _Stats, g: int, candidates: list) -> int:
        """Return the neighbour g prefers to merge into, by (in this order, larger is better): water with
        water, not road land into road land, the merge fits the maximum, the merged group is compact
        enough, length shared along minor roads (major roads count a tenth), then the smallest label."""
        size_of = st.count if self.target.measure == "buildings" else st.area
        area, perimeter, water_area = st.area, st.perimeter, st.water_area
        water, road_land, size = self._is_water(st, g), self._road_land(st, g), size_of[g]
        area_g, perimeter_g, shared_g, major_g = area[g], perimeter[g], st.shared[g], st.major[g]
        best, best_key = None, None
        for h in candidates:
            shared, major = shared_g[h], major_g[h]
            merged = 4 * math.pi * (area_g + area[h]) / max(perimeter_g + perimeter[h] - 2 * shared, 1e-9) ** 2
            key = (
                (water_area.get(h, 0.0) > 0.5 * area[h]) == water,  # _is_water(h)
                not (road_land and self._road_land(st, h)),
                size + size_of[h] <= self.target.max,
                merged >= MIN_COMPACTNESS,
                shared - major + 0.1 * major,
                -h,
            )
            if best_key is None or key > best_key:
                best, best_key = h, key
        return best

    def _note_straddle(self, st: _Stats, g: int, h: int) -> None:
        """Note that the merged cell straddles the major roads between g and h, and why."""
        self.notes[h].append(
            Message(
                "generate.note.straddles",
                roads=self._roads_between(g, h),
                size=self.target.size(self._size(st, g)),
                other=self.target.size(self._size(st, h)),
                target=self.target.message(),
            )
        )

    def _roads_between(self, g: int, h: int) -> str | Message:
        """Return the names of the major roads along the boundary between groups g and h."""
        labels = self._current_labels()
        pair, line = self.adj_lines  # only face pairs with a major road between them are looked at
        li, lj = labels[self.adj_i[pair]], labels[self.adj_j[pair]]
        between = ((li == g) & (lj == h)) | ((li == h) & (lj == g))
        names = sorted({self.major_labels[k] for k in line[between].tolist()} - {"?"})
        return "、".join(names) if names else Message("generate.unnamed_road")

    # ---- result

    def _below_reason(self, st: _Stats, g: int, size: float) -> Message:
        target = self.target
        if not st.shared[g]:
            whole = abs(st.area[g] - self.community.area) < 1e-6 * self.community.area
            return Message(
                "generate.reason.below_whole" if whole else "generate.reason.below_isolated", size=target.size(size)
            )
        if all(not self._may_merge(st, g, h, True) for h in st.shared[g]):
            h = max(st.shared[g], key=st.shared[g].get)
            if any(self._size(st, n) < target.min for n in st.shared[g]):
                return Message(
                    "generate.reason.below_major_large",
                    size=target.size(size),
                    area=st.area[g],
                    roads=self._roads_between(g, h),
                    cap=self.straddle_max_m2,
                )
            return Message("generate.reason.below_major", size=target.size(size), roads=self._roads_between(g, h))
        return Message("generate.reason.below", size=target.size(size))

    def result(self) -> GenerationResult:
        labels, st = getattr(self, "final_stats", (None, None))
        if labels is not self.labels:
            st = self._groups()
        members = defaultdict(list)
        for f, g in enumerate(self.labels):
            members[g].append(f)
        groups = sorted(members)
        polygons = []
        for g in groups:
            # The faces of a group share exact edges, so their coverage union dissolves the inner
            # edges and keeps every vertex, and neighbouring cells keep sharing vertices.
            poly = shapely.coverage_union_all(self.faces[members[g]])
            if poly.geom_type != "Polygon":
                raise RuntimeError(f"cell of faces {members[g]} is {poly.geom_type}, not one Polygon")
            polygons.append(poly)
        order = cell_order(polygons)
        groups, polygons = [groups[i] for i in order], [polygons[i] for i in order]
        # Count again by the building rule with the cells in code order: ties go to the smallest code.
        rank = {g: i for i, g in enumerate(groups)}
        counts = self._final_counts(np.array([rank[g] for g in self.labels]), len(groups))
        cells = [self._cell(st, g, poly, int(n)) for g, poly, n in zip(groups, polygons, counts)]
        union = shapely.coverage_union_all(polygons)
        total = sum(c.area_m2 for c in cells)
        return GenerationResult(
            cells=cells,
            target=self.target,
            faces=self.initial_faces,
            merges=self.merges,
            splits=self.splits,
            rounds=self.rounds,
            tiling_error_m2=float(union.symmetric_difference(self.community).area),
            # A valid coverage (no overlaps, edges matching) needs no overlay to measure its union.
            overlap_m2=float(
                max(total - (union if shapely.coverage_is_valid(polygons) else shapely.union_all(polygons)).area, 0.0)
            ),
            carriageways=len(self.pairs),
        )

    def _final_counts(self, ranks: np.ndarray, n: int) -> np.ndarray:
        if self.part_b is None:
            self._measure_buildings()
        owner = self._owners(ranks)
        return np.bincount(owner[owner >= 0], minlength=n)

    def _cell(self, st: _Stats, g: int, poly, count: int) -> GeneratedCell:
        """Return the cell of group g with its status, reason and notes."""
        target = self.target
        st.count[g] = count
        size = self._size(st, g)
        status, reason = "ok", None
        if self._exempt(st, g):
            status, reason = "water", Message("generate.reason.water")
        elif size < target.min:
            status, reason = "below", self._below_reason(st, g, size)
        elif size > target.max:
            status = "above"
            reason = self.stuck.get(g, Message("generate.reason.above", size=target.size(size)))
        notes = list(self.notes.get(g, []))
        pp = polsby_popper(poly)
        if pp < MIN_COMPACTNESS and not self._is_water(st, g):
            why = self.stuck.get(g) or Message("generate.note.elongated_block")
            notes.append(Message("generate.note.elongated", pp=round(pp, 3), why=why))
        return GeneratedCell(poly, float(poly.area), count, bool(self._is_water(st, g)), status, reason, notes)
