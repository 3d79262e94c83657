"""The straddle cap: a cell merged across a major road stays within --straddle-max-m2 (pure and CLI)."""

from __future__ import annotations

import json

import pytest
from shapely.geometry import LineString, box, mapping

from gridkit.errors import ValidationError
from gridkit.grids.generate import STRADDLE_MAX_M2, Road, Target, check_straddle_max, generate_cells

SQUARE = box(0, 0, 1000, 1000)
MAIN = Road(LineString([(-10, 500), (1010, 500)]), major=True, name="中山路")


def test_the_cap_decides_whether_two_small_blocks_straddle_a_major_road():
    target = Target.area_m2(600_000, 2_000_000)  # each half (500,000 m²) is below the minimum
    default = generate_cells(SQUARE, [MAIN], None, None, target)
    assert STRADDLE_MAX_M2 == 300_000 and [c.status for c in default.cells] == ["below", "below"]
    assert default.cells[0].reason.key == "generate.reason.below_major_large"
    assert "300,000" in default.cells[0].reason.render("en")
    wide = generate_cells(SQUARE, [MAIN], None, None, target, straddle_max_m2=1_000_000)
    (cell,) = wide.cells
    assert cell.status == "ok" and [n.key for n in cell.notes] == ["generate.note.straddles"]
    # 0: no cell straddles a major road, even two small blocks.
    small = box(0, 0, 400, 400)
    middle = Road(LineString([(-10, 200), (410, 200)]), major=True, name="中山路")
    assert len(generate_cells(small, [middle], None, None, Target.area_m2(100_000, 2_000_000)).cells) == 1
    never = generate_cells(small, [middle], None, None, Target.area_m2(100_000, 2_000_000), straddle_max_m2=0)
    assert [c.status for c in never.cells] == ["below", "below"]


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "", "1e400", "300000m2"])
def test_bad_caps_are_refused_with_a_catalogue_code(value):
    with pytest.raises(ValidationError) as caught:
        check_straddle_max(value)
    assert caught.value.code == "generate.straddle_max"
    assert "--straddle-max-m2" in caught.value.render("en") and "平方米" in caught.value.render("zh-CN")
    with pytest.raises(ValidationError):
        generate_cells(SQUARE, [MAIN], None, None, Target.area_m2(1, 2), straddle_max_m2=value)


def test_good_caps_are_read_as_square_metres():
    assert check_straddle_max("300,000") == 300_000.0
    assert check_straddle_max(" 0 ") == 0.0
    assert check_straddle_max(12.5) == 12.5


# A 0.0042° × 0.0036° box on the Bund (~400 m × 400 m) with a primary road across its middle.
BOX = box(121.4850, 31.2300, 121.4892, 31.2336)
ROAD = [(121.4840, 31.2318), (121.4902, 31.2318)]


def test_cli_straddle_option(fresh_settings, tmp_path):
    """`basegrid generate --straddle-max-m2`: bad values refused before anything is done, the cap applied."""
    from click.testing import CliRunner

    from gridkit import db
    from gridkit.cli import main
    from gridkit.grids.base import list_editions

    def run(*args, lang="en"):
        return CliRunner(env={"GRIDKIT_LANG": lang}).invoke(main, list(args), obj=fresh_settings)

    units = tmp_path / "units.geojson"
    levels = [("310100", "上海市"), ("310101", "黄浦区"), ("310101001", "外滩街道"), ("310101001001", "外滩社区")]
    units.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {"code": c, "name": n}, "geometry": mapping(BOX)}
                    for c, n in levels
                ],
            }
        ),
        encoding="utf-8",
    )
    assert run("admin", "import", str(units), "--code-field", "code", "--name-field", "name").exit_code == 0
    roads = tmp_path / "roads.geojson"
    feature = {"type": "Feature", "properties": {"highway": "primary", "name": "中山东一路"}}
    feature["geometry"] = {"type": "LineString", "coordinates": [list(p) for p in ROAD]}
    roads.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    args = ["basegrid", "generate", "--all", "--roads", str(roads), "--target-area-m2", "100000-2000000"]

    for value in ("-5", "lots", "nan"):
        bad = run(*args, "--straddle-max-m2", value, "--edition", f"bad{value}")
        assert bad.exit_code == 1 and "--straddle-max-m2" in bad.output and value in bad.output, bad.output
    zh = run(*args, "--straddle-max-m2", "-5", lang="zh-CN")
    assert zh.exit_code == 1 and "平方米" in zh.output
    with db.transaction(fresh_settings) as session:
        assert list_editions(session) == []  # nothing was written

    default = run(*args, "--edition", "default", "--json")
    assert default.exit_code == 0, default.output
    assert json.loads(default.output)["cells"] == 1  # both halves (~80,000 m²) below the minimum: one cell
    never = run(*args, "--edition", "never", "--straddle-max-m2", "0", "--json")
    assert never.exit_code == 0, never.output
    assert json.loads(never.output)["cells"] == 2
