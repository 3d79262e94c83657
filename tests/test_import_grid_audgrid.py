"""Base cell and admin unit imports with real-shaped files (audit): shapefiles as GIS tools write them."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import box
from sqlalchemy import select

from gridkit.grids.import_cells import import_base_cells
from gridkit.models import BaseCell
from tests.factories import X0, Y0, D, make_admin_units

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
