"""The audit log after a year of use: the administration page's reads stay index lookups."""

from __future__ import annotations

import json

from sqlalchemy import text

from gridkit.audit import RECENT_WINDOW, recent

ROWS = 60_000


def _year_of_audit(session) -> None:
    # Every page showing personal data writes a row: many users, one rare user and one rare action long ago.
    session.execute(
        text("""
        INSERT INTO audit_log (at, actor, action, object_type, object_id)
        SELECT now() - make_interval(secs => g * 500), 'web:user' || (g % 300),
               CASE WHEN g % 1000 = 0 THEN 'user.created' ELSE 'personal_data.read' END, 'incident', g::text
        FROM generate_series(1, :n) g ORDER BY g DESC"""),
        {"n": ROWS},
    )
    session.execute(
        text("""INSERT INTO audit_log (at, actor, action)
                SELECT now() - interval '300 days', 'rare', 'user.role_changed' FROM generate_series(1, 3)""")
    )
    session.execute(text("ANALYZE audit_log"))


def _rows_read(session, statement) -> int:
    """Return how many rows of audit_log the plan of `statement` read (scanned, whether kept or filtered)."""
    compiled = statement.compile(session.bind, compile_kwargs={"literal_binds": True})
    plan = session.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}")).scalar()
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def walk(node):
        here = 0
        if node.get("Relation Name") == "audit_log":
            here = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get("Actual Loops", 1)
        return here + sum(walk(child) for child in node.get("Plans", []))

    return walk(plan[0]["Plan"])


def test_a_scoped_administrators_page_reads_its_users_rows_not_the_whole_log(session):
    _year_of_audit(session)
    rows = recent(session, users=["rare", "nobody"])
    assert [r.actor for r in rows] == ["rare"] * 3
    rows = recent(session, users=["user100"], action="user.created")
    assert rows and {r.actor for r in rows} == {"web:user100"} and {r.action for r in rows} == {"user.created"}
    assert recent(session, users=[]) == []
    # Busy users (answered from the newest rows) and quiet ones (from each one's index): the same rows as a
    # plain query of the whole log.
    for users, action, before in ((["user1", "user2"], None, None), (["user3", "rare"], None, 40_000)):
        expected = session.scalars(
            text("""SELECT id FROM audit_log
                    WHERE actor = ANY(:actors) AND (CAST(:before AS int) IS NULL OR id < :before)
                    ORDER BY id DESC LIMIT 100"""),
            {"actors": [*users, *(f"web:{u}" for u in users)], "before": before},
        ).all()
        assert [r.id for r in recent(session, users=users, action=action, before=before)] == expected


# As the owner: the ANALYZE of the fabricated year of audit rows (autovacuum's work in production) is the owner's.
def test_the_audit_reads_use_the_indexes(owner_session):
    session = owner_session
    from sqlalchemy import event

    _year_of_audit(session)
    statements = []

    def keep(conn, cursor, statement, params, context, executemany):
        if "FROM audit_log" in statement and not statement.startswith("EXPLAIN"):
            statements.append(context.compiled.statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", keep)
    try:
        recent(session, users=["rare"])
        recent(session, action="user.role_changed")
        recent(session, users=["user7"], action="user.role_changed", before=ROWS)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    # Bounded by the window looked through first, whatever the log's size (the whole log before).
    read = [_rows_read(session, s) for s in statements]
    assert len(statements) >= 3 and max(read) <= RECENT_WINDOW + 100 < ROWS, read


# As the owner: `gridkit db archive-audit` works as the owner (db.owner_transaction), and of an external database
# that is its URL's one role.
def test_the_audit_log_is_archived_up_to_a_beijing_day_all_or_nothing(fresh_owner_settings, tmp_path):
    fresh_settings = fresh_owner_settings
    from gridkit import db
    from tests.test_db_private import run

    with db.transaction(fresh_settings) as session:
        session.execute(
            text("""INSERT INTO audit_log (at, actor, action, detail) VALUES
                ('2025-06-01T10:00:00+08:00', 'web:a', 'personal_data.read', '{"rows": 3}'),
                ('2025-12-31T23:30:00+08:00', 'web:b', 'personal_data.read', NULL),
                ('2026-01-01T00:30:00+08:00', 'web:c', 'personal_data.read', NULL)""")
        )
    target = tmp_path / "audit-2025.jsonl.gz"
    done = run(fresh_settings, "db", "archive-audit", str(target), "--before", "2026-01-01", "--json")
    done = json.loads(done.output)
    assert done["rows"] == 2 and done["before"] == "2026-01-01T00:00:00+08:00"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    import gzip

    lines = [json.loads(line) for line in gzip.open(target, "rt", encoding="utf-8")]
    assert [(r["actor"], r["at"]) for r in lines] == [
        ("web:a", "2025-06-01T10:00:00+08:00"),
        ("web:b", "2025-12-31T23:30:00+08:00"),
    ]
    assert lines[0]["detail"] == {"rows": 3}
    with db.engine_for(fresh_settings).connect() as conn:
        left = conn.execute(text("SELECT actor, action FROM audit_log ORDER BY id")).all()
    assert [tuple(r) for r in left][:1] == [("web:c", "personal_data.read")]
    assert [r.action for r in left][-1] == "audit.archived"
    # Nothing is overwritten, nothing archived from the future; the log stays as it was.
    again = run(fresh_settings, "db", "archive-audit", str(target), "--before", "2026-01-01", ok=False)
    assert again.exit_code == 1 and "exists already" in again.output
    future = run(fresh_settings, "db", "archive-audit", str(tmp_path / "x.gz"), "--before", "2999-01-01", ok=False)
    assert future.exit_code == 1 and "future" in future.output and not (tmp_path / "x.gz").exists()
    with db.engine_for(fresh_settings).connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM audit_log")) == len(left)
