"""A residents import finds each row's building on the client (gridkit.io.subjects.building_codes), and the bulk
restore re-adds a foreign key to a large table by merging (migration 20261204_imp9g)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gridkit.io import tables
from gridkit.io.subjects import SubjectImportRefused, building_codes, import_residents
from gridkit.io.subjects.building_codes import BuildingCodes
from gridkit.spatial import bulk
from tests.data.make_subject_files import centre, many_residents_csv
from tests.factories import make_base_grid

KEY = b"test-personal-data-key"


def _buildings(session, codes: list[str]) -> dict[str, tuple[int, int | None]]:
    """Store buildings with these codes (the first one outside every cell); return {code: (id, base cell)}."""
    found = {}
    for i, code in enumerate(codes):
        lon, lat = (100.0, 10.0) if i == 0 else centre(i % 3, (i // 3) % 3)
        session.execute(
            text(
                "INSERT INTO building (code, geom, base_cell_id) VALUES (:c, ST_SetSRID(ST_MakePoint(:x, :y), 4490), "
                "(SELECT id FROM base_cell WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490)) "
                " ORDER BY code LIMIT 1))"
            ),
            {"c": code, "x": lon, "y": lat},
        )
    for row in session.execute(text("SELECT code, id, base_cell_id FROM building")):
        found[row.code] = (row.id, row.base_cell_id)
    return found


def test_codes_are_found_byte_for_byte(session):
    make_base_grid(session)
    stored = _buildings(session, ["OUT", "B1", "B10", "楼栋-7", "B2" + "x" * 30, "b1"])
    lookup = BuildingCodes()
    lookup.load(session)
    asked = ["B1", None, "B10", "B100", "B", "楼栋-7", "B1 ", "b1", "B1\x00", "", "OUT", "B2" + "x" * 30, "y" * 41]
    ids, cells = lookup.find(pa.array(asked, pa.string()))
    expected = [stored.get(code, (0, 0)) if code is not None else (0, 0) for code in asked]
    assert list(zip(ids.tolist(), cells.tolist())) == [(i, c or 0) for i, c in expected]
    assert stored["OUT"][1] is None and ids[10] == stored["OUT"][0] and cells[10] == 0
    assert (ids != 0).sum() == 6


def test_many_codes_sharing_slots_are_all_found(session):
    # 20,000 codes of varied lengths in 32,768 slots: many searches step past other codes' slots.
    session.execute(
        text(
            "INSERT INTO building (code, geom) SELECT repeat('x', i % 13) || i, "
            "ST_SetSRID(ST_MakePoint(114.0, 22.5), 4490) FROM generate_series(1, 20000) i"
        )
    )
    stored = dict(session.execute(text("SELECT code, id FROM building")).all())
    lookup = BuildingCodes()
    lookup.load(session)
    asked = [*stored, *(f"{code}y" for code in list(stored)[:500]), *(str(i) for i in range(20001, 21000))]
    ids, _ = lookup.find(pa.array(asked, pa.string()))
    assert ids.tolist() == [stored.get(code, 0) for code in asked]


def test_buildings_read_in_slices_are_all_found(session, monkeypatch):
    """The buildings are read a slice at a time in id order (the client's memory flat in the buildings): slices of
    7 over ids with gaps, codes of varied lengths; a slice read after buildings were added or given longer codes
    since the count (the arrays grown, the keys made again at the new width)."""
    monkeypatch.setattr(building_codes, "SLICE_BUILDINGS", 7)
    session.execute(
        text(
            "INSERT INTO building (code, geom) SELECT repeat('x', i % 11) || i, "
            "ST_SetSRID(ST_MakePoint(114.0, 22.5), 4490) FROM generate_series(1, 100) i"
        )
    )
    session.execute(text("DELETE FROM building WHERE id % 3 = 0 OR id BETWEEN 40 AND 60"))
    stored = dict(session.execute(text("SELECT code, id FROM building")).all())
    lookup = BuildingCodes()
    lookup.load(session)
    asked = [*stored, "x3", "xxx33", *(f"{code}y" for code in stored)]
    ids, _ = lookup.find(pa.array(asked, pa.string()))
    assert ids.tolist() == [stored.get(code, 0) for code in asked] and (ids != 0).sum() == len(stored)

    columns = building_codes._Columns(2, 3)
    for first in (0, 3):
        codes = [f"B{i}" if first == 0 else f"B{i}" + "y" * 20 for i in range(first, first + 3)]
        lengths = np.array([len(code) for code in codes], np.int32)
        numbers = np.arange(first + 1, first + 4, dtype=np.int32)
        columns.add("".join(codes).encode(), lengths, numbers, numbers * 10)
    keys, hashes, ids, cells = columns.done()
    assert columns.width == 24 and [key.decode() for key in keys] == [
        "B0",
        "B1",
        "B2",
        *(f"B{i}" + "y" * 20 for i in (3, 4, 5)),
    ]
    assert ids.tolist() == [1, 2, 3, 4, 5, 6] and cells.tolist() == [10, 20, 30, 40, 50, 60]
    assert hashes.tolist() == building_codes._hash(keys).tolist()


def test_no_buildings_finds_nothing(session):
    lookup = BuildingCodes()
    lookup.load(session)
    ids, cells = lookup.find(pa.array(["B1", None], pa.string()))
    assert ids.tolist() == [0, 0] and cells.tolist() == [0, 0]


def _residents_csv(path, codes: list[str]):
    rows = many_residents_csv(path.with_suffix(".lonlat.csv"), len(codes)).read_text(encoding="utf-8").splitlines()
    lines = ["id_number,name,phone,population_type,building_code"]
    for row, code in zip(rows[1:], codes, strict=True):
        lines.append(",".join([*row.split(",")[:4], code]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_each_resident_gets_its_buildings_id_and_cell(session, tmp_path, monkeypatch):
    make_base_grid(session)
    stored = _buildings(session, ["OUT", *(f"B{i}" for i in range(1, 9))])
    codes = [f"B{1 + i % 8}" if i % 10 else "OUT" for i in range(300)]
    monkeypatch.setattr(tables, "CHUNK_ROWS", 7)  # many chunks: the buildings are read before the first one only
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 100)  # the first load's path (ids in file order)
    result = import_residents(session, _residents_csv(tmp_path / "r.csv", codes), pii_key=KEY)
    assert result.created == 300 and result.unassigned == 30
    assert [r["row"] for r in result.unassigned_rows] == list(range(2, 302, 10))
    got = session.execute(
        text("SELECT r.building_id, c.base_cell_id FROM resident r LEFT JOIN resident_cell c ON c.resident_id = r.id")
    ).all()
    assert sorted(got, key=str) == sorted(((stored[code][0], stored[code][1]) for code in codes), key=str)


def test_unknown_codes_are_reported_on_their_lines_in_any_chunk(session, tmp_path, monkeypatch):
    make_base_grid(session)
    _buildings(session, ["OUT", "B1", "B2"])
    codes = ["B1"] * 20
    codes[3], codes[17] = "B3", "b1"
    monkeypatch.setattr(tables, "CHUNK_ROWS", 5)
    with pytest.raises(SubjectImportRefused) as refused:
        import_residents(session, _residents_csv(tmp_path / "r.csv", codes), pii_key=KEY)
    problems = refused.value.problems
    assert [(p["kind"], p["index"], p["field"]) for p in problems] == [
        ("unknown_building", 5, "building_code"),
        ("unknown_building", 19, "building_code"),
    ]
    assert "B3" in problems[0]["message"] and "b1" in problems[1]["message"]
    assert session.scalar(text("SELECT count(*) FROM resident")) == 0


@pytest.mark.as_owner(
    "ANALYZE of the test's 100,000 buildings and a read of gridkit_private's bookkeeping are the owner's"
)
def test_a_key_to_a_large_table_is_still_checked_by_the_restore(session, monkeypatch):
    make_base_grid(session)
    session.execute(
        text(
            "INSERT INTO building (code, geom) SELECT 'L' || i, ST_SetSRID(ST_MakePoint(114.0, 22.5), 4490) "
            "FROM generate_series(1, 100000) i"
        )
    )
    session.execute(text("ANALYZE building"))  # 100,000 rows by its statistics: the merge join
    some = session.scalar(text("SELECT max(id) FROM building"))
    resident = (
        "INSERT INTO resident (id_number_hash, id_number_masked, name, population_type, building_id) "
        "VALUES (:h, '4403**********0000', 'x', 'registered', :b)"
    )
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 1)
    indexes = "SELECT count(*) FROM pg_indexes WHERE tablename = 'resident'"
    before = session.scalar(text(indexes))
    with bulk.rebuilt_indexes(session, "resident", 1):
        session.execute(text(resident), {"h": "a" * 64, "b": some})
    assert session.scalar(text(indexes)) == before
    assert session.scalar(text("SELECT count(*) FROM gridkit_private.bulk_dropped_index")) == 0
    savepoint = session.begin_nested()
    with pytest.raises(IntegrityError, match="fk_resident_building_id_building"):
        with bulk.rebuilt_indexes(session, "resident", 1):
            session.execute(text(resident), {"h": "b" * 64, "b": some + 1})
    savepoint.rollback()
    assert session.scalar(text(indexes)) == before
