"""A new city generates its base grid from real-shaped data: Shenzhen's Futian district (../shared/data, WGS 84)
cut into two streets and four communities, the Shanghai Bund's OSM roads moved onto it in Gauss-Kruger metres (no
OSM extract of Shenzhen exists there), everything delivered as a surveying department does: reprojected to
EPSG:4547 by ogr2ogr, attributes in GBK, a .cpg saying so or none at all."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from shapely.affinity import translate
from shapely.geometry import Polygon, box
from sqlalchemy import create_engine, text

from gridkit.cli import main
from gridkit.io.vector import VectorReadError, read_vector
from tests.conftest import SHARED_DATA

DISTRICTS = SHARED_DATA / "shenzhen-admin" / "sz_districts_transbigdata_wgs84.geojson"
BUND_ROADS = SHARED_DATA / "shanghai-bund-osm" / "roads_lines.geojson"
DISTRICT = "440304"
STREETS = {"440304001": "福田街道", "440304002": "沙头街道"}
COMMUNITIES = {  # (street, north or south of the district's centre)
    "440304001001": ("福山社区", "440304001", "north"),
    "440304001002": ("福安社区", "440304001", "south"),
    "440304002001": ("沙头社区", "440304002", "north"),
    "440304002002": ("新沙社区", "440304002", "south"),
}
TARGET = "300000-3000000"  # m² per cell: the district is 80 km², the roads cover 10 km² of it


def run(settings, *args):
    return CliRunner(env={"GRIDKIT_LANG": "en"}).invoke(main, list(args), obj=settings, catch_exceptions=False)


def ok(settings, *args):
    done = run(settings, *args)
    assert done.exit_code == 0, done.output
    return done


def futian_4547():
    """Return Futian's real outline (WGS 84, taken as CGCS2000) in EPSG:4547 metres."""
    frame = gpd.read_file(DISTRICTS)
    return frame[frame["qh"] == "福田"].set_crs(4490, allow_override=True).to_crs(4547).geometry.iloc[0]


def admin_units(district) -> gpd.GeoDataFrame:
    """Return the city, the district, two streets (west and east of its centre) and four communities (each street
    north and south of it), in EPSG:4547: they tile the district exactly, vertices shared along the cuts."""
    cx, cy = district.centroid.x, district.centroid.y
    x0, y0, x1, y1 = district.bounds
    west, east = box(x0 - 1, y0 - 1, cx, y1 + 1), box(cx, y0 - 1, x1 + 1, y1 + 1)
    north, south = box(x0 - 1, cy, x1 + 1, y1 + 1), box(x0 - 1, y0 - 1, x1 + 1, cy)
    halves = {"440304001": west, "440304002": east}
    rows = [("440300", "深圳市", district), (DISTRICT, "福田区", district)]
    rows += [(code, name, district.intersection(halves[code])) for code, name in STREETS.items()]
    for code, (name, street, side) in COMMUNITIES.items():
        half = north if side == "north" else south
        rows.append((code, name, district.intersection(halves[street]).intersection(half)))
    return gpd.GeoDataFrame(
        {"code": [r[0] for r in rows], "name": [r[1] for r in rows]}, geometry=[r[2] for r in rows], crs=4547
    )


def roads_on(district) -> gpd.GeoDataFrame:
    """Return the Bund's OSM roads moved, in Gauss-Kruger metres, so that their centre is the district's."""
    roads = gpd.read_file(BUND_ROADS).to_crs(4550)
    bx, by = roads.union_all().envelope.centroid.coords[0]
    dx, dy = district.centroid.x - bx, district.centroid.y - by
    moved = roads.copy()
    moved["geometry"] = [translate(g, dx, dy) for g in roads.geometry]
    return moved.set_crs(4547, allow_override=True)[["kind", "kind_detail", "name", "geometry"]]


def ogr2ogr(source, target, *options):
    """Reproject/encode a file with GDAL's ogr2ogr, as a surveying department delivers it."""
    done = subprocess.run(["ogr2ogr", *options, str(target), str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return target


def gbk_shapefile(frame: gpd.GeoDataFrame, folder, name: str, *, cpg: bool) -> object:
    """Write `frame` (lon/lat) to GeoJSON, then ogr2ogr it to a GBK shapefile in EPSG:4547, with or without .cpg."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"{name}.geojson"
    frame.to_crs(4326).to_file(source, driver="GeoJSON")
    target = ogr2ogr(source, folder / f"{name}.shp", "-t_srs", "EPSG:4547", "-lco", "ENCODING=GBK")
    assert "GBK" in (folder / f"{name}.cpg").read_text()
    if not cpg:
        (folder / f"{name}.cpg").unlink()
    return target


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """The files a new city starts from: admin units and roads, in EPSG:4547 and GBK."""
    folder = tmp_path_factory.mktemp("futian")
    district = futian_4547()
    units = admin_units(district)
    return {
        "district": district,
        "units": units,
        "units_cpg": gbk_shapefile(units, folder / "cpg", "units", cpg=True),
        "units_nocpg": gbk_shapefile(units, folder / "nocpg", "units", cpg=False),
        "roads": gbk_shapefile(roads_on(district), folder / "cpg", "roads", cpg=True),
        "roads_nocpg": gbk_shapefile(roads_on(district), folder / "nocpg", "roads", cpg=False),
        "folder": folder,
    }


def import_units(settings, path):
    ok(settings, "admin", "import", str(path), "--code-field", "code", "--name-field", "name")


def generate(settings, roads, edition, *more):
    return run(
        settings,
        "basegrid",
        "generate",
        "--all",
        "--roads",
        str(roads),
        "--target-area-m2",
        TARGET,
        "--edition",
        edition,
        *more,
    )


def query(settings, sql: str, **params) -> list:
    """Return the rows of a query on the settings' database."""
    from gridkit import db

    engine = create_engine(db.database_url(settings))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


def cells_of(settings, edition: str) -> dict[str, tuple[str, bytes]]:
    """Return {code: (community, WKB)} of an edition's base cells, read from PostGIS."""
    rows = query(
        settings,
        "SELECT b.code, b.community_code, ST_AsBinary(b.geom) FROM base_cell b "
        "JOIN base_grid_edition e ON e.id = b.edition_id WHERE e.name = :n ORDER BY b.code",
        n=edition,
    )
    return {code: (community, bytes(wkb)) for code, community, wkb in rows}


def stored_units(settings) -> dict:
    """Return {code: polygon in EPSG:4547} of the admin units as imported."""
    rows = query(settings, "SELECT code, ST_AsBinary(geom) FROM admin_unit")
    geoms = gpd.GeoSeries([shapely.from_wkb(bytes(w)) for _, w in rows], crs=4490).to_crs(4547)
    return dict(zip([c for c, _ in rows], geoms.values))


def test_a_new_city_generates_a_grid_that_tiles_its_district_by_the_standard(fresh_settings, city):
    import_units(fresh_settings, city["units_cpg"])
    done = generate(fresh_settings, city["roads"], "g1")
    assert done.exit_code == 0, done.output
    cells = cells_of(fresh_settings, "g1")
    assert len(cells) > 20
    metric = gpd.GeoSeries([shapely.from_wkb(w) for _, w in cells.values()], crs=4490).to_crs(4547)
    district = city["district"]
    # Tiling: no gap, no overlap beyond the tolerance (a few cm over 80 km²).
    assert abs(metric.area.sum() - district.area) < 1.0
    assert shapely.union_all(metric.values).symmetric_difference(district).area < 1.0
    assert all(metric.is_valid)
    # Codes: community code + 3-digit sequence, 001 upwards in each community.
    by_community: dict[str, list[str]] = {}
    for code, (community, _) in cells.items():
        assert len(code) == 15 and code.isdigit() and code.startswith(community)
        by_community.setdefault(community, []).append(code[12:])
    assert set(by_community) == set(COMMUNITIES)
    for sequence in by_community.values():
        assert sorted(sequence) == [f"{i:03d}" for i in range(1, len(sequence) + 1)]
    # Numbered north→south in bands (west→east inside a band): 001 lies in the northernmost band of its community,
    # and the first half of the codes lies north of the second half.
    points = {code: geom.representative_point() for code, geom in zip(cells, metric.values)}
    heights = {code: geom.bounds[3] - geom.bounds[1] for code, geom in zip(cells, metric.values)}
    for community in COMMUNITIES:
        codes = sorted(c for c in cells if c.startswith(community))
        band = float(np.median([heights[c] for c in codes]))
        assert points[codes[0]].y > max(points[c].y for c in codes) - band / 2, community
        half = len(codes) // 2
        assert np.mean([points[c].y for c in codes[:half]]) > np.mean([points[c].y for c in codes[half:]]), community
    # Community boundaries: every cell lies in its own community as stored (within the 5 cm tolerance).
    units = stored_units(fresh_settings)
    for (code, (community, _)), geom in zip(cells.items(), metric.values):
        assert geom.difference(units[community].buffer(0.05)).is_empty, code
    assert abs(sum(units[c].area for c in COMMUNITIES) - district.area) < 1.0
    # A second run gives the same cells with the same codes.
    done = generate(fresh_settings, city["roads"], "g2")
    assert done.exit_code == 0, done.output
    assert cells_of(fresh_settings, "g2") == cells


def test_gbk_without_a_cpg_reads_the_same_names(fresh_settings, city):
    import_units(fresh_settings, city["units_nocpg"])
    done = ok(fresh_settings, "admin", "list", "--level", "community", "--json")
    names = {row["code"]: row["name"] for row in json.loads(done.output)}
    assert names == {code: name for code, (name, _, _) in COMMUNITIES.items()}
    assert generate(fresh_settings, city["roads_nocpg"], "g1").exit_code == 0


def test_roads_in_metres_without_prj_are_told_the_citys_zone(fresh_settings, city):
    """The generator gave only the general advice (every zone from 75E) where imports name the city's own zone."""
    import_units(fresh_settings, city["units_cpg"])
    folder = city["folder"] / "noprj"
    folder.mkdir(exist_ok=True)
    for suffix in (".shp", ".shx", ".dbf", ".cpg"):
        (folder / f"roads{suffix}").write_bytes(city["roads"].with_suffix(suffix).read_bytes())
    done = generate(fresh_settings, folder / "roads.shp", "g1")
    assert done.exit_code != 0, done.output
    assert "roads.shp has no .prj file" in done.output
    assert "in EPSG:4547 these coordinates fall on the city: give --src-crs EPSG:4547" in done.output


def without_prj(city, name: str):
    """Return a copy of a delivered shapefile without its .prj (as departments often hand them over)."""
    folder = city["folder"] / "noprj"
    folder.mkdir(exist_ok=True)
    for suffix in (".shp", ".shx", ".dbf", ".cpg"):
        (folder / f"{name}{suffix}").write_bytes(city[name].with_suffix(suffix).read_bytes())
    return folder / f"{name}.shp"


DEPT = "100001"
WORK_CELL = f"{DEPT}44030400100101"


def published_draft(settings, city) -> str:
    """Generate and publish the grid, add a department over the district and start a draft; return its id."""
    import_units(settings, city["units_cpg"])
    assert generate(settings, city["roads"], "g1").exit_code == 0
    ok(settings, "basegrid", "publish", "--edition", "g1")
    ok(settings, "dept", "add", DEPT, "城管", "--jurisdiction", DISTRICT)
    return str(json.loads(ok(settings, "workgrid", "draft", "--dept", DEPT, "--json").output)["id"])


def test_a_work_cell_drawn_in_metres_without_prj_is_told_the_citys_zone(fresh_settings, city):
    """`workgrid assign --polygon` gave only the general advice where imports name the city's own zone."""
    draft = published_draft(fresh_settings, city)
    drawn = gpd.GeoDataFrame({"name": ["一号"]}, geometry=[city["units"].geometry.iloc[4]], crs=4547)
    drawn.to_file(city["folder"] / "work.shp", encoding="GBK")
    (city["folder"] / "work.prj").unlink()
    done = run(
        fresh_settings,
        "workgrid",
        "assign",
        "--draft",
        draft,
        "--work-cell",
        WORK_CELL,
        "--polygon",
        str(city["folder"] / "work.shp"),
    )
    assert done.exit_code != 0, done.output
    assert "work.shp has no .prj file" in done.output
    assert "in EPSG:4547 these coordinates fall on the city: give --src-crs EPSG:4547" in done.output
    # Given the zone, the polygon (community 440304001001, as drawn) takes exactly its whole base cells.
    done = ok(
        fresh_settings,
        "workgrid",
        "assign",
        "--draft",
        draft,
        "--work-cell",
        WORK_CELL,
        "--polygon",
        str(city["folder"] / "work.shp"),
        "--src-crs",
        "EPSG:4547",
        "--json",
    )
    codes = json.loads(done.output)["base_cells"]
    assert codes == sorted(
        c for c, (community, _) in cells_of(fresh_settings, "g1").items() if community == "440304001001"
    )


def test_roads_delivered_in_lon_lat_cut_the_same_cells_as_in_metres(fresh_settings, city):
    """A road layer in another CRS than the boundaries (lon/lat beside EPSG:4547) is reprojected, not refused."""
    import_units(fresh_settings, city["units_cpg"])
    lonlat = ogr2ogr(city["roads"], city["folder"] / "roads_4326.gpkg", "-t_srs", "EPSG:4326")
    assert generate(fresh_settings, city["roads"], "metres").exit_code == 0
    assert generate(fresh_settings, lonlat, "degrees").exit_code == 0
    metres, degrees = cells_of(fresh_settings, "metres"), cells_of(fresh_settings, "degrees")
    assert metres.keys() == degrees.keys()


def test_roads_whose_prj_is_not_their_coordinates_name_the_file(fresh_settings, city):
    """EPSG:4547 metres under a lon/lat .prj (the boundaries' CRS stamped on the road file)."""
    import_units(fresh_settings, city["units_cpg"])
    path = without_prj(city, "roads")
    path.with_suffix(".prj").write_text(
        'GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",'
        'SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
        'UNIT["Degree",0.0174532925199433]]'
    )
    done = generate(fresh_settings, path, "g1")
    assert done.exit_code != 0, done.output
    assert "roads.shp" in done.output and "look like projected metres" in done.output
    assert "EPSG:4547" in done.output


def test_an_empty_roads_file_is_refused_naming_it(fresh_settings, city):
    import_units(fresh_settings, city["units_cpg"])
    empty = city["folder"] / "empty_roads.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    done = generate(fresh_settings, empty, "g1")
    assert done.exit_code != 0 and "empty_roads.geojson" in done.output, done.output
    assert query(fresh_settings, "SELECT count(*) FROM base_grid_edition")[0][0] == 0


def twisted(polygon):
    """Return `polygon` with two neighbouring vertices of its outline swapped: a small bow-tie, as a slip of the
    hand in digitising leaves."""
    coords = list(polygon.exterior.coords)[:-1]
    i = len(coords) // 3
    coords[i], coords[i + 1] = coords[i + 1], coords[i]
    return Polygon(coords + [coords[0]], [list(r.coords) for r in polygon.interiors])


def test_a_bow_tie_drawn_in_metres_keeps_both_lobes_and_is_told_repaired(tmp_path):
    """Densified before reprojection, a polygon in a projected CRS went through GEOS's densifier, which 'repairs'
    with buffer(0): a figure of eight kept one lobe, half its area gone with no word."""
    bow = Polygon([(500000, 2490000), (502000, 2492000), (502000, 2490000), (500000, 2492000)])
    path = tmp_path / "community.shp"
    gpd.GeoDataFrame({"code": ["440304001001"]}, geometry=[bow], crs=4547).to_file(path)
    read = read_vector(path, multipart="keep", code_field="code")
    assert abs(read.gdf.to_crs(4547).area.iloc[0] - 2_000_000) < 1  # both triangles of 1 km²
    [note] = [n for n in read.notes if n["kind"] == "geometry_repaired"]
    assert note["message"].startswith("community.shp, feature 0 (code 440304001001): invalid geometry")
    with pytest.raises(VectorReadError) as info:  # a base cell must be one polygon
        read_vector(path, multipart="single", code_field="code")
    assert "feature 0 (code 440304001001): has 2 separate parts after repair" in info.value.problems[0]["message"]


def test_a_twisted_community_is_repaired_named_and_still_tiled(fresh_settings, city, tmp_path):
    units = city["units"].copy()
    units.loc[4, "geometry"] = twisted(units.geometry.iloc[4])
    path = gbk_shapefile(units, tmp_path / "twisted", "units", cpg=True)
    done = ok(fresh_settings, "admin", "import", str(path), "--code-field", "code", "--name-field", "name", "--json")
    report = json.loads(Path(json.loads(done.output)["report"]).read_text(encoding="utf-8"))
    [note] = [n for n in report["notes"] if n["kind"] == "geometry_repaired"]
    assert note["index"] == 4 and note["code"] == "440304001001", note
    stored = stored_units(fresh_settings)["440304001001"]
    assert abs(stored.area - shapely.make_valid(units.geometry.iloc[4]).area) < 1.0
    # What the twist put outside its street is a defect with its place, not noise.
    done = run(fresh_settings, "admin", "validate")
    assert done.exit_code != 0 and "440304001001" in done.output and "outside its parent" in done.output
    assert generate(fresh_settings, city["roads"], "g1").exit_code == 0
    cells = [shapely.from_wkb(w) for c, w in cells_of(fresh_settings, "g1").values() if c == "440304001001"]
    metric = gpd.GeoSeries(cells, crs=4490).to_crs(4547)
    assert abs(metric.area.sum() - stored.area) < 1.0


def test_a_hole_in_the_district_gets_no_cell(fresh_settings, city, tmp_path):
    """A reservoir left out of the district and of its community, street and city (a hole in each)."""
    units = city["units"].copy()
    hole = units.geometry.iloc[4].representative_point().buffer(300)
    for i in (0, 1, 2, 4):
        units.loc[i, "geometry"] = units.geometry.iloc[i].difference(hole)
    import_units(fresh_settings, gbk_shapefile(units, tmp_path / "hole", "units", cpg=True))
    assert generate(fresh_settings, city["roads"], "g1").exit_code == 0
    metric = gpd.GeoSeries([shapely.from_wkb(w) for _, w in cells_of(fresh_settings, "g1").values()], crs=4490)
    metric = metric.to_crs(4547)
    assert shapely.union_all(metric.values).intersection(hole).area < 0.01
    assert abs(metric.area.sum() - units.geometry.iloc[1].area) < 1.0
