"""Hostile and damaged files a department (or an attacker) may hand to an import: each is refused with
one clear sentence, nothing is written, and no limit of the machine is reached first."""

from __future__ import annotations

import struct
import time
import zipfile

import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import main
from gridkit.io.subjects import SubjectImportRefused, import_buildings
from gridkit.io.tables import TableReadError
from gridkit.io.vector import VectorReadError, read_vector
from gridkit.io.xlsx import MAX_XLSX_RATIO
from gridkit.models import Building
from tests.data.make_subject_files import centre
from tests.factories import make_base_grid

SHEET = "xl/worksheets/sheet1.xml"


def _workbook(path, rows=1):
    """Write a small buildings workbook (inline strings in the sheet part) and return its path."""
    lon, lat = centre(0)
    book = Workbook()
    sheet = book.active
    sheet.append(["code", "address", "lon", "lat"])
    for i in range(rows):
        sheet.append([f"B{i}", "NAME", lon, lat])
    book.save(path)
    return path


def _with_sheet(path, out, write):
    """Copy the workbook at `path` to `out` with its sheet part written by `write(file, original_text)`."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        original = src.read(SHEET).decode()
        for info in src.infolist():
            if info.filename != SHEET:
                dst.writestr(info, src.read(info.filename))
        with dst.open(SHEET, "w", force_zip64=True) as fh:
            write(fh, original)
    return out


def _refusal(session, path) -> str:
    with pytest.raises((SubjectImportRefused, TableReadError)) as info:
        import_buildings(session, path)
    assert session.scalar(select(func.count()).select_from(Building)) == 0
    return info.value.problems[0]["message"]


def test_xlsx_with_an_entity_bomb_is_refused_as_unreadable(session, tmp_path):
    make_base_grid(session)
    entities = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))

    def write(fh, text):
        fh.write(f'<?xml version="1.0"?><!DOCTYPE worksheet [{entities}]>'.encode())
        fh.write(text.replace("<t>NAME</t>", "<t>&a9;</t>", 1).encode())

    path = _with_sheet(_workbook(tmp_path / "b.xlsx"), tmp_path / "laughs.xlsx", write)
    message = _refusal(session, path)
    assert "laughs.xlsx cannot be opened as an Excel workbook" in message
    assert "amplification" in message  # expat's own limit, said instead of a traceback


def test_xlsx_with_an_external_entity_reads_no_local_file(session, tmp_path):
    make_base_grid(session)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")

    def write(fh, text):
        fh.write(f'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY x SYSTEM "file://{secret}">]>'.encode())
        fh.write(text.replace("<t>NAME</t>", "<t>&x;</t>", 1).encode())

    path = _with_sheet(_workbook(tmp_path / "b.xlsx"), tmp_path / "xxe.xlsx", write)
    message = _refusal(session, path)
    assert "xxe.xlsx cannot be opened as an Excel workbook" in message
    assert "TOP-SECRET-VALUE" not in message


def test_xlsx_damaged_deep_inside_its_sheet_is_refused_without_a_traceback(fresh_settings, tmp_path):
    """The damage is found while rows stream (after the header): a zlib or XML error there was a traceback."""
    with Session(db.engine_for(fresh_settings)) as session, session.begin():
        make_base_grid(session)
    path = _workbook(tmp_path / "big.xlsx", rows=20_000)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(SHEET)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = start + info.compress_size * 3 // 4
    data[middle : middle + 64] = bytes(b ^ 0x5A for b in data[middle : middle + 64])
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(bytes(data))
    result = CliRunner(env={"GRIDKIT_LANG": "en"}).invoke(
        main, ["import", "buildings", str(damaged)], obj=fresh_settings, catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "damaged.xlsx cannot be opened as an Excel workbook" in result.output
    assert "Report:" in result.output
    with Session(db.engine_for(fresh_settings)) as session:
        assert session.scalar(select(func.count()).select_from(Building)) == 0


def test_xlsx_zip_bomb_is_refused_by_its_compression_before_it_is_parsed(session, tmp_path):
    make_base_grid(session)
    size = 100 * 1024**2  # blanks between the tags: openpyxl would hold them in memory

    def write(fh, text):
        head, tail = text.split("</sheetData>")
        fh.write(head.encode())
        for _ in range(size // (1 << 20)):
            fh.write(b" " * (1 << 20))
        fh.write(b"</sheetData>" + tail.encode())

    path = _with_sheet(_workbook(tmp_path / "b.xlsx"), tmp_path / "bomb.xlsx", write)
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(SHEET).file_size > MAX_XLSX_RATIO * archive.getinfo(SHEET).compress_size
    started = time.monotonic()
    message = _refusal(session, path)
    assert time.monotonic() - started < 10
    assert f"part {SHEET} unpacks to 100 MB" in message and "zip bomb" in message


def test_xlsx_declaring_more_than_two_gigabytes_is_refused_before_it_is_parsed(session, tmp_path):
    make_base_grid(session)
    path = _workbook(tmp_path / "big.xlsx")
    data = bytearray(path.read_bytes())
    # The central directory's uncompressed size of the sheet part says 3 GB (it fits 32 bits: no zip64).
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == SHEET.encode():
            struct.pack_into("<I", data, at + 24, 3 * 1024**3)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    message = _refusal(session, path)
    assert "big.xlsx unpacks to more than 2 GB" in message


def test_a_sound_workbook_is_still_imported(session, tmp_path):
    make_base_grid(session)
    result = import_buildings(session, _workbook(tmp_path / "ok.xlsx", rows=3))
    assert result.created == 3


@pytest.mark.parametrize("missing", [".dbf", ".shx"])
@pytest.mark.parametrize("packed", ["folder", "zip", "shp"])
def test_a_shapefile_without_its_dbf_or_shx_is_refused_naming_the_missing_file(session, tmp_path, missing, packed):
    """Without the .dbf the layer had no columns ("no column for field 'code': use --map"), without the .shx
    GDAL's advice to set SHAPE_RESTORE_SHX: the department is told which file to send along."""
    import geopandas as gpd
    from shapely.geometry import Point

    make_base_grid(session)
    folder = tmp_path / "layer"
    folder.mkdir()
    gpd.GeoDataFrame({"code": ["B1"]}, geometry=[Point(centre(0))], crs=4490).to_file(folder / "b.shp")
    (folder / f"b{missing}").unlink()
    path = {"folder": folder, "shp": folder / "b.shp"}.get(packed)
    if packed == "zip":
        path = tmp_path / "layer.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for part in folder.iterdir():
                archive.write(part, part.name)
    message = _refusal(session, path)
    assert message.startswith(f"b.shp cannot be read without b{missing} beside it")
    with pytest.raises(VectorReadError) as info:
        read_vector(path, multipart="keep")
    assert f"without b{missing} beside it" in info.value.problems[0]["message"]


def _projected_cells(path, far_x: float):
    """Write three 100 m squares in EPSG:4547 (Shenzhen's zone), the last with one vertex at x = `far_x`."""
    import json

    import pyproj

    x, y = pyproj.Transformer.from_crs(4490, 4547, always_xy=True).transform(*centre(0))
    features = []
    for i in range(3):
        ring = [[x + 200 * i, y], [x + 200 * i + 100, y], [x + 200 * i + 100, y + 100], [x + 200 * i, y + 100]]
        if i == 2:
            ring[1][0] = far_x  # a few digits too many
        ring.append(ring[0])
        geometry = {"type": "Polygon", "coordinates": [ring]}
        features.append({"type": "Feature", "properties": {"code": f"C{i}"}, "geometry": geometry})
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4547"}}
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}), encoding="utf-8")
    return path


@pytest.mark.parametrize("far_x", [1e12, 1e308])
def test_a_projected_vertex_far_off_is_refused_as_outside_china_not_densified(tmp_path, far_x):
    """Densifying the edge to it (a vertex every 100 m) took gigabytes, or GEOS refused it with a traceback."""
    path = _projected_cells(tmp_path / "cells.geojson", far_x)
    started = time.monotonic()
    with pytest.raises(VectorReadError) as info:
        read_vector(path, multipart="keep", code_field="code")
    assert time.monotonic() - started < 10
    [problem] = info.value.problems
    assert problem["message"].startswith(
        "cells.geojson, feature 2 (code C2): has coordinates that are not finite numbers in CGCS2000 lon/lat"
    ), problem


def test_an_infinite_vertex_is_said_to_be_no_number_not_outside_china(tmp_path):
    path = tmp_path / "one.geojson"
    rings = [
        "[[114.05, 22.53], [114.06, 22.53], [114.06, 22.54], [114.05, 22.53]]",
        "[[114.05, 22.53], [114.06, 22.53], [Infinity, 22.54], [114.05, 22.53]]",
        "[[114.06, 22.53], [114.07, 22.53], [114.07, 22.54], [114.06, 22.53]]",
    ]
    features = ", ".join(
        f'{{"type": "Feature", "properties": {{"code": "C{i}"}}, '
        f'"geometry": {{"type": "Polygon", "coordinates": [{r}]}}}}'
        for i, r in enumerate(rings)
    )
    path.write_text(f'{{"type": "FeatureCollection", "features": [{features}]}}', encoding="utf-8")
    with pytest.raises(VectorReadError) as info:
        read_vector(path, multipart="keep", code_field="code")
    [problem] = info.value.problems
    assert problem["kind"] == "not_convertible" and "NaN or infinity" in problem["message"], problem
    assert "outside China" not in problem["message"]


def test_densifying_leaves_a_geometry_that_would_need_too_many_vertices_as_it_is():
    import pyproj
    from shapely.geometry import Polygon

    from gridkit.grids.tolerance import DENSIFY_MAX_POINTS, densify_projected

    crs = pyproj.CRS.from_epsg(4547)
    cell = Polygon([(500000, 2495000), (500100, 2495000), (500100, 2495100), (500000, 2495100)])
    typo = Polygon([(500000, 2495000), (5e9, 2495000), (500100, 2495100), (500000, 2495100)])
    dense = densify_projected(np.array([cell, typo], dtype=object), crs)
    assert shapely.get_num_coordinates(dense[0]) == 5  # 100 m edges: nothing to add
    assert dense[1].equals_exact(typo, 0)  # would need about 1e8 vertices (1.6 GB): left for the China check
    # A 2,000 km edge (there and back) is still densified: 40,000 vertices, within the limit.
    long_edge = Polygon([(500000, 2495000), (500000 + 2_000_000, 2495000), (500000, 2495100)])
    assert 40_000 < shapely.get_num_coordinates(densify_projected(np.array([long_edge]), crs)[0]) < DENSIFY_MAX_POINTS


def test_a_header_of_thousands_of_columns_is_listed_in_a_line_not_megabytes(session, tmp_path):
    make_base_grid(session)
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(20_000)) + "\n" + ",".join("1" * 20_000) + "\n", encoding="utf-8")
    message = _refusal(session, path)
    assert "wide.csv has no column for field 'code'. Its columns are: c0, c1, c2" in message
    assert "c59 … (+19940)" in message and "c60," not in message
    assert len(message) < 1000


CATEGORY_HEADER = "code,kind,major_code,major_name,name,time_limit_hours"


def test_a_category_table_is_read_like_every_imported_table(session, tmp_path):
    """UTF-16 (Excel's "Unicode text") was refused with Python's codec message, and a quote left open read the
    next lines into one cell, refused as 'time_limit_hours is empty'."""
    from gridkit.incidents.categories import category, seed_categories

    utf16 = tmp_path / "categories.csv"
    utf16.write_bytes(b"\xff\xfe" + f"{CATEGORY_HEADER}\r\nE0601,event,06,其他,测试,24\r\n".encode("utf-16-le"))
    assert seed_categories(session, utf16) == 1
    assert category(session, "E0601").name == "测试"

    book = Workbook()
    book.active.append(CATEGORY_HEADER.split(","))
    book.active.append(["E0602", "event", "06", "其他", "表格", 48])
    book.save(tmp_path / "categories.xlsx")
    assert seed_categories(session, tmp_path / "categories.xlsx") == 1
    assert category(session, "E0602").time_limit_hours == 48

    quote = tmp_path / "quote.csv"
    quote.write_text(f'{CATEGORY_HEADER}\nE0603,event,06,其他,"open,24\nE0604,event,06,其他,x,24\n', encoding="utf-8")
    with pytest.raises(TableReadError) as info:
        seed_categories(session, quote)
    assert 'quote.csv, line 2: a quote (") opened in this row is never closed' in info.value.render("en")


def test_an_event_category_of_an_extended_major_class_is_kept(session, tmp_path):
    """The table's rule allows it (a deployment extends its event classes); the database refused it: a traceback."""
    from gridkit.incidents.categories import category, seed_categories

    path = tmp_path / "categories.csv"
    path.write_text(f"{CATEGORY_HEADER}\nE0701,event,07,扩展事件,共享单车乱停放,4\n", encoding="utf-8")
    assert seed_categories(session, path) == 1
    session.flush()
    assert category(session, "E0701").major_name == "扩展事件"


def test_a_nul_byte_in_a_historic_case_file_is_refused_naming_line_and_column(session, tmp_path):
    """PostgreSQL refused the staging COPY of the whole chunk: a traceback that named no line."""
    import pandas as pd

    from gridkit.errors import ValidationError
    from gridkit.incidents.categories import seed_categories
    from gridkit.incidents.importer import import_incidents, load_mapping
    from gridkit.models import Incident
    from tests.test_incidents_baltimore import DATA, EXTRA_CATEGORIES, MAPPING, make_baltimore_grid

    seed_categories(session)
    seed_categories(session, EXTRA_CATEGORIES)
    make_baltimore_grid(session)
    rows = pd.read_csv(DATA, dtype=str, keep_default_na=False).head(50)
    rows.loc[7, "ServiceRequestNum"] = "\x00" + rows.loc[7, "ServiceRequestNum"]
    path = tmp_path / "cases.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(ValidationError) as info:
        import_incidents(session, path, load_mapping(MAPPING))
    [problem] = info.value.problems
    assert problem["index"] == 9 and problem["kind"] == "nul_byte"
    assert "cases.csv, line 9: ServiceRequestNum holds a NUL byte" in problem["message"]
    assert session.scalar(select(func.count()).select_from(Incident)) == 0


def test_a_geometry_collection_losing_its_point_says_so(session, tmp_path):
    """A building drawn as a footprint and a point in one GeometryCollection kept the footprint, and its point
    was dropped without a word (a repair's slivers, dropped the same way, are noted as a repair)."""
    import json

    make_base_grid(session)
    (x0, y0), (x1, y1) = centre(0), centre(1)
    square = [[x0, y0], [x0 + 0.0002, y0], [x0 + 0.0002, y0 + 0.0002], [x0, y0 + 0.0002], [x0, y0]]
    bowtie = [[x1, y1], [x1 + 0.0002, y1 + 0.0002], [x1 + 0.0002, y1], [x1, y1 + 0.0002], [x1, y1]]
    collection = {
        "type": "GeometryCollection",
        "geometries": [{"type": "Point", "coordinates": [x0, y0]}, {"type": "Polygon", "coordinates": [square]}],
    }
    features = [
        {"type": "Feature", "properties": {"code": "GC1"}, "geometry": collection},
        {"type": "Feature", "properties": {"code": "BT1"}, "geometry": {"type": "Polygon", "coordinates": [bowtie]}},
    ]
    path = tmp_path / "buildings.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    result = import_buildings(session, path)
    assert result.created == 2
    dropped = [n for n in result.notes if n["kind"] == "parts_dropped"]
    assert [n["index"] for n in dropped] == [0]
    assert "feature 0: the non-polygon parts of its GeometryCollection were dropped" in dropped[0]["message"]
    assert [n["index"] for n in result.notes if n["kind"] == "geometry_repaired"] == [1]
