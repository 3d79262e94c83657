"""Base cell generation through the database (generate_base_grid) and its preview (CLI, map layer)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from gridkit.errors import Conflict, NotFound, ValidationError
from gridkit.grids.generate import Target, generate_base_grid
from gridkit.models import SRID, BaseCell, BaseGridEdition, Building
from gridkit.standard.codes import check_base_cell_code
from tests.factories import X0, Y0, D, make_admin_units, make_base_grid
from tests.factories_generate import BUND, assert_tiles, community_geom, geography_area, stored_cells, write_roads


def test_generate_base_grid_writes_a_draft_edition_that_tiles_each_community(session, tmp_path):
    units = make_admin_units(session, communities=2, rows=10, cols=10)  # two ~1030 × 1110 m boxes
    mid_lat = Y0 + 5 * D
    roads = write_roads(
        tmp_path,
        [
            [(X0 - 0.001, mid_lat), (X0 + 20 * D + 0.001, mid_lat)],  # across both communities
            [(X0 + 5 * D, Y0 - 0.001), (X0 + 5 * D, Y0 + 10 * D + 0.001)],  # through the first one
        ],
    )
    report = generate_base_grid(
        session, roads_path=roads, target=Target.area_m2(100_000, 400_000), edition_name="gen-test"
    )
    edition = session.scalar(select(BaseGridEdition).where(BaseGridEdition.name == "gen-test"))
    assert edition.status == "draft" and report.edition_id == edition.id
    assert [c.code for c in report.communities] == [u.code for u in units]
    assert [c.cells for c in report.communities] == [4, 4]  # quadrants; halves of the second split in two
    assert report.in_target == 8 and report.cells == 8
    assert report.communities[0].epsg == 4547
    assert set(report.timings) >= {"read", "generate", "write", "total"}
    assert "gen-test" in report.text() and report.as_dict()["cells"] == 8

    for unit in units:
        cells = stored_cells(session, edition.id, unit.code)
        codes = [code for code, _ in cells]
        assert codes == [f"{unit.code}{i:03d}" for i in range(1, len(cells) + 1)]
        assert all(check_base_cell_code(code, community_code=unit.code) for code in codes)
        community = to_shape(unit.geom)
        polygons = [poly for _, poly in cells]
        assert_tiles(polygons, community, rel=0, abs_=1e-16)
        # In metres on the ellipsoid: the union covers the community and nothing overlaps.
        union = (
            select(func.ST_Union(BaseCell.geom))
            .where(BaseCell.edition_id == edition.id, BaseCell.community_code == unit.code)
            .scalar_subquery()
        )
        assert geography_area(session, func.ST_SymDifference(union, community_geom(unit.code))) < 0.01
        total = session.scalar(
            select(func.sum(func.ST_Area(func.Geography(BaseCell.geom)))).where(
                BaseCell.edition_id == edition.id, BaseCell.community_code == unit.code
            )
        )
        assert total == pytest.approx(geography_area(session, community_geom(unit.code)), abs=0.01)
        assert (
            session.scalar(
                select(func.bool_and(func.ST_IsValid(BaseCell.geom))).where(BaseCell.edition_id == edition.id)
            )
            is True
        )
        # 001 is the north-west cell, the last one the south-east cell.
        first, last = polygons[0].representative_point(), polygons[-1].representative_point()
        assert first.x < community.centroid.x < last.x and first.y > community.centroid.y > last.y
    # The first community's cells meet at the road crossing. (Within 1e-6°, 0.1 m: a two-vertex road
    # 2.3 km long is straight in the Gauss-Kruger plane, so it bows a few centimetres off the parallel.)
    cells = stored_cells(session, edition.id, units[0].code)
    crossing = Point(X0 + 5 * D, mid_lat)
    assert all(min(crossing.distance(Point(xy)) for xy in poly.exterior.coords) < 1e-6 for _, poly in cells)


def test_generated_vertices_are_rounded_and_shared_after_transformation(session, tmp_path):
    (unit,) = make_admin_units(session, communities=1, rows=10, cols=10)
    # Oblique roads: their crossings and every cut are new vertices with long decimals.
    roads = write_roads(
        tmp_path,
        [
            [(X0 - 0.0003, Y0 + 0.00123), (X0 + 10 * D + 0.0004, Y0 + 0.00877)],
            [(X0 + 0.00211, Y0 + 10 * D + 0.0002), (X0 + 0.00734, Y0 - 0.0003)],
        ],
    )
    generate_base_grid(session, roads_path=roads, target=Target.area_m2(40_000, 120_000), edition_name="round")
    edition_id = session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.name == "round"))
    polygons = [poly for _, poly in stored_cells(session, edition_id, unit.code)]
    assert len(polygons) >= 9
    community = to_shape(unit.geom)
    coords = shapely.get_coordinates(polygons)
    on_boundary = shapely.intersects(community.boundary.buffer(1e-12), shapely.points(coords))
    for (lon, lat), boundary in zip(coords, on_boundary):
        if not boundary:
            assert lon == np.rint(lon / 1e-9) * 1e-9 and lat == np.rint(lat / 1e-9) * 1e-9
    assert_tiles(polygons, community, rel=0, abs_=1e-16)
    # PostGIS agrees: cells meet only along edges, and together they are the community.
    other = aliased(BaseCell)
    shared = func.ST_Intersection(BaseCell.geom, other.geom)
    overlap = session.scalar(
        select(func.coalesce(func.sum(func.ST_Area(func.Geography(shared))), 0)).where(
            BaseCell.edition_id == edition_id,
            other.edition_id == edition_id,
            BaseCell.id < other.id,
            func.ST_Intersects(BaseCell.geom, other.geom),
        )
    )
    assert overlap < 1e-4
    union = select(func.ST_Union(BaseCell.geom)).where(BaseCell.edition_id == edition_id).scalar_subquery()
    assert geography_area(session, func.ST_SymDifference(union, community_geom(unit.code))) < 0.01


def test_generate_base_grid_by_buildings_uses_points_and_footprints(session, tmp_path):
    (unit,) = make_admin_units(session, communities=1, rows=10, cols=10)
    roads = write_roads(tmp_path, [[(X0 + 5 * D, Y0 - 0.001), (X0 + 5 * D, Y0 + 10 * D + 0.001)]])
    n = 0
    for i in range(6):
        for j in range(5):  # 30 points in the west half
            n += 1
            session.add(
                Building(
                    code=f"B{n}", geom=from_shape(Point(X0 + (i + 0.5) * 0.0008, Y0 + (j + 0.5) * D * 2), srid=SRID)
                )
            )
    for i in range(3):
        for j in range(4):  # 12 footprints in the east half
            n += 1
            x, y = X0 + 5 * D + (i + 0.5) * 0.0015, Y0 + (j + 0.5) * 0.0024
            session.add(
                Building(
                    code=f"B{n}",
                    footprint=from_shape(
                        MultiPolygon([box(x - 0.0001, y - 0.0001, x + 0.0001, y + 0.0001)]), srid=SRID
                    ),
                )
            )
    session.add(Building(code="outside", geom=from_shape(Point(X0 - 0.01, Y0), srid=SRID)))
    session.flush()
    report = generate_base_grid(session, roads_path=roads, target=Target.buildings(10, 20), edition_name="bld")
    (community,) = report.communities
    assert community.buildings == 42
    assert community.cells == 3 and community.in_target == 3  # west 30 split in two, east 12
    location = func.coalesce(Building.geom, func.ST_Centroid(Building.footprint))
    counts = session.execute(
        select(BaseCell.code, func.count(Building.id))
        .join(Building, func.ST_Covers(BaseCell.geom, location))
        .where(BaseCell.edition_id == report.edition_id)
        .group_by(BaseCell.code)
        .order_by(BaseCell.code)
    ).all()
    assert sum(c for _, c in counts) == 42 and all(10 <= c <= 20 for _, c in counts)
    assert 12 in [c for _, c in counts]  # the east half, bounded by the road


def test_generate_base_grid_for_one_community_copies_the_others(session, tmp_path):
    published = make_base_grid(session, rows=10, cols=10, communities=2)
    first, second = f"{'440304001'}001", f"{'440304001'}002"
    roads = write_roads(tmp_path, [[(X0 - 0.001, Y0 + 5 * D), (X0 + 20 * D, Y0 + 5 * D)]])
    report = generate_base_grid(
        session, communities=[first], roads_path=roads, target=Target.area_m2(100_000, 800_000), edition_name="one"
    )
    assert [c.code for c in report.communities] == [first]
    assert report.copied_cells == 100
    assert len(stored_cells(session, report.edition_id, second)) == 100
    assert len(stored_cells(session, report.edition_id, first)) == 2
    assert session.get(BaseGridEdition, published.id).status == "published"


def test_generate_base_grid_refuses_bad_requests(session, tmp_path):
    make_admin_units(session, communities=1, rows=3, cols=3)
    roads = write_roads(tmp_path, [[(X0, Y0), (X0 + D, Y0 + D)]])
    with pytest.raises(NotFound, match="440304001999"):
        generate_base_grid(session, communities=["440304001999"], roads_path=roads, target=Target.area_m2(1, 100_000))
    with pytest.raises(ValidationError, match="nope.geojson does not exist"):
        generate_base_grid(session, roads_path=tmp_path / "nope.geojson", target=Target.area_m2(1, 100_000))
    with pytest.raises(ValidationError, match="needs buildings"):
        generate_base_grid(session, roads_path=roads, target=Target.buildings(5, 10))
    generate_base_grid(session, roads_path=roads, target=Target.area_m2(1, 100_000), edition_name="taken")
    with pytest.raises(Conflict, match="taken"):
        generate_base_grid(session, roads_path=roads, target=Target.area_m2(1, 100_000), edition_name="taken")
    (tmp_path / "bad.geojson").write_text("not json")
    with pytest.raises(ValidationError, match="bad.geojson"):
        generate_base_grid(session, roads_path=tmp_path / "bad.geojson", target=Target.area_m2(1, 100_000))


# ---------------------------------------------------------------------------------- preview


def read_png(path):
    """Return the RGB pixels of a PNG written by preview (8-bit RGB, filter 0 on every row)."""
    import struct
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width * 3 + 1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


def test_cli_generate_writes_a_preview_png_and_html(fresh_settings, tmp_path):
    """`basegrid generate --preview` draws cells over roads, water and buildings; bad suffixes are refused first."""
    from click.testing import CliRunner
    from shapely.geometry import mapping

    from gridkit.cli import main
    from gridkit.grids.generate.preview import COLOURS

    def run(*args, lang="en"):
        return CliRunner(env={"GRIDKIT_LANG": lang}).invoke(
            main, list(args), obj=fresh_settings, catch_exceptions=False
        )

    features = [
        ({"code": "310100", "name": "上海市"}, box(121.4830, 31.2290, 121.4990, 31.2480)),
        ({"code": "310101", "name": "黄浦区"}, box(121.4830, 31.2290, 121.4990, 31.2480)),
        ({"code": "310101001", "name": "外滩街道"}, box(121.4830, 31.2290, 121.4990, 31.2480)),
        ({"code": "310101001001", "name": "外滩社区"}, box(121.4830, 31.2290, 121.4990, 31.2480)),
    ]
    units = tmp_path / "units.geojson"
    units.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": p, "geometry": mapping(g)} for p, g in features],
            }
        ),
        encoding="utf-8",
    )
    assert run("admin", "import", str(units), "--code-field", "code", "--name-field", "name").exit_code == 0
    args = [
        "basegrid",
        "generate",
        "--all",
        "--roads",
        str(BUND / "roads_lines.geojson"),
        "--water",
        str(BUND / "water_polygons.geojson"),
        "--target-area-m2",
        "20000-200000",
    ]
    bad = run(*args, "--preview", str(tmp_path / "cells.pdf"))
    assert bad.exit_code == 1 and "cells.pdf" in bad.output and ".png or .html" in bad.output
    result = run(*args, "--edition", "png", "--preview", str(tmp_path / "cells.png"), lang="zh-CN")
    assert result.exit_code == 0, result.output
    assert "预览已写入" in result.output and "草稿版本" in result.output
    pixels = read_png(tmp_path / "cells.png")
    assert pixels.shape[1] == 1600 and pixels.shape[0] > 1000  # the box is taller than wide
    colours = {tuple(c) for c in np.unique(pixels.reshape(-1, 3), axis=0)}
    assert {COLOURS["ok"], COLOURS["water"], COLOURS["major"], COLOURS["edge"]} <= colours
    html = run(*args, "--edition", "html", "--preview", str(tmp_path / "cells.html"), "--json")
    assert html.exit_code == 0, html.output
    page = (tmp_path / "cells.html").read_text(encoding="utf-8")
    data = json.loads(page.split("const data = ", 1)[1].split(", colours = ", 1)[0])
    report = json.loads(html.output)
    codes = sorted(f["properties"]["code"] for f in data["cells"]["features"])
    assert len(codes) == report["cells"] and codes[0] == "310101001001001"
    assert report["preview"].endswith("cells.html")
    marked = [f for f in data["cells"]["features"] if f["properties"]["status"] in ("below", "above")]
    assert all(f["properties"]["reason"] for f in marked)
    assert any(f["properties"]["major"] for f in data["roads"]["features"]) and data["water"]["features"]


def test_target_cells_layer_judges_a_draft_on_the_map(fresh_settings):
    """GET /api/basegrid/target-cells: a draft's cells with buildings by the building rule and their status."""
    from gridkit import db
    from web import create_app

    with db.transaction(fresh_settings) as session:
        edition = make_base_grid(session, rows=3, cols=3, status="draft")
        cells = stored_cells(session, edition.id, "440304001001")
        # Two buildings in the first cell (one by most of its footprint), none elsewhere.
        first = cells[0][1]
        x, y = first.centroid.x, first.centroid.y
        session.add_all(
            [
                Building(code="p", geom=from_shape(Point(x, y), srid=SRID)),
                Building(
                    code="f",
                    footprint=from_shape(
                        MultiPolygon([box(first.bounds[0] - 0.0001, y, first.bounds[0] + 0.0003, y + 0.0001)]),
                        srid=SRID,
                    ),
                ),
            ]
        )
        edition_id = edition.id
    client = create_app(fresh_settings).test_client()
    answer = client.get(f"/api/basegrid/target-cells?edition={edition_id}&target-buildings=2-40")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    features = {f["id"]: f["properties"] for f in answer.get_json()["features"]}
    assert len(features) == 9 and answer.get_json()["edition"]["status"] == "draft"
    assert features[cells[0][0]]["buildings"] == 2 and features[cells[0][0]]["status"] == "ok"
    assert {p["status"] for code, p in features.items() if code != cells[0][0]} == {"below"}
    by_area = client.get(f"/api/basegrid/target-cells?edition={edition_id}&target-area-m2=1-2000000").get_json()
    assert {f["properties"]["status"] for f in by_area["features"]} == {"ok"}
    missing = client.get(f"/api/basegrid/target-cells?edition={edition_id}")
    assert missing.status_code == 400 and missing.get_json()["code"] == "generate.target_missing"
