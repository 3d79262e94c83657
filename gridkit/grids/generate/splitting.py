"""Splitting groups of faces by straight cuts: too large ones, and elongated ones that can be cut.

A group of n > max is meant to become k = ceil(n / max) cells, so the cut divides it k//2 : k − k//2,
by building count (the cut passes midway between two buildings ordered along the axis) or by area
(position found by bisection), perpendicular to the long axis of its minimum rotated rectangle
(the short axis is tried when that cut would leave a piece below the minimum). An elongated land
group (Polsby-Popper below MIN_COMPACTNESS) is cut in two the same way, but only when no piece
falls below the minimum. Only the faces a round's cut lines touch are noded with them and
polygonized again (faces._cut_faces), so cells still share vertices exactly and a round costs in
proportion to what it cuts, not to the whole community.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import shapely

from gridkit.grids.generate.geometry import (
    area_cut_offset,
    count_cut_offsets,
    cut_segments,
    halfplane,
)
from gridkit.grids.generate.target import MIN_COMPACTNESS
from gridkit.messages import Message


class Splitting:
    """The splitting half of the generator (mixed into cutting._Generator, which holds the state)."""

    def run(self, max_rounds: int) -> None:
        """Split groups above the maximum or too elongated, round by round, merging small leftovers after each."""
        for _ in range(max_rounds):
            st = self._groups()
            members = defaultdict(list)
            for f, g in enumerate(self.labels):
                members[g].append(f)
            cuts = {}
            for g in sorted(st.area):
                size = self._size(st, g)
                if self._exempt(st, g) or self._is_water(st, g):
                    too_big = size > self.target.max and not self._exempt(st, g)
                    compact = True
                else:
                    too_big = size > self.target.max
                    compact = st.compactness(g) >= MIN_COMPACTNESS
                if too_big and g not in self.stuck:
                    cut = self._plan_cut(g, members[g], st.area[g], size)
                    if isinstance(cut, Message):
                        self.stuck[g] = cut
                    else:
                        cuts[g] = cut
                elif not too_big and not compact and g not in self.elongated:
                    if size < 2 * self.target.min:
                        self.elongated[g] = Message("generate.note.elongated_small", size=self.target.size(size))
                        continue
                    cut = self._plan_cut(g, members[g], st.area[g], size, parts=2, strict=True)
                    if isinstance(cut, Message):
                        self.elongated[g] = cut
                    else:
                        cuts[g] = cut
            if not cuts:
                break
            self.rounds += 1
            self._apply_cuts(cuts)
            self._merge_small()
        else:  # the last round cut and merged: measure the groups again (after a break they are as measured)
            st = self._groups()
        self.final_stats = (self.labels, st)  # for result(), while the labels stay these
        for g in st.area:
            if not self._exempt(st, g) and self._size(st, g) > self.target.max:
                self.stuck.setdefault(
                    g,
                    Message(
                        "generate.reason.above_rounds", size=self.target.size(self._size(st, g)), rounds=max_rounds
                    ),
                )
        self.stuck.update({g: why for g, why in self.elongated.items() if g not in self.stuck})

    def _plan_cut(
        self, g: int, faces: list[int], area: float, size: float, parts: int | None = None, strict: bool = False
    ):
        """Return (origin, axis, offset, segments) of the cut for group g, or a Message why there is none.

        `parts`: how many cells the group should become (default ceil(size / max)); strict: refuse a
        cut that leaves any piece below the minimum.
        """
        target = self.target
        k = parts or math.ceil(size / target.max)
        if k * target.min > size:
            return Message("generate.reason.above_narrow", size=target.size(size), target=target.message())
        k1 = k // 2
        poly = shapely.coverage_union_all(self.faces[faces])
        if poly.geom_type != "Polygon":
            poly = shapely.union_all(self.faces[faces])
        rect = shapely.oriented_envelope(poly)
        if rect.geom_type != "Polygon":
            return Message("generate.reason.above_thin")
        corners = np.asarray(rect.exterior.coords)[:4]
        e1, e2 = corners[1] - corners[0], corners[2] - corners[1]
        long_axis, short_axis = (e1, e2) if np.hypot(*e1) >= np.hypot(*e2) else (e2, e1)
        origin = np.asarray(poly.centroid.coords[0])
        reach = math.hypot(poly.bounds[2] - poly.bounds[0], poly.bounds[3] - poly.bounds[1]) + 10.0
        pts = self.points[self.owner == g] if target.measure == "buildings" else None

        candidates = []
        for axis in (long_axis, short_axis) if not strict else (long_axis,):
            axis = axis / np.hypot(*axis)
            if target.measure == "buildings":
                offsets = count_cut_offsets(pts, origin, axis, k, k1, target)
            else:
                offsets = [area_cut_offset(poly, origin, axis, area * k1 / k, reach)]
            for offset in offsets:
                bad = self._bad_pieces(poly, origin, axis, offset, reach, pts)
                candidates.append((bad, len(candidates), axis, offset))
                if bad == 0:
                    break
            if candidates and candidates[-1][0] == 0:
                break
        if not candidates:
            return Message("generate.reason.above_stacked", count=int(size))
        bad, _, axis, offset = min(candidates, key=lambda c: (c[0], c[1]))
        if strict and bad:
            return Message("generate.note.elongated_cut", target=target.message())
        segments = cut_segments(poly, origin, axis, offset, reach)
        if not segments:
            return Message("generate.reason.above_no_cut")
        return origin, axis, offset, segments

    def _bad_pieces(self, poly, origin, axis, offset, reach, pts) -> int:
        """Return how many pieces a cut would leave below the minimum (a non-convex cell can fall apart)."""
        low = halfplane(origin, axis, offset, reach)
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
        """Split the faces the cut lines touch (faces._cut_faces) and relabel them (one group per piece)."""
        old_labels = self.labels
        parent_face = self._cut_faces([s for cut in cuts.values() for s in cut[3]])
        labels = old_labels[parent_face]
        # Faces of a cut group go to the side of the cut line their interior point is on; each
        # side's connected pieces then become groups of their own.
        cut = np.nonzero(np.isin(labels, list(cuts)))[0]
        side = np.zeros(len(labels), dtype=bool)
        rep_xy = shapely.get_coordinates(shapely.point_on_surface(self.faces[cut]))
        for g, (origin, axis, offset, _) in cuts.items():
            mine = labels[cut] == g
            side[cut[mine]] = (rep_xy[mine] - origin) @ axis > offset
        parent = np.arange(len(labels))

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        in_cut = np.zeros(len(labels), dtype=bool)
        in_cut[cut] = True
        same = in_cut[self.adj_i] & (labels[self.adj_i] == labels[self.adj_j]) & (side[self.adj_i] == side[self.adj_j])
        for i, j in zip(self.adj_i[same].tolist(), self.adj_j[same].tolist()):
            parent[find(i)] = find(j)
        fresh: dict[int, int] = {}
        new_labels = labels.copy()
        for f in cut.tolist():
            r = find(f)
            if r not in fresh:
                fresh[r] = self.next_label
                self.next_label += 1
            new_labels[f] = fresh[r]
        self.splits += len(cuts)
        self.labels = new_labels
