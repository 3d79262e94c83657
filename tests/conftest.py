"""Test fixtures: a real PostGIS for the whole session, a rolled-back transaction per test.

The server is the one at GRIDKIT_TEST_DATABASE_URL, or else a throwaway private cluster that
this session starts with the same code as the embedded default (gridkit.db.embedded).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.assign_hook import install_assignment_hook
from gridkit.config import Settings
from gridkit.db.embedded import ADMIN_ROLE, EmbeddedCluster
from gridkit.errors import SetupError

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
TEMPLATE_DB = "gridkit_test_template"


@dataclass
class TestServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    base_url: str  # SQLAlchemy URL of the main test database
    cluster: EmbeddedCluster | None

    def url_for(self, dbname: str) -> str:
        """Return the URL of another database on the same server."""
        return make_url(self.base_url).set(database=dbname).render_as_string(hide_password=False)

    def _admin(self):
        url = make_url(self.base_url).set(drivername="postgresql", database="postgres")
        conninfo = url.render_as_string(hide_password=False)
        return psycopg.connect(conninfo, autocommit=True)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create (or re-create) database `name` and return its URL."""
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if template:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(
            make_url(self.url_for(name)).set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        ) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists."""
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server():
    """Start (or reach) the test server, build the schema with `alembic upgrade head`."""
    external = os.environ.get("GRIDKIT_TEST_DATABASE_URL")
    tmp = None
    cluster = None
    if external:
        base_url = db.database_url(Settings(database_url=external))
    else:
        # Short path: the Unix socket lives in it.
        tmp = Path(tempfile.mkdtemp(prefix="gk-test-"))
        os.chmod(tmp, 0o755)
        cluster = EmbeddedCluster(tmp, fast=True, port=5499)
        try:
            cluster.init()
            cluster.start()
            cluster.wait_ready()
        except SetupError as exc:
            pytest.exit(
                f"PostGIS is needed for the tests and could not be started: {exc.message}. "
                "Install it with `bash scripts/setup.sh`, or set GRIDKIT_TEST_DATABASE_URL.",
                returncode=3,
            )
        # The tests create and drop databases: they work as the cluster's superuser.
        base_url = cluster.url("gridkit_test", role=ADMIN_ROLE)
    server = TestServer(base_url=base_url, cluster=cluster)
    if cluster is not None:
        server.create_database("gridkit_test")
    db.upgrade(base_url)
    server.create_database(TEMPLATE_DB, template=make_url(base_url).database)
    yield server
    server.drop_database(TEMPLATE_DB)
    if cluster is not None:
        cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def engine(pg_server):
    """An engine on the migrated main test database."""
    eng = db.make_engine(pg_server.base_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine):
    """A session whose work is rolled back after the test, even if the code under test commits."""
    connection = engine.connect()
    outer = connection.begin()
    sess = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    install_assignment_hook(sess)
    try:
        yield sess
    finally:
        sess.close()
        outer.rollback()
        connection.close()


_fresh_numbers = itertools.count(1)


@pytest.fixture
def fresh_settings(pg_server, tmp_path):
    """Settings on a brand-new migrated database of its own, for CLI and web tests that commit."""
    name = f"gridkit_fresh_{os.getpid()}_{next(_fresh_numbers)}"
    url = pg_server.create_database(name, template=TEMPLATE_DB)
    settings = Settings(home=tmp_path / "home", database_url=url)
    yield settings
    _dispose_engine_for(db.database_url(settings))
    pg_server.drop_database(name)


def _dispose_engine_for(url: str) -> None:
    eng = db._engines.pop(url, None)
    if eng is not None:
        eng.dispose()
