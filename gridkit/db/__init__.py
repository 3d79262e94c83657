"""Engines, sessions and migrations for the configured database (embedded or external)."""

from __future__ import annotations

import ast
import fcntl
import functools
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import TextClause

from gridkit.config import Settings
from gridkit.db.embedded import ADMIN_ROLE, OWNER_ROLE, EmbeddedCluster
from gridkit.errors import SetupError
from gridkit.messages import Message

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"


def cluster_for(settings: Settings, *, fast: bool = False) -> EmbeddedCluster:
    """Return the embedded cluster that `settings` describe."""
    return EmbeddedCluster(settings.home, pg_bin=settings.pg_bin, port=settings.pg_port, fast=fast)


def safe_url(url: str) -> str:
    """Return `url` with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def database_url(settings: Settings) -> str:
    """Return the SQLAlchemy URL the application uses under `settings` (the embedded app role)."""
    if settings.database_url:
        url = settings.database_url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    return cluster_for(settings).url()


def owner_url(settings: Settings) -> str:
    """Return the URL migrations run with: the embedded owner role, or the external URL itself."""
    if settings.embedded:
        return cluster_for(settings).url(role=OWNER_ROLE)
    return database_url(settings)


# A pooled connection unused for longer than this is tested before use (a restart or a lost
# server meanwhile gets a fresh connection instead of an error); a busier one is not, so a
# request pays no extra round trip. A connection that fails in use is dropped by SQLAlchemy,
# with every pooled connection older than the failure, and the request answers 503 with advice.
PING_IDLE_SECONDS = 1.0


def make_engine(url: str, **kwargs) -> Engine:
    """Return an engine for `url` with gridkit's connection defaults (see PING_IDLE_SECONDS).

    The pool hands out the connection returned last (LIFO): a request mostly gets a connection
    whose server process has its statements prepared and planned and its caches (catalog, PostGIS'
    projections) warm, instead of going round every connection a past burst opened.
    """
    kwargs.setdefault("pool_use_lifo", True)
    # Bound values are names, phones, ID numbers: never in an error's message, so never in a log
    # line or a traceback (the web logs a value the database refused, to be fixed).
    kwargs.setdefault("hide_parameters", True)
    engine = create_engine(url, future=True, **kwargs)
    event.listen(engine, "checkin", _mark_idle)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _mark_idle(dbapi_connection, record) -> None:
    if record is not None:
        record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, proxy) -> None:
    since = record.info.get("idle_since")
    if since is None or time.monotonic() - since <= PING_IDLE_SECONDS:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:
        # The pool drops this connection and takes (or opens) another one.
        raise DisconnectionError(f"a pooled connection is gone: {exc}") from exc


# {(SQL text, paramstyle): the text as the driver takes it}
_COMPILED: dict[tuple[str, str], str] = {}


def autocommit_scalar(engine: Engine, statement: TextClause, params: dict):
    """Return the first column of the first row (or None) of `statement` run on a pooled connection
    in autocommit, without a Session or a Connection: for a read that a hot path makes many times.

    One round trip (no BEGIN, no ROLLBACK) and none of the Session's bookkeeping, which costs more
    than a short query. The connection goes back to the pool as the pool handed it out (autocommit
    off). Driver errors propagate; a connection that is gone is dropped from the pool.
    """
    key = (statement.text, engine.dialect.paramstyle)  # a few texts, each compiled once
    sql = _COMPILED.get(key)
    if sql is None:
        sql = _COMPILED.setdefault(key, str(statement.compile(dialect=engine.dialect)))
    pooled = engine.raw_connection()
    try:
        connection = pooled.driver_connection
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                # Prepared at once (not after psycopg's default five runs): PostgreSQL then plans it
                # only until it settles on a generic plan.
                cursor.execute(sql, params, prepare=True)
                row = cursor.fetchone()
        finally:
            connection.autocommit = False
    except engine.dialect.loaded_dbapi.OperationalError:
        pooled.invalidate()
        raise
    finally:
        pooled.close()
    return None if row is None else row[0]


def _describe(settings: Settings) -> str | Message:
    """Name the database for messages: the embedded one, or the external URL (password hidden)."""
    if settings.embedded:
        return Message("db.the_embedded_database")
    return f"GRIDKIT_DATABASE_URL={safe_url(database_url(settings))}"


def check_connection(engine: Engine, *, what: str | Message) -> None:
    """Raise SetupError with advice unless `engine` reaches a PostGIS database (`what` names it in the message)."""
    try:
        with engine.connect() as conn:
            has_postgis = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).scalar()
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise SetupError("db.cannot_connect", what=what, reason=reason) from None
    if not has_postgis:
        raise SetupError("db.no_postgis", what=what)


def alembic_config(url: str):
    """Return an Alembic Config for gridkit's migrations against `url`."""
    from alembic.config import Config  # here: only migrating needs Alembic (every command checks the revision)

    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` down to `revision`."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    """Return the database's Alembic revision, or None if it was never migrated.

    Read from Alembic's own table (`alembic_version`), as its MigrationContext does, without
    loading Alembic: every command checks the revision before it starts.
    """
    with engine.connect() as conn:
        return revision_of(conn)


def revision_of(conn) -> str | None:
    """Return the Alembic revision the database of connection `conn` is at (see `current_revision`)."""
    if conn.scalar(text("SELECT to_regclass('alembic_version')")) is None:
        return None
    rows = conn.scalars(text("SELECT version_num FROM alembic_version")).all()
    if len(rows) > 1:
        raise SetupError("db.many_heads", count=len(rows), heads=", ".join(sorted(rows)))
    return rows[0] if rows else None


def head_revision() -> str:
    """Return the single head revision of gridkit's migrations.

    The revision files are read as Alembic reads their identifiers (the module-level `revision` and
    `down_revision` literals) without importing them or Alembic; a test checks the answer against
    Alembic's ScriptDirectory.
    """
    revisions = _revision_graph()
    pointed = {parent for parents in revisions.values() for parent in parents}
    heads = sorted(set(revisions) - pointed)
    if len(heads) != 1:
        raise SetupError("db.many_heads", count=len(heads), heads=", ".join(heads))
    return heads[0]


def is_known_revision(revision: str | None) -> bool:
    """Return whether `revision` is one of gridkit's migrations (a backup from a newer gridkit is not)."""
    return revision in _revision_graph()


@functools.cache
def _revision_graph() -> dict[str, tuple[str, ...]]:
    """Return {revision: its down revisions} of every migration file."""
    graph = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        names = {}
        for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                        names[target.id] = ast.literal_eval(node.value)
        if "revision" not in names:
            continue
        down = names.get("down_revision")
        graph[names["revision"]] = () if down is None else (down,) if isinstance(down, str) else tuple(down)
    return graph


def up(settings: Settings, *, create: bool = True) -> dict:
    """Make the database ready: start the embedded cluster if needed, create, migrate.

    Running it again is harmless. Only `create=True` (`gridkit db up`, `gridkit demo`) makes a
    new embedded cluster; otherwise a home without one is a SetupError saying to run `gridkit db up`.
    Returns what was done, for `gridkit db up`.

    One process at a time per home (`setup_lock`): commands started together (cron jobs, a server's
    workers) would otherwise start the server twice, or update the roles' and grants' catalogue rows
    at once, which PostgreSQL refuses ("tuple concurrently updated"), or migrate twice.
    """
    with setup_lock(settings.home):
        return _up(settings, create=create)


@contextmanager
def setup_lock(home: Path):
    """Hold an exclusive lock on home/.setup.lock for the block, waiting for another process's; no lock
    when the home cannot be written (an external database's read-only home)."""
    try:
        Path(home).mkdir(parents=True, exist_ok=True)
        fd = os.open(Path(home) / ".setup.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _up(settings: Settings, *, create: bool) -> dict:
    from gridkit.db.restore_recovery import recover

    done = {"initialised": False, "started": False, "created": False, "migrated": False}
    if settings.embedded:
        cluster = cluster_for(settings)
        if not create and not cluster.initialised:
            raise SetupError("db.no_cluster", home=str(settings.home))
        done["initialised"] = cluster.init()
        done["started"] = cluster.start()
        cluster.wait_ready()
        # Before the database is made if missing: a restore killed between its renames left it under another name.
        done["interrupted_restore"] = recover(settings)
        done["created"] = cluster.ensure_database()
    else:
        done["interrupted_restore"] = recover(settings)
    url = database_url(settings)
    engine = make_engine(url)
    if not settings.embedded:
        _try_create_postgis(engine)
    try:
        check_connection(engine, what=_describe(settings))
        before = current_revision(engine)
        if before != head_revision():
            upgrade(owner_url(settings))
            done["migrated"] = True
        done["time_zone_changed"] = _sync_time_zone(settings, engine)
        _record_finished_restore(engine, done["interrupted_restore"])
    finally:
        engine.dispose()
    done["url"] = safe_url(url)
    return done


def _sync_time_zone(settings: Settings, engine: Engine) -> bool:
    """Give the database the setting's time zone as its owner (the rollup's days follow it); True when it changed.
    Read first with `engine`: a start of the embedded database opens no other connection when it has the zone."""
    from gridkit.db.timezone import database_time_zone, sync_time_zone

    with engine.connect() as conn:
        if database_time_zone(conn) == settings.time_zone:
            return False
    if settings.embedded:
        owner = make_engine(owner_url(settings))
        try:
            return sync_time_zone(owner, settings.time_zone)
        finally:
            owner.dispose()
    return sync_time_zone(engine, settings.time_zone)


def _record_finished_restore(engine: Engine, recovered: dict | None) -> None:
    """Record in the audit log a restore finished by a recovery (its own record was never written)."""
    from gridkit import audit
    from gridkit.db.restore_recovery import FINISHED

    if recovered is None or recovered["outcome"] != FINISHED:
        return
    with Session(engine) as session, session.begin():
        audit.record(
            session,
            "gridkit",
            audit.DATABASE_RESTORED,
            object_type="database_backup",
            path=recovered["backup"],
            interrupted=True,
        )


def _try_create_postgis(engine: Engine) -> None:
    """Create the postgis extension in an external database when the user may; else leave it."""
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    except Exception:
        # No privilege or no server: check_connection explains what to do.
        pass


_engines: dict[str, Engine] = {}


def engine_for(settings: Settings) -> Engine:
    """Return a ready engine: an existing embedded cluster is started and migrated if needed.

    A home without a cluster is refused (`gridkit db up` makes one). An external database must
    already be at the current schema (`gridkit db up` migrates it).
    """
    url = database_url(settings)
    if url in _engines:
        return _engines[url]
    if settings.embedded:
        up(settings, create=False)
        engine = make_engine(url)
    else:
        from gridkit.db.restore_recovery import recover

        recover(settings)
        engine = make_engine(url)
        check_connection(engine, what=_describe(settings))
        if current_revision(engine) != head_revision():
            raise SetupError("db.not_at_head", url=safe_url(url))
        from gridkit.db.timezone import check_time_zone

        check_time_zone(engine, settings.time_zone, url=safe_url(url))
    _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close the pooled connections of every cached engine (they stay usable: a later use opens new ones)."""
    for engine in list(_engines.values()):
        engine.dispose()


def forget_engine(settings: Settings) -> None:
    """Close and forget the cached engine of `settings` (after a restore replaced the database)."""
    engine = _engines.pop(database_url(settings), None)
    if engine is not None:
        engine.dispose()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a sessionmaker whose objects stay readable after commit and whose sessions assign subjects
    moved through the ORM to base cells at flush (gridkit.assign_hook.install_assignment_hook)."""
    from gridkit.assign_hook import install_assignment_hook

    factory = sessionmaker(bind=engine, expire_on_commit=False, future=True)
    install_assignment_hook(factory)
    return factory


def driver_connection(session: Session):
    """Return the psycopg connection of the session's transaction, for COPY and binary reads and writes;
    the ORM's pending writes are flushed first, so what it sends sees them."""
    session.flush()
    return session.connection().connection.driver_connection


@contextmanager
def transaction(settings: Settings):
    """Yield a session inside one transaction: committed on success, rolled back on error."""
    factory = session_factory(engine_for(settings))
    with factory() as session, session.begin():
        yield session


@contextmanager
def owner_transaction(settings: Settings):
    """Yield a session as the database's owner (owner_url) inside one transaction: for the writes the application
    role may not make (moving audit rows out of the log, gridkit.db.embedded.APP_APPEND_ONLY_TABLES)."""
    engine_for(settings)  # started and migrated, or refused, as for any command
    engine = make_engine(owner_url(settings))
    try:
        with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        engine.dispose()


@contextmanager
def bench_database(port: int, dbname: str = "gridkit_bench", *, role: str = ADMIN_ROLE):
    """Yield (url, description) of a migrated database for a benchmark.

    GRIDKIT_DATABASE_URL's database when set (it must be at the current schema; benchmarks work
    inside one transaction they roll back), else a throwaway private cluster under /tmp that is
    removed afterwards, migrated by the owner role as `gridkit db up` does, the URL being that of
    `role` (the superuser by default; APP_ROLE to measure what the application role does).
    """
    if os.environ.get("GRIDKIT_DATABASE_URL"):
        settings = Settings.from_env()
        engine_for(settings)  # refuses a database that is not at the current schema
        url = database_url(settings)
        yield url, f"{safe_url(url)} (one transaction, rolled back)"
        return
    tmp = Path(tempfile.mkdtemp(prefix="gk-bench-"))
    os.chmod(tmp, 0o755)  # the server user must reach it when run as root
    cluster = EmbeddedCluster(tmp, fast=True, port=port)
    try:
        cluster.init()
        cluster.start()
        cluster.wait_ready()
        cluster.ensure_database(dbname)
        upgrade(cluster.url(dbname, role=OWNER_ROLE))
        yield cluster.url(dbname, role=role), f"throwaway cluster in {tmp}, as {role}"
    finally:
        cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


def bench_admin_url(url: str) -> str:
    """Return the superuser's URL of the database `bench_database` yielded `url` for (the same URL if external)."""
    parsed = make_url(url)
    if parsed.query.get("passfile") is None:
        return url
    return parsed.set(username=ADMIN_ROLE).render_as_string(hide_password=False)
