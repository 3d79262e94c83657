"""Base cell and admin unit imports with real-shaped files (audit): shapefiles as GIS tools write them."""

from __future__ import annotations

import threading
import time

import geopandas as gpd
import pytest
from shapely.geometry import box
from sqlalchemy import select

from gridkit import db
from gridkit.grids.import_cells import import_base_cells
from gridkit.grids.importer import ImportRefused
from gridkit.models import BaseCell
from tests.factories import X0, Y0, D, make_admin_units
from tests.factories_web import commit

COMMUNITY = "440304001001"


def community_cells() -> tuple[list[str], list]:
    """The 3×3 cells of make_admin_units' community: codes (north→south, west→east) and squares."""
    codes, squares = [], []
    for seq in range(1, 10):
        r, c = divmod(seq - 1, 3)
        x, y = X0 + c * D, Y0 + (2 - r) * D
        codes.append(f"{COMMUNITY}{seq:03d}")
        squares.append(box(x, y, x + D, y + D))
    return codes, squares


@pytest.mark.filterwarnings("ignore:Could not decode error message")  # GDAL's own note on the cut, in bytes
def test_utf8_shapefile_with_long_chinese_field_names_cut_by_gdal_imports(session, tmp_path):
    """GDAL (as ArcGIS) cuts a UTF-8 DBF field name at 10 bytes, inside the 4th Chinese character, and numbers
    the names the cut made equal after the broken character: such a file was refused as undecodable text."""
    make_admin_units(session)
    codes, squares = community_cells()
    frame = gpd.GeoDataFrame(
        {"基础网格编码": codes, "基础网格名称字段": [f"第{i}格" for i in range(1, 10)]}, geometry=squares, crs=4490
    )
    frame.to_file(tmp_path / "cells.shp", encoding="utf-8")
    assert (tmp_path / "cells.dbf").read_bytes()[32:42] == "基础网格编码".encode()[:10]  # cut inside 格

    result = import_base_cells(session, tmp_path, code_field="基础网")
    assert result.created == 9 and result.source["encoding"] == "UTF-8"
    cut = [n for n in result.notes if n["kind"] == "field_name_cut"]
    assert sorted(n["field"] for n in cut) == ["基础_1", "基础网"]
    assert "'基础网' (the broken character dropped)" in cut[0]["message"]
    stored = dict(session.execute(select(BaseCell.code, BaseCell.attributes)).all())
    assert stored[codes[0]] == {"基础_1": "第1格"}


def test_two_imports_naming_one_edition_at_once_the_second_is_refused_clearly(fresh_settings, tmp_path):
    """The name was checked long before the edition was written: the second import failed on the unique key."""
    commit(fresh_settings, make_admin_units)
    codes, squares = community_cells()
    path = tmp_path / "cells.geojson"
    gpd.GeoDataFrame({"code": codes}, geometry=squares, crs=4490).to_file(path)
    first_written = threading.Event()
    outcome: dict[str, object] = {}

    def run(who: str, wait_for: threading.Event | None) -> None:
        try:
            with db.transaction(fresh_settings) as session:
                if wait_for is not None:
                    wait_for.wait(timeout=30)
                outcome[who] = import_base_cells(session, path, code_field="code", edition="2027").created
                if wait_for is None:  # hold the first edition uncommitted while the second import checks the name
                    first_written.set()
                    time.sleep(1)
        except Exception as exc:  # the test asserts which
            outcome[who] = exc
        finally:
            first_written.set()

    threads = [threading.Thread(target=run, args=("a", None)), threading.Thread(target=run, args=("b", first_written))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcome["a"] == 9, outcome
    assert isinstance(outcome["b"], ImportRefused), outcome
    assert [p["kind"] for p in outcome["b"].problems] == ["edition_exists"]
