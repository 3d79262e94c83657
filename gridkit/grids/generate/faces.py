"""The faces of one community's generation: measures, building parts, median land, and cuts that split them.

Faces come from one noded polygonize, so neighbouring faces share their edges exactly (same
vertices); adjacency is found by matching segments (geometry.face_adjacency). A cut round splits
only the faces its lines touch (`_cut_faces`): those faces' outlines and the cut lines are noded
together and polygonized again, and measures, building parts and adjacency are computed again
for the new pieces only, so a round costs in proportion to what the cuts touch, not to the whole
community. Every face a cut line crosses, or touches with its 1 cm overshoot, is split with it,
so a new vertex on a shared edge is made on both sides and faces keep sharing vertices exactly.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import shapely

from gridkit.grids.generate.buildings import building_parts, owners
from gridkit.grids.generate.geometry import face_adjacency, face_segments, segments_on, split_faces

# A face is land between two carriageways when each of them runs along this share of its outline.
MEDIAN_SHARE = 0.3


class Faces:
    """The face half of the generator (mixed into cutting._Generator, which holds the state)."""

    def _polygonize(self, noded) -> tuple[np.ndarray, np.ndarray]:
        """Return the faces of the noded lines inside the community, and a point inside each."""
        faces = shapely.get_parts(shapely.polygonize([noded]))
        faces = faces[shapely.area(faces) > 0]
        # Faces in holes of the community (or, with an irregular clip, just outside) are dropped.
        reps = shapely.point_on_surface(faces)
        inside = shapely.contains(self.community, reps)
        return faces[inside], reps[inside]

    def _measure_faces(self) -> None:
        """Measure all faces: area, perimeter, building parts (building target), adjacency."""
        self.face_area = shapely.area(self.faces)
        self.face_perimeter = shapely.length(self.faces)
        if self.target.measure == "buildings":
            self._measure_buildings()
        else:  # an area target needs the building parts only for the final counts
            self.part_b = None
        # Every segment of every face, and which lie on major roads: for adjacency and for median land.
        segments = face_segments(self.faces)
        self.on_major = (*segments, *segments_on(segments[0], segments[1], self.major))
        self.adj_i, self.adj_j, self.adj_len, self.adj_major, self.adj_lines = face_adjacency(
            self.faces, self.major, segments=(*segments, self.on_major[4:])
        )

    def _measure_buildings(self, parent_face: np.ndarray | None = None) -> None:
        """Find each building's parts in the faces: again only in faces a cut has split, when known."""
        if parent_face is None or getattr(self, "part_b", None) is None:
            self.part_b, self.part_f, self.part_area = building_parts(
                self.faces, self.buildings, valid=True, points=self.points
            )
            # A footprint mostly outside the community belongs to a cell there, not here.
            inside = np.bincount(self.part_b, weights=self.part_area, minlength=len(self.buildings))
            point = shapely.get_type_id(self.buildings) == 0 if len(self.buildings) else np.empty(0, bool)
            self.outside_area = np.where(point, 0.0, np.maximum(self.building_area - inside, 0.0))
            return
        children = np.bincount(parent_face, minlength=int(self.part_f.max(initial=-1)) + 1)
        whole = children[parent_face] == 1  # new faces identical to their old face
        new_of_old = np.full(len(children), -1)
        new_of_old[parent_face[whole]] = np.nonzero(whole)[0]
        kept = new_of_old[self.part_f] >= 0
        split_faces = np.nonzero(~whole)[0]
        redo = np.unique(self.part_b[~kept])
        b, f, area = building_parts(self.faces[split_faces], self.buildings[redo], valid=True, points=self.points[redo])
        self.part_b = np.concatenate([self.part_b[kept], redo[b]])
        self.part_f = np.concatenate([new_of_old[self.part_f[kept]], split_faces[f]])
        self.part_area = np.concatenate([self.part_area[kept], area])

    def _owners(self, labels: np.ndarray) -> np.ndarray:
        """Return the group of every building by the building rule for the given face labels (−1: none)."""
        if self.part_b is None:
            return np.full(len(self.buildings), -1, dtype=int)
        owner = owners(self.part_b, labels[self.part_f], self.part_area, len(self.buildings))
        if len(owner):
            best = np.zeros(len(owner))
            held = owner >= 0
            if held.any():
                mine = labels[self.part_f] == owner[self.part_b]
                best = np.bincount(self.part_b[mine], weights=self.part_area[mine], minlength=len(owner))
            owner[held & (best < self.outside_area)] = -1
        return owner

    def _median_faces(self) -> np.ndarray:
        """Return which faces lie between two carriageways of one road (see MEDIAN_SHARE)."""
        median = np.zeros(len(self.faces), dtype=bool)
        segments, self.on_major = self.on_major, None  # measured with the faces; needed only here
        if not self.pairs or not len(self.faces):
            return median
        _, _, face, length, seg, line = segments
        n = len(self.faces)
        keys, inverse = np.unique(line.astype(np.int64) * n + face[seg], return_inverse=True)
        sums = np.bincount(inverse.ravel(), weights=length[seg], minlength=len(keys))
        on: dict[int, dict[int, float]] = defaultdict(dict)  # line → face → length along it
        for key, total in zip(keys.tolist(), sums.tolist()):
            on[key // n][key % n] = total
        for pair in self.pairs:
            for f in on[pair.a].keys() & on[pair.b].keys():
                least = min(on[pair.a][f], on[pair.b][f])
                if least >= MEDIAN_SHARE * self.face_perimeter[f] and not self.face_water[f]:
                    median[f] = True
        return median

    def _cut_faces(self, segments: list) -> np.ndarray:
        """Split the faces the cut segments touch; return the old face of every new face (parent_face).

        Faces untouched keep their order, measures, building parts and adjacency; the pieces of the
        touched faces come after them, measured anew.
        """
        old = self.faces
        _, hit = shapely.STRtree(old).query(np.asarray(segments, dtype=object), predicate="intersects")
        affected = np.unique(hit)
        pieces, parent_local = split_faces(old[affected], segments)
        kept = np.setdiff1d(np.arange(len(old)), affected)
        self.faces = np.concatenate([old[kept], pieces])
        parent_face = np.concatenate([kept, affected[parent_local]]).astype(int)
        self.face_water = self.face_water[parent_face]
        self.face_median = self.face_median[parent_face]
        self.face_area = np.concatenate([self.face_area[kept], shapely.area(pieces)])
        self.face_perimeter = np.concatenate([self.face_perimeter[kept], shapely.length(pieces)])
        if self.target.measure == "buildings":
            self._measure_buildings(parent_face)
        self._update_adjacency(kept, affected)
        return parent_face

    def _update_adjacency(self, kept: np.ndarray, affected: np.ndarray) -> None:
        """Keep the adjacency of faces a cut left alone; find it again around the new pieces only."""
        n_kept, n_old = len(kept), len(kept) + len(affected)
        new_of_old = np.full(n_old, -1)
        new_of_old[kept] = np.arange(n_kept)
        ni, nj = new_of_old[self.adj_i], new_of_old[self.adj_j]
        stay = (ni >= 0) & (nj >= 0)
        touched = np.isin(self.adj_i, affected) | np.isin(self.adj_j, affected)
        near = new_of_old[np.unique(np.concatenate([self.adj_i[touched], self.adj_j[touched]]))]
        local = np.concatenate([np.sort(near[near >= 0]), np.arange(n_kept, len(self.faces))])
        li, lj, length, major, (lpair, lline) = face_adjacency(self.faces[local], self.major)
        gi, gj = local[li], local[lj]  # local is increasing: gi < gj still
        fresh = (gi >= n_kept) | (gj >= n_kept)
        pair, line = self.adj_lines
        row_of_stay = np.cumsum(stay) - 1
        row_of_fresh = int(stay.sum()) + np.cumsum(fresh) - 1
        keep_line, fresh_line = stay[pair], fresh[lpair]
        self.adj_lines = (
            np.concatenate([row_of_stay[pair[keep_line]], row_of_fresh[lpair[fresh_line]]]).astype(int),
            np.concatenate([line[keep_line], lline[fresh_line]]).astype(int),
        )
        self.adj_i = np.concatenate([ni[stay], gi[fresh]]).astype(int)
        self.adj_j = np.concatenate([nj[stay], gj[fresh]]).astype(int)
        self.adj_len = np.concatenate([self.adj_len[stay], length[fresh]])
        self.adj_major = np.concatenate([self.adj_major[stay], major[fresh]])
