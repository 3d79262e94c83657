"""The resident summary grouped on the client (gridkit.reports.resident_summary_rows), as a residents' first load
writes it: the same tables as the SQL rebuild (`resident_summary.refresh`), on random households split over cells."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import text

from gridkit.io.subjects import import_residents, resident_load
from gridkit.reports import resident_summary
from gridkit.reports.resident_summary_rows import summary_pairs, summary_rows, write_summary_rows
from tests.data.make_subject_files import centre, phone
from tests.factories import make_base_grid
from tests.factories_import_subjects import grid, record_first_loads, write_csv  # noqa: F401 - fixture by name
from tests.test_import_residents_first_load_imp9h import _id

KEY = b"test-personal-data-key"
# Households that differ only in case, spaces or bytes that COPY's text format would escape, Chinese, empty, none.
_ODD = ["h1", "H1", "H1 ", " H1", "a\tb", "a\\b", "户口甲", "户口乙", "", None]


def _tables(session) -> tuple[list, list]:
    return (
        [tuple(r) for r in session.execute(text("SELECT * FROM resident_cell_summary ORDER BY base_cell_id"))],
        [tuple(r) for r in session.execute(text("SELECT * FROM resident_split_household ORDER BY 1, 2"))],
    )


def _add_random(session, rng, cells: list[int], n: int) -> None:
    """n residents in random households (some split over cells, some unassigned), set-based."""
    households = [
        _ODD[i] if i < len(_ODD) else f"H{i}" for i in rng.integers(0, max(len(_ODD) + 1, n // 3), n).tolist()
    ]
    kinds = rng.choice(["registered", "floating"], n).tolist()
    where = [int(c) if rng.random() < 0.9 else None for c in rng.choice(cells, n)]
    session.execute(
        text(
            "WITH v AS (SELECT * FROM unnest(CAST(:h AS text[]), CAST(:k AS text[]), CAST(:c AS int[])) "
            "  WITH ORDINALITY AS v(household, kind, cell, n)), "
            "r AS (INSERT INTO resident (id_number_hash, id_number_masked, name, household, population_type) "
            "  SELECT 'imp9j-' || n, '4403**********123X', '居民', household, kind FROM v ORDER BY n "
            "  RETURNING id, id_number_hash) "
            "INSERT INTO resident_cell (resident_id, base_cell_id) "
            "SELECT r.id, v.cell FROM r JOIN v ON r.id_number_hash = 'imp9j-' || v.n WHERE v.cell IS NOT NULL"
        ),
        {"h": households, "k": kinds, "c": where},
    )


def _rows_of_stored(session):
    """The summary's rows grouped on the client from the stored residents' cells, households and types."""
    stored = session.execute(
        text(
            "SELECT coalesce(c.base_cell_id, 0), r.household, r.population_type FROM resident r "
            "LEFT JOIN resident_cell c ON c.resident_id = r.id ORDER BY r.id"
        )
    ).all()
    cells = np.array([row[0] for row in stored], dtype=np.int32)
    households = pa.array([row[1] for row in stored], pa.string())
    kinds = np.array([row[2] for row in stored])
    # Grouped in chunks, as a first load reads them: a household's members in several chunks too.
    return summary_rows(
        [
            summary_pairs(
                cells[k : k + 97],
                households[k : k + 97],
                kinds[k : k + 97] == "registered",
                kinds[k : k + 97] == "floating",
            )
            for k in range(0, len(cells), 97)
        ]
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_rows_grouped_on_the_client_are_the_sql_rebuilds(session, seed):
    make_base_grid(session)
    cells = list(session.execute(text("SELECT id FROM base_cell")).scalars())
    rng = np.random.default_rng(seed)
    _add_random(session, rng, cells, 600)
    resident_summary.refresh(session)
    rebuilt = _tables(session)
    assert len(rebuilt[1]) > 50 and {"H1", "h1", "a\tb", "户口甲"} & {h for h, _ in rebuilt[1]}
    # A statement on the residents' households, even of no row, logs a change (its trigger): the summary is stale.
    session.execute(text("UPDATE resident SET household = household WHERE false"))
    assert not resident_summary.is_current(session)
    write_summary_rows(session, _rows_of_stored(session))
    assert _tables(session) == rebuilt
    assert resident_summary.is_current(session)


@pytest.mark.as_owner("a summary row written by hand: the summary is the database's to write (20261209_sec10b)")
def test_no_resident_in_a_cell_gives_an_empty_summary(session):
    make_base_grid(session)
    session.execute(text("INSERT INTO resident_cell_summary VALUES (1, 1, 1, 0, 1)"))
    rows = summary_rows(
        [summary_pairs(np.zeros(3, np.int32), pa.array(["a", None, ""]), np.ones(3, bool), np.zeros(3, bool))]
    )
    write_summary_rows(session, rows)
    assert _tables(session) == ([], [])


def test_a_first_load_writes_the_summary_it_grouped(session, grid, tmp_path, monkeypatch):  # noqa: F811
    """Households of a first load split over cells: the load's own rows, the tables of a full rebuild after it."""
    first_loads = record_first_loads(monkeypatch, resident_load, "gridkit.io.subjects.residents.first_load")
    west, south = centre(0)
    rng = np.random.default_rng(4)
    rows = []
    for i in range(2000):
        lon, lat = round(west + rng.random() * 0.003, 7), round(south + rng.random() * 0.002, 7)
        household = _ODD[i % len(_ODD)] or "" if i % 50 == 0 else f"H{i // 4}"
        rows.append(
            [_id(i), f"居民{i}", phone(i), ("registered", "floating", "户籍", "流动")[i % 4], household, lon, lat]
        )
    path = write_csv(
        tmp_path / "r.csv", ["id_number", "name", "phone", "population_type", "household", "lon", "lat"], rows
    )
    result = import_residents(session, path, pii_key=KEY)
    assert first_loads[0] is not None and first_loads[0]["summary"] is not None
    loaded = _tables(session)
    assert sum(row[1] for row in loaded[0]) == result.assigned > 0 and len(loaded[1]) > 100
    assert resident_summary.is_current(session)
    resident_summary.refresh(session)
    assert _tables(session) == loaded


def test_a_first_load_too_large_to_group_on_the_client(session, grid, tmp_path, monkeypatch):  # noqa: F811
    """A file whose groups outgrow SUMMARY_PAIRS_BYTES: the summary rebuilt in SQL (the client's memory flat); its
    cells read back from the temporary file in parts of a few rows: every resident's cell written, once."""
    monkeypatch.setattr(resident_load, "SUMMARY_PAIRS_BYTES", 1)
    monkeypatch.setattr(resident_load, "SPOOL_PART_ROWS", 7)
    first_loads = record_first_loads(monkeypatch, resident_load, "gridkit.io.subjects.residents.first_load")
    west, south = centre(0)
    rng = np.random.default_rng(5)
    rows = [
        [_id(i), f"居民{i}", phone(i), "registered", f"H{i // 3}"]
        + [round(west + rng.random() * 0.003, 7), round(south + rng.random() * 0.002, 7)]
        for i in range(1500)
    ]
    path = write_csv(
        tmp_path / "r.csv", ["id_number", "name", "phone", "population_type", "household", "lon", "lat"], rows
    )
    result = import_residents(session, path, pii_key=KEY)
    assert first_loads[0] is not None and first_loads[0]["summary"] is None
    assert result.created == 1500 and result.assigned > 1000
    cells = session.execute(
        text(
            "SELECT count(*), count(DISTINCT rc.resident_id), "
            "count(*) FILTER (WHERE ST_Covers(b.geom, r.geom)) "
            "FROM resident_cell rc JOIN resident r ON r.id = rc.resident_id JOIN base_cell b ON b.id = rc.base_cell_id"
        )
    ).one()
    assert tuple(cells) == (result.assigned,) * 3
    loaded = _tables(session)
    assert sum(row[1] for row in loaded[0]) == result.assigned
    assert resident_summary.is_current(session)
    resident_summary.refresh(session)
    assert _tables(session) == loaded
