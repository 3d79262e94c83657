"""audit_log.id is bigint (migration 20261207_ops9d): a row per view of personal data outgrows int4's
2,147,483,647 within years at a city's rate; rows past it are written, listed and paged back to."""

from __future__ import annotations

from factories_web import USERS, commit, make_web_city, sign_in
from sqlalchemy import text

from gridkit import audit, db
from gridkit.models import AuditLog
from web import create_app

PAST_INT4 = 2**31 + 10


def test_the_id_and_its_sequence_are_bigint_in_the_schema_and_the_model(session):
    types = session.execute(
        text(
            "SELECT c.data_type, s.data_type FROM information_schema.columns c "
            "JOIN information_schema.sequences s ON s.sequence_name = "
            "  split_part(pg_get_serial_sequence('audit_log', 'id'), '.', 2) "
            "WHERE c.table_name = 'audit_log' AND c.column_name = 'id'"
        )
    ).one()
    assert tuple(types) == ("bigint", "bigint")
    assert AuditLog.__table__.c.id.type.python_type is int
    assert type(AuditLog.__table__.c.id.type).__name__ == "BigInteger"


def test_rows_past_int4_are_written_listed_and_paged_back_to(fresh_settings):
    def fill(session):
        make_web_city(session)
        # setval is not rolled back: a database of the test's own.
        session.execute(text("SELECT setval(pg_get_serial_sequence('audit_log', 'id'), :n)"), {"n": PAST_INT4})
        rows = [audit.record(session, "cli:test", "test.viewed", object_type="resident", object_id=i) for i in range(3)]
        session.flush()
        return [row.id for row in rows]

    ids = commit(fresh_settings, fill)
    assert ids == [PAST_INT4 + 1, PAST_INT4 + 2, PAST_INT4 + 3]
    with db.session_factory(db.engine_for(fresh_settings))() as session:
        assert [r.id for r in audit.recent(session, action="test.viewed", before=ids[-1])] == ids[:2][::-1]

    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    client = app.test_client()
    sign_in(client, USERS["admin"])
    # The "older" link of the administration page carries the last row's id: past int4 it still pages back.
    page = client.get(f"/admin?action=test.viewed&before={ids[-1]}")
    assert page.status_code == 200
    shown = page.get_data(as_text=True)
    assert "test.viewed" in shown
    assert client.get(f"/admin?before={2**63}").status_code == 400
