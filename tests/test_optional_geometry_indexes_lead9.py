"""The spatial indexes of subjects' optional geometries hold only rows with a geometry (migration 20261205_lead9),
and gridkit's spatial predicates still use them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import text

from gridkit.spatial.bulk import rebuilt_indexes

_MIGRATION = Path(__file__).resolve().parents[1] / "migrations" / "versions" / "20261205_lead9.py"
_spec = importlib.util.spec_from_file_location("lead9", _MIGRATION)
lead9 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lead9)

ENVELOPE = "ST_MakeEnvelope(114.05, 22.53, 114.06, 22.54, 4490)"


@pytest.mark.parametrize(("table", "column"), lead9.OPTIONAL_GEOMETRIES)
def test_the_index_is_partial_and_used_by_the_spatial_predicates(session, table, column):
    definition = session.scalar(
        text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": f"idx_{table}_{column}"}
    )
    assert definition.endswith(f"USING gist ({column}) WHERE ({column} IS NOT NULL)")
    session.execute(text("SET LOCAL enable_seqscan = off"))
    for predicate in (
        f"{column} && {ENVELOPE}",
        f"ST_Intersects({column}, {ENVELOPE})",
        f"ST_Covers({ENVELOPE}, {column})",
        f"ST_DWithin({column}, ST_SetSRID(ST_MakePoint(114.05, 22.53), 4490), 0.001)",
    ):
        plan = "\n".join(session.scalars(text(f"EXPLAIN SELECT id FROM {table} WHERE {predicate}")))
        assert f"idx_{table}_{column}" in plan, (predicate, plan)


def test_a_bulk_rebuild_keeps_the_indexes_partial(session):
    before = sorted(session.scalars(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'resident'")))
    with rebuilt_indexes(session, "resident", 10**9) as dropped:
        assert dropped
        assert not session.scalar(text("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_resident_geom'"))
    after = sorted(session.scalars(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'resident'")))
    assert after == before
    assert any(d.endswith("WHERE (geom IS NOT NULL)") for d in after)
