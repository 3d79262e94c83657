"""The rollups kept by triggers on incident: the heatmap's (incident_heat) gives the same bins as
counting the cases, for any time window, zoom, view and scope, and stays equal to a recount after
reports, transitions, a bulk import, re-assignment and deletion; the evaluation's (incident_eval)
gives the same figures as counting the cases, for any period, grouping and scope."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from factories import X0, Y0, D
from factories_incidents import C2, SUPERVISOR, make_incident_world
from sqlalchemy import text

from gridkit.incidents import evaluate as evaluate_module
from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.incidents.evaluate import CASE_MEASURES, evaluate
from gridkit.incidents.heatmap import bin_size, heatmap, parse_filters
from gridkit.incidents.importer import import_incidents
from gridkit.models import Incident

T0 = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)

RECOUNT = """
    SELECT l.level, floor(i.lon / l.size)::int, floor(i.lat / l.size)::int,
           date_trunc('month', i.reported_at AT TIME ZONE 'UTC')::date, b.community_code, count(*)
    FROM incident i CROSS JOIN (VALUES (13::smallint, 135::float8 / 32768), (15::smallint, 135::float8 / 131072))
         AS l(level, size)
    LEFT JOIN base_cell b ON b.id = i.base_cell_id WHERE i.lon IS NOT NULL GROUP BY 1, 2, 3, 4, 5"""


def _rollup(session) -> set:
    return set(
        session.execute(text("SELECT level, ix, iy, month, community_code, n FROM incident_heat WHERE n <> 0")).all()
    )


def _recount(session) -> set:
    return {tuple(r) for r in session.execute(text(RECOUNT)).all()}


@pytest.fixture
def spread(session):
    """40 cases over eight months in both communities and outside every cell, some moved along."""
    make_incident_world(session)
    ids = []
    for n in range(40):
        where = (X0 + (n % 6) * D + 0.1 * D * (n % 3), Y0 + (n % 3) * D + 0.05 * D * (n % 5))
        if n % 13 == 0:
            where = (X0 - 0.02 - 0.001 * n, Y0 - 0.01)
        case = wf.report_incident(
            session,
            lon=where[0],
            lat=where[1],
            description=f"事件{n}",
            category="0101",
            reported_at=T0 + timedelta(days=6 * n, hours=n),
            actor=SUPERVISOR,
        ).incident
        ids.append(case.id)
        if n % 4 == 0:
            wf.accept(session, case.id, SUPERVISOR, at=case.reported_at + timedelta(hours=1))
    return ids


def _expected(session, filters, actor, zoom) -> dict:
    """Count the cases in Python: bins of `zoom`, whole bins touched by the view."""
    size = bin_size(zoom)
    rows = session.execute(
        text(
            "SELECT i.lon, i.lat, i.reported_at, b.community_code FROM incident i "
            "LEFT JOIN base_cell b ON b.id = i.base_cell_id WHERE i.lon IS NOT NULL"
        )
    ).all()
    counts: dict = {}
    for lon, lat, at, community in rows:
        if filters["start"] and at < filters["start"] or filters["end"] and at >= filters["end"]:
            continue
        if actor and actor.scope_code and not (community or "").startswith(actor.scope_code):
            continue
        key = (math.floor(lon / size), math.floor(lat / size))
        if filters["bbox"]:
            x0, y0, x1, y1 = (math.floor(v / size) for v in filters["bbox"])
            if not (x0 <= key[0] <= x1 and y0 <= key[1] <= y1):
                continue
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.parametrize("zoom", [9, 12, 13, 14, 15])
def test_rollup_bins_equal_counting_the_cases(session, spread, zoom):
    view = f"{X0 - 0.5 * D},{Y0 - 0.5 * D},{X0 + 3.2 * D},{Y0 + 2.5 * D}"
    windows = [
        {},
        {"from_": "2026-04-10T13:00:00+08:00", "to": "2026-09-03T00:00:00+00:00"},
        {"from_": "2026-05-01T00:00:00+00:00", "to": "2026-08-01T00:00:00+00:00"},  # whole months only
        {"from_": "2026-06-05", "to": "2026-06-20"},  # inside one month
        {"from_": "2026-07-17"},
        {"to": "2026-05-17T08:00:00+00:00"},
    ]
    for window in windows:
        for bbox in (None, view):
            for actor in (None, Actor("street_super", "supervisor", C2)):
                filters = parse_filters(zoom=str(zoom), bbox=bbox, **window)
                got = heatmap(session, filters, actor)
                assert {(b[0], b[1]): b[2] for b in got["bins"]} == _expected(session, filters, actor, zoom), (
                    window,
                    bbox,
                    actor,
                )


@pytest.mark.as_owner("a case is deleted with its append-only history: only the owner may")
def test_rollup_follows_every_change_of_the_cases(session, spread, tmp_path):
    assert _rollup(session) == _recount(session)
    # A bulk import (COPY) counts at once.
    rows = ["id,type,reported,lon,lat"] + [
        f"H{n},0101,2026-0{n + 1}-02T08:00:00+00:00,{X0 + (n + 0.5) * D},{Y0 + 0.5 * D}" for n in range(5)
    ]
    (tmp_path / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mapping = {
        "source": "heat",
        "code_prefix": "HT",
        "columns": {"external_id": "id", "category": "type", "reported_at": "reported", "lon": "lon", "lat": "lat"},
        "categories": {"0101": "0101"},
    }
    assert import_incidents(session, tmp_path / "cases.csv", mapping)["imported"] == 5
    assert _rollup(session) == _recount(session)
    # Transitions that move nothing leave it; a case moved, re-assigned or deleted moves its count.
    session.execute(
        text("UPDATE incident SET reported_at = reported_at - interval '40 days' WHERE id = :i"), {"i": spread[3]}
    )
    session.execute(text("UPDATE incident SET base_cell_id = NULL WHERE id = :i"), {"i": spread[5]})
    session.execute(
        text("UPDATE incident SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4490) WHERE id = :i"),
        {"i": spread[7], "x": X0 + 5.5 * D, "y": Y0 + 0.5 * D},
    )
    session.execute(text("DELETE FROM incident_history WHERE incident_id = :i"), {"i": spread[9]})
    session.execute(text("DELETE FROM incident WHERE id = :i"), {"i": spread[9]})
    assert _rollup(session) == _recount(session)
    filters = parse_filters(zoom="12")
    assert heatmap(session, filters)["total"] == 44
    assert heatmap(session, parse_filters(zoom="12", state="accepted"))["total"] == 10


# -- the evaluation's rollup ---------------------------------------------------------------------------

EVAL_RECOUNT = f"""
    SELECT (i.reported_at AT TIME ZONE 'Asia/Shanghai')::date, i.dept_code, i.work_cell_id, i.coordinator_id,
           b.community_code, {", ".join(f"sum({sql})" for sql in CASE_MEASURES.values())}
    FROM incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id GROUP BY 1, 2, 3, 4, 5"""


def _eval_rollup(session) -> set:
    columns = ", ".join(CASE_MEASURES)
    return {
        tuple(r)
        for r in session.execute(
            text(
                f"SELECT day, dept_code, work_cell_id, coordinator_id, community_code, {columns} FROM incident_eval "
                "WHERE cases <> 0"
            )
        )
    }


def _moved_along(session, spread):
    """Carry some of the spread's cases to dispatch, feedback and close, one with a rework."""
    world_coord = session.execute(text("SELECT min(id) FROM coordinator")).scalar()
    worker = Actor("coord", "coordinator", None, world_coord)
    for n, case_id in enumerate(spread):
        if n % 4 != 0 or n % 13 == 0:
            continue
        at = session.execute(text("SELECT reported_at FROM incident WHERE id = :i"), {"i": case_id}).scalar()
        wf.classify(session, case_id, SUPERVISOR, category="0101", at=at + timedelta(hours=2))
        wf.dispatch(session, case_id, SUPERVISOR, at=at + timedelta(hours=3))
        case = session.get(Incident, case_id)
        if case.coordinator_id != world_coord:
            continue
        wf.feedback(session, case_id, worker, note="ok", at=at + timedelta(hours=5 + n))
        if n == 8:
            wf.rework(session, case_id, SUPERVISOR, note="再来", at=at + timedelta(hours=6 + n))
            wf.feedback(session, case_id, worker, note="ok", at=at + timedelta(hours=30 + n))
        wf.close(session, case_id, SUPERVISOR, at=at + timedelta(hours=40 + n))


LONG_AGO = date(1900, 1, 1)


def _exact(session, by, from_, to, actor):
    """The evaluation counted from the cases alone: no whole day left to read from the rollup."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate_module, "_whole_days", lambda start, end: (start and LONG_AGO, LONG_AGO))
        return evaluate(session, by=by, from_=from_, to=to, actor=actor)


@pytest.mark.parametrize("by", ["department", "work-cell", "coordinator", "community"])
def test_evaluation_from_the_rollup_equals_counting_the_cases(session, spread, by, monkeypatch):
    _moved_along(session, spread)
    everything = evaluate(session, by=by, actor=SUPERVISOR)["total"]
    assert everything["closed"] >= 3 and everything["rework_rate"] > 0 and everything["steps"]["verify"]["n"] >= 3
    assert _eval_rollup(session) == {tuple(r) for r in session.execute(text(EVAL_RECOUNT))}
    windows = [
        (None, None),
        ("2026-04-10T13:00:00+08:00", "2026-09-03T07:00:00+00:00"),
        ("2026-05-01", "2026-08-01"),
        ("2026-06-05T10:00:00+08:00", "2026-06-05T18:00:00+08:00"),
        ("2026-07-17", None),
    ]
    for from_, to in windows:
        for actor in (SUPERVISOR, Actor("street_super", "supervisor", C2)):
            got = evaluate(session, by=by, from_=from_, to=to, actor=actor)
            assert got["p90_sample"] is None
            want = _exact(session, by, from_, to, actor)
            assert {**got, "to": None} == {**want, "to": None}, (from_, to, actor)
            assert got["total"]["cases"] or from_ == "2026-06-05T10:00:00+08:00"
    # Past P90_ALL_MAX cases, p90 ranks the one-in-ten sample; everything else stays exact.
    monkeypatch.setattr(evaluate_module, "P90_ALL_MAX", 0)
    sampled = evaluate(session, by=by, actor=SUPERVISOR)
    exact = _exact(session, by, None, None, SUPERVISOR)
    assert sampled["p90_sample"] == "1/10"
    for got, want in zip([*sampled["rows"], sampled["total"]], [*exact["rows"], exact["total"]], strict=True):
        assert {k: v for k, v in got.items() if k != "steps"} == {k: v for k, v in want.items() if k != "steps"}
        assert [(s["mean_hours"], s["n"]) for s in got["steps"].values()] == [
            (s["mean_hours"], s["n"]) for s in want["steps"].values()
        ]
