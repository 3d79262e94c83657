"""How well generated cells follow the road hierarchy: measures for tests, benchmarks and reports (metres).

- `major_road_inside`: length of major roads inside cells, and the part farther than 30 m from
  every cell edge (a road running through a cell rather than along its edges);
- `cells_holding_major`: cells with at least 50 m of major road more than 5 m inside them;
- `carriageway_strips`: cells that are strips between two carriageways of one road;
- `min_compactness`: the lowest Polsby-Popper score of the land cells.
"""

from __future__ import annotations

import shapely

from gridkit.grids.generate.geometry import line_parts
from gridkit.grids.generate.roads import carriageway_pairs
from gridkit.grids.generate.target import polsby_popper

# Cells are strips between carriageways when each carriageway runs along this share of the outline.
STRIP_SHARE = 0.3


def _polygons(cells) -> list:
    return [getattr(c, "polygon", c) for c in cells]


def major_road_inside(cells, lines, distance_m: float = 30.0) -> tuple[float, float]:
    """Return (length of `lines` inside the cells, the part of it farther than distance_m from every cell edge)."""
    polygons = _polygons(cells)
    if not polygons or not lines:
        return 0.0, 0.0
    union = shapely.coverage_union_all(polygons)
    edges = shapely.union_all(shapely.boundary(polygons))
    roads = shapely.union_all(line_parts(lines))
    inside = shapely.intersection(roads, union)
    far = shapely.difference(inside, shapely.buffer(edges, distance_m, quad_segs=4))
    return float(inside.length), float(far.length)


def cells_holding_major(cells, lines, min_length_m: float = 50.0, inset_m: float = 5.0) -> int:
    """Return how many cells hold at least min_length_m of `lines` more than inset_m inside them."""
    if not lines:
        return 0
    roads = shapely.union_all(line_parts(lines))
    cores = shapely.buffer(_polygons(cells), -inset_m, quad_segs=4)
    return int((shapely.length(shapely.intersection(roads, cores)) >= min_length_m).sum())


def carriageway_strips(cells, roads) -> list[int]:
    """Return the indices of cells lying between two carriageways of one road (see roads.carriageway_pairs).

    `roads`: `roads.Road`s in the cells' CRS; only major ones with a name or ref can pair.
    """
    parts, keys = [], []
    for road in roads:
        if road.major and (road.name or road.ref):
            for part in line_parts([road.geom]):
                parts.append(part)
                keys.append((road.name, road.ref))
    pairs = carriageway_pairs(parts, keys)
    if not pairs:
        return []
    polygons = _polygons(cells)
    outlines = shapely.boundary(polygons)
    tree = shapely.STRtree(polygons)
    strips = set()
    for pair in pairs:
        a, b = parts[pair.a], parts[pair.b]
        near_a, near_b = shapely.buffer(a, 0.5), shapely.buffer(b, 0.5)
        for i in set(tree.query(a, predicate="intersects")) & set(tree.query(b, predicate="intersects")):
            perimeter = outlines[i].length
            on_a = shapely.intersection(outlines[i], near_a).length
            on_b = shapely.intersection(outlines[i], near_b).length
            if on_a >= STRIP_SHARE * perimeter and on_b >= STRIP_SHARE * perimeter:
                strips.add(int(i))
    return sorted(strips)


def min_compactness(cells) -> float:
    """Return the lowest Polsby-Popper score among land cells (1.0 when there are none)."""
    scores = [polsby_popper(c.polygon) for c in cells if not getattr(c, "water", False)]
    return min(scores, default=1.0)
