"""Road and water layers as generation reads them: OSM tags (Tilezen, OSM, Geofabrik schemas), the road
hierarchy (major / minor), and carriageways of one road drawn as two lines.

Major roads are motorways, trunk, primary, secondary and tertiary roads with their links, and
surface railways: cells keep to them. Tunnels never cut, whatever their class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gridkit.grids.generate.geometry import Polylines

# Two carriageways of one road (same name or ref) are treated as one road when they run parallel
# (directions within CARRIAGEWAY_ANGLE_DEG) at most CARRIAGEWAY_GAP_M apart.
CARRIAGEWAY_GAP_M = 60.0
CARRIAGEWAY_ANGLE_DEG = 20.0
# Points along a carriageway are compared every CARRIAGEWAY_STEP_M; a pair needs at least
# CARRIAGEWAY_MIN_M of parallel run.
CARRIAGEWAY_STEP_M = 20.0
CARRIAGEWAY_MIN_M = 60.0
# A road that ends this close to another road (metres) is taken to meet it.
DANGLE_SNAP_M = 2.0


@dataclass
class Road:
    """One road line that cuts cells, with its place in the hierarchy and its names."""

    geom: object
    major: bool = False
    name: str | None = None
    ref: str | None = None
    rail: bool = False

    @property
    def label(self) -> str:
        """Return the name (or ref) to show in a report, or '?' for an unnamed road."""
        return self.name or self.ref or "?"


_TRUE = {"1", "1.0", "true", "yes", "t", "y"}

# Tilezen / Nextzen road kinds (OSM-derived vector tiles), gridkit's own (`kind` major / minor: the demo
# city's data/boundaries/roads.geojson) and OSM `highway` values.
_CUT_ROAD_KINDS = {"highway", "major_road", "minor_road", "major", "minor"}
_MAJOR_ROAD_KINDS = {"highway", "major_road", "major"}
_NO_CUT_ROAD_DETAILS = {"service", "track", "construction", "proposed", "raceway", "bus_guideway", "platform"}
_STREET_PATH_DETAILS = {"pedestrian", "living_street"}
_PATH_DETAILS = {"footway", "path", "cycleway", "steps", "bridleway", "corridor", "pedestrian", "living_street"}
_CUT_RAIL_DETAILS = {"rail", "light_rail", "narrow_gauge", "preserved"}
_OSM_CUT_HIGHWAYS = {
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "motorway_link",
    "trunk_link",
    "primary_link",
    "secondary_link",
    "tertiary_link",
    "living_street",
    "pedestrian",
    "road",
}
_OSM_MAJOR_HIGHWAYS = {
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "motorway_link",
    "trunk_link",
    "primary_link",
    "secondary_link",
    "tertiary_link",
}
_NO_CUT_WATER_KINDS = {"swimming_pool", "fountain", "reflecting_pool"}
_CUT_WATER_LINE_KINDS = {"river", "canal", "stream", "drain", "ditch"}


def _truthy(value) -> bool:
    return value is not None and str(value).strip().lower() in _TRUE


def _tunnel(*values) -> bool:
    """True when a Tilezen `is_tunnel`, OSM `tunnel` (yes, culvert, building_passage) or Geofabrik T says so."""
    return any(v is not None and str(v).strip().lower() in _TRUE | {"culvert", "building_passage"} for v in values)


# Where a road's name is: OSM / Tilezen / Geofabrik `name`, then what Chinese surveying departments and ESRI
# layers call it. The first present is read; without a name, carriageways pair by `ref` only.
_NAME_FIELDS = ("name", "NAME", "Name", "名称", "道路名称", "路名", "道路名", "ROADNAME", "RoadName", "road_name")


def _in_dbf(columns, name: str) -> str:
    """Return `name`, or its first 10 characters when the layer has only those (a shapefile's DBF cuts
    Tilezen's `kind_detail` to `kind_detai`)."""
    return name if name in columns or name[:10] not in columns else name[:10]


def _name_field(columns) -> str:
    """Return the column holding the roads' names (`name` when none of _NAME_FIELDS is present)."""
    return next((c for c in _NAME_FIELDS if c in columns), "name")


def _rows(frame, *names):
    """Return (geometry, value of each named column …) per feature; a column the layer lacks gives None."""
    return zip(frame.geometry, *(frame[n] if n in frame.columns else [None] * len(frame) for n in names))


def road_features(frame, *, paths: bool = False) -> list[Road]:
    """Return the geometries of a road layer that split cells (a GeoDataFrame in; lines out).

    Kept: streets and roads of every class (major and minor), surface railways. Dropped, because
    they do not divide the ground into blocks: tunnels (including metro lines and the under-river
    road tunnels), ferries, piers, service roads (driveways and parking aisles inside compounds)
    and, unless paths=True, footways, cycleways, steps and paths (they also run along streets as
    separately mapped sidewalks and would cut slivers). Pedestrian streets and living streets are
    streets and are kept. Understood schemas: Tilezen/Nextzen (`kind`, `kind_detail`, `is_tunnel`),
    OSM (`highway`, `railway`, `tunnel`), Geofabrik (`fclass`, `tunnel`) and gridkit's (`kind` major /
    minor); a layer with none of these columns is taken as all roads, none of them major. Major:
    Tilezen `highway` / `major_road`, gridkit's `major`,
    OSM motorway to tertiary and their links, surface railways. Names: `name` (or `NAME`, `名称`, `道路名称` …:
    _NAME_FIELDS; then `name:zh`), `ref`.
    """
    columns = set(frame.columns)
    out = []
    for geom, kind, detail, highway, railway, fclass, tunnel_a, tunnel_b, name, name_zh, ref in _rows(
        frame,
        "kind",
        _in_dbf(columns, "kind_detail"),
        "highway",
        "railway",
        "fclass",
        "is_tunnel",
        "tunnel",
        _name_field(columns),
        "name:zh",
        "ref",
    ):
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
            keep = (
                value in _OSM_CUT_HIGHWAYS
                or (paths and value in _PATH_DETAILS)
                or str(railway or "") in _CUT_RAIL_DETAILS
            )
            main = value in _OSM_MAJOR_HIGHWAYS or str(railway or "") in _CUT_RAIL_DETAILS
        elif "fclass" in columns:
            value = str(fclass or "")
            keep = value in _OSM_CUT_HIGHWAYS or (paths and value in _PATH_DETAILS) or value in _CUT_RAIL_DETAILS
            main = value in _OSM_MAJOR_HIGHWAYS or value in _CUT_RAIL_DETAILS
        else:
            keep = True
        if keep:
            rail = (
                str(kind or "") == "rail"
                or str(railway or "") in _CUT_RAIL_DETAILS
                or (str(fclass or "") in _CUT_RAIL_DETAILS)
            )
            out.append(Road(geom, main, _text(name) or _text(name_zh), _text(ref), rail))
    return out


def road_lines(frame, *, paths: bool = False, major: bool = False) -> list:
    """Return the geometries of the roads that cut cells (see road_features); major=True: major roads only."""
    return [r.geom for r in road_features(frame, paths=paths) if r.major or not major]


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def water_features(frame) -> list:
    """Return the geometries of a water layer that bound cells: water areas and river/canal lines.

    Swimming pools and fountains are dropped. Lines are kept only when they are rivers, canals,
    streams, drains or ditches (Tilezen `kind`, OSM `waterway`, Geofabrik `fclass`); outlines of
    water areas (Tilezen `boundary`) are dropped, the areas themselves carry them. Culverts and
    tunnels are dropped.
    """
    out = []
    for geom, kind, waterway, fclass, boundary, tunnel_a, tunnel_b in _rows(
        frame, "kind", "waterway", "fclass", "boundary", "is_tunnel", "tunnel"
    ):
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


# --------------------------------------------------------------------------------------- carriageways


@dataclass
class CarriagewayPair:
    """Two carriageways of one road (indices into the road parts) and the road's name."""

    a: int
    b: int
    label: str


def _directions(line, distances: np.ndarray) -> np.ndarray:
    """Return unit direction vectors of a line (or of lines, element-wise) at the given distances along it."""
    before = shapely.line_interpolate_point(line, np.maximum(distances - 1.0, 0.0))
    after = shapely.line_interpolate_point(line, np.minimum(distances + 1.0, shapely.length(line)))
    d = shapely.get_coordinates(after) - shapely.get_coordinates(before)
    norm = np.hypot(d[:, 0], d[:, 1])
    norm[norm == 0] = 1.0
    return d / norm[:, None]


def parallel_run(
    a, b, gap_m: float = CARRIAGEWAY_GAP_M, step_m: float = CARRIAGEWAY_STEP_M, angle_deg: float = CARRIAGEWAY_ANGLE_DEG
) -> np.ndarray:
    """Return the distances along line a at which b runs parallel to it, between 0.5 m and gap_m away."""
    if a.length < step_m:
        return np.empty(0)
    along = np.arange(step_m / 2, a.length, step_m)
    points = shapely.line_interpolate_point(a, along)
    near = shapely.distance(points, b)
    close = (near > 0.5) & (near <= gap_m)
    if not close.any():
        return np.empty(0)
    along, points = along[close], points[close]
    on_b = shapely.line_locate_point(b, points)
    # The nearest point of b must be inside it, not its end: two pieces of one carriageway meet end to end.
    inner = (on_b > 0.5) & (on_b < b.length - 0.5)
    along, on_b = along[inner], on_b[inner]
    cos = np.abs(np.einsum("ij,ij->i", _directions(a, along), _directions(b, on_b)))
    return along[cos >= np.cos(np.radians(angle_deg))]


def _parallel_runs(
    parts: np.ndarray, candidates: list[tuple[int, int]], gap_m: float, step_m: float = CARRIAGEWAY_STEP_M
) -> np.ndarray:
    """Return, for each candidate pair (a, b), the length of a along which b runs parallel (as parallel_run)."""
    lines = Polylines(parts)
    a = np.array([i for i, _ in candidates])
    b = np.array([j for _, j in candidates])
    length = lines.length[a]
    counts = np.maximum(np.floor((length - step_m / 2) / step_m).astype(int) + 1, 0)
    counts[length < step_m] = 0
    owner = np.repeat(np.arange(len(candidates)), counts)
    along = (np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)) * step_m + step_m / 2
    la, lb = a[owner], b[owner]
    points = shapely.points(lines.point_at(la, along))
    near = shapely.distance(points, parts[lb])
    ok = (near > 0.5) & (near <= gap_m)
    on_b = np.zeros(len(along))
    on_b[ok] = shapely.line_locate_point(parts[lb[ok]], points[ok])  # only where b is near: the rest is out anyway
    ok &= (on_b > 0.5) & (on_b < lines.length[lb] - 0.5)
    cos = np.zeros(len(along))
    if ok.any():
        cos[ok] = np.abs(np.einsum("ij,ij->i", lines.direction(la[ok], along[ok]), lines.direction(lb[ok], on_b[ok])))
    ok &= cos >= np.cos(np.radians(CARRIAGEWAY_ANGLE_DEG))
    return np.bincount(owner[ok], minlength=len(candidates)) * step_m


def carriageway_pairs(
    parts: list, keys: list[tuple], gap_m: float = CARRIAGEWAY_GAP_M, min_run_m: float = CARRIAGEWAY_MIN_M
) -> list[CarriagewayPair]:
    """Return the pairs of major road lines that are two carriageways of one road.

    `parts` are LineStrings (metric CRS) and `keys[i]` the (name, ref) of part i, for major roads
    only. Two parts pair when they share a name or a ref and run parallel, 0.5..gap_m apart, over
    at least min_run_m.
    """
    by_key: dict[str, list[int]] = {}
    for i, (name, ref) in enumerate(keys):
        for key in {name, ref} - {None}:
            by_key.setdefault(key, []).append(i)
    parts_array = np.asarray(parts, dtype=object)
    # Parts sharing a name or ref first, then boxes within gap_m, then the distance of the lines themselves.
    same = {(i, j) for members in by_key.values() for k, i in enumerate(members) for j in members[k + 1 :]}
    if not same:
        return []
    i, j = np.array(sorted(same)).T
    minx, miny, maxx, maxy = shapely.bounds(parts_array).T
    boxed = (
        (minx[j] <= maxx[i] + gap_m)
        & (maxx[j] >= minx[i] - gap_m)
        & (miny[j] <= maxy[i] + gap_m)
        & (maxy[j] >= miny[i] - gap_m)
    )
    i, j = i[boxed], j[boxed]
    if not len(i):
        return []
    close = shapely.distance(parts_array[i], parts_array[j]) <= gap_m
    candidates = sorted(zip(i[close].tolist(), j[close].tolist()))
    if not candidates:
        return []
    runs = _parallel_runs(parts_array, candidates, gap_m)
    labels = {}
    for key, members in by_key.items():
        for i in members:
            labels.setdefault(i, key)
    pairs = [CarriagewayPair(i, j, labels[i]) for (i, j), run in zip(candidates, runs) if run >= min_run_m]
    return pairs


def median_connectors(
    parts: list, pairs: list[CarriagewayPair], others: list, gap_m: float = CARRIAGEWAY_GAP_M
) -> list:
    """Return lines that carry streets ending on one carriageway across the median to the other.

    A side street usually ends at the near carriageway; carried across, it cuts the land between
    the carriageways where the blocks beside it are cut, so that land can join those blocks piece
    by piece. Each connector overshoots the far carriageway by a metre (a dangle, dropped).
    """
    if not pairs or not others:
        return []
    others = np.asarray(others, dtype=object)
    ends = np.empty(2 * len(others), dtype=object)
    ends[0::2], ends[1::2] = shapely.get_point(others, 0), shapely.get_point(others, -1)
    parts = np.asarray(parts, dtype=object)
    near_idx = np.array([p.a for p in pairs] + [p.b for p in pairs])
    far_idx = np.array([p.b for p in pairs] + [p.a for p in pairs])
    # The tree over the few carriageways, queried with the many ends (cheaper than the other way round).
    hit_end, hit_line = shapely.STRtree(parts[near_idx]).query(ends, predicate="dwithin", distance=0.5)
    if not len(hit_line):
        return []
    order = np.lexsort((hit_end, hit_line))
    hit_line, hit_end = hit_line[order], hit_end[order]
    lines = Polylines(parts)
    near_at, far_at = near_idx[hit_line], far_idx[hit_line]
    near, far, starts = parts[near_at], parts[far_at], ends[hit_end]
    gap = shapely.distance(starts, far)
    on_far_at = shapely.line_locate_point(far, starts)
    keep = (gap > 0.5) & (gap <= gap_m) & (on_far_at > 0.5) & (on_far_at < lines.length[far_at] - 0.5)
    near, starts, on_far_at, near_at, far_at = near[keep], starts[keep], on_far_at[keep], near_at[keep], far_at[keep]
    if not len(starts):
        return []
    cos = np.abs(
        np.einsum(
            "ij,ij->i",
            lines.direction(near_at, shapely.line_locate_point(near, starts)),
            lines.direction(far_at, on_far_at),
        )
    )
    parallel = cos >= np.cos(np.radians(CARRIAGEWAY_ANGLE_DEG))
    p = shapely.get_coordinates(starts[parallel])
    q = lines.point_at(far_at[parallel], on_far_at[parallel])
    # The same street end is found once per carriageway piece and pair it touches: one copy is enough.
    _, first = np.unique(np.round(np.hstack([p, q]), 3), axis=0, return_index=True)
    first = np.sort(first)
    p, q = p[first], q[first]
    direction = (q - p) / np.hypot(*(q - p).T)[:, None]
    return list(shapely.linestrings(np.stack([p, q + direction], axis=1)))


def dangle_connectors(lines: list, tolerance_m: float = DANGLE_SNAP_M) -> list:
    """Return short lines joining road ends that stop just short of another road (gaps up to tolerance_m).

    Road pieces clipped from tiles, or drawn a little short, end a few centimetres before the road
    they meet; such a road would not cut. Each connector runs from the end to the nearest point of
    the other road and overshoots it by a centimetre (a dangle, dropped).
    """
    if len(lines) < 2:
        return []
    lines = np.asarray(lines, dtype=object)
    ends = np.empty(2 * len(lines), dtype=object)
    ends[0::2], ends[1::2] = shapely.get_point(lines, 0), shapely.get_point(lines, -1)
    owner = np.repeat(np.arange(len(lines)), 2)
    tree = shapely.STRtree(lines)
    e, k = tree.query(ends, predicate="dwithin", distance=tolerance_m)
    other = owner[e] != k
    e, k = e[other], k[other]
    if not len(e):
        return []
    # An end already on another road (a junction) needs nothing.
    touching = set(e[shapely.distance(ends[e], lines[k]) <= 1e-6].tolist())
    keep = np.array([i not in touching for i in e], dtype=bool)
    e, k = e[keep], k[keep]
    if not len(e):
        return []
    gap = shapely.distance(ends[e], lines[k])
    order = np.lexsort((gap, e))
    first = order[np.r_[True, e[order[1:]] != e[order[:-1]]]]
    e, k = e[first], k[first]
    p = shapely.get_coordinates(ends[e])
    q = shapely.get_coordinates(shapely.line_interpolate_point(lines[k], shapely.line_locate_point(lines[k], ends[e])))
    length = np.hypot(*(q - p).T)
    ok = length > 0
    p, q, length = p[ok], q[ok], length[ok]
    q = q + (q - p) / length[:, None] * 0.01
    return list(shapely.linestrings(np.stack([p, q], axis=1)))
