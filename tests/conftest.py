"""Test fixtures: a real PostGIS for the whole session, a rolled-back transaction per test.

The server is the one at GRIDKIT_TEST_DATABASE_URL, or else a throwaway private cluster that
this session starts with the same code as the embedded default (gridkit.db.embedded).

On the private cluster the tests reach the database as production does: as the application role
`gridkit` (no owner, no superuser, with the privileges `gridkit db up` grants and the migrations
restrict), the schema being migrated by the owner role `gridkit_owner`. The fixtures `engine`,
`session` and `fresh_settings` are the application role's; a test that needs more (DDL, the writes
the application may not make, the owner's bookkeeping) asks for `owner_engine`, `owner_session`,
`fresh_owner_settings` or `superuser_engine` by name, or is marked `@pytest.mark.as_owner("why")`
to have its `session` as the owner. An external test server has one role, used for all of them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.assign_hook import install_assignment_hook
from gridkit.config import Settings
from gridkit.db.embedded import ADMIN_ROLE, APP_ROLE, OWNER_ROLE, EmbeddedCluster
from gridkit.errors import SetupError

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
MAIN_DB = "gridkit_test"
TEMPLATE_DB = "gridkit_test_template"


@dataclass
class TestServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    external_url: str | None  # SQLAlchemy URL of the main test database on an external server (its only role)
    cluster: EmbeddedCluster | None  # else the private cluster, with gridkit's three roles
    main_db: str = MAIN_DB  # the main test database (migrated once; `session`'s)

    def url_for(self, dbname: str, role: str = APP_ROLE) -> str:
        """Return the URL of database `dbname` as `role` (the application role by default; on an external
        server, its one role whatever `role` says)."""
        if self.cluster is None:
            return make_url(self.external_url).set(database=dbname).render_as_string(hide_password=False)
        return self.cluster.url(dbname, role=role)

    def owner_url(self, dbname: str | None = None) -> str:
        """Return the URL of database `dbname` as the owner of its schema (who migrates it)."""
        return self.url_for(dbname or self.main_db, OWNER_ROLE)

    def superuser_url(self, dbname: str | None = None) -> str:
        """Return the URL of database `dbname` as the server's superuser."""
        return self.url_for(dbname or self.main_db, ADMIN_ROLE)

    def owner_settings(self, settings: Settings) -> Settings:
        """Return `settings` (of a database of this server) on the same database as the owner of its schema."""
        return replace(settings, database_url=self.owner_url(make_url(settings.database_url).database))

    @property
    def app_url(self) -> str:
        """The URL of the main test database as the application role."""
        return self.url_for(self.main_db)

    def _connect(self, dbname: str):
        conninfo = make_url(self.superuser_url(dbname)).set(drivername="postgresql")
        return psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True)

    def _admin(self):
        return self._connect("postgres")

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create (or re-create) database `name`, owned by the owner role with the application role's grants
        as `gridkit db up` gives them, and return its URL as the application role (pg_server.owner_url(name) to
        migrate it)."""
        owner = "" if self.cluster is None else f' OWNER "{OWNER_ROLE}"'
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "") + owner)
        if self.cluster is not None:
            self.cluster.grant(name)  # postgis, and the database's own grants (a template's are not copied)
        else:
            with self._connect(name) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists."""
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server():
    """Start (or reach) the test server, build the schema with `alembic upgrade head` as the owner."""
    external = os.environ.get("GRIDKIT_TEST_DATABASE_URL")
    tmp = None
    cluster = None
    if external:
        url = db.database_url(Settings(database_url=external))
        server = TestServer(external_url=url, cluster=None, main_db=make_url(url).database)
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
        # Every test's work is rolled back: autovacuum would record the main database's tables as analysed empty while
        # their files keep the pages of those rows (truncating them waits on the next test's locks), and the planner
        # would then take the thousands of rows a test adds for none (a demo load's per-case statements ran for
        # minutes). Statistics come from the ANALYZE the code under test asks for.
        with cluster.connect("postgres") as conn:
            conn.execute("ALTER SYSTEM SET autovacuum = off")
            conn.execute("SELECT pg_reload_conf()")
        cluster.ensure_roles()
        server = TestServer(external_url=None, cluster=cluster)
        server.create_database(MAIN_DB)
    db.upgrade(server.owner_url())
    server.create_database(TEMPLATE_DB, template=server.main_db)
    yield server
    server.drop_database(TEMPLATE_DB)
    if cluster is not None:
        cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def engine(pg_server):
    """An engine on the migrated main test database, as the application role."""
    eng = db.make_engine(pg_server.app_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def owner_engine(pg_server):
    """An engine on the main test database as the owner of its schema: for what the application role may not do."""
    eng = db.make_engine(pg_server.owner_url())
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def superuser_engine(pg_server):
    """An engine on the main test database as the server's superuser: for what even the owner may not do."""
    eng = db.make_engine(pg_server.superuser_url())
    yield eng
    eng.dispose()


def _rolled_back(eng):
    connection = eng.connect()
    outer = connection.begin()
    sess = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    install_assignment_hook(sess)
    try:
        yield sess
    finally:
        sess.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def session(request, engine):
    """A session as the application role whose work is rolled back after the test, even if the code under test
    commits; as the schema's owner for a test marked `@pytest.mark.as_owner("why")` (and so for every fixture of
    that test built on `session`)."""
    marker = request.node.get_closest_marker("as_owner")
    if marker is not None and not (marker.args and marker.args[0]):
        pytest.fail("@pytest.mark.as_owner needs the reason the application role does not do", pytrace=False)
    yield from _rolled_back(request.getfixturevalue("owner_engine") if marker else engine)


@pytest.fixture
def owner_session(owner_engine):
    """As `session`, as the owner of the schema."""
    yield from _rolled_back(owner_engine)


_fresh_numbers = itertools.count(1)


@pytest.fixture
def fresh_settings(pg_server, tmp_path):
    """Settings on a brand-new migrated database of its own as the application role, for CLI and web tests that
    commit."""
    name = f"gridkit_fresh_{os.getpid()}_{next(_fresh_numbers)}"
    url = pg_server.create_database(name, template=TEMPLATE_DB)
    settings = Settings(home=tmp_path / "home", database_url=url)
    yield settings
    _dispose_engine_for(db.database_url(settings))
    _dispose_engine_for(db.database_url(pg_server.owner_settings(settings)))
    pg_server.drop_database(name)


@pytest.fixture
def fresh_owner_settings(pg_server, fresh_settings):
    """fresh_settings' database as the owner of its schema: for commands only the owner may run (migrations,
    `gridkit db archive-audit`, a new time zone) and for data the application role may not write."""
    return pg_server.owner_settings(fresh_settings)


def _dispose_engine_for(url: str) -> None:
    eng = db._engines.pop(url, None)
    if eng is not None:
        eng.dispose()
