"""Cells as real files carry them: a byte order mark in the middle of a file (two exports concatenated), zero-width
spaces and no-break spaces pasted from web pages at the ends of codes, and decimal degrees written with their
sign (114.0579°E, 东经114.0579度, as GPS and POI lists have them: real Shenzhen cafés, ../shared/data)."""

from __future__ import annotations

import geopandas as gpd
import pytest
from openpyxl import Workbook
from sqlalchemy import select, text

from gridkit.coords import dms_degrees
from gridkit.errors import ValidationError
from gridkit.incidents.categories import seed_categories
from gridkit.incidents.importer import import_incidents, load_mapping
from gridkit.io.problems import problem_text
from gridkit.io.subjects import SubjectImportRefused, import_buildings
from gridkit.models import Building, Incident
from tests.data.make_subject_files import centre
from tests.factories import make_base_grid
from tests.test_crs_crs8c import CAFES, case_file


def stored_buildings(session) -> list[tuple]:
    return session.execute(text("SELECT code, address, ST_X(geom), ST_Y(geom) FROM building ORDER BY code")).all()


@pytest.mark.parametrize("per_row", [False, True])  # read by pyarrow in blocks, or row by row (a blank line)
def test_invisible_characters_at_the_ends_of_cells_are_not_stored(session, tmp_path, per_row):
    """'\\ufeffB002' (the second export's byte order mark) and 'B001\\u200b' were stored as codes nobody can type."""
    make_base_grid(session, rows=3, cols=3, communities=2)
    (x0, y0), (x1, y1), (x2, y2) = centre(0), centre(1), centre(2)
    blank = "\n" if per_row else ""
    first = f"\ufeffcode,address,lon,lat\nB001\u200b,福田路 1 号\u2060,{x0},{y0}\n{blank}".encode()
    second = f"\ufeffB002,\u00a0福田路 2 号,{x1}\u200b,{y1}\nB003,福田路\u200b3 号,{x2},{y2}\n".encode()
    path = tmp_path / "buildings.csv"
    path.write_bytes(first + second)
    import_buildings(session, path)
    assert stored_buildings(session) == [
        ("B001", "福田路 1 号", x0, y0),
        ("B002", "福田路 2 号", x1, y1),
        ("B003", "福田路\u200b3 号", x2, y2),  # inside the text: kept as it was typed
    ]


def test_invisible_characters_at_the_ends_of_workbook_cells_are_not_stored(session, tmp_path):
    make_base_grid(session, rows=3, cols=3, communities=2)
    (x0, y0) = centre(0)
    book = Workbook()
    book.active.append(["code\u200b", "address", "lon", "lat"])
    book.active.append(["\ufeffB001\u200b", "福田路 1 号", x0, y0])
    book.save(tmp_path / "buildings.xlsx")
    import_buildings(session, tmp_path / "buildings.xlsx")
    assert session.scalars(select(Building.code)).all() == ["B001"]


def test_a_case_id_with_a_zero_width_space_is_the_same_case(session, tmp_path):
    seed_categories(session)
    mapping_path, _ = case_file(tmp_path, 4490, None)
    lines = (tmp_path / "cases.csv").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[1].replace("SZ0000", "SZ0000\u200b", 1)  # the same case again, copied from a web page
    (tmp_path / "cases.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        import_incidents(session, tmp_path / "cases.csv", load_mapping(mapping_path))
    assert [p["kind"] for p in info.value.problems] == ["duplicate_id"]
    assert session.scalar(select(Incident.id)) is None


@pytest.mark.parametrize(
    ("written", "degrees"),
    [("114.0579°E", 114.0579), ("东经114.0579度", 114.0579), ("22.5431°S", -22.5431), ("N22.5431°", 22.5431)],
)
def test_decimal_degrees_with_their_sign_are_read(written, degrees):
    assert dms_degrees(written) == pytest.approx(degrees, abs=1e-12)


@pytest.mark.parametrize("written", ["114°E", "东经114度", "114.5°3″E"])
def test_whole_degrees_alone_are_still_no_location(written):
    assert dms_degrees(written) is None


def test_cafes_listed_in_decimal_degrees_with_their_sign_are_placed(session, tmp_path):
    """'114.0579°E' was refused as 'not a number'."""
    cafes = gpd.read_file(CAFES)
    lines = ["code,lon,lat"]
    for i, p in enumerate(cafes.geometry):
        lon, lat = (f"{p.x}°E", f"{p.y}°N") if i % 2 else (f"东经{p.x}度", f"北纬{p.y}度")
        lines.append(f"C{i},{lon},{lat}")
    path = tmp_path / "cafes.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_buildings(session, path, mapping={"code": "code", "lon": "lon", "lat": "lat"})
    stored = {code: (lon, lat) for code, _, lon, lat in stored_buildings(session)}
    assert len(stored) == len(cafes)
    for i, p in enumerate(cafes.geometry):
        assert stored[f"C{i}"] == pytest.approx((p.x, p.y), abs=1e-12)


def test_whole_degrees_in_a_file_are_still_refused(session, tmp_path):
    path = tmp_path / "cafes.csv"
    path.write_text("code,lon,lat\nC0,东经114度,北纬22度\n", encoding="utf-8")
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path, mapping={"code": "code", "lon": "lon", "lat": "lat"})
    assert "is not a number" in info.value.problems[0]["message"]


def test_a_utf16_file_without_byte_order_mark_cut_in_a_character_names_its_last_line(session, tmp_path):
    make_base_grid(session, rows=3, cols=3, communities=2)
    (x0, y0), (x1, y1) = centre(0), centre(1)
    data = f"code,address,lon,lat\r\nB001,福田路 1 号,{x0},{y0}\r\nB002,福田路 2 号,{x1},{y1}".encode("utf-16-le")
    path = tmp_path / "buildings.csv"
    path.write_bytes(data[:-1])  # the last character cut in half, as a copy interrupted
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path)
    [found] = [p for p in info.value.problems if p["kind"] == "undecodable_text"]
    assert found["index"] == 3 and "UTF-16-LE (as its bytes show" in found["message"]
    assert session.scalar(select(Building.code)) is None


@pytest.mark.parametrize("separator", ["，", "|", "、"])
def test_a_file_separated_by_what_gridkit_does_not_split_on_is_told_so(session, tmp_path, separator):
    """Typed with a Chinese input method (full-width commas) or exported with bars: refused as lacking every column,
    'Its columns are: code，address，lon，lat', without saying why."""
    (x0, y0) = centre(0)
    path = tmp_path / "buildings.csv"
    rows = [["code", "address", "lon", "lat"], ["B001", "a", str(x0), str(y0)]]
    path.write_text("".join(separator.join(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path)
    first = info.value.problems[0]
    assert first["kind"] == "csv_separator" and f"with '{separator}' between the names" in first["message"]
    assert "只按英文逗号、分号或制表符分列" in problem_text(first, "zh-CN")


def test_a_case_file_separated_by_full_width_commas_says_so_in_its_report(session, tmp_path):
    seed_categories(session)
    mapping_path, _ = case_file(tmp_path, 4490, None)
    lines = (tmp_path / "cases.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "cases.csv").write_text("\n".join(line.replace(",", "，") for line in lines) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        import_incidents(session, tmp_path / "cases.csv", load_mapping(mapping_path))
    assert info.value.code == "incident_import.columns_absent"
    assert [p["kind"] for p in info.value.problems] == ["csv_separator"]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_chinese_utf16_without_byte_order_mark_is_read(session, tmp_path, codec):
    make_base_grid(session, rows=3, cols=3, communities=2)
    (x0, y0), (x1, y1) = centre(0), centre(1)
    rows = f"编码,地址,经度,纬度\r\nB001,一号楼一单元,{x0},{y0}\r\nB002,二号楼,{x1},{y1}\r\n"
    path = tmp_path / "buildings.csv"
    path.write_bytes(rows.encode(codec))
    result = import_buildings(session, path)
    assert any(n["kind"] == "encoding" and codec.upper() in n["message"] for n in result.notes)
    assert [(code, address) for code, address, _, _ in stored_buildings(session)] == [
        ("B001", "一号楼一单元"),
        ("B002", "二号楼"),
    ]
