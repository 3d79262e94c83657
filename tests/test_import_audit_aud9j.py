"""Imports fed real-shaped and hostile files, as a city's GIS staff would: nothing lost, altered unsaid or
refused unclearly (the audit of branch aud9j)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from gridkit.io.subjects import import_buildings
from gridkit.models import Building
from tests.data.make_subject_files import centre
from tests.factories_import_subjects import by_kind, grid, refused  # noqa: F401 - fixtures used by name


def _features(*features) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def _feature(code: str, geometry: dict | None, **properties) -> dict:
    return {"type": "Feature", "properties": {"code": code, **properties}, "geometry": geometry}


# -- notes of a vector file's batches ---------------------------------------------------------------------


def test_repairs_and_dropped_z_of_a_vector_file_are_noted(session, grid, tmp_path):
    # Each batch of a layer is checked as it is read, after the import has started: its notes (a bow-tie
    # footprint made valid, heights dropped) were kept by the reader but never reached the import's report.
    x, y = centre(0)
    d = 0.0002
    bow_tie = [[x, y], [x + d, y + d], [x + d, y], [x, y + d], [x, y]]
    path = tmp_path / "bow_tie.geojson"
    path.write_text(
        json.dumps(
            _features(
                _feature("BT1", {"type": "Polygon", "coordinates": [bow_tie]}),
                _feature("BT2", {"type": "Point", "coordinates": [x, y, 12.5]}),
            )
        )
    )
    result = import_buildings(session, path)
    assert result.created == 2
    kinds = {(n["kind"], n["index"]) for n in result.notes}
    assert ("geometry_repaired", 0) in kinds
    assert ("z_dropped", None) in kinds
    repaired = next(n for n in result.notes if n["kind"] == "geometry_repaired")
    assert "Self-intersection" in repaired["message"] and "feature 0" in repaired["message"]
    assert session.scalar(select(Building.footprint.ST_IsValid()).where(Building.code == "BT1"))


# -- a .cpg naming a one-byte encoding over Chinese text ----------------------------------------------------


def _shapefile(folder, names: list[str], encoding: str, cpg: str):
    import geopandas as gpd
    from shapely.geometry import Point

    folder.mkdir()
    frame = gpd.GeoDataFrame(
        {"code": [f"CPG{i}" for i in range(len(names))], "address": names},
        geometry=[Point(*centre(i)) for i in range(len(names))],
        crs=4490,
    )
    frame.to_file(folder / "b.shp", encoding=encoding)
    for stale in folder.glob("*.cpg"):
        stale.unlink()
    (folder / "b.cpg").write_text(cpg)
    return folder


def test_a_cpg_of_latin1_or_1252_over_chinese_text_is_refused_not_stored_garbled(session, grid, tmp_path):
    # ISO-8859-1 and 1252 decode any byte: the import used to store '福田一号' as 'ç¦\x8fç\x94°ä¸\x80å\x8f·'.
    for encoding, cpg, real in (("utf-8", "ISO-8859-1", "UTF-8"), ("gbk", "1252", "GB18030")):
        folder = _shapefile(tmp_path / cpg, ["福田一号", "福田二号"], encoding, cpg)
        error = refused(session, import_buildings, folder)
        (found,) = by_kind(error)["cpg_mismatch"]
        assert found["index"] == 0 and found["field"] == "address"
        assert f"--encoding {real}" in found["message"] and "福田一号" in found["message"]
        result = import_buildings(session, folder, encoding=real)
        assert result.created == 2
        assert session.scalar(select(Building.address).where(Building.code == "CPG0")) == "福田一号"
        session.rollback()


def test_a_latin1_cpg_over_latin_text_is_still_read_as_latin1(session, grid, tmp_path):
    folder = _shapefile(tmp_path / "latin", ["Café Müller", "Straße"], "ISO-8859-1", "ISO-8859-1")
    assert import_buildings(session, folder).created == 2
    assert session.scalar(select(Building.address).where(Building.code == "CPG0")) == "Café Müller"


# -- building codes a spreadsheet turned into numbers --------------------------------------------------------


def test_building_codes_in_scientific_notation_or_rounded_by_excel_are_refused(session, grid, tmp_path):
    from openpyxl import Workbook

    from tests.factories_import_subjects import write_csv

    x, y = centre(0)
    # Excel shows an 18-digit code as 4.40304E+17 and saves the CSV so: both rows stored that code.
    path = write_csv(
        tmp_path / "b.csv",
        ["code", "address", "lon", "lat"],
        [
            ["4.40304E+17", "一号", x, y],
            ["4.40304e+17", "二号", x, y],
            ["440304001001001", "三号", x, y],
            ["12E05", "四号", x, y],  # building 12, wing E, unit 05: a code, not a number
        ],
    )
    error = refused(session, import_buildings, path)
    assert set(by_kind(error)) == {"number_precision"}
    found = by_kind(error)["number_precision"]
    assert [p["index"] for p in found] == [2, 3] and "4.40304E+17" in found[0]["message"]
    # An XLSX cell holding the code as a number keeps 15 digits: 440304001001001234 became ...001200.
    book = Workbook()
    sheet = book.active
    sheet.append(["code", "address", "lon", "lat"])
    sheet.append([440304001001001234, "一号", x, y])
    sheet.append([1001, "二号", x, y])
    book.save(tmp_path / "b.xlsx")
    error = refused(session, import_buildings, tmp_path / "b.xlsx")
    (found,) = error.problems
    assert (found["kind"], found["index"]) == ("number_precision", 2)


# -- a code repeated in a vector file -------------------------------------------------------------------------


def test_a_code_repeated_in_a_vector_file_names_the_feature_it_first_appeared_on(session, grid, tmp_path):
    from gridkit.io.problems import problem_text

    x, y = centre(0)
    point = {"type": "Point", "coordinates": [x, y]}
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps(_features(_feature("DUP", point), _feature("OK", point), _feature("DUP", point))))
    error = refused(session, import_buildings, path)
    (found,) = by_kind(error)["duplicate_code"]
    assert found["index"] == 2
    # The place was rendered as the catalogue key itself: "(first at imports.unit.feature)".
    for lang, first in (("en", "feature 0"), ("zh-CN", "要素 0（FID，从 0 数起）")):
        text = problem_text(found, lang)
        assert first in text and "imports.unit" not in text


# -- a ring not closed ------------------------------------------------------------------------------------------


def test_a_ring_not_closed_is_closed_and_noted_instead_of_the_whole_file_unreadable(session, grid, tmp_path):
    x, y = centre(1)
    d = 0.0002
    ring = [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]
    path = tmp_path / "open_ring.geojson"
    path.write_text(
        json.dumps(
            _features(
                _feature("CLOSED", {"type": "Polygon", "coordinates": [ring]}),
                _feature("OPEN", {"type": "Polygon", "coordinates": [ring[:-1]]}),
            )
        )
    )
    # GEOS refused the open ring while the layer was read: "cannot read open_ring.geojson
    # (IllegalArgumentException: Points of LinearRing do not form a closed linestring)", no feature named.
    result = import_buildings(session, path)
    assert result.created == 2
    (note,) = [n for n in result.notes if n["kind"] == "ring_closed"]
    assert note["index"] == 1 and "feature 1" in note["message"]
    area = select(Building.footprint.ST_Area()).where(Building.code == "OPEN")
    assert session.scalar(area) == pytest.approx(d * d)


# -- a zip holding shapefiles of the same name in different folders -------------------------------------------


def test_shapefiles_of_the_same_name_in_a_zip_are_named_and_chosen_by_their_folder(session, grid, tmp_path):
    import zipfile

    first = _shapefile(tmp_path / "east", ["东"], "utf-8", "UTF-8")
    second = _shapefile(tmp_path / "west", ["西"], "utf-8", "UTF-8")
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for folder in (first, second):
            for f in folder.iterdir():
                archive.write(f, f"2024/{folder.name}/{f.name}")
    # Both were listed as "b, b", and --layer b matched both: no choice could be made.
    error = refused(session, import_buildings, path)
    assert error.code == "geometry.several_shapefiles" and "2024/east/b, 2024/west/b" in error.problems[0]["message"]
    error = refused(session, import_buildings, path, layer="b")
    assert error.code == "geometry.no_such_shapefile" and "2024/east/b, 2024/west/b" in error.problems[0]["message"]
    result = import_buildings(session, path, layer="2024/west/b")
    assert result.created == 1 and result.source["file"] == "2024/west/b.shp"
    assert session.scalar(select(Building.address).where(Building.code == "CPG0")) == "西"


# -- semicolons ---------------------------------------------------------------------------------------------------


def test_a_csv_separated_by_semicolons_is_read(session, grid, tmp_path):
    x, y = centre(2)
    path = tmp_path / "b.csv"
    # Refused before: "no column for field 'code'; columns: code;address;lon;lat".
    path.write_text(f'code;address;lon;lat\nS1;深南大道 1 号, 2 楼;{x};{y}\nS2;"a;b";{x};{y}\n', encoding="utf-8")
    result = import_buildings(session, path)
    assert result.created == 2 and result.source["delimiter"] == "semicolon"
    assert session.scalar(select(Building.address).where(Building.code == "S1")) == "深南大道 1 号, 2 楼"
    assert session.scalar(select(Building.address).where(Building.code == "S2")) == "a;b"


# -- a quote left open ---------------------------------------------------------------------------------------------


def test_a_quote_left_open_to_the_end_of_the_file_is_refused_not_the_rows_after_it_swallowed(session, grid, tmp_path):
    x, y = centre(0)
    path = tmp_path / "b.csv"
    good = "".join(f"G{i},{x},{y},ok\n" for i in range(3))
    # The address of Q1 opens a quote that nothing closes: the lenient reader made Q2 and Q3 part of it,
    # and imported one building with that address — two rows lost without a word.
    path.write_text(f'code,lon,lat,address\n{good}Q1,{x},{y},"unclosed\nQ2,{x},{y},a\nQ3,{x},{y},b\n')
    error = refused(session, import_buildings, path)
    (found,) = error.problems
    assert (found["kind"], found["index"], found["key"]) == ("bad_row", 5, "imports.at")
    assert "never closed" in found["message"]
    # A runaway cell past the csv module's limit says the same, not "field larger than field limit".
    path.write_text(f'code,lon,lat,address\nQ1,{x},{y},"a\nb"\nQ2,{x},{y},{"x" * 200_000}\n')
    (found,) = refused(session, import_buildings, path).problems
    assert found["index"] == 4 and "quote" in found["message"] and "field limit" not in found["message"]


# -- one feature drawn as latitude, longitude ------------------------------------------------------------------------


def test_one_feature_with_swapped_coordinates_is_named_as_swapped(session, grid, tmp_path):
    x, y = centre(0)
    features = [_feature(f"P{i}", {"type": "Point", "coordinates": [x, y]}) for i in range(3)]
    features.append(_feature("SWAPPED", {"type": "Point", "coordinates": [y, x]}))
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps(_features(*features)))
    # Said "lies outside China" only, where a CSV row says its coordinates look swapped.
    (found,) = refused(session, import_buildings, path).problems
    assert (found["kind"], found["index"]) == ("axes_swapped", 3) and "swapped" in found["message"]


# -- components (部件) ----------------------------------------------------------------------------------------------


def test_component_rows_say_what_is_wrong_in_the_readers_language(session, tmp_path):
    import pytest

    from gridkit.errors import ValidationError
    from gridkit.incidents.categories import seed_categories
    from gridkit.incidents.components import import_components
    from gridkit.io.problems import problem_text
    from gridkit.models import Component

    seed_categories(session)
    x, y = centre(0)
    path = tmp_path / "components.csv"
    path.write_text(
        "code,name,lon,lat\n"
        f"4.40304E+15,井盖,{x},{y}\n"  # Excel's 4403040101000001: was "must be 16 digits, got '4.40304E+15'"
        f"4403040101000002,井盖,{y},{x}\n"  # was "lies outside China", not that it looks swapped
        f"4403040101000003,井盖,{x},{y}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValidationError) as info:
        import_components(session, path)
    problems = info.value.problems
    assert [(p["kind"], p["index"]) for p in problems] == [("number_precision", 2), ("axes_swapped", 3)]
    # Every row message came in English only, in the Chinese report too.
    for found in problems:
        assert found["key"] == "imports.at"
        assert "components.csv 第" in problem_text(found, "zh-CN") and "components.csv, line" in problem_text(
            found, "en"
        )
    assert session.scalar(select(func.count()).select_from(Component)) == 0


def test_building_codes_excel_turned_into_dates_are_refused(session, grid, tmp_path):
    import datetime

    from openpyxl import Workbook

    x, y = centre(0)
    book = Workbook()
    sheet = book.active
    sheet.append(["code", "address", "lon", "lat"])
    sheet.append([datetime.datetime(2024, 3, 12), "3-12 typed in Excel", x, y])  # stored as '2024-03-12T00:00:00'
    sheet.append(["3-13", "typed as text", x, y])
    book.save(tmp_path / "b.xlsx")
    (found,) = refused(session, import_buildings, tmp_path / "b.xlsx").problems
    assert (found["kind"], found["index"]) == ("code_as_date", 2) and "date" in found["message"]
