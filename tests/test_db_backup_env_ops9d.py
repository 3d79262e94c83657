"""`gridkit db backup` of an external database reaches it as gridkit itself does: with the libpq settings of
the environment (PGPASSWORD, PGSSLMODE, PGSSLROOTCERT… which the application's own connections honour),
not only with what GRIDKIT_DATABASE_URL says. A city that keeps the password out of the URL (a secret
store exporting PGPASSWORD) could run gridkit but not back it up."""

from __future__ import annotations

from dataclasses import replace

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gridkit import db
from gridkit.db.backup import backup

ROLE, PASSWORD = "ops9d_backup", "pw-ops9d-7"


def _admin(url: str):
    plain = make_url(url).set(drivername="postgresql", database="postgres")
    return psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True)


# As the owner: an external database is backed up as its URL's one role, the schema's owner; the superuser makes
# the role whose password only the environment gives.
def test_an_external_backup_uses_the_password_of_the_environment(
    pg_server, fresh_owner_settings, tmp_path, monkeypatch
):
    with _admin(pg_server.superuser_url()) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
        conn.execute(f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    try:
        url = make_url(fresh_owner_settings.database_url)
        # The same server and database, as a role whose password only the environment gives.
        query = {k: v for k, v in url.query.items() if k != "passfile"}
        bare = url.set(username=ROLE, password=None, query=query).render_as_string(hide_password=False)
        settings = replace(fresh_owner_settings, database_url=bare)
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
        engine = db.make_engine(db.database_url(settings))
        with engine.connect() as conn:  # gridkit's own connection reaches it
            assert conn.scalar(text("SELECT current_user")) == ROLE
        engine.dispose()
        done = backup(settings, tmp_path / "city.gkbackup", actor="test")
        assert done["bytes"] > 0 and (tmp_path / "city.gkbackup").exists()
    finally:
        monkeypatch.delenv("PGPASSWORD")  # it would be taken before the test server's own password file
        db.forget_engine(replace(fresh_owner_settings, database_url=bare))
        with _admin(pg_server.superuser_url()) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (ROLE,))
            conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
