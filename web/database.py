"""One SQLAlchemy session per request, on the engine of the app's settings."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.orm import Session

from gridkit.db import engine_for, session_factory

_lock = threading.Lock()


class _Commits:
    """A count of the commits made in this process (any session, any engine): the caches of
    tiles and of whois answers read their generation again after one."""

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def bump(self, _session=None) -> None:
        with self._lock:
            self.count += 1


COMMITS = _Commits()
event.listen(Session, "after_commit", COMMITS.bump)


def init_app(app: Flask) -> None:
    """Close the request's session when the request ends."""
    app.extensions["gridkit_sessions"] = None
    app.teardown_appcontext(_close_session)


def db_session() -> Session:
    """Return this request's session; views that change data use `with transaction() as session:`."""
    if "db_session" not in g:
        g.db_session = _factory()()
    return g.db_session


def _factory():
    # The engine is made on first use, not in create_app: a database that is down gives a
    # 503 page with advice instead of an app that cannot start.
    app = current_app
    factory = app.extensions["gridkit_sessions"]
    if factory is None:
        with _lock:
            factory = app.extensions["gridkit_sessions"]
            if factory is None:
                factory = session_factory(engine_for(app.config["GRIDKIT_SETTINGS"]))
                app.extensions["gridkit_sessions"] = factory
    return factory


def made_engine(app: Flask):
    """Return the app's engine once a request has made it (see _factory), else None."""
    factory = app.extensions.get("gridkit_sessions")
    return None if factory is None else factory.kw["bind"]


def _close_session(exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


@contextmanager
def transaction():
    """Yield this request's session in one transaction, committed when the block ends.

    Lookups made before (the signed-in user, permission checks) opened a read-only transaction;
    it is rolled back first, so that nothing but the block's work is committed. An exception
    rolls the block back and propagates.
    """
    session = db_session()
    if session.in_transaction():
        session.rollback()
    with session.begin():
        yield session


@contextmanager
def reading_session():
    """Yield a session on a connection in autocommit, for lookups only: a few SELECTs then cost no
    BEGIN and no ROLLBACK round trip (two of the four a request in a transaction pays besides its query)."""
    engine = _factory().kw["bind"]
    with (
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
        Session(bind=connection) as session,
    ):
        yield session
