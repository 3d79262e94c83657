"""The component inventory import on the streaming path (gridkit.incidents.components): every bad row reported
with its line in both languages and nothing written, GBK files, map layers of points and lines, and a large
file written with the indexes built again storing what the small-file path stores."""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pytest
from sqlalchemy import delete, func, select, text

from gridkit.errors import ValidationError
from gridkit.incidents.categories import seed_categories
from gridkit.incidents.components import assign_components, import_components
from gridkit.io.problems import problem_text
from gridkit.io.report import ADVICE
from gridkit.io.subjects import SUBJECT_ADVICE
from gridkit.models import Component
from gridkit.spatial import bulk
from gridkit.standard.codes import check_component_code
from gridkit.standard.components import component_codes_valid
from tests.factories import X0, Y0, D, make_base_grid

IN_1 = (X0 + 0.5 * D, Y0 + 1.5 * D)  # community 1
IN_2 = (X0 + 4.5 * D, Y0 + 1.5 * D)  # community 2
OUTSIDE = (X0 - 0.05, Y0 - 0.05)  # in China, outside every cell


@pytest.fixture
def world(session):
    edition = make_base_grid(session, communities=2)
    seed_categories(session)
    session.flush()
    return edition


def _count(session) -> int:
    return session.scalar(select(func.count()).select_from(Component))


def _stored(session) -> list[tuple]:
    """Every component with its id relative to the first, its geometry as EWKB and its cell."""
    return [
        tuple(r)
        for r in session.execute(
            text(
                "SELECT id - min(id) OVER (), code, category_code, name, encode(ST_AsEWKB(geom), 'hex'), "
                "base_cell_id FROM component ORDER BY id"
            )
        )
    ]


def _cell(session, lon, lat):
    return session.scalar(
        text(
            "SELECT id FROM base_cell WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490)) ORDER BY code "
            "LIMIT 1"
        ),
        {"x": lon, "y": lat},
    )


def test_the_bulk_code_check_agrees_with_the_per_row_one():
    rng = np.random.default_rng(9)
    majors = ["01", "02", "03", "04", "05", "06", "07", "00", "99"]
    codes = []
    for _ in range(3000):
        county = rng.choice(["440304", "000304", "440300", "110105", "440304"])
        code = (
            f"{county}{rng.choice(majors)}{rng.integers(0, 12):02d}{rng.integers(0, 3) * rng.integers(0, 999999):06d}"
        )
        damage = rng.integers(0, 6)
        if damage == 1:  # a letter, a space or a full-width digit somewhere
            i = int(rng.integers(0, 16))
            code = code[:i] + str(rng.choice(["A", " ", "１", "/", ":"])) + code[i + 1 :]
        codes.append(code)
    codes += ["4403040101000001", "4403040600000001", "4403040101000000", "0003040101000001", "4403000101000001"]
    fixed = np.frombuffer("".join(c if len(c.encode()) == 16 else "x" * 16 for c in codes).encode(), dtype=np.uint8)
    bulk_says = component_codes_valid(fixed.reshape(-1, 16))
    for code, said in zip(codes, bulk_says, strict=True):
        try:
            check_component_code(code)
            valid = True
        except ValueError:
            valid = False
        assert bool(said) == (valid and len(code.encode()) == 16), code
    assert 200 < bulk_says.sum() < 2900  # both kinds well represented


def test_bad_rows_are_all_reported_with_their_lines_in_both_languages(session, world, tmp_path):
    (tmp_path / "first.csv").write_text(f"code,lon,lat\n4403040101000009,{IN_1[0]},{IN_1[1]}\n", encoding="utf-8")
    import_components(session, tmp_path / "first.csv")
    before = _count(session)
    long_name = "井" * 201
    lines = [
        "code,name,lon,lat",
        f"4403040101000001,上水井盖,{IN_1[0]},{IN_1[1]}",  # 2: good
        f"44030401010001,短,{IN_1[0]},{IN_1[1]}",  # 3: 14 digits
        f"4403040199000001,,{IN_1[0]},{IN_1[1]}",  # 4: category 0199 unknown
        f"4403040101000001,again,{IN_2[0]},{IN_2[1]}",  # 5: repeats line 2
        f"4403040101000009,,{IN_2[0]},{IN_2[1]}",  # 6: in the inventory already
        f"4403040102000001,,,{IN_1[1]}",  # 7: no longitude
        f"4403040102000002,,{IN_1[0]},abc",  # 8: latitude not a number
        "4403040102000003,,12.5,45.0",  # 9: outside China
        f"4403040102000004,{long_name},{IN_1[0]},{IN_1[1]}",  # 10: name too long
        f",空编码,{IN_1[0]},{IN_1[1]}",  # 11: no code
        f"4403040A02000005,,{IN_1[0]},{IN_1[1]}",  # 12: a letter
        f"4403040002000005,,{IN_1[0]},{IN_1[1]}",  # 13: major class 00
        f"4403040102000006,路灯,{IN_2[0]},{IN_2[1]}",  # 14: good
    ]
    path = tmp_path / "components.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        import_components(session, path)
    error = info.value
    assert error.code == "component.import_refused" and error.params["count"] == 11
    assert "no component was imported" in error.message and "未导入任何部件" in error.render("zh-CN")
    assert _count(session) == before
    by_line = {p["index"]: p for p in error.problems}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert by_line[3]["kind"] == "bad_component_code" and by_line[4]["kind"] == "unknown_category"
    assert by_line[5]["kind"] == "duplicate_code" and by_line[6]["kind"] == "component_exists"
    assert by_line[9]["kind"] == "outside_china" and by_line[10]["kind"] == "too_long"
    assert by_line[11]["kind"] == "missing_value" and by_line[13]["kind"] == "bad_component_code"
    for number, p in by_line.items():
        english, chinese = problem_text(p, "en"), problem_text(p, "zh-CN")
        assert english.startswith(f"components.csv, line {number}: "), english
        assert chinese.startswith(f"components.csv 第 {number} 行："), chinese
        assert "{" not in english + chinese and len(chinese.encode()) > len(chinese)  # rendered, in Chinese
    assert "4403040101000001" in problem_text(by_line[5], "en") and "line 2" in problem_text(by_line[5], "en")
    assert "第 2 行" in problem_text(by_line[5], "zh-CN")
    assert "4403040101000009" in problem_text(by_line[6], "zh-CN") and "部件清单" in problem_text(by_line[6], "zh-CN")
    assert "0199" in problem_text(by_line[4], "zh-CN") and "categories list" in problem_text(by_line[4], "en")
    assert "44030401010001" in problem_text(by_line[3], "en") and "16" in problem_text(by_line[3], "zh-CN")
    assert by_line[5]["code"] == "4403040101000001" and by_line[3]["field"] == "code"
    # What to do, in the report, for every kind found.
    assert all(p["kind"] in SUBJECT_ADVICE or p["kind"] in ADVICE for p in error.problems)


def test_a_gbk_file_with_chinese_columns(session, world, tmp_path):
    path = tmp_path / "部件.csv"
    path.write_bytes(
        (
            "部件编码,部件名称,经度,纬度\n"
            f"4403040101000001,上水井盖（东门）,{IN_1[0]},{IN_1[1]}\n"
            f"4403040108000001,路灯,{IN_2[0]},{IN_2[1]}\n"
            f"4403040108000002,路灯,{OUTSIDE[0]},{OUTSIDE[1]}\n"
        ).encode("gbk")
    )
    result = import_components(session, path)
    assert result == {"file": "部件.csv", "imported": 3, "assigned": 2, "unassigned": 1}
    rows = session.execute(select(Component.code, Component.name, Component.category_code).order_by(Component.id))
    assert [tuple(r) for r in rows] == [
        ("4403040101000001", "上水井盖（东门）", "0101"),
        ("4403040108000001", "路灯", "0108"),
        ("4403040108000002", "路灯", "0108"),
    ]
    cells = dict(session.execute(select(Component.code, Component.base_cell_id)).all())
    assert cells["4403040101000001"] == _cell(session, *IN_1) and cells["4403040108000002"] is None


def _feature(code, geometry):
    return {"type": "Feature", "properties": {"code": code, "name": "护栏"}, "geometry": geometry}


def test_a_map_layer_of_points_and_lines(session, world, tmp_path):
    line = [[IN_1[0] - 0.0002, IN_1[1]], [IN_1[0] + 0.0002, IN_1[1]]]
    features = [
        _feature("4403040101000001", {"type": "Point", "coordinates": list(IN_2)}),
        _feature("4403040301000001", {"type": "LineString", "coordinates": line}),
        _feature("4403040301000002", {"type": "MultiLineString", "coordinates": [line, [list(IN_2), list(IN_1)]]}),
    ]
    path = tmp_path / "railings.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    result = import_components(session, path)
    assert result["imported"] == 3 and result["assigned"] == 3
    stored = {
        r.code: r
        for r in session.execute(
            text(
                "SELECT c.code, GeometryType(c.geom) AS type, ST_SRID(c.geom) AS srid, c.base_cell_id, "
                "(SELECT b.id FROM base_cell b WHERE ST_Covers(b.geom, ST_PointOnSurface(c.geom)) ORDER BY b.code "
                "LIMIT 1) AS expected FROM component c"
            )
        )
    }
    assert {c: r.type for c, r in stored.items()} == {
        "4403040101000001": "POINT",
        "4403040301000001": "LINESTRING",
        "4403040301000002": "MULTILINESTRING",
    }
    assert all(r.srid == 4490 and r.base_cell_id == r.expected is not None for r in stored.values())

    polygon = [[[IN_1[0], IN_1[1]], [IN_1[0] + 0.0001, IN_1[1]], [IN_1[0], IN_1[1] + 0.0001], [IN_1[0], IN_1[1]]]]
    bad = tmp_path / "bad.geojson"
    bad.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    _feature("4403040101000002", {"type": "Polygon", "coordinates": polygon}),
                    _feature("4403040101000003", None),
                    _feature("4403040101000001", {"type": "Point", "coordinates": list(IN_1)}),
                ],
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(ValidationError) as info:
        import_components(session, bad)
    found = {p["index"]: p for p in info.value.problems}
    # Features are numbered as GIS software shows them (FID, from 0).
    assert found[0]["kind"] == "not_point_or_line" and "Polygon" in problem_text(found[0], "zh-CN")
    assert "feature 0" in problem_text(found[0], "en") and "要素 0（FID，从 0 数起）" in problem_text(found[0], "zh-CN")
    assert found[1]["kind"] == "missing_coordinates" and found[2]["kind"] == "component_exists"
    assert _count(session) == 3


def _large_csv(path, n: int) -> None:
    rng = np.random.default_rng(5)
    categories = np.array(["0101", "0102", "0108", "0301"])
    i = np.arange(n)
    codes = np.char.add(np.char.add("440304", categories[i % 4]), np.char.zfill((i // 4 + 1).astype(str), 6))
    lon = np.round(rng.uniform(X0 - 0.00005, X0 + 6 * D + 0.00005, n), 7)
    lat = np.round(rng.uniform(Y0 - 0.00005, Y0 + 3 * D + 0.00005, n), 7)
    names = np.where(i % 3 == 0, "井盖", "")
    rows = np.char.add(np.char.add(np.char.add(codes, ","), names), ",")
    rows = np.char.add(np.char.add(np.char.add(rows, lon.astype(str)), ","), lat.astype(str))
    path.write_text("code,name,lon,lat\n" + "\n".join(rows.tolist()) + "\n", encoding="utf-8")


def test_a_large_file_with_the_indexes_built_again_stores_what_the_small_file_path_stores(
    session, world, tmp_path, monkeypatch
):
    path = tmp_path / "inventory.csv"
    n = 150_000
    _large_csv(path, n)
    rebuilt = []
    original = bulk.rebuilt_indexes.__wrapped__

    def watching(session_, table, rows):
        generator = original(session_, table, rows)
        rebuilt.append(next(generator))
        yield rebuilt[-1]
        next(generator, None)

    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 100_000)
    with monkeypatch.context() as m:
        m.setattr("gridkit.io.subjects.staging.rebuilt_indexes", contextmanager(watching))
        result = import_components(session, path)
    assert rebuilt == [True]
    large = _stored(session)
    assert result["imported"] == n and result["assigned"] + result["unassigned"] == n
    assert 0 < result["unassigned"] < n // 10
    assert sum(1 for r in large if r[5] is not None) == result["assigned"]
    indexes = set(session.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'component'")))
    assert {"uq_component_code", "idx_component_geom", "ix_component_base_cell_id"} <= indexes
    foreign = session.scalar(
        text("SELECT count(*) FROM pg_constraint WHERE conrelid = 'component'::regclass AND contype = 'f'")
    )
    assert foreign == 2
    # The cells computed while streaming are those of the SQL rule (assign_components).
    assert assign_components(session) == result["assigned"]
    assert _stored(session) == large

    session.execute(delete(Component))
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 10**9)  # indexes kept and updated row by row
    small = import_components(session, path)
    assert small == result
    assert _stored(session) == large
    again = tmp_path / "again.csv"
    header, *_, last = path.read_text(encoding="utf-8").splitlines()
    again.write_text(f"{header}\n{last}\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        import_components(session, again)
    assert [p["kind"] for p in info.value.problems] == ["component_exists"]


def test_a_code_repeated_in_a_file_is_reported_with_its_first_line(session, world, tmp_path):
    path = tmp_path / "twice.csv"
    rows = [f"44030401010{n:05d},,{IN_1[0]},{IN_1[1]}" for n in range(1, 6)] + [f"4403040101000003,,{IN_2[0]},1"]
    path.write_text("code,name,lon,lat\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        import_components(session, path)
    # With another problem the repeated code is looked for first, and reported with it.
    assert [(p["index"], p["kind"]) for p in info.value.problems] == [(7, "outside_china"), (7, "duplicate_code")]
    rows[-1] = f"4403040101000003,,{IN_2[0]},{IN_2[1]}"
    path.write_text("code,name,lon,lat\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        import_components(session, path)
    (found,) = info.value.problems
    assert (found["index"], found["kind"], found["code"]) == (7, "duplicate_code", "4403040101000003")
    assert "第 4 行" in problem_text(found, "zh-CN") and _count(session) == 0


def test_a_file_without_a_code_column_or_rows_is_refused_naming_it(session, world, tmp_path):
    (tmp_path / "nocode.csv").write_text(f"x,lon,lat\n1,{IN_1[0]},{IN_1[1]}\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        import_components(session, tmp_path / "nocode.csv")
    assert info.value.code == "component.import_refused" and info.value.params["file"] == "nocode.csv"
    (missing,) = info.value.problems
    assert "--map code=" in problem_text(missing, "en") and "--map code=" in problem_text(missing, "zh-CN")
    (tmp_path / "empty.csv").write_text("code,lon,lat\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        import_components(session, tmp_path / "empty.csv")
    assert info.value.code == "component.empty" and "没有部件" in info.value.render("zh-CN")
    with pytest.raises(ValidationError) as info:
        import_components(session, tmp_path / "absent.csv")
    assert info.value.code == "component.unreadable" and info.value.params["file"] == "absent.csv"
