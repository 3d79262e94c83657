"""The resident summary brought up to date by the import or assignment that changed residents
(`resident_summary.residents_changed`), cell by cell: the same figures as a count over every resident."""

from __future__ import annotations

import pytest
from factories_exports import C1, C2, make_city
from sqlalchemy import text

from gridkit.reports import resident_summary, run_report
from gridkit.resident_cells import RESIDENTS


@pytest.fixture
def city(session):
    facts = make_city(session)
    resident_summary.ensure_current(session)
    return facts


def _cells(session) -> dict[str, int]:
    return dict(session.execute(text("SELECT code, id FROM base_cell ORDER BY code")).all())


def _summary(session):
    cells = session.execute(
        text(
            "SELECT base_cell_id, residents, registered, floating, households FROM resident_cell_summary "
            "WHERE residents > 0 ORDER BY 1"
        )
    ).all()
    split = session.execute(text("SELECT household, base_cell_id FROM resident_split_household ORDER BY 1, 2")).all()
    return [tuple(r) for r in cells], [tuple(r) for r in split]


def _direct(session):
    """The summary as a full count over every resident would make it."""
    cells = session.execute(
        text(
            "SELECT base_cell_id, count(*), count(*) FILTER (WHERE population_type = 'registered'), "
            "count(*) FILTER (WHERE population_type = 'floating'), "
            "count(DISTINCT household) FILTER (WHERE household <> '') "
            f"FROM {RESIDENTS} r WHERE base_cell_id IS NOT NULL GROUP BY 1 ORDER BY 1"
        )
    ).all()
    split = session.execute(
        text(
            f"SELECT household, base_cell_id FROM (SELECT DISTINCT household, base_cell_id FROM {RESIDENTS} r "
            "WHERE household <> '' AND base_cell_id IS NOT NULL) d WHERE household IN (SELECT household FROM "
            f"{RESIDENTS} r WHERE household <> '' AND base_cell_id IS NOT NULL GROUP BY household "
            "HAVING count(DISTINCT base_cell_id) > 1) ORDER BY 1, 2"
        )
    ).all()
    return [tuple(r) for r in cells], [tuple(r) for r in split]


def _add(session, n: int, household: str, cell: int, kind: str = "floating") -> None:
    session.execute(
        text(
            "WITH r AS (INSERT INTO resident (id_number_hash, id_number_masked, name, household, population_type) "
            "VALUES (:h, '4403**********123X', '新居民', :hh, :k) RETURNING id) "
            "INSERT INTO resident_cell (resident_id, base_cell_id) SELECT id, :c FROM r"
        ),
        {"h": f"exq12b-{n}", "hh": household, "k": kind, "c": cell},
    )


def test_an_import_brings_the_summary_up_to_date_for_its_cells(session, city):
    cells = _cells(session)
    a, b, c = cells[f"{C1}001"], cells[f"{C1}002"], cells[f"{C2}001"]
    _add(session, 1, "H0000", b)  # H0000 lives in cell a: now split over a and b
    _add(session, 2, "H0000", c, "registered")
    _add(session, 3, "NEW1", a)
    assert not resident_summary.is_current(session)
    resident_summary.residents_changed(session, [b, c, a])
    assert resident_summary.is_current(session)  # this transaction's log rows are gone
    assert _summary(session) == _direct(session)
    assert ("H0000", a) in _summary(session)[1]
    rows = {r["code"]: r for r in run_report(session, "population", by="community").main.rows}
    assert rows[C1]["households"] == 10 and rows[C2]["households"] == 10


def test_moves_and_deletes_recount_the_old_and_new_cells(session, city):
    cells = _cells(session)
    a, b, c = cells[f"{C1}001"], cells[f"{C1}002"], cells[f"{C2}001"]
    _add(session, 1, "H0000", b)
    resident_summary.residents_changed(session, [b])
    assert _summary(session) == _direct(session)
    # The household leaves cell b again (moved to c): b and c are recounted, H0000 is split a/c.
    session.execute(
        text(
            "UPDATE resident_cell SET base_cell_id = :c "
            "WHERE resident_id = (SELECT id FROM resident WHERE id_number_hash = 'exq12b-1')"
        ),
        {"c": c},
    )
    resident_summary.residents_changed(session, [b, c])
    assert _summary(session) == _direct(session)
    # Everyone of cell a leaves: H0000 is no longer split.
    session.execute(
        text("DELETE FROM resident WHERE id IN (SELECT resident_id FROM resident_cell WHERE base_cell_id = :a)"),
        {"a": a},
    )
    resident_summary.residents_changed(session, [a])
    assert _summary(session) == _direct(session)
    assert all(h != "H0000" for h, _ in _summary(session)[1])
    session.execute(text("UPDATE resident SET population_type = 'registered', household = 'ONE'"))
    resident_summary.residents_changed(session, None)  # unknown cells: a full rebuild
    assert _summary(session) == _direct(session) and resident_summary.is_current(session)


@pytest.mark.as_owner(
    "another transaction's row of the log is written by hand: the log is the triggers' (20261209_sec10b)"
)
def test_other_transactions_changes_stay_in_the_log(session, city):
    cells = _cells(session)
    _add(session, 1, "H0000", cells[f"{C2}002"])
    # A row of another transaction (committed, not yet counted) stays for the next report.
    session.execute(text("INSERT INTO resident_change (txid) VALUES (1)"))
    resident_summary.residents_changed(session, [cells[f"{C2}002"]])
    assert not resident_summary.is_current(session)
    assert session.execute(text("SELECT txid FROM resident_change")).scalars().all() == [1]
    run_report(session, "population", by="community")
    assert resident_summary.is_current(session) and _summary(session) == _direct(session)


def test_import_residents_leaves_the_summary_current(session, tmp_path):
    """An import of residents brings the summary up to date in its own transaction: no rebuild left for a report."""
    from gridkit.io.subjects import import_residents
    from tests.data.make_subject_files import many_residents_csv
    from tests.factories import make_base_grid

    make_base_grid(session)
    resident_summary.ensure_current(session)
    import_residents(session, many_residents_csv(tmp_path / "r.csv", 300), pii_key=b"test-personal-data-key")
    assert resident_summary.is_current(session)
    assert _summary(session)[0] == _direct(session)[0]
    assert sum(row[1] for row in _summary(session)[0]) == 300


def test_the_upkeep_of_a_few_cells_gives_the_full_rebuilds_tables(session):
    """Households spread over several cells, changed again and again a few cells at a time (members added, moved,
    deleted, given another household or type): after each upkeep the tables are those of a full rebuild, also for
    the households that stop being split while their remaining cell is untouched, or become split over one."""
    import random

    from tests.factories import make_base_grid

    make_base_grid(session)
    cells = list(_cells(session).values())
    rng = random.Random(9)
    for n in range(300):  # households of 1–4 members, most over several cells
        _add(session, n, f"H{n // 3}" if n % 7 else "", rng.choice(cells), rng.choice(["floating", "registered"]))
    resident_summary.residents_changed(session, None)
    assert _summary(session) == _direct(session) and len(_summary(session)[1]) > 100
    serial = 300
    for _ in range(40):
        ids = session.execute(text("SELECT id FROM resident ORDER BY id")).scalars().all()
        touched = set(rng.sample(cells, 2))
        where = {r: c for r, c in session.execute(text("SELECT resident_id, base_cell_id FROM resident_cell"))}
        for r in rng.sample(ids, 3):
            old, new = where.get(r), rng.choice(sorted(touched))
            action = rng.choice(["move", "delete", "household", "type"])
            if action != "move" and old not in touched:
                continue  # a change in an untouched cell would not be announced by the caller
            if action == "move":
                session.execute(
                    text("UPDATE resident_cell SET base_cell_id = :c WHERE resident_id = :r"), {"c": new, "r": r}
                )
                touched |= {old} - {None}
            elif action == "delete":
                session.execute(text("DELETE FROM resident WHERE id = :r"), {"r": r})
            elif action == "household":
                session.execute(
                    text("UPDATE resident SET household = :h WHERE id = :r"), {"h": f"H{rng.randrange(110)}", "r": r}
                )
            else:
                session.execute(
                    text(
                        "UPDATE resident SET population_type = CASE population_type WHEN 'floating' "
                        "THEN 'registered' ELSE 'floating' END WHERE id = :r"
                    ),
                    {"r": r},
                )
        _add(session, serial, f"H{rng.randrange(110)}", rng.choice(sorted(touched)))
        serial += 1
        resident_summary.residents_changed(session, sorted(touched))
        assert _summary(session) == _direct(session)
    # Every resident of a cell leaves: its row goes, and the households left in one cell stop being split.
    emptied = session.execute(text("SELECT base_cell_id FROM resident_cell_summary LIMIT 1")).scalar_one()
    session.execute(text("DELETE FROM resident_cell WHERE base_cell_id = :c"), {"c": emptied})
    session.execute(text("SELECT set_config('jit', 'on', true)"))
    resident_summary.residents_changed(session, [emptied])  # runs without JIT, and gives the setting back
    assert session.execute(text("SELECT current_setting('jit')")).scalar_one() == "on"
    assert _summary(session) == _direct(session)
    assert emptied not in {row[0] for row in _summary(session)[0]}
