"""A first load of residents (gridkit.io.subjects.resident_load): one COPY straight into the empty table and one
into resident_cell, the same rows, ids, cells and reports as the staging path; any problem falls back to that
path, which reports every one."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import psycopg
import pytest
from sqlalchemy import delete, func, select, text

from gridkit import db
from gridkit.io.subjects import import_residents, resident_load
from gridkit.models import Resident
from gridkit.standard.ids import citizen_id_check_char
from tests.data.make_subject_files import centre, citizen_id, phone
from tests.factories import make_base_grid
from tests.factories_import_subjects import (
    buildings,
    grid,  # noqa: F401 - fixtures used by name
    record_first_loads,
    refused,
    write_csv,
)
from tests.factories_interrupt import interrupt_import

KEY = b"test-personal-data-key"
HEADER = ["id_number", "name", "phone", "population_type", "household", "building_code", "lon", "lat"]


@pytest.fixture
def first_loads(monkeypatch) -> list:
    """Every file is large enough for a first load; the list collects what each `first_load` returned."""
    return record_first_loads(monkeypatch, resident_load, "gridkit.io.subjects.residents.first_load")


def _stored(session) -> list[tuple]:
    """Every resident with its cell, its id relative to the first and its point as EWKB: what both paths must
    agree on."""
    return [
        tuple(r)
        for r in session.execute(
            text(
                "SELECT r.id - min(r.id) OVER (), r.id_number_hash, r.id_number_masked, r.birth_date, r.name, "
                "r.phone, r.household, r.population_type, b.code, encode(ST_AsEWKB(r.geom), 'hex'), c.base_cell_id "
                "FROM resident r LEFT JOIN building b ON b.id = r.building_id "
                "LEFT JOIN resident_cell c ON c.resident_id = r.id ORDER BY r.id"
            )
        )
    ]


def _summary(session) -> list:
    return [
        session.execute(text("SELECT * FROM resident_cell_summary ORDER BY base_cell_id")).all(),
        session.execute(text("SELECT * FROM resident_split_household ORDER BY 1, 2")).all(),
    ]


def _id(i: int) -> str:
    """A valid citizen ID, one per i (1000 per birth day from 1950); a check character X is sometimes lower-case
    (the rows checked one by one)."""
    day = datetime(1950, 1, 1).toordinal() + i // 1000
    first17 = f"440304{datetime.fromordinal(day):%Y%m%d}{i % 1000:03d}"
    check = citizen_id_check_char(first17)
    return first17 + (check.lower() if check == "X" and i % 2 else check)


def _mixed_csv(path, n: int = 3000, codes: bool = True, holes: bool = True):
    """n residents, in buildings B001-B006 (`codes`: one in three; B006 outside the grid) or at points in and
    around the grid (`holes`) or inside it, with quotes, commas, empty values, landlines and Chinese population
    types."""
    rng = np.random.default_rng(9)
    west, south = centre(0)
    rows = []
    for i in range(n):
        if holes:
            lon, lat = round(west - 0.002 + rng.random() * 0.01, 7), round(south - 0.002 + rng.random() * 0.006, 7)
        else:
            lon, lat = round(west - 0.0004 + rng.random() * 0.005, 7), round(south - 0.0004 + rng.random() * 0.002, 7)
        building = f"B00{i // 3 % 6 + 1}" if codes and i % 3 == 0 else ""
        if building and i % 2:
            lon, lat = "", ""  # in a building, with no point of its own
        number = "0755-83001234" if i % 13 == 0 else ("" if i % 5 == 0 else phone(i))
        kind = ("registered", "floating", "户籍", "流动")[i % 4]
        name = f'居民{i}, "甲"' if i % 7 == 0 else f"居民{i}"
        rows.append([_id(i), name, number, kind, "" if i % 4 == 0 else f"H{i // 3}", building, lon, lat])
    header = HEADER if codes else [h for h in HEADER if h != "building_code"]
    if not codes:
        rows = [row[:5] + row[6:] for row in rows]
    return write_csv(path, header, rows)


def _counts(result) -> tuple:
    return (
        result.created,
        result.assigned,
        result.unassigned,
        [(r["row"], r["code"]) for r in result.unassigned_rows],
        result.extra,
    )


@pytest.mark.parametrize(
    ("codes", "holes", "n"),
    [(True, True, 3000), (False, True, 3000), (True, False, 3000), (False, True, 600), (True, True, 600)],
)
def test_a_first_load_writes_what_the_staging_path_writes(
    session, grid, tmp_path, monkeypatch, first_loads, codes, holes, n
):
    buildings(session)
    path = _mixed_csv(tmp_path / "r.csv", n, codes=codes, holes=holes)
    loaded = import_residents(session, path, pii_key=KEY)
    assert first_loads[0] is not None  # written by the first load
    first, summary = _stored(session), _summary(session)
    session.execute(delete(Resident))
    monkeypatch.setattr(resident_load, "FIRST_LOAD_BYTES", 10**12)
    staged = import_residents(session, path, pii_key=KEY)
    assert first_loads[1] is None  # the staging path
    assert _stored(session) == first
    assert _summary(session) == summary and sum(row.residents for row in summary[0]) == loaded.assigned
    assert _counts(loaded) == _counts(staged)
    # Outside the grid: points (`holes`), or building B006.
    assert loaded.created == n and 0 < loaded.unassigned < n
    assert loaded.extra == {"registered": n // 2, "floating": n // 2, "in_buildings": -(-n // 3) if codes else 0}
    # Each row's id is its line's: line k of the file is id k + offset, in both paths.
    first_id = session.scalar(select(func.min(Resident.id)))
    assert all(
        r["id"] - r["row"] == loaded.unassigned_rows[0]["id"] - loaded.unassigned_rows[0]["row"]
        for r in loaded.unassigned_rows
    )
    assert staged.unassigned_rows[0]["id"] - staged.unassigned_rows[0]["row"] == first_id - 2  # header on line 1
    # The sequence goes on after the file's ids: the next resident gets the next id.
    assert session.scalar(text("SELECT nextval(pg_get_serial_sequence('resident', 'id'))")) > session.scalar(
        select(func.max(Resident.id))
    )


def test_bad_rows_in_a_first_load_are_all_reported_and_nothing_is_written(session, grid, tmp_path, first_loads):
    buildings(session)
    lon, lat = centre(0)
    bad = citizen_id(2)[:-1] + ("0" if citizen_id(2)[-1] != "0" else "1")
    path = write_csv(
        tmp_path / "bad.csv",
        HEADER,
        [
            [citizen_id(1), "甲", phone(1), "registered", "H1", "B001", "", ""],
            [bad, "乙", phone(2), "registered", "H1", "B001", "", ""],  # line 3
            [citizen_id(1), "丙", phone(3), "floating", "H2", "", lon, lat],  # line 4: the ID of line 2
            [citizen_id(4), "丁", phone(4), "floating", "H2", "B999", "", ""],  # line 5
            [citizen_id(5), "戊", "12345", "floating", "H2", "", lon, lat],  # line 6
        ],
    )
    error = refused(session, import_residents, path, pii_key=KEY)
    assert first_loads == [None]  # tried, rolled back, read again
    assert sorted((p["index"], p["kind"]) for p in error.problems) == [
        (3, "bad_id_number"),
        (4, "duplicate_id"),
        (5, "unknown_building"),
        (6, "bad_phone"),
    ]
    assert session.scalar(select(func.count()).select_from(Resident)) == 0


def test_a_row_naming_a_building_by_its_address_is_read_the_usual_way(session, grid, tmp_path, first_loads):
    buildings(session)
    path = write_csv(
        tmp_path / "address.csv",
        ["id_number", "name", "population_type", "building_address"],
        [[citizen_id(i), f"居民{i}", "registered", "园岭街道红荔路2号"] for i in range(1, 4)],
    )
    result = import_residents(session, path, pii_key=KEY)
    assert first_loads == [None]
    assert (result.created, result.assigned) == (3, 3)
    assert session.scalar(select(func.count()).select_from(Resident).where(Resident.building_id.is_not(None))) == 3


def test_an_id_repeated_in_a_clean_file_is_found_by_the_key_built_again(session, grid, tmp_path, first_loads):
    lon, lat = centre(0)
    rows = [[_id(i), f"居民{i}", "", "registered", "", "", lon, lat] for i in range(50)]
    rows.append([_id(7), "又一个", "", "floating", "", "", lon, lat])  # line 52
    error = refused(session, import_residents, write_csv(tmp_path / "dup.csv", HEADER, rows), pii_key=KEY)
    assert first_loads == [None]
    assert [(p["index"], p["kind"]) for p in error.problems] == [(52, "duplicate_id")]
    assert "line 9" in error.problems[0]["message"]
    assert session.scalar(select(func.count()).select_from(Resident)) == 0
    assert session.scalar(text("SELECT count(*) FROM resident_cell")) == 0


def test_a_table_with_residents_is_not_a_first_load(session, grid, tmp_path, first_loads):
    import_residents(session, _mixed_csv(tmp_path / "a.csv", 30, codes=False), pii_key=KEY)
    assert first_loads[0] is not None
    lon, lat = centre(1)
    path = write_csv(tmp_path / "b.csv", HEADER, [[_id(i), "新", "", "registered", "", "", lon, lat] for i in (5, 40)])
    error = refused(session, import_residents, path, pii_key=KEY)
    assert first_loads[1] is None
    assert [(p["index"], p["kind"]) for p in error.problems] == [(2, "exists")]
    result = import_residents(
        session, write_csv(tmp_path / "c.csv", HEADER, [[_id(40), "新", "", "流动", "", "", lon, lat]]), pii_key=KEY
    )
    assert first_loads[2] is None and (result.created, result.assigned) == (1, 1)


def test_an_import_into_a_table_with_residents_does_not_lock_it(session, grid, tmp_path, first_loads):
    session.add(
        Resident(
            id_number_hash="0" * 64, id_number_masked="4403**********0000", name="早", population_type="registered"
        )
    )
    session.flush()
    result = import_residents(session, _mixed_csv(tmp_path / "r.csv", 30, codes=False), pii_key=KEY)
    assert first_loads == [None] and result.created == 30
    # Other transactions may go on writing residents (the web) while a large file is imported.
    held = session.scalars(
        text("SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = CAST('resident' AS regclass)")
    ).all()
    assert "ShareRowExclusiveLock" not in held and "RowExclusiveLock" in held


def test_a_first_load_before_any_edition_leaves_the_residents_unassigned(session, tmp_path, first_loads):
    path = _mixed_csv(tmp_path / "r.csv", 200, codes=False)
    result = import_residents(session, path, pii_key=KEY)
    assert first_loads[0] is not None
    assert (result.created, result.assigned, result.unassigned) == (200, 0, 200)
    assert [r["row"] for r in result.unassigned_rows] == list(range(2, 2 + len(result.unassigned_rows)))
    assert session.scalar(text("SELECT count(*) FROM resident_cell")) == 0


def test_an_interrupted_first_load_leaves_nothing_and_a_rerun_works(fresh_settings, tmp_path):
    with db.transaction(fresh_settings) as session:
        make_base_grid(session)
    path = _mixed_csv(tmp_path / "r.csv", 150_000, codes=False)
    assert path.stat().st_size >= resident_load.FIRST_LOAD_BYTES
    # Interrupted while it COPYs into the resident table itself.
    url = interrupt_import(fresh_settings, "residents", path, "COPY resident ")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM resident").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM resident_cell").fetchone()[0] == 0
        # The indexes and keys the first load dropped are there again (the rollback brought them back).
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'resident'")}
        assert "uq_resident_id_number_hash" in names and len(names) >= 5
    with db.transaction(fresh_settings) as session:
        result = import_residents(session, path, pii_key=KEY)
    assert result.created == 150_000 and result.assigned > 0
    with db.transaction(fresh_settings) as session:
        assert session.scalar(select(func.count()).select_from(Resident)) == 150_000
        assert session.scalar(text("SELECT count(*) FROM resident_cell")) == result.assigned


def test_a_first_load_of_a_gbk_file_with_chinese_headers_and_crlf(session, grid, tmp_path, monkeypatch, first_loads):
    # A register saved by Chinese Excel: GBK text, Chinese column names, CRLF line ends. Same rows as UTF-8.
    buildings(session)
    utf8 = _mixed_csv(tmp_path / "r.csv", 3000)
    chinese = {"id_number": "身份证号", "name": "姓名", "phone": "联系电话", "population_type": "人口类型"}
    chinese |= {"household": "户号", "building_code": "建筑编码", "lon": "经度", "lat": "纬度"}
    lines = utf8.read_text(encoding="utf-8").splitlines()
    header = ",".join(chinese[name] for name in lines[0].split(","))
    gbk = tmp_path / "r_gbk.csv"
    gbk.write_bytes("\r\n".join([header, *lines[1:]]).encode("gbk") + b"\r\n")
    from_gbk = import_residents(session, gbk, pii_key=KEY)
    assert first_loads[0] is not None and from_gbk.source["encoding"].upper() in ("GB18030", "GBK")
    stored = _stored(session)
    session.execute(delete(Resident))
    from_utf8 = import_residents(session, utf8, pii_key=KEY)
    assert first_loads[1] is not None
    assert _stored(session) == stored and _counts(from_utf8) == _counts(from_gbk)
