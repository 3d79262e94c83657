"""Is the database reachable and at the current schema? For monitoring and /api/health."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gridkit import __version__
from gridkit.db import head_revision, revision_of
from gridkit.errors import SetupError


def health(session: Session) -> dict:
    """Return {status, database, schema_revision, head_revision, postgis, version}; status is ok or outdated."""
    try:
        postgis = session.scalar(text("SELECT postgis_lib_version()"))
        revision = revision_of(session.connection())
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise SetupError("db.unreachable", reason=reason) from None
    head = head_revision()
    return {
        "status": "ok" if revision == head else "outdated",
        "database": "ok",
        "schema_revision": revision,
        "head_revision": head,
        "postgis": postgis,
        "version": __version__,
    }
