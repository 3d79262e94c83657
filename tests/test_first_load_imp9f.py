"""A first load into an empty subject table truncates it in the import's transaction (gridkit.spatial.bulk,
migration 20261204_imp9f), as the application role; repeated keys are found by the table's UNIQUE key."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from gridkit.io.subjects import SubjectImportRefused, import_buildings, import_residents
from gridkit.spatial import bulk
from tests.data.make_subject_files import centre, many_residents_csv
from tests.factories import make_base_grid
from tests.factories_app_role import app_role_engine, rolled_back_session, statements_run

KEY = b"test-personal-data-key"
DBNAME = "gridkit_imp9f_app"
ROWS = 300


@pytest.fixture(scope="module")
def app_engine(pg_server):
    with app_role_engine(pg_server, DBNAME, port=5492) as engine:
        yield engine


@pytest.fixture
def app_session(app_engine):
    with rolled_back_session(app_engine) as session:
        yield session


@pytest.fixture
def bulk_rows(monkeypatch):
    """Small files take the bulk path (indexes rebuilt, and the truncation of an empty table)."""
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 100)


def _buildings_csv(path: Path, n: int = ROWS) -> Path:
    lines = ["code,address,floors,lon,lat"]
    for i in range(n):
        lon, lat = centre(i % 3, (i // 3) % 3)
        lines.append(f"B{i:05d},测试路{i}号,{1 + i % 30},{lon},{lat}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _residents_in_buildings_csv(path: Path, n: int = ROWS) -> Path:
    """n residents, each in building B{i}: the lon/lat file of many_residents_csv with a building code instead."""
    rows = many_residents_csv(path.with_suffix(".lonlat.csv"), n).read_text(encoding="utf-8").splitlines()[1:]
    lines = ["id_number,name,phone,population_type,household,building_code"]
    for i, row in enumerate(rows):
        id_number, name, phone, kind = row.split(",")[:4]
        lines.append(f"{id_number},{name},{phone},{kind},H{i // 3},B{i:05d}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _shape(session, table: str) -> dict:
    """Everything declared on `table` that a load must leave as it was: indexes, constraints, grants,
    triggers, storage options."""
    return {
        "indexes": sorted(session.scalars(text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": table})),
        "constraints": session.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:t AS regclass) ORDER BY conname"
            ),
            {"t": table},
        ).all(),
        "grants": session.execute(
            text(
                "SELECT relacl::text, reloptions::text, relowner::regrole::text FROM pg_class "
                "WHERE oid = CAST(:t AS regclass)"
            ),
            {"t": table},
        ).one(),
        "triggers": sorted(
            session.scalars(
                text(
                    "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                    "WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal"
                ),
                {"t": table},
            )
        ),
    }


def _filenode(session, table: str) -> int:
    return session.scalar(text("SELECT pg_relation_filenode(CAST(:t AS regclass))"), {"t": table})


def _truncations(statements: list[str]) -> int:
    return sum("gridkit_truncate_for_load" in s for s in statements)


def test_a_first_load_truncates_the_empty_tables_and_leaves_them_as_declared(
    app_session, app_engine, tmp_path, bulk_rows
):
    make_base_grid(app_session)
    shapes = {t: _shape(app_session, t) for t in ("building", "resident")}
    files = {t: _filenode(app_session, t) for t in ("building", "resident", "resident_split_household")}
    with statements_run(app_engine) as statements:
        result = import_buildings(app_session, _buildings_csv(tmp_path / "b.csv"))
    assert (result.created, result.assigned) == (ROWS, ROWS)
    # The empty table and the empty table referring to it were given new storage in this transaction.
    assert _truncations(statements) == 1
    assert _filenode(app_session, "building") != files["building"]
    assert _filenode(app_session, "resident") != files["resident"]
    with statements_run(app_engine) as statements:
        result = import_residents(app_session, _residents_in_buildings_csv(tmp_path / "r.csv"), pii_key=KEY)
    assert (result.created, result.assigned) == (ROWS, ROWS)
    # resident (with resident_cell, which refers to it), then resident_cell again by its own bulk write.
    assert _truncations(statements) == 2
    # The summary's tables too (derived from the residents: empty when they are), then rebuilt.
    assert _filenode(app_session, "resident_split_household") != files["resident_split_household"]
    assert {t: _shape(app_session, t) for t in shapes} == shapes
    joined = app_session.scalar(
        text(
            "SELECT count(*) FROM resident r JOIN building b "
            "ON b.id = r.building_id AND r.name = '居民' || substr(b.code, 2)::int"
        )
    )
    assert joined == ROWS
    # The summary was rebuilt whole (every cell is new) and counts them all.
    assert app_session.scalar(text("SELECT sum(residents) FROM resident_cell_summary")) == ROWS
    assert app_session.scalar(text("SELECT count(*) FROM resident_split_household")) > 0  # H0 … in 3 cells each
    # Statistics of the columns joined, grouped and checked on; the others wait for autovacuum's ANALYZE.
    analyzed = set(app_session.scalars(text("SELECT attname FROM pg_stats WHERE tablename = 'resident'")))
    assert {"id", "id_number_hash", "household", "building_id"} <= analyzed
    assert not analyzed & {"name", "phone", "geom"}
    # A second import into the table that has rows now: the ordinary path, same storage, rows added.
    files = {t: _filenode(app_session, t) for t in ("building", "resident", "resident_split_household")}
    with statements_run(app_engine) as statements:
        result = import_residents(app_session, many_residents_csv(tmp_path / "more.csv", ROWS, start=ROWS), pii_key=KEY)
    assert (result.created, result.assigned) == (ROWS, ROWS)
    assert _truncations(statements) == 0
    # Still rebuilt once (as many rows again): resident's indexes and resident_cell's.
    assert sum("gridkit_drop_bulk_indexes" in s for s in statements) == 2
    assert {t: _filenode(app_session, t) for t in files} == files
    assert app_session.scalar(text("SELECT count(*) FROM resident")) == 2 * ROWS
    # Ids reserved in file order (no sort): consecutive, in the files' order, and the sequence goes on after them.
    names = app_session.scalars(text("SELECT name FROM resident ORDER BY id")).all()
    assert names == [f"居民{i}" for i in range(2 * ROWS)]
    last = app_session.scalar(text("SELECT max(id) - min(id) + 1 FROM resident"))
    assert last == 2 * ROWS
    following = app_session.scalar(
        text("SELECT nextval(pg_get_serial_sequence('resident', 'id')) - (SELECT max(id) FROM resident)")
    )
    assert following == 1
    assert {t: _shape(app_session, t) for t in shapes} == shapes


def _rows(session, table: str) -> list:
    """The table's rows as JSON, ids counted from the first (a rolled back load still used its ids)."""
    return session.scalars(
        text(
            f"SELECT to_jsonb(t) - 'created_at' || jsonb_build_object('id', id - min(id) OVER (), "  # noqa: S608
            "'building_id', building_id - (SELECT min(id) FROM building)) "
            f"FROM {table} t ORDER BY id"
        )
        if table == "resident"
        else text(
            f"SELECT to_jsonb(t) - 'created_at' || jsonb_build_object('id', id - min(id) OVER ()) "  # noqa: S608
            f"FROM {table} t ORDER BY id"
        )
    ).all()


def test_the_rows_are_those_of_the_ordinary_path(app_session, tmp_path, monkeypatch):
    make_base_grid(app_session)
    files = (_buildings_csv(tmp_path / "b.csv"), _residents_in_buildings_csv(tmp_path / "r.csv"))
    loaded = {}
    for rows_for_bulk in (100, 10**9):  # the first load's path, then the ordinary row-by-row insert
        monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", rows_for_bulk)
        savepoint = app_session.begin_nested()
        before = _filenode(app_session, "building")
        import_buildings(app_session, files[0])
        import_residents(app_session, files[1], pii_key=KEY)
        assert (_filenode(app_session, "building") != before) == (rows_for_bulk == 100)
        loaded[rows_for_bulk] = [
            _rows(app_session, "building"),
            _rows(app_session, "resident"),
            app_session.execute(text("SELECT * FROM resident_cell_summary ORDER BY base_cell_id")).all(),
            app_session.execute(text("SELECT * FROM resident_split_household ORDER BY 1, 2")).all(),
        ]
        savepoint.rollback()
    assert len(loaded[100][0]) == len(loaded[100][1]) == ROWS
    assert sum(row.residents for row in loaded[100][2]) == ROWS and loaded[100][3]
    assert loaded[100] == loaded[10**9]


def test_a_repeated_id_on_the_last_row_writes_nothing(app_session, app_engine, tmp_path, bulk_rows):
    make_base_grid(app_session)
    shape, file = _shape(app_session, "resident"), _filenode(app_session, "resident")
    good = many_residents_csv(tmp_path / "good.csv", ROWS)
    lines = good.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines, lines[1].replace("居民0,", "居民again,")]) + "\n", encoding="utf-8")
    with statements_run(app_engine) as statements, pytest.raises(SubjectImportRefused) as refused:
        import_residents(app_session, bad, pii_key=KEY)
    # The table was truncated (resident, then resident_cell by its own bulk write) and loaded, then its UNIQUE
    # key refused the rows: all rolled back.
    assert _truncations(statements) == 2
    problems = refused.value.problems
    assert [(p["kind"], p["index"]) for p in problems] == [("duplicate_id", ROWS + 2)]
    assert "line 2" in problems[0]["message"] and "line 302" in problems[0]["message"]
    assert app_session.scalar(text("SELECT count(*) FROM resident")) == 0
    assert _filenode(app_session, "resident") == file
    assert _shape(app_session, "resident") == shape
    # The good file then loads; its keys were not searched for repeats before the write.
    with statements_run(app_engine) as statements:
        result = import_residents(app_session, good, pii_key=KEY)
    assert result.created == ROWS
    assert not any("WITH repeated" in s for s in statements)
    assert _shape(app_session, "resident") == shape


def test_repeated_ids_are_reported_with_the_other_problems(app_session, tmp_path, bulk_rows):
    make_base_grid(app_session)
    lines = many_residents_csv(tmp_path / "good.csv", ROWS, bad_last=True).read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:-1], lines[1], lines[-1]]) + "\n", encoding="utf-8")
    with pytest.raises(SubjectImportRefused) as refused:
        import_residents(app_session, bad, pii_key=KEY)
    assert [(p["kind"], p["index"]) for p in refused.value.problems] == [
        ("duplicate_id", ROWS + 1),
        ("bad_id_number", ROWS + 2),
    ]


def test_the_truncation_only_empties_empty_tables(app_session, app_engine, tmp_path, bulk_rows):
    with pytest.raises(Exception, match="only for gridkit's subject tables"):
        with app_session.begin_nested():
            app_session.execute(text("SELECT gridkit_truncate_for_load('audit_log'::regclass)"))
    make_base_grid(app_session)
    # A resident without a building: the building table is empty, the table referring to it is not.
    import_residents(app_session, many_residents_csv(tmp_path / "r.csv", 1), pii_key=KEY)
    assert app_session.scalar(text("SELECT gridkit_truncate_for_load('building'::regclass)")) is False
    assert app_session.scalar(text("SELECT gridkit_truncate_for_load('resident'::regclass)")) is False
    assert app_session.scalar(text("SELECT count(*) FROM resident")) == 1
    file = _filenode(app_session, "building")
    with statements_run(app_engine) as statements:
        result = import_buildings(app_session, _buildings_csv(tmp_path / "b.csv"))
    assert result.created == ROWS
    assert _truncations(statements) == 1  # asked, and refused: the ordinary path
    assert _filenode(app_session, "building") == file
    assert app_session.scalar(text("SELECT count(*) FROM resident")) == 1


def test_a_table_referring_to_it_in_use_elsewhere_is_not_waited_for(app_session, app_engine):
    with app_engine.connect() as other:
        assert other.scalar(text("SELECT count(*) FROM resident")) == 0  # its transaction holds a lock on resident
        assert app_session.scalar(text("SELECT gridkit_truncate_for_load('building'::regclass)")) is False
        other.rollback()
    assert app_session.scalar(text("SELECT gridkit_truncate_for_load('building'::regclass)")) is True


def test_no_truncation_outside_read_committed(app_engine):
    # A snapshot taken earlier could hide rows committed since: TRUNCATE is not MVCC-safe, so never there.
    with app_engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        assert conn.scalar(text("SELECT count(*) FROM building")) == 0
        assert conn.scalar(text("SELECT gridkit_truncate_for_load('building'::regclass)")) is False
        conn.rollback()
