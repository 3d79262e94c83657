"""Base cell generation on the Shanghai Bund OSM sample: in memory, then through the database and publishing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from geoalchemy2.shape import from_shape, to_shape
from pyproj import Transformer
from shapely.geometry import MultiPolygon, box
from sqlalchemy import func, select

from gridkit.grids.generate import (
    MIN_COMPACTNESS,
    Road,
    Target,
    building_cells,
    generate_base_grid,
    generate_cells,
    polsby_popper,
    road_features,
    road_lines,
    water_features,
)
from gridkit.grids.generate.measures import carriageway_strips, major_road_inside
from gridkit.models import SRID, AdminUnit, BaseCell, BaseGridEdition, Building
from tests.factories_generate import (
    BUND,
    BUND_EPSG,
    THREE_COMMUNITIES,
    assert_tiles,
    community_geom,
    geography_area,
    stored_cells,
)

# ---------------------------------------------------------------------------------- real data: Shanghai


@pytest.fixture(scope="module")
def bund():
    """The Shanghai Bund OSM sample in EPSG:4550, with a community box inset 80 m from the data's edges.

    The box is drawn in lon/lat inside the sample's tiles: roads are cut at tile edges, so a box at
    the very edge would not be crossed by them and would leave an open band along its boundary.
    """
    import geopandas as gpd

    if not BUND.exists():
        pytest.fail(f"The Shanghai sample is missing: expected it at {BUND}")
    roads = gpd.read_file(BUND / "roads_lines.geojson").to_crs(4490)
    water = [gpd.read_file(BUND / f"water_{kind}.geojson").to_crs(4490) for kind in ("polygons", "lines")]
    footprints = gpd.read_file(BUND / "buildings_polygons.geojson").to_crs(4490)
    minx, miny, maxx, maxy = roads.total_bounds
    inset = 0.0008
    community = box(minx + inset, miny + inset, maxx - inset, maxy - inset)

    def metric(geoms):
        return list(gpd.GeoSeries(list(geoms), crs=4490).to_crs(BUND_EPSG))

    features = road_features(roads)
    return {
        "community_lonlat": community,
        "community": metric([community])[0],
        "roads": [Road(g, r.major, r.name, r.ref, r.rail) for r, g in zip(features, metric(r.geom for r in features))],
        "major": metric(road_lines(roads, major=True)),
        "water": metric([g for frame in water for g in water_features(frame)]),
        "buildings": metric(footprints.geometry),
        "metric": metric,
    }


def check_real_result(result, community, min_share=0.9):
    assert_tiles(result.cells, community)  # exact within 1e-9 of the area, coverage valid
    assert result.tiling_error_m2 <= 1e-9 * community.area
    assert result.in_target_share >= min_share
    assert all(c.reason for c in result.outside)


def test_shanghai_area_target(bund):
    target = Target.area_m2(20_000, 400_000)
    result = generate_cells(bund["community"], bund["roads"], bund["water"], bund["buildings"], target)
    check_real_result(result, bund["community"])
    assert 50 <= len(result.cells) <= 300
    assert any(c.water for c in result.cells)  # the Huangpu


def test_shanghai_building_target(bund):
    target = Target.buildings(20, 150)
    result = generate_cells(bund["community"], bund["roads"], bund["water"], bund["buildings"], target)
    # Below the minimum mostly where major roads bound a block and no block across is below it too.
    check_real_result(result, bund["community"], min_share=0.6)
    # Each building is counted once, in the cell holding most of its footprint.
    mostly_inside = [b for b in bund["buildings"] if bund["community"].intersection(b).area > 0.5 * b.area]
    assert sum(c.buildings for c in result.cells) == len(mostly_inside)
    owner = building_cells([c.polygon for c in result.cells], mostly_inside)
    assert [c.buildings for c in result.cells] == np.bincount(owner, minlength=len(result.cells)).tolist()
    water = [c for c in result.cells if c.status == "water"]
    assert water and max(c.area_m2 for c in water) > 1_000_000  # the Huangpu: one water cell


def test_shanghai_four_communities_each_tile(bund):
    minx, miny, maxx, maxy = bund["community_lonlat"].bounds
    midx, midy = (minx + maxx) / 2, (miny + maxy) / 2
    forward = Transformer.from_crs(4490, BUND_EPSG, always_xy=True)
    target = Target.area_m2(20_000, 200_000)
    for quarter in (
        box(minx, midy, midx, maxy),
        box(midx, midy, maxx, maxy),
        box(minx, miny, midx, midy),
        box(midx, miny, maxx, midy),
    ):
        community = shapely.transform(quarter, lambda c: np.column_stack(forward.transform(c[:, 0], c[:, 1])))
        result = generate_cells(community, bund["roads"], bund["water"], None, target)
        check_real_result(result, community)


@pytest.fixture(scope="module")
def three(bund):
    """The three irregular communities of tests/factories_generate.py in EPSG:4550."""
    return bund["metric"]([polygon for _, polygon in THREE_COMMUNITIES.values()])


@pytest.mark.parametrize(
    "target, far_share", [(Target.buildings(10, 40), 0.2), (Target.area_m2(20_000, 200_000), 0.06)]
)
def test_shanghai_three_communities_follow_the_road_hierarchy(bund, three, target, far_share):
    """Issue 13's scenario: major roads run along cell edges, no strips between carriageways, compact cells."""
    total = far = 0.0
    applicable = ok = 0
    for community in three:
        result = generate_cells(community, bund["roads"], bund["water"], bund["buildings"], target)
        check_real_result(result, community, min_share=0.4)  # Lujiazui: towers, few footprints per block
        applicable += sum(c.status != "water" for c in result.cells)
        ok += result.in_target
        inside, beyond = major_road_inside(result.cells, [r.geom for r in bund["roads"] if r.major and not r.rail])
        total, far = total + inside, far + beyond
        assert carriageway_strips(result.cells, bund["roads"]) == []
        for cell in result.cells:
            if not cell.water and polsby_popper(cell.polygon) < MIN_COMPACTNESS:
                assert any(n.key == "generate.note.elongated" for n in cell.notes)
            if cell.status == "below":
                assert cell.reason.key.startswith("generate.reason.below")
            if any(n.key == "generate.note.straddles" for n in cell.notes):
                assert all(n.render("zh-CN") for n in cell.notes)
    assert far / total <= far_share  # before issue 13: 39.9 % and 8.6 %
    assert ok >= 0.75 * applicable


# ---------------------------------------------------------------------------------- database


def add_huangpu(session, area, communities: dict) -> None:
    """Add 上海市 › 黄浦区 › 外滩街道 over `area`, and its communities {code: (name, polygon)} (lon/lat)."""

    def outline(polygon):
        return from_shape(MultiPolygon([polygon]), srid=SRID)

    session.add_all(
        [
            AdminUnit(code="310000", name="上海市", level="city", geom=outline(area)),
            AdminUnit(code="310101", name="黄浦区", level="district", parent_code="310000", geom=outline(area)),
            AdminUnit(code="310101001", name="外滩街道", level="street", parent_code="310101", geom=outline(area)),
            *[
                AdminUnit(code=code, name=name, level="community", parent_code="310101001", geom=outline(polygon))
                for code, (name, polygon) in communities.items()
            ],
        ]
    )


def generate_on_bund(session, target: Target, edition_name: str):
    """Generate a base grid from the sample's roads and water, for every community in the database."""
    return generate_base_grid(
        session,
        roads_path=BUND / "roads_lines.geojson",
        water_path=[BUND / "water_polygons.geojson", BUND / "water_lines.geojson"],
        target=target,
        edition_name=edition_name,
    )


def assert_stored_cells_tile(session, report) -> None:
    """Each community's stored cells tile its stored outline exactly, and every cell outside the target says why."""
    for community in report.communities:
        assert all(p.reason for p in community.outside)
        unit = session.get(AdminUnit, community.code)
        polygons = [poly for _, poly in stored_cells(session, report.edition_id, community.code)]
        assert_tiles(polygons, to_shape(unit.geom), rel=0, abs_=1e-16)


def test_generate_base_grid_on_the_shanghai_sample(session):
    """Two Shanghai communities in the database, roads and water from the OSM files."""
    import geopandas as gpd

    roads = gpd.read_file(BUND / "roads_lines.geojson")
    minx, miny, maxx, maxy = roads.total_bounds
    inset, midx = 0.0008, (minx + maxx) / 2
    # Communities are boxes 80 m inside the sample's tiles: the roads are cut at the tile edges.
    communities = {
        "310101001001": ("西社区", box(minx + inset, miny + inset, midx, maxy - inset)),
        "310101001002": ("东社区", box(midx, miny + inset, maxx - inset, maxy - inset)),
    }
    add_huangpu(session, box(minx, miny, maxx, maxy), communities)
    session.flush()
    report = generate_on_bund(session, Target.area_m2(20_000, 400_000), "bund")
    assert report.cells >= 50 and report.in_target >= 0.9 * report.cells
    assert_stored_cells_tile(session, report)
    for community in report.communities:
        assert community.epsg in (4549, 4550) and community.tiling_error_m2 < 0.01  # the sample straddles 121.5E
        union = (
            select(func.ST_Union(BaseCell.geom))
            .where(BaseCell.edition_id == report.edition_id, BaseCell.community_code == community.code)
            .scalar_subquery()
        )
        assert geography_area(session, func.ST_SymDifference(union, community_geom(community.code))) < 0.01
    assert sum(c.water_cells for c in report.communities) >= 2  # the Huangpu, in both communities
    json.dumps(report.as_dict(), ensure_ascii=False)
    # The two communities meet along the middle meridian without gaps or overlaps.
    whole = select(func.ST_Union(BaseCell.geom)).where(BaseCell.edition_id == report.edition_id).scalar_subquery()
    both = select(func.ST_Union(AdminUnit.geom)).where(AdminUnit.level == "community").scalar_subquery()
    assert geography_area(session, func.ST_SymDifference(whole, both)) < 0.01

    # With the footprints loaded as buildings, a building target (centroids of footprints).
    footprints = gpd.read_file(BUND / "buildings_polygons.geojson").to_crs(4490)
    session.add_all(
        [
            Building(code=f"osm-{i}", footprint=from_shape(MultiPolygon([g]), srid=SRID))
            for i, g in enumerate(footprints.geometry)
        ]
    )
    session.flush()
    by_buildings = generate_on_bund(session, Target.buildings(20, 150), "bund-buildings")
    loaded = sum(c.buildings for c in by_buildings.communities)
    assert 1000 < loaded <= len(footprints)  # those whose centroid lies in the two communities
    water_cells = sum(p.status == "water" for c in by_buildings.communities for p in c.outside)
    assert by_buildings.in_target >= 0.5 * (by_buildings.cells - water_cells)  # Lujiazui: few footprints per block
    assert_stored_cells_tile(session, by_buildings)


def test_generator_counts_are_the_counts_after_publishing(session):
    """Three irregular Shanghai communities, OSM footprints loaded: generate, publish (assigns), compare."""
    import geopandas as gpd

    from gridkit.grids.editions import publish_edition
    from gridkit.grids.validate import validate_base_grid

    whole = shapely.union_all([p for _, p in THREE_COMMUNITIES.values()])
    add_huangpu(session, whole, THREE_COMMUNITIES)
    footprints = gpd.read_file(BUND / "buildings_polygons.geojson").to_crs(4490)
    session.add_all(
        [
            Building(code=f"osm-{i}", footprint=from_shape(MultiPolygon(list(shapely.get_parts(g))), srid=SRID))
            for i, g in enumerate(footprints.geometry)
            if whole.intersects(g)
        ]
    )
    session.flush()
    report = generate_on_bund(session, Target.buildings(10, 40), "three")
    edition = session.get(BaseGridEdition, report.edition_id)
    assert validate_base_grid(session, edition) == []
    publish_edition(session, edition)
    after = dict(
        session.execute(
            select(BaseCell.code, func.count(Building.id))
            .outerjoin(Building, Building.base_cell_id == BaseCell.id)
            .where(BaseCell.edition_id == edition.id)
            .group_by(BaseCell.code)
        ).all()
    )
    reported = {code: n for c in report.communities for code, n in c.counts.items()}
    assert reported == after
    # In target means in target after publishing.
    for community in report.communities:
        outside = {p.code for p in community.outside}
        for code in community.counts:
            if code not in outside:
                assert 10 <= after[code] <= 40
        assert all(p.reason.render("zh-CN") for p in community.outside)
    text = report.text("zh-CN")
    assert "草稿版本" in text and "栋建筑" in text
    # The rule in SQL (gridkit.rules.building_cell) agrees with assignment, building by building.
    from gridkit.rules import building_cell

    rule = building_cell(BaseCell, edition.id, Building.footprint, Building.geom)
    disagree = session.scalar(select(func.count(Building.id)).where(Building.base_cell_id.is_distinct_from(rule)))
    assert disagree == 0
