"""The city's time zone in the database: the one-row table gridkit_config (migration 20261207_ops9d).

The evaluation rollup (incident_eval) counts cases per report day in that zone, kept by triggers; the
evaluation asks for days in gridkit.rules.local_tz(). Both must be the same zone, GRIDKIT_TIME_ZONE:
`gridkit db up` (and every start of the embedded database) writes it, and recounts the rollup by the
new days in the same transaction when it changed; an external database holding another zone is refused
until then, instead of giving evaluations whose days are half one zone's and half another's.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from gridkit.errors import SetupError


def database_time_zone(conn: Connection) -> str:
    """Return the time zone the database's rollup counts days in."""
    return conn.scalar(text("SELECT time_zone FROM gridkit_config"))


def set_database_time_zone(conn: Connection, zone: str) -> bool:
    """Make `zone` the database's time zone and recount the evaluation rollup by its days, in the caller's
    transaction; return False (nothing done) when it already is. A zone PostgreSQL does not know (its own
    time zone files, not Python's) is a SetupError: the triggers would refuse every case."""
    if database_time_zone(conn) == zone:
        return False
    if not conn.scalar(text("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = :zone)"), {"zone": zone}):
        raise SetupError("db.time_zone_unknown", variable="GRIDKIT_TIME_ZONE", value=zone)
    conn.execute(text("UPDATE gridkit_config SET time_zone = :zone"), {"zone": zone})
    conn.execute(text("SELECT gridkit_rebuild_incident_eval()"))
    return True


def sync_time_zone(engine: Engine, zone: str) -> bool:
    """Give the database at `engine` (its owner's) the time zone `zone` in one transaction; True when it changed."""
    with engine.begin() as conn:
        return set_database_time_zone(conn, zone)


def check_time_zone(engine: Engine, zone: str, *, url: str) -> None:
    """Raise SetupError unless the database at `engine` counts days in `zone` (`gridkit db up` gives it)."""
    with engine.connect() as conn:
        held = database_time_zone(conn)
    if held != zone:
        raise SetupError("db.time_zone_differs", url=url, held=held, zone=zone)
