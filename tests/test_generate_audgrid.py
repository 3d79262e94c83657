"""Base grid generation with road files as planners have them (audit): another city's roads, gridkit's own schema."""

from __future__ import annotations

import pytest

from gridkit.errors import ValidationError
from gridkit.grids.generate import Target, generate_base_grid
from tests.factories import X0, Y0, D, make_admin_units
from tests.factories_generate import BUND, write_roads

MID_LAT = Y0 + 5 * D
# One road across the test community (10 × 10 cells of D degrees) west to east, one north to south.
CROSS = [[(X0 - 0.001, MID_LAT), (X0 + 10 * D + 0.001, MID_LAT)], [(X0 + 5 * D, Y0 - 0.001), (X0 + 5 * D, Y0 + 0.011)]]


def test_roads_of_another_city_are_refused_naming_both_places(session):
    make_admin_units(session, rows=10, cols=10)
    with pytest.raises(ValidationError) as exc:
        generate_base_grid(session, roads_path=BUND / "roads_lines.geojson", target=Target.area_m2(50_000, 400_000))
    said = exc.value.render("en")
    assert exc.value.key == "error.generate.roads_elsewhere"
    assert "roads_lines.geojson" in said and "121.48" in said and "114.05" in said and "--src-crs" in said, said
    assert "未生成任何网格" in exc.value.render("zh-CN")


def test_gridkits_own_road_schema_cuts_cells_and_a_file_of_no_road_is_refused(session, tmp_path):
    """The demo city's roads.geojson says `kind` major / minor: every such road was dropped as an unknown Tilezen
    kind, and the community was cut along nothing without a word."""
    make_admin_units(session, rows=10, cols=10)
    roads = write_roads(tmp_path, CROSS, props={"kind": "major", "name": "北环大道"})
    report = generate_base_grid(session, roads_path=roads, target=Target.area_m2(100_000, 400_000), edition_name="a")
    [community] = report.communities
    assert community.faces == 4 and community.cells == 4

    unknown = write_roads(tmp_path, CROSS, name="ferries.geojson", props={"kind": "ferry"})
    with pytest.raises(ValidationError) as exc:
        generate_base_grid(session, roads_path=unknown, target=Target.area_m2(100_000, 400_000), edition_name="b")
    assert exc.value.key == "error.generate.no_cutting_roads" and "ferries.geojson" in exc.value.render("en")
