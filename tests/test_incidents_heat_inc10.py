"""The heatmap's rollup (incident_heat, kept by triggers on incident) gives the same bins as
counting the cases, for any time window, zoom, view and scope; and it stays equal to a recount
after reports, transitions, a bulk import, re-assignment and deletion."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from factories import X0, Y0, D
from factories_incidents import C2, SUPERVISOR, make_incident_world
from sqlalchemy import text

from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.incidents.heatmap import bin_size, heatmap, parse_filters
from gridkit.incidents.importer import import_incidents

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
