"""A resident's coordinates are their home, a case's may be its caller's: an import's messages about them (its
report's .txt, .json and .csv, the CLI's line) name the row and give the place rounded as to the public
(gridkit.pii.typed_location, about 100 m) or the shape of what was typed, never the values as typed. Rows of
buildings (no one's) keep their values. Files as cities send them: CSV, GBK CSV with Chinese headers, XLSX."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import main
from gridkit.incidents.categories import seed_categories
from gridkit.messages import Message
from gridkit.pii import typed_coordinate, typed_location
from tests.data.make_subject_files import centre, citizen_id
from tests.factories import make_base_grid

# (lon, lat as typed, what each message must say instead, the digits it must not repeat)
ROWS = [
    # lat, lon given in that order: swapped (the rounded place lets the user see it)
    ("22.53612347", "114.05279137", "about 22.536, 114.053, rounded to about 100 m", ("12347", "79137")),
    # projected metres with the 3-degree zone number in front, no --src-crs: the zone's CRS suggested
    ("38512345.67", "2494512.34", "metres with the 3-degree zone number 38 in front", ("512345", "494512")),
    # metres without a zone number
    ("512345.67", "2494512.34", "metres, 6 digits before the point; metres, 7 digits before the point", ("512345",)),
    # a decimal comma in a comma-separated file
    ("114,05279137", "22.53612347", "'###,########' (each digit as #)", ("79137", "12347")),
    # degrees, minutes and seconds past 60
    ("114°3′61.25371″E", "22°32′10.12345″N", "'###°#′##.#####″E' (each digit as #)", ("25371", "61.25")),
    # no number at all
    ("114.052.79137", "22.53612347", "'###.###.#####' (each digit as #)", ("79137",)),
    # outside China
    ("-76.61234567", "39.29123457", "about -76.612, 39.291, rounded to about 100 m", ("34567", "23457")),
    # nothing like a number: said as typed
    ("无", "22.53612347", "'无'", ("12347",)),
]
# What each row's message tells the user to do.
ADVICE = [
    "Exchange the two values",
    "--src-crs EPSG:4526",
    "--src-crs",
    "Write it with a point",
    "seconds are more than 60",
    "Give decimal degrees",
    "Correct them, or give the right coordinate system",
    "Give decimal degrees",
]


def run(settings, *args, lang="en"):
    return CliRunner(env={"GRIDKIT_LANG": lang}).invoke(main, list(args), obj=settings, catch_exceptions=False)


def _grid(settings) -> None:
    with Session(db.engine_for(settings)) as session, session.begin():
        make_base_grid(session, rows=3, cols=3, communities=2)
        seed_categories(session)


def _reports(settings) -> dict[str, str]:
    """Every report file's text, by suffix (one import: one report)."""
    found = {p.suffix: p.read_text(encoding="utf-8-sig") for p in (Path(settings.home) / "reports").iterdir()}
    assert set(found) == {".txt", ".json", ".csv"}, found
    return found


def _never_exact(texts, rows) -> None:
    for text in texts:
        for lon, lat, _, secrets, *_ in rows:
            for secret in (lon, lat, *secrets):
                # A value with no digit (无, N/A) is nowhere: it is quoted, to be found in the file.
                assert secret not in text or not any(c.isdigit() for c in secret), (secret, text)


def _resident_rows(header: list[str]) -> list[list]:
    good = centre(1, 1)
    rows = [[citizen_id(1), "王小明", "registered", str(good[0]), str(good[1])]]
    rows += [[citizen_id(i + 2), f"居民{i}", "registered", lon, lat] for i, (lon, lat, _, _) in enumerate(ROWS)]
    return [header, *rows]


def _write(kind: str, path: Path, rows: list[list]) -> Path:
    if kind == "xlsx":
        book = Workbook()
        for row in rows:
            book.active.append(row)
        book.save(path)
    else:
        with open(path, "w", newline="", encoding="gbk" if kind == "gbk" else "utf-8") as fh:
            csv.writer(fh).writerows(rows)
    return path


@pytest.mark.parametrize(
    ("kind", "lang"),
    [("csv", "en"), ("xlsx", "en"), ("gbk", "zh-CN")],
)
def test_a_refused_residents_file_never_quotes_a_home(fresh_settings, tmp_path, kind, lang):
    _grid(fresh_settings)
    header = ["id_number", "name", "population_type", "lon", "lat"]
    if kind == "gbk":  # as a Chinese Excel saves it: GBK, Chinese headers
        header = ["身份证号", "姓名", "人口类型", "经度", "纬度"]
    path = _write(kind, tmp_path / f"residents.{'xlsx' if kind == 'xlsx' else 'csv'}", _resident_rows(header))
    result = run(fresh_settings, "import", "residents", str(path), lang=lang)
    assert result.exit_code == 1, result.output
    reports = _reports(fresh_settings)
    _never_exact([result.output, *reports.values()], ROWS)
    problems = json.loads(reports[".json"])["problems"]
    assert len(problems) == len(ROWS)
    for n, (problem, (_, _, said, _), advice) in enumerate(zip(problems, ROWS, ADVICE, strict=True)):
        line = n + 3  # the header is line 1, the good row line 2
        assert problem["index"] is not None
        text = problem["message"]
        assert said in text and advice in text, text
        row = f"row {line}" if kind == "xlsx" else f"line {line}"
        assert row in text or problem["index"] in (line, line - 1), (row, problem)
    if lang == "zh-CN":
        assert "约 22.536, 114.053，取整到约 100 米" in reports[".txt"]
        assert "数字记作 #" in reports[".txt"] and "米制坐标" in reports[".txt"]
    else:
        assert "about 22.536, 114.053, rounded to about 100 m" in reports[".txt"]


def test_a_refused_buildings_file_keeps_its_values(fresh_settings, tmp_path):
    # A building is no one's home: the values stay as typed, to find them in the file.
    _grid(fresh_settings)
    rows = [["code", "lon", "lat"], ["B1", "22.53612347", "114.05279137"], ["B2", "114,05279137", "22.53612347"]]
    result = run(fresh_settings, "import", "buildings", str(_write("csv", tmp_path / "b.csv", rows)))
    assert result.exit_code == 1
    text = _reports(fresh_settings)[".txt"]
    assert "(22.53612347, 114.05279137)" in text and "('114,05279137')" in text


MAPPING = {
    "columns": {"external_id": "编号", "category": "类别", "reported_at": "时间", "lon": "经度", "lat": "纬度"},
    "time_format": "%Y-%m-%d %H:%M",
    "categories": {"垃圾": "E0102"},
    "placeholder_locations": [[114.0, 22.0]],
}
# (lon, lat, what the message says, digits never repeated, advice)
CASE_ROWS = [
    ("114,05279137", "22,53612347", "'###,########' (each digit as #)", ("79137", "12347"), "Write it with points"),
    ("114°3′61.25371″E", "22°32′10.12345″N", "'###°#′##.#####″E'", ("25371", "12345"), "seconds are more than 60"),
    ("东经114.05279137", "22.53612347", "'东经###.########' (each digit as #)", ("79137",), "not a pair of numbers"),
    ("22.53612347", "114.05279137", "about 22.536, 114.053, rounded to about 100 m", ("79137",), "longitude first"),
    ("38512345.67", "2494512.34", "metres with the 3-degree zone number 38 in front", ("512345",), '"crs"'),
]


def _case_file(kind: str, path: Path, places) -> Path:
    rows = [["编号", "类别", "时间", "经度", "纬度"]]
    rows += [[f"C{i}", "垃圾", "2026-11-01 09:30", lon, lat] for i, (lon, lat, *_) in enumerate(places)]
    return _write(kind, path, rows)


@pytest.mark.parametrize(("kind", "lang"), [("csv", "en"), ("xlsx", "en"), ("gbk", "zh-CN")])
def test_refused_case_places_are_never_quoted(fresh_settings, tmp_path, kind, lang):
    _grid(fresh_settings)
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps(MAPPING, ensure_ascii=False), encoding="utf-8")
    path = _case_file(kind, tmp_path / f"cases.{'xlsx' if kind == 'xlsx' else 'csv'}", CASE_ROWS)
    result = run(fresh_settings, "import", "incidents", str(path), "--map", str(mapping), lang=lang)
    assert result.exit_code == 1, result.output
    reports = _reports(fresh_settings)
    _never_exact([result.output, *reports.values()], CASE_ROWS)
    problems = json.loads(reports[".json"])["problems"]
    assert [p["index"] for p in problems] == list(range(2, 2 + len(CASE_ROWS)))
    for problem, (_, _, said, _, advice) in zip(problems, CASE_ROWS, strict=True):
        assert said in problem["message"] and advice in problem["message"], problem["message"]
        assert f"{'row' if kind == 'xlsx' else 'line'} {problem['index']}:" in problem["message"]
    if lang == "zh-CN":
        assert "约 22.536, 114.053，取整到约 100 米" in reports[".txt"]


def test_kept_case_places_noted_without_their_values(fresh_settings, tmp_path):
    # A placeholder (near the mapping's) and a place outside the grid: kept, noted, the row's value never quoted.
    _grid(fresh_settings)
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps(MAPPING, ensure_ascii=False), encoding="utf-8")
    lon, lat = centre(1, 1)
    places = [
        ("114.0000012", "22.0000034", "", ("0000012", "0000034")),
        ("113.91234567", "22.61234567", "", ("34567",)),
    ]
    path = _case_file("csv", tmp_path / "cases.csv", [*places, (str(lon), str(lat), "", ())])
    result = run(fresh_settings, "import", "incidents", str(path), "--map", str(mapping))
    assert result.exit_code == 0, result.output
    reports = _reports(fresh_settings)
    _never_exact([result.output, *reports.values()], [(a, b, "", s) for a, b, _, s in places])
    notes = json.loads(reports[".json"])["notes"]
    assert "line 2: placeholder location 114.0, 22.0;" in notes[0]["message"]
    assert "line 3: the place (about 113.912, 22.612, rounded to about 100 m)" in notes[1]["message"]


def test_the_rule():
    assert typed_location("114.05279137", "22.53612347") == Message("pii.location.about", lon="114.053", lat="22.536")
    assert typed_coordinate("１１４．０５２７９") == Message("pii.coordinate.degrees", value="114.053")
    assert typed_coordinate("20512345.1") == Message("pii.coordinate.metres_zone", zone=20, degrees=6)
    assert typed_coordinate("N/A") == Message("pii.coordinate.text", text="N/A")
    assert typed_coordinate("一一四点零五") == Message("pii.coordinate.shape", shape="###点##")
    assert typed_coordinate("9" * 50).key == "pii.coordinate.metres"
    assert typed_coordinate("x" + "9" * 50) == Message("pii.coordinate.shape", shape="x" + "#" * 39 + "…")


def _points(path: Path, places: list[tuple[float, float]], *, prj: bool = True) -> Path:
    """Write residents as a layer of points (GeoJSON, or a shapefile folder without its .prj)."""
    import geopandas as gpd
    from shapely.geometry import Point

    columns = {"id_number": [citizen_id(i + 1) for i in range(len(places))], "name": ["居民"] * len(places)}
    if prj:  # a shapefile's field names keep 10 bytes: without its .prj the layer is refused before its rows are read
        columns["population_type"] = ["registered"] * len(places)
    frame = gpd.GeoDataFrame(columns, geometry=[Point(x, y) for x, y in places], crs=4490)
    frame.to_file(path, encoding="utf-8")
    if not prj:
        path.with_suffix(".prj").unlink()
    return path


def test_a_layer_of_residents_names_no_home_exactly(fresh_settings, tmp_path):
    _grid(fresh_settings)
    good = [centre(c, 1) for c in range(6)]
    # One drawn as latitude, longitude and one in another city, among right ones: each said, rounded.
    swapped, elsewhere = (22.53612347, 114.05279137), (-76.61234567, 39.29123457)
    path = _points(tmp_path / "residents.geojson", [*good, swapped, elsewhere])
    result = run(fresh_settings, "import", "residents", str(path))
    assert result.exit_code == 1, result.output
    reports = _reports(fresh_settings)
    secrets = [
        ("22.53612347", "114.05279137", "", ("2.5361", "4.0528")),
        ("-76.61234567", "39.29123457", "", ("6.6123", "9.2912")),
    ]
    _never_exact([result.output, *reports.values()], secrets)
    text = reports[".txt"]
    assert "about 22.536, 114.053, rounded to about 100 m" in text and "Swap its coordinates" in text
    assert "about -76.612, 39.291, rounded to about 100 m" in text
    # A shapefile without its .prj: the advice names the layer's extent, rounded.
    for found in (Path(fresh_settings.home) / "reports").iterdir():
        found.unlink()
    folder = tmp_path / "shp"
    folder.mkdir()
    places = [(114.05279137, 22.53612347), (114.05391234, 22.53456789)]
    result = run(fresh_settings, "import", "residents", str(_points(folder / "residents.shp", places, prj=False)))
    assert result.exit_code == 1, result.output
    reports = _reports(fresh_settings)
    secrets = [(repr(x), repr(y), "", (f"{x:.4f}", f"{y:.4f}")) for x, y in places]
    _never_exact([result.output, *reports.values()], secrets)
    assert "about x 114.053–114.054, y 22.535–22.536, rounded to about 100 m" in reports[".txt"]
