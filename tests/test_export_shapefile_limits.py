"""Shapefile limits read back as a GIS analyst would (pyogrio, ogrinfo, the raw .dbf): text over
254 bytes cut at a character and said, files that would pass 2 GB refused before writing."""

from __future__ import annotations

import csv
import os
import subprocess
import zipfile

import pyogrio
import pytest
from factories_exports import make_city
from openpyxl.worksheet._writer import ALL_TEMP_FILES
from sqlalchemy import select, text

from gridkit.errors import ValidationError
from gridkit.io import export_writers
from gridkit.io.export import ExportOptions, export_layer
from gridkit.models import LegalEntity

# 1 + 199 characters (the column holds 200): 399 bytes in GBK, 598 in UTF-8, either way more than a DBF field holds.
LONG = "a" + "园" * 199


@pytest.fixture
def city(session):
    return make_city(session)


def _long_address(session) -> str:
    code = session.scalars(select(LegalEntity.credit_code).order_by(LegalEntity.credit_code)).first()
    session.execute(text("UPDATE legal_entity SET address = :a WHERE credit_code = :c"), {"a": LONG, "c": code})
    return code


@pytest.mark.parametrize(("encoding", "kept"), [("gbk", 126), ("utf-8", 84)])
def test_text_over_254_bytes_is_cut_at_a_character_and_said(session, city, tmp_path, encoding, kept):
    code = _long_address(session)
    path = tmp_path / "e.zip"
    summary = export_layer(session, ExportOptions("entities", "shp", path, encoding=encoding))
    expected = "a" + "园" * kept  # 253 bytes: one more character would not fit in 254
    assert summary["truncated"] == {"address": 1}
    with zipfile.ZipFile(path) as zf:
        raw = zf.read("entities.dbf")
        fields = {row["field"]: row for row in csv.DictReader(zf.read("fields.csv").decode().splitlines())}
    codec = export_writers.ENCODINGS[encoding][1]
    # No half character left in the file (GDAL alone cut GBK text inside one).
    assert expected.encode(codec) in raw and expected.encode(codec) + "园".encode(codec)[:1] not in raw
    assert fields["address"]["values_cut_to_254_bytes"] == "1" and fields["name"]["values_cut_to_254_bytes"] == "0"
    frame = pyogrio.read_dataframe(f"/vsizip/{path}/entities.shp")
    assert frame.loc[frame["credit_cod"] == code, "address"].item() == expected
    assert frame.loc[frame["credit_cod"] != code, "address"].str.startswith("园岭街道").all()
    out = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-q", f"/vsizip/{path}/entities.shp"], capture_output=True, text=True, check=True
    ).stdout
    assert f"address (String) = {expected}\n" in out
    # The GeoPackage keeps the whole text.
    gpkg = tmp_path / "e.gpkg"
    export_layer(session, ExportOptions("entities", "gpkg", gpkg))
    assert LONG in set(pyogrio.read_dataframe(gpkg)["address"])


def test_shapefile_that_would_pass_the_size_limit_is_refused_before_writing(session, city, tmp_path, monkeypatch):
    # 36 residents × 657-byte records: a 23,882-byte .dbf. The limit is lowered to what a test can
    # reach; the estimate is exact for the .dbf (GDAL's header, 80-byte text fields, 8-byte dates).
    path = tmp_path / "r.zip"
    export_layer(session, ExportOptions("residents", "shp", path))
    with zipfile.ZipFile(path) as zf:
        dbf = zf.getinfo("residents.dbf").file_size  # with its end byte
    monkeypatch.setattr(export_writers, "SHAPEFILE_MAX_BYTES", dbf - 1)
    export_layer(session, ExportOptions("residents", "shp", path, force=True))
    monkeypatch.setattr(export_writers, "SHAPEFILE_MAX_BYTES", dbf - 2)
    target = tmp_path / "big.zip"
    with pytest.raises(ValidationError) as err:
        export_layer(session, ExportOptions("residents", "shp", target, chunk_size=10))
    assert err.value.code == "export.shapefile_too_large"
    assert err.value.params["file"] == "residents.dbf" and err.value.params["feature"] == 36
    assert "residents.dbf" in err.value.render("en") and "gpkg" in err.value.render("zh-CN")
    # Nothing written: no zip, no part file, no scratch folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.zip"]
    # The GeoPackage has no such limit.
    export_layer(session, ExportOptions("residents", "gpkg", tmp_path / "r.gpkg"))
    assert pyogrio.read_info(tmp_path / "r.gpkg")["features"] == city["residents"]


def test_xlsx_past_a_sheets_rows_is_refused_with_its_own_reason(session, city, tmp_path, monkeypatch):
    from gridkit.io import export

    # A sheet holds 1,048,575 rows under its header; lowered here to what a test can pass.
    monkeypatch.setattr(export, "XLSX_MAX_ROWS", 10)
    spooled = set(ALL_TEMP_FILES)  # openpyxl's own temporary files of write-only sheets
    with pytest.raises(ValidationError) as err:
        export_layer(session, ExportOptions("buildings", "xlsx", tmp_path / "b.xlsx"))
    # The rows written before the refusal are nowhere: not in openpyxl's spool either.
    assert set(ALL_TEMP_FILES) == spooled and all(os.path.exists(p) for p in spooled)
    assert err.value.code == "export.xlsx_too_large" and err.value.params == {"features": 18, "limit": 10}
    assert "GRIDKIT_EXPORT_MAX_FEATURES" not in err.value.render("en") and "csv" in err.value.render("zh-CN")
    assert list(tmp_path.iterdir()) == []
    # The setting is the limit of the other formats.
    with pytest.raises(ValidationError) as err:
        export_layer(session, ExportOptions("buildings", "csv", tmp_path / "b.csv", max_features=5))
    assert err.value.code == "export.too_large"
