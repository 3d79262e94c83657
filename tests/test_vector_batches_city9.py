"""Vector subject imports read the layer in pyogrio batches: the same answer as one read, all or nothing."""

from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import func, select, text

from gridkit.io import tables
from gridkit.io.subjects import SubjectImportRefused, import_buildings, import_residents
from gridkit.io.tables import open_table
from gridkit.models import Building, Resident
from gridkit.resident_cells import RESIDENTS
from gridkit.standard.ids import citizen_id_check_char
from tests.factories import X0, Y0, D, make_base_grid

KEY = b"test-personal-data-key"
N = 1_203  # features: five batches of 250 (the last one short)
BATCH = 250


def _ids(n: int) -> list[str]:
    out = []
    for i in range(n):
        day = datetime.fromordinal(datetime(1950, 1, 1).toordinal() + i // 1000).strftime("%Y%m%d")
        first17 = f"440304{day}{i % 1000:03d}"
        out.append(first17 + citizen_id_check_char(first17))
    return out


def residents_layer(path, n: int = N, *, bad_last: bool = False, crs: str = "EPSG:4490"):
    """Write n resident points over the test grid's 3 × 3 cells (some on edges), with Chinese names."""
    rng = np.random.default_rng(7)
    lon = X0 + rng.uniform(-0.0002, 3 * D + 0.0002, n)
    lat = Y0 + rng.uniform(-0.0002, 3 * D + 0.0002, n)
    lon[:9] = X0 + D * np.arange(9) % (3 * D)  # on cell edges: ties go to the smallest code
    ids = _ids(n)
    if bad_last:
        ids[-1] = ids[-1][:17] + ("0" if ids[-1][17] != "0" else "1")
    frame = gpd.GeoDataFrame(
        {
            "id_number": ids,
            "name": np.array(["王小明", "李大力", "赵敏"])[np.arange(n) % 3],
            "population_type": np.array(["户籍", "流动"])[np.arange(n) % 2],
        },
        geometry=shapely.points(lon, lat),
        crs="EPSG:4490",
    ).to_crs(crs)
    frame.to_file(path, driver="GPKG", layer="residents")
    return path


def _read_all(path, chunk_rows: int):
    stream = open_table(path, chunk_rows=chunk_rows)
    rows, numbers, wkb, sizes = [], [], [], []
    for chunk in stream:
        rows.extend(chunk.rows)
        numbers.extend(chunk.numbers)
        wkb.extend(shapely.to_wkb(g) for g in chunk.geometries)
        sizes.append(len(chunk.rows))
    return stream, rows, numbers, wkb, sizes


def test_a_layer_is_read_in_batches_with_the_same_rows_as_one_read(tmp_path):
    path = residents_layer(tmp_path / "r.gpkg", crs="EPSG:4547")  # projected: densified and reprojected per batch
    batched, rows, numbers, wkb, sizes = _read_all(path, BATCH)
    whole, rows1, numbers1, wkb1, sizes1 = _read_all(path, 100_000)
    # Several reads of the file, never more than a batch in memory.
    assert batched.reads() == 5 and sizes == [250, 250, 250, 250, 203]
    assert whole.reads() == 1 and sizes1 == [N]
    assert (rows, numbers, wkb) == (rows1, numbers1, wkb1)
    assert numbers == list(range(1, N + 1))  # GeoPackage fids, as QGIS shows them
    assert rows[0]["name"] == "王小明"
    assert batched.header.columns == ["id_number", "name", "population_type"]
    assert batched.header.source["features"] == N


def _stored(session) -> list[tuple]:
    return session.execute(
        text(
            f"SELECT id_number_masked, name, population_type, base_cell_id, ST_AsText(geom) FROM {RESIDENTS} r "
            "ORDER BY id_number_masked, ST_X(geom), ST_Y(geom)"
        )
    ).all()


def test_a_batched_import_stores_what_a_single_read_stores(session, tmp_path, monkeypatch):
    make_base_grid(session)
    path = residents_layer(tmp_path / "r.gpkg")
    monkeypatch.setattr(tables, "CHUNK_ROWS", BATCH)
    savepoint = session.begin_nested()
    batched = import_residents(session, path, pii_key=KEY)
    stored_batched = _stored(session)
    savepoint.rollback()
    assert session.scalar(select(func.count()).select_from(Resident)) == 0
    monkeypatch.setattr(tables, "CHUNK_ROWS", 100_000)
    single = import_residents(session, path, pii_key=KEY)
    assert (batched.created, batched.assigned, batched.unassigned) == (
        single.created,
        single.assigned,
        single.unassigned,
    )
    assert batched.created == N and 0 < batched.assigned and 0 < batched.unassigned
    assert stored_batched == _stored(session)
    wrong = session.scalar(
        text(
            f"SELECT count(*) FROM {RESIDENTS} r WHERE r.base_cell_id IS DISTINCT FROM (SELECT b.id FROM base_cell b "
            "WHERE ST_Covers(b.geom, r.geom) ORDER BY b.code LIMIT 1)"
        )
    )
    assert wrong == 0


def test_a_bad_feature_in_the_last_batch_imports_nothing_and_is_named(session, tmp_path, monkeypatch):
    make_base_grid(session)
    path = residents_layer(tmp_path / "r.gpkg", bad_last=True)
    monkeypatch.setattr(tables, "CHUNK_ROWS", BATCH)
    with pytest.raises(SubjectImportRefused) as info:
        import_residents(session, path, pii_key=KEY)
    problems = info.value.problems
    assert [(p["index"], p["kind"]) for p in problems] == [(N, "bad_id_number")]
    assert f"feature {N}" in problems[0]["message"]
    assert session.scalar(select(func.count()).select_from(Resident)) == 0


def test_features_outside_china_in_a_later_batch_are_each_named(session, tmp_path, monkeypatch):
    make_base_grid(session)
    frame = gpd.GeoDataFrame(
        {"code": [f"B{i:04d}" for i in range(600)]},
        geometry=shapely.points(np.full(600, X0 + D / 2), np.full(600, Y0 + D / 2)),
        crs="EPSG:4490",
    )
    frame.loc[[550, 590], "geometry"] = shapely.points([2.35, 2.36], [48.85, 48.86])  # Paris
    frame.to_file(tmp_path / "b.gpkg", driver="GPKG")
    monkeypatch.setattr(tables, "CHUNK_ROWS", 200)
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, tmp_path / "b.gpkg")
    assert [(p["index"], p["kind"]) for p in info.value.problems] == [(551, "outside_china"), (591, "outside_china")]
    assert session.scalar(select(func.count()).select_from(Building)) == 0
