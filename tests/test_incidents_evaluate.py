"""综合评价 against a hand computation: four cases with known step times, by department, work cell,
coordinator and community; and the heatmap/choropleth aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from factories_incidents import (
    C1,
    C2,
    DEPT,
    IN_C1,
    IN_C2,
    SUPERVISOR,
    W1,
    W2,
    coordinator_actor,
    make_incident_world,
)

from gridkit.errors import ValidationError
from gridkit.incidents import workflow as wf
from gridkit.incidents.evaluate import evaluate
from gridkit.incidents.heatmap import bin_size, choropleth, heatmap, parse_filters

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def cases(session):
    world = make_incident_world(session)
    c1, c2 = coordinator_actor(world, 1), coordinator_actor(world, 2)

    def run(where, category, steps, reported=0.0):
        case = wf.report_incident(
            session,
            lon=where[0],
            lat=where[1],
            description="x",
            category=category,
            reported_at=h(reported),
            actor=SUPERVISOR,
        ).incident
        for action, at, who, params in steps:
            wf.transition(session, case.id, action, who, at=h(at), **params)
        return case

    s = SUPERVISOR
    # A: on time (deadline: classify 2 h + dispatch 4 + handle 24 + verify 24 = 54 h), no rework.
    a = run(
        IN_C1,
        "0101",
        [
            ("accept", 1, s, {}),
            ("classify", 2, s, {"category": "0101"}),
            ("dispatch", 3, s, {}),
            ("feedback", 10, c1, {"note": "ok"}),
            ("close", 12, s, {}),
        ],
    )
    # B: late (deadline 4 + 4 + 24 + 24 = 56 h, closed at 60 h), one rework.
    b = run(
        IN_C2,
        "0101",
        [
            ("accept", 2, s, {}),
            ("classify", 4, s, {"category": "0101"}),
            ("dispatch", 5, s, {}),
            ("feedback", 20, c2, {"note": "ok"}),
            ("rework", 21, s, {"note": "不合格"}),
            ("feedback", 30, c2, {"note": "ok"}),
            ("close", 60, s, {}),
        ],
    )
    # C: E0101 (1 h per step, 4 h handling, 4 h verify): deadline 3 + 1 + 4 + 4 = 12 h, closed at 7 h.
    c = run(
        IN_C1,
        "E0101",
        [
            ("accept", 1, s, {}),
            ("classify", 3, s, {"category": "E0101"}),
            ("dispatch", 4, s, {}),
            ("feedback", 6, c1, {"note": "ok"}),
            ("close", 7, s, {}),
        ],
    )
    # D: still open, accepted after 1 h, never dispatched.
    d = run(IN_C1, "0101", [("accept", 2, s, {})], reported=1)
    return {"a": a, "b": b, "c": c, "d": d, "world": world}


def figures(row, step):
    return row["steps"][step]["mean_hours"], row["steps"][step]["p90_hours"], row["steps"][step]["n"]


def test_evaluation_by_department_matches_hand_computation(session, cases):
    result = evaluate(session, by="department", from_="2026-11-01", to="2026-11-30")
    dept, undispatched = result["rows"]  # D was never dispatched: no department
    assert dept["key"] == DEPT and dept["name"] == "城市管理" and undispatched["key"] is None
    assert (dept["cases"], dept["closed"], dept["backlog"], undispatched["backlog"]) == (3, 3, 0, 1)
    assert figures(dept, "accept") == (1.33, 1.8, 3)  # 1, 2, 1 → 0.9·2 = 1.8 → 1 + 0.8·1
    row = result["total"]
    assert (row["cases"], row["closed"], row["backlog"]) == (4, 3, 1)
    assert row["on_time_rate"] == round(2 / 3, 4)  # A and C by their deadline, B late
    assert row["rework_rate"] == round(1 / 3, 4)  # B
    # percentile_cont(0.9) of n sorted values: v[k] + f·(v[k+1] − v[k]) with k + f = 0.9·(n − 1).
    assert figures(row, "accept") == (1.25, 1.7, 4)  # 1, 2, 1, 1 → 0.9·3 = 2.7 → 1 + 0.7·1
    assert figures(row, "classify") == (1.67, 2.0, 3)  # 1, 2, 2
    assert figures(row, "dispatch") == (1.0, 1.0, 3)  # 1, 1, 1
    assert figures(row, "handle") == (11.33, 21.4, 3)  # 7, 25 (with rework), 2 → 7 + 0.8·18
    assert figures(row, "verify") == (11.0, 24.4, 3)  # 2, 30, 1 → 2 + 0.8·28
    assert figures(row, "total") == (26.33, 50.4, 3)  # 12, 60, 7 → 12 + 0.8·48


def test_evaluation_by_work_cell_coordinator_and_community(session, cases):
    by_cell = {r["key"]: r for r in evaluate(session, by="work-cell", from_="2026-11-01")["rows"]}
    assert set(by_cell) == {W1, W2, None}  # D is not dispatched: no work cell
    assert (by_cell[W1]["cases"], by_cell[W1]["on_time_rate"], by_cell[W1]["rework_rate"]) == (2, 1.0, 0.0)
    assert (by_cell[W2]["on_time_rate"], by_cell[W2]["rework_rate"]) == (0.0, 1.0)
    assert figures(by_cell[W1], "handle") == (4.5, 6.5, 2)  # 7, 2 → 2 + 0.9·5
    assert by_cell[None]["backlog"] == 1
    by_coordinator = {
        r["key"]: r for r in evaluate(session, by="coordinator", from_="2026-11-01", actor=SUPERVISOR)["rows"]
    }
    assert by_coordinator[str(cases["world"]["coord1"].id)]["name"] == "张三"  # a supervisor may read names
    by_community = {r["key"]: r for r in evaluate(session, by="community", from_="2026-11-01")["rows"]}
    assert (by_community[C1]["cases"], by_community[C1]["backlog"], by_community[C2]["cases"]) == (3, 1, 1)
    outside = evaluate(session, by="department", from_="2026-11-03", to="2026-11-30")
    assert outside["rows"] == [] and outside["total"]["cases"] == 0


def test_evaluation_bad_input(session, cases):
    with pytest.raises(ValidationError):
        evaluate(session, by="street")
    with pytest.raises(ValidationError):
        evaluate(session, from_="2026-12-01", to="2026-11-01")


def test_heatmap_bins_and_choropleth(session, cases):
    filters = parse_filters(from_="2026-11-01", zoom="12")
    result = heatmap(session, filters)
    assert result["total"] == 4 and result["size"] == pytest.approx(bin_size(12))
    assert sum(b[2] for b in result["bins"]) == 4 and len(result["bins"]) <= 4
    assert heatmap(session, parse_filters(state="closed", zoom="12"))["total"] == 3
    assert heatmap(session, parse_filters(category="E0101", zoom="12"))["total"] == 1
    assert heatmap(session, parse_filters(bbox="0,0,1,1"))["total"] == 0
    communities = choropleth(session, parse_filters(zoom="12"))
    assert communities["level"] == "community"
    assert {f["properties"]["code"]: f["properties"]["count"] for f in communities["features"]} == {C1: 3, C2: 1}
    cells = choropleth(session, parse_filters(zoom="16"))
    assert cells["level"] == "base_cell" and sum(f["properties"]["count"] for f in cells["features"]) == 4
    for bad in ({"bbox": "1,2,3"}, {"zoom": "x"}, {"state": "lost"}, {"from_": "2026-12-01", "to": "2026-11-01"}):
        with pytest.raises(ValidationError):
            parse_filters(**bad)
