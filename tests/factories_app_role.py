"""A database migrated by the owner role `gridkit_owner` and reached as the application role `gridkit`,
as in production: for tests of what the application role may and may not do."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.db.embedded import APP_ROLE, OWNER_ROLE, EmbeddedCluster


@contextmanager
def app_role_engine(pg_server, name: str, port: int):
    """Yield an engine connected as the application role to a fresh database `name` migrated by the owner.

    On the test's private cluster the database is made there; with an external test server (no
    gridkit roles) a private cluster is started on `port` for it and destroyed afterwards.
    """
    own = None
    cluster = pg_server.cluster
    if cluster is None:
        own = Path(tempfile.mkdtemp(prefix=f"gk-{name}-"))
        own.chmod(0o755)
        cluster = EmbeddedCluster(own, fast=True, port=port)
        cluster.init()
        cluster.start()
        cluster.wait_ready()
    cluster.drop_database(name)
    cluster.ensure_database(name)
    db.upgrade(cluster.url(name, role=OWNER_ROLE))
    engine = db.make_engine(cluster.url(name, role=APP_ROLE))
    try:
        yield engine
    finally:
        engine.dispose()
        cluster.drop_database(name)
        if own is not None:
            cluster.destroy()
            shutil.rmtree(own, ignore_errors=True)


@contextmanager
def rolled_back_session(engine):
    """Yield a session on `engine` whose whole work is rolled back at the end (savepoints inside)."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@contextmanager
def statements_run(engine):
    """Yield the list of SQL statements `engine` runs inside the block."""
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)
