"""The supervisor's choropleth per community read from the rollup (scripts/bench_pages.py: counting 300,000
cases took ~100 ms): the same counts as the cases themselves for views cutting through bins and
communities, periods cutting through months, and a scoped actor."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from factories import X0, Y0, D, make_base_grid
from sqlalchemy import text

from gridkit.incidents.actors import Actor
from gridkit.incidents.categories import seed_categories
from gridkit.incidents.heatmap import choropleth, count_communities, parse_filters

T0 = datetime(2026, 7, 1, tzinfo=UTC)
SIDE = 24  # 24 × 24 cells of ~100 m per community, three communities side by side: several zoom-13 bins


@pytest.fixture
def city(session):
    make_base_grid(session, rows=SIDE, cols=SIDE, communities=3)
    seed_categories(session)
    rng = random.Random(5)
    rows = [
        {
            "code": f"R-{n:05d}",
            "x": X0 - 2 * D + rng.random() * (3 * SIDE + 4) * D,
            "y": Y0 - 2 * D + rng.random() * (SIDE + 4) * D,
            "at": T0 + timedelta(hours=rng.random() * 24 * 120),
            "category": rng.choice(["E0101", "E0103"]),
        }
        for n in range(3000)
    ]
    # Some on a bin's edge: x a multiple of the zoom-13 bin (135 / 32768 degrees).
    size = 135 / 32768
    for row in rows[:50]:
        row["x"] = (int(row["x"] / size) + 1) * size
    session.execute(
        text("""
        INSERT INTO incident (code, status, geom, reported_at, category_code, base_cell_id)
        SELECT :code, 'reported', ST_SetSRID(ST_MakePoint(:x, :y), 4490), :at, :category,
               (SELECT id FROM base_cell b WHERE ST_Covers(b.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490))
                ORDER BY b.code LIMIT 1)"""),
        rows,
    )
    return rows


def _counts(result: dict) -> dict:
    return {f["properties"]["code"]: f["properties"]["count"] for f in result["features"]}


VIEWS = [
    None,
    f"{X0 - 1},{Y0 - 1},{X0 + 1},{Y0 + 1}",
    f"{X0 + 3.3 * D},{Y0 + 2.7 * D},{X0 + 61.2 * D},{Y0 + 20.1 * D}",  # cuts bins and communities
    f"{X0 + 30 * D},{Y0 + 5 * D},{X0 + 31 * D},{Y0 + 6 * D}",  # inside one bin
]
PERIODS = [
    {},
    {"from_": "2026-07-15", "to": "2026-10-20"},  # cuts months at both ends
    {"from_": "2026-08-01T00:00:00+00:00", "to": "2026-09-01T00:00:00+00:00"},  # one whole month
    {"from_": "2026-08-03", "to": "2026-08-20"},  # inside a month
    {"to": "2026-09-10"},
]


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("period", PERIODS)
def test_the_rollup_counts_what_the_cases_count(session, city, view, period):
    filters = parse_filters(bbox=view, zoom="12", **period)
    expected = count_communities(session, filters)
    result = choropleth(session, filters)
    assert _counts(result) == expected
    assert [f["properties"]["code"] for f in result["features"]] == sorted(expected)
    assert result["level"] == "community" and result["max"] == max(expected.values(), default=0)
    if view is None and not period:
        assert sum(expected.values()) == session.scalar(text("SELECT count(*) FROM incident WHERE base_cell_id > 0"))


def test_a_scoped_actor_and_a_category(session, city):
    community = session.scalar(text("SELECT min(community_code) FROM base_cell"))
    scoped = Actor("s", "supervisor", community)
    filters = parse_filters(bbox=VIEWS[2], zoom="11", from_="2026-07-15")
    expected = count_communities(session, filters, scoped)
    assert set(expected) == {community}
    assert _counts(choropleth(session, filters, scoped)) == expected
    by_category = parse_filters(bbox=VIEWS[2], zoom="12", category="E0101")
    assert _counts(choropleth(session, by_category)) == count_communities(session, by_category)
    assert sum(count_communities(session, by_category).values()) < sum(
        count_communities(session, parse_filters(bbox=VIEWS[2], zoom="12")).values()
    )
