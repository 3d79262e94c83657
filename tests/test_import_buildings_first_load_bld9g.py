"""A first load of buildings (gridkit.io.subjects.building_load): one COPY straight into the empty table, the same
rows, ids, cells and reports as the staging path; any problem falls back to that path, which reports every one."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import psycopg
import pyogrio
import pytest
from sqlalchemy import delete, func, select, text

from gridkit import db
from gridkit.io.subjects import building_load, import_buildings
from gridkit.models import Building
from tests.data.make_subject_files import centre
from tests.factories import make_base_grid
from tests.factories_import_subjects import (
    DATA,
    buildings,
    by_kind,
    cell_code,
    grid,  # noqa: F401 - fixtures used by name
    record_first_loads,
    refused,
    write_csv,
)
from tests.factories_interrupt import interrupt_import


@pytest.fixture
def first_loads(monkeypatch) -> list:
    """Every file is large enough for a first load; the list collects what each `first_load` returned."""
    return record_first_loads(monkeypatch, building_load, "gridkit.io.subjects.buildings.first_load")


def _stored(session) -> list[tuple]:
    """Every building, with its id relative to the first and its point as EWKB: what both paths must agree on."""
    return [
        tuple(r)
        for r in session.execute(
            text(
                "SELECT id - min(id) OVER (), code, address, floors, encode(ST_AsEWKB(geom), 'hex'), "
                "ST_AsEWKT(footprint), base_cell_id FROM building ORDER BY id"
            )
        )
    ]


def _mixed_csv(path, n: int = 3000, holes: bool = True):
    """n buildings in and around the grid, with quotes, commas, empty and absent values (`holes`), or all of
    them inside the grid with every value given."""
    rng = np.random.default_rng(7)
    west, south = centre(0)
    rows = []
    for i in range(n):
        if holes:
            lon, lat = round(west - 0.002 + rng.random() * 0.01, 7), round(south - 0.002 + rng.random() * 0.006, 7)
        else:
            lon, lat = round(west - 0.0004 + rng.random() * 0.005, 7), round(south - 0.0004 + rng.random() * 0.002, 7)
        address = ("" if i % 11 == 0 else f'路{i}号, "东"') if i % 7 or not holes else None
        rows.append([f"K{i:05d}", address, "" if i % 5 == 0 and holes else str(i % 30 + 1), lon, lat])
    return write_csv(path, ["code", "address", "floors", "lon", "lat"], rows)


@pytest.mark.parametrize("holes", [True, False])
def test_a_first_load_writes_what_the_staging_path_writes(session, grid, tmp_path, monkeypatch, first_loads, holes):
    path = _mixed_csv(tmp_path / "b.csv", holes=holes)
    loaded = import_buildings(session, path)
    assert first_loads[0] is not None  # written by the first load
    first = _stored(session)
    session.execute(delete(Building))
    monkeypatch.setattr(building_load, "FIRST_LOAD_BYTES", 10**12)
    staged = import_buildings(session, path)
    assert first_loads[1] is None  # the staging path
    assert _stored(session) == first
    assert (loaded.created, loaded.assigned, loaded.unassigned) == (staged.created, staged.assigned, staged.unassigned)
    assert loaded.created == 3000 and (0 < loaded.unassigned < 3000 if holes else loaded.unassigned == 0)
    assert [(r["row"], r["code"]) for r in loaded.unassigned_rows] == [
        (r["row"], r["code"]) for r in staged.unassigned_rows
    ]
    # Each row's id is its line's: line k of the file is id k + offset, in both paths.
    assert all(r["row"] == int(r["code"][1:]) + 2 for r in loaded.unassigned_rows)  # header on line 1
    assert loaded.extra["footprints"] == 0
    # The sequence goes on after the file's ids: the next building gets the next id.
    assert session.scalar(text("SELECT nextval(pg_get_serial_sequence('building', 'id'))")) > session.scalar(
        select(func.max(Building.id))
    )


def test_a_first_load_assigns_footprints_by_the_cell_holding_most(session, grid, first_loads):
    result = import_buildings(session, DATA / "buildings_footprints.geojson")
    assert first_loads[0] is not None
    assert (result.created, result.assigned) == (3, 3) and result.extra["footprints"] == 3
    cells = dict(
        session.execute(text("SELECT b.code, c.code FROM building b JOIN base_cell c ON c.id = b.base_cell_id")).all()
    )
    assert cells["F002"] == cell_code(2, 1)  # 0.55 of it there, 0.05 next door


def test_bad_rows_in_a_first_load_are_all_reported_and_nothing_is_written(session, grid, tmp_path, first_loads):
    lon, lat = centre(0)
    path = write_csv(
        tmp_path / "bad.csv",
        ["code", "address", "floors", "lon", "lat"],
        [
            ["B1", "ok", "3", lon, lat],
            ["B1", "again", "3", lon, lat],  # line 3: duplicate code
            ["B4", "no coordinates", "", "", ""],  # line 4
            ["B8", "floors", "三层", lon, lat],  # line 5
        ],
    )
    error = refused(session, import_buildings, path)
    assert first_loads == [None]  # tried, rolled back, read again
    assert [(p["index"], p["kind"]) for p in error.problems] == [
        (3, "duplicate_code"),
        (4, "missing_coordinates"),
        (5, "bad_number"),
    ]


def test_a_code_repeated_in_a_clean_file_is_found_by_the_key_built_again(session, grid, tmp_path, first_loads):
    lon, lat = centre(0)
    rows = [[f"D{i}", "", "2", lon, lat] for i in range(50)] + [["D7", "twice", "2", lon, lat]]  # line 52
    error = refused(
        session, import_buildings, write_csv(tmp_path / "dup.csv", ["code", "address", "floors", "lon", "lat"], rows)
    )
    assert first_loads == [None]
    assert [(p["index"], p["kind"]) for p in error.problems] == [(52, "duplicate_code")]
    assert "first at line 9" in error.problems[0]["message"]
    assert session.scalar(select(func.count()).select_from(Building)) == 0


def test_a_table_with_buildings_is_not_a_first_load(session, grid, first_loads):
    buildings(session)
    error = refused(session, import_buildings, DATA / "buildings.csv")
    assert first_loads[-1] is None
    assert [p["kind"] for p in by_kind(error)["exists"]] == ["exists"] * 6


def test_an_import_into_a_table_with_buildings_leaves_other_writers_free(
    session, grid, tmp_path, first_loads, monkeypatch
):
    monkeypatch.setattr(building_load, "FIRST_LOAD_BYTES", 10**12)  # the buildings already there: no first load
    buildings(session)
    monkeypatch.setattr(building_load, "FIRST_LOAD_BYTES", 0)
    result = import_buildings(session, _mixed_csv(tmp_path / "b.csv", 30))
    assert first_loads[-1] is None and result.created == 30
    # Other transactions may go on writing buildings (the web) while a large file is imported.
    held = session.scalars(
        text("SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = CAST('building' AS regclass)")
    ).all()
    assert "ShareRowExclusiveLock" not in held and "RowExclusiveLock" in held


def test_a_first_load_before_any_edition_leaves_the_buildings_unassigned(session, tmp_path, first_loads):
    path = _mixed_csv(tmp_path / "b.csv", 200)
    result = import_buildings(session, path)
    assert first_loads[0] is not None
    assert (result.created, result.assigned, result.unassigned) == (200, 0, 200)
    assert session.scalar(select(func.count()).select_from(Building).where(Building.base_cell_id.is_(None))) == 200


def test_an_interrupted_first_load_leaves_nothing_and_a_rerun_works(fresh_settings, tmp_path):
    with db.transaction(fresh_settings) as session:
        make_base_grid(session)
    path = _mixed_csv(tmp_path / "b.csv", 150_000)
    assert path.stat().st_size >= building_load.FIRST_LOAD_BYTES
    # Interrupted while it COPYs into the building table itself.
    url = interrupt_import(fresh_settings, "buildings", path, "COPY building ")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM building").fetchone()[0] == 0
        # The indexes and keys the first load dropped are there again (the rollback brought them back).
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'building'")}
        assert {"uq_building_code", "idx_building_geom", "idx_building_footprint", "ix_building_base_cell_id"} <= names
    with db.transaction(fresh_settings) as session:
        result = import_buildings(session, path)
    assert result.created == 150_000
    with db.transaction(fresh_settings) as session:
        assert session.scalar(select(func.count()).select_from(Building)) == 150_000


def test_a_first_load_of_a_shapefile_drawn_in_a_projected_crs(session, grid, tmp_path, monkeypatch, first_loads):
    # Buildings as a surveying department draws them: a shapefile in EPSG:4547 whose .dbf is GBK with no .cpg.
    frame = pyogrio.read_dataframe(_mixed_csv(tmp_path / "b.csv", 800, holes=False))
    points = gpd.GeoDataFrame(
        {"code": frame["code"], "address": "深圳" + frame["address"], "floors": frame["floors"].astype(int)},
        geometry=gpd.points_from_xy(frame["lon"].astype(float), frame["lat"].astype(float)),
        crs=4490,
    ).to_crs(4547)
    shp = tmp_path / "b.shp"
    points.to_file(shp, encoding="gbk", engine="pyogrio")
    shp.with_suffix(".cpg").unlink(missing_ok=True)
    loaded = import_buildings(session, shp)
    assert first_loads[0] is not None and loaded.created == 800 and loaded.unassigned == 0
    first = _stored(session)
    assert {row[2] for row in first} == set(points["address"])  # the GBK text read right
    session.execute(delete(Building))
    monkeypatch.setattr(building_load, "FIRST_LOAD_BYTES", 10**12)
    staged = import_buildings(session, shp)
    assert first_loads[1] is None and _stored(session) == first
    assert (staged.created, staged.assigned) == (loaded.created, loaded.assigned)
