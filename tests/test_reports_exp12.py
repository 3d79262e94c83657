"""The population report read from the per-cell resident summary: households counted once per unit,
the summary rebuilt when residents change, and the same figures as a count over every resident."""

from __future__ import annotations

import pytest
from factories_exports import C1, C2, DEPT, WC1, make_city
from sqlalchemy import text

from gridkit.errors import ValidationError
from gridkit.incidents.evaluate import evaluate
from gridkit.models import User
from gridkit.reports import resident_summary, run_report
from gridkit.resident_cells import RESIDENTS


@pytest.fixture
def city(session):
    return make_city(session)


def _by_code(section):
    return {row["code"]: row for row in section.rows}


def _direct(session, prefix_len: int) -> dict:
    """Residents and households per unit counted over every resident (the slow way)."""
    rows = session.execute(
        text(
            "SELECT left(b.code, :n) AS code, count(*) AS residents, "
            "count(DISTINCT s.household) FILTER (WHERE s.household <> '') AS households "
            f"FROM {RESIDENTS} s JOIN base_cell b ON b.id = s.base_cell_id GROUP BY 1"
        ),
        {"n": prefix_len},
    )
    return {r.code: (r.residents, r.households) for r in rows}


def test_household_in_two_cells_counts_once_per_unit(session, city):
    # Household H0000 (cell 1 of community 1) gets a member in the next cell, and one in community 2.
    cells = session.execute(text("SELECT id, code FROM base_cell ORDER BY code")).all()
    c1_second = next(cid for cid, code in cells if code.startswith(C1) and code.endswith("002"))
    c2_first = next(cid for cid, code in cells if code.startswith(C2))
    for n, cell in ((1, c1_second), (2, c2_first)):
        session.execute(
            text(
                "WITH r AS (INSERT INTO resident (id_number_hash, id_number_masked, name, household, population_type) "
                "VALUES (:h, '4403**********123X', '新居民', 'H0000', 'floating') RETURNING id) "
                "INSERT INTO resident_cell (resident_id, base_cell_id) SELECT id, :c FROM r"
            ),
            {"h": f"split{n}", "c": cell},
        )
    by_community = _by_code(run_report(session, "population", by="community").main)
    expected = _direct(session, 12)
    for code in (C1, C2):
        assert (by_community[code]["residents"], by_community[code]["households"]) == expected[code]
    assert by_community[C1]["households"] == 9 and by_community[C2]["households"] == 10
    by_cell = _by_code(run_report(session, "population", by="cell").main)
    assert sum(r["households"] for r in by_cell.values()) == 20  # per cell, the split household is in 3 cells
    district = run_report(session, "population", by="district").main.rows[0]
    assert district["households"] == 18 and district["residents"] == 38


def test_summary_is_rebuilt_only_after_residents_change(session, city):
    run_report(session, "population", by="community")
    assert resident_summary.is_current(session)
    assert resident_summary.ensure_current(session) is False
    session.execute(text("UPDATE resident SET name = '改名' WHERE id = (SELECT min(id) FROM resident)"))
    assert resident_summary.is_current(session)  # a name is not in the summary
    session.execute(text("UPDATE resident SET population_type = 'registered'"))
    assert not resident_summary.is_current(session)
    rows = _by_code(run_report(session, "population", by="community").main)
    assert rows[C1]["registered"] == 18 and rows[C1]["floating"] == 0
    session.execute(
        text(
            "DELETE FROM resident WHERE id IN (SELECT resident_id FROM resident_cell "
            "WHERE base_cell_id IN (SELECT id FROM base_cell WHERE code LIKE :c))"
        ),
        {"c": C2 + "%"},
    )
    rows = _by_code(run_report(session, "population", by="community").main)
    assert rows[C2]["residents"] == 0 and rows[C2]["households"] == 0 and rows[C1]["residents"] == 18


def test_evaluation_is_the_incidents_service(session, city):
    service = {r["key"]: r for r in evaluate(session, by="community")["rows"]}
    rows = _by_code(run_report(session, "evaluation", by="community").main)
    # Every community is a row; one without cases shows 0, not nothing.
    assert set(rows) == {C1, C2} and {k for k in service if k} == {C1}
    assert rows[C2]["cases"] == rows[C2]["closed"] == rows[C2]["backlog"] == rows[C2]["overdue"] == 0
    assert rows[C2]["on_time_pct"] is None and rows[C2]["name"]
    row, expected = rows[C1], service[C1]
    assert row["name"] == "测试1社区" and row["cases"] == expected["cases"] and row["closed"] == expected["closed"]
    assert row["on_time_pct"] == round(100 * expected["on_time_rate"], 1)
    assert row["mean_hours"] == expected["steps"]["total"]["mean_hours"]
    assert row["p90_hours"] == expected["steps"]["total"]["p90_hours"] and row["overdue"] == expected["overdue"]
    by_cell = _by_code(run_report(session, "evaluation", by="work-cell", dept=DEPT).main)
    assert by_cell[WC1]["cases"] == 6
    # An area narrows through the service's scope: community 2 has no cases, shown as 0.
    (empty,) = run_report(session, "evaluation", by="community", area=C2).main.rows
    assert empty["code"] == C2 and empty["cases"] == 0 and empty["mean_hours"] is None
    with pytest.raises(ValidationError) as err:
        run_report(session, "evaluation", by="district")
    assert "community, work-cell" in err.value.message


def test_cell_stats_layer_reads_the_summary(session, city, tmp_path):
    from gridkit.io.export import ExportOptions, export_layer
    from gridkit.reports.choropleth import choropleth

    session.execute(text("UPDATE resident SET household = 'H0000' WHERE id = (SELECT max(id) FROM resident)"))
    assert not resident_summary.is_current(session)
    path = tmp_path / "cells.gpkg"
    # Unmasked (an administrator): a masked export hides counts of 1–2 residents (test_small_counts_ux10d).
    export_layer(session, ExportOptions("cell-stats", "gpkg", path, unmasked=True), user=User(name="a", role="admin"))
    assert resident_summary.is_current(session)
    import pyogrio

    frame = pyogrio.read_dataframe(path)
    direct = dict(
        session.execute(
            text(
                f"SELECT b.code, count(DISTINCT s.household) FROM {RESIDENTS} s "
                "JOIN base_cell b ON b.id = s.base_cell_id GROUP BY b.code"
            )
        ).all()
    )
    assert dict(zip(frame["code"], frame["households"])) == direct
    assert int(frame["residents"].sum()) == city["residents"]
    features = choropleth(session, "residents", "community")["features"]
    assert sum(f["properties"]["value"] for f in features) == city["residents"]


@pytest.fixture(scope="module")
def app_engine(pg_server):
    """An engine connected as the application role `gridkit` (not the tables' owner)."""
    from tests.factories_app_role import app_role_engine

    with app_role_engine(pg_server, "gridkit_exp12_app", port=5495) as engine:
        yield engine


def test_the_application_role_keeps_the_summary(app_engine):
    from tests.factories_app_role import rolled_back_session

    with rolled_back_session(app_engine) as session:
        city = make_city(session)
        assert not resident_summary.is_current(session)  # the trigger ran as this role
        rows = _by_code(run_report(session, "population", by="community").main)
        assert rows[C1]["residents"] + rows[C2]["residents"] == city["residents"]
        assert resident_summary.is_current(session)
