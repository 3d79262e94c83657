"""Small counts of residents (ux10d): a cell counting 1 or 2 residents singles a person out, so reports, the
choropleth and masked exports hide such counts (gridkit.rules.SMALL_COUNT_MAX) from readers who may not see
residents, and give them as they are to readers who may."""

from __future__ import annotations

import pyogrio
import pytest
from factories_exports import C1, C2, DEPT, make_city
from sqlalchemy import text

from gridkit import db
from gridkit.grids import work
from gridkit.io.export import ExportOptions, export_layer
from gridkit.models import User
from gridkit.reports import run_report
from gridkit.reports.choropleth import choropleth
from gridkit.rules import SMALL_COUNT_MAX, SMALL_COUNT_SHOWN, is_small_count, small_count_sql
from gridkit.users import add_user
from web import create_app

PASSWORD = "correct horse battery"


def test_the_rule():
    assert SMALL_COUNT_SHOWN == "<3" and SMALL_COUNT_MAX == 2
    assert [is_small_count(v) for v in (0, 1, 2, 3, 2.0, True, None, "2")] == [
        False,
        True,
        True,
        False,
        True,
        False,
        False,
        False,
    ]


def test_the_rule_in_sql(session):
    sql = ", ".join(small_count_sql(str(v)) for v in (0, 1, 2, 3, 40))
    assert tuple(session.execute(text(f"SELECT {sql}")).one()) == (0, None, None, 3, 40)


def test_a_report_hides_small_counts_and_what_is_computed_from_them(session):
    make_city(session)  # two residents in each base cell, 18 in each community
    shown = run_report(session, "population", by="cell", area=C1)
    hidden = run_report(session, "population", by="cell", area=C1, hide_small_counts=True)
    assert {r["residents"] for r in shown.main.rows} == {2}
    for row in hidden.main.rows:
        assert row["residents"] == SMALL_COUNT_SHOWN and row["registered"] in (0, SMALL_COUNT_SHOWN)
        assert row["floating_pct"] in (None, SMALL_COUNT_SHOWN) or row["floating"] == 0
    assert hidden.main.total["residents"] == shown.main.total["residents"] == 18  # the whole area: not small
    assert hidden.params["small_counts"] == SMALL_COUNT_SHOWN and "small_counts" not in shown.params
    by_community = run_report(session, "population", by="community", hide_small_counts=True)
    assert {r["code"]: r["residents"] for r in by_community.main.rows} == {C1: 18, C2: 18}


def test_choropleth_and_masked_export_hide_small_counts(session, tmp_path):
    make_city(session)
    hidden = choropleth(session, "residents", "cell", area=C1, hide_small_counts=True)
    assert {f["properties"]["value"] for f in hidden["features"]} == {None} and hidden["hidden_up_to"] == 2
    shown = choropleth(session, "residents", "cell", area=C1)
    assert {f["properties"]["value"] for f in shown["features"]} == {2} and "hidden_up_to" not in shown
    # Counts of buildings or incidents are nobody's: never hidden.
    assert "hidden_up_to" not in choropleth(session, "buildings", "cell", area=C1, hide_small_counts=True)
    community = choropleth(session, "residents", "community", hide_small_counts=True)
    assert {f["id"]: f["properties"]["value"] for f in community["features"]} == {C1: 18, C2: 18}

    masked = export_layer(session, ExportOptions("cell-stats", "gpkg", tmp_path / "masked.gpkg", area=C1))
    frame = pyogrio.read_dataframe(tmp_path / "masked.gpkg")
    assert frame["residents"].isna().all() and frame["households"].isna().all()
    assert masked["small_counts_hidden"] == ["residents", "registered", "floating", "households"]
    admin = User(name="admin_x", role="admin")
    options = ExportOptions("cell-stats", "gpkg", tmp_path / "clear.gpkg", area=C1, unmasked=True)
    clear = export_layer(session, options, user=admin, actor="test")
    assert (pyogrio.read_dataframe(tmp_path / "clear.gpkg")["residents"] == 2).all()
    assert "small_counts_hidden" not in clear


@pytest.fixture
def app(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_city(session)
        add_user(session, "ana", "analyst", password=PASSWORD)
        add_user(session, "adm", "admin", password=PASSWORD)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app


def _signed_in(app, name):
    from factories_web import csrf_of

    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token}).status_code == 302
    return client


def test_the_analyst_page_hides_small_counts_from_an_analyst_not_from_an_administrator(app):
    analyst, admin = _signed_in(app, "ana"), _signed_in(app, "adm")
    url = f"/analyst/report.json?name=population&by=cell&area={C1}&lang=en"
    preview = analyst.get(url).get_json()
    table = preview["sections"][0]["table"]
    assert "<td>&lt;3</td>" in table and "<td>2</td>" not in table
    assert any("counts of 1–2 residents" in value for _, value in preview["header"])
    clear = admin.get(url).get_json()
    assert "&lt;3" not in clear["sections"][0]["table"] and "<td>2</td>" in clear["sections"][0]["table"]
    assert not any("counts of 1–2 residents" in value for _, value in clear["header"])
    csv_text = analyst.get(f"/analyst/report?name=population&by=cell&area={C1}&format=csv&lang=en").data
    assert b",<3," in csv_text and b"counts of 1" in csv_text
    cells = f"/analyst/choropleth.json?count=residents&by=cell&area={C1}"
    assert {f["properties"]["value"] for f in analyst.get(cells).get_json()["features"]} == {None}
    assert {f["properties"]["value"] for f in admin.get(cells).get_json()["features"]} == {2}


def test_a_work_grid_diff_hides_a_small_count_of_residents_changing_work_cell(session):
    make_city(session)  # version 2 moves one base cell, with its two residents, to another work cell
    assert work.diff_versions(session, DEPT, 1, 2)["subjects_changing_work_cell"]["residents"] == 2
    hidden = work.diff_versions(session, DEPT, 1, 2, hide_small_counts=True)["subjects_changing_work_cell"]
    assert hidden == {"residents": SMALL_COUNT_SHOWN, "buildings": 1, "open_incidents": hidden["open_incidents"]}


def test_the_planner_diff_hides_the_small_count_from_a_planner_not_from_an_administrator(app):
    with db.session_factory(db.engine_for(app.config["GRIDKIT_SETTINGS"]))() as session, session.begin():
        add_user(session, "plan", "planner", password=PASSWORD)
    planner, admin = _signed_in(app, "plan"), _signed_in(app, "adm")
    api = f"/api/planner/departments/{DEPT}/diff?from=1&to=2"
    assert planner.get(api).get_json()["subjects_changing_work_cell"]["residents"] == "<3"
    assert admin.get(api).get_json()["subjects_changing_work_cell"]["residents"] == 2
    assert 'data-count="residents">&lt;3<' in planner.get(f"/planner/diff/{DEPT}/1/2").get_data(as_text=True)
    assert 'data-count="residents">2<' in admin.get(f"/planner/diff/{DEPT}/1/2").get_data(as_text=True)
