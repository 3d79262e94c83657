"""What a restore into an external database may replace: gridkit's own objects, never another's.

An external database may be shared: another application's tables, views and functions can live in
its `public` schema beside gridkit's. A restore drops only what gridkit's migrations create (the
catalogue below, checked against a freshly migrated database by tests/test_db_restore_priv7b.py:
a migration adding an object must add it here) and what the backup's archive will create, then
restores the archive, in one transaction. It is refused, before anything changes, when that would
clobber another's objects: one of the same name as gridkit's in a database that is not gridkit's
(no `alembic_version` of gridkit's migrations), one of the same name as the archive's that gridkit
does not make, or a view or foreign key of another's that depends on a table being replaced.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from gridkit.errors import Conflict
from gridkit.models import Base

# Tables made by migrations without a model (summaries, triggers' queues, the migrations' own).
_TABLES_WITHOUT_MODEL = (
    "alembic_version",
    "gridkit_config",
    "incident_eval",
    "incident_heat",
    "resident_cell_summary",
    "resident_change",
    "resident_split_household",
)
OWN_TABLES = frozenset(Base.metadata.tables) | frozenset(_TABLES_WITHOUT_MODEL)
# Functions as name(argument types) (pg_catalog.oidvectortypes), domains, and schemas of gridkit's own.
OWN_FUNCTIONS = frozenset(
    {
        "gridkit_analyze_base_cell()",
        "gridkit_drop_bulk_indexes(regclass)",
        "gridkit_drop_bulk_indexes_on(regclass, text[])",
        "gridkit_load_resident_summary(integer[], integer[], integer[], integer[], integer[], integer[], text[])",
        "gridkit_rebuild_incident_eval()",
        "gridkit_refresh_resident_summary()",
        "gridkit_resident_summary_upkeep(integer[])",
        "gridkit_restore_bulk_indexes(regclass, text[])",
        "gridkit_truncate_for_load(regclass)",
        "incident_eval_delete()",
        "incident_eval_insert()",
        "incident_eval_update()",
        "incident_heat_delete()",
        "incident_heat_insert()",
        "incident_heat_update()",
        "resident_changed()",
    }
)
OWN_TYPES = frozenset({"resident_id_masked", "resident_population_type"})
OWN_SCHEMAS = ("gridkit_private",)

# The archive's entries that create a named object in public: "<id>; <catalog> <oid> <KIND> public <name> <owner>".
_ENTRY = re.compile(r"^\d+; \d+ \d+ (TABLE|VIEW|MATERIALIZED VIEW|SEQUENCE|DOMAIN|TYPE) public (\S+) ")

# Every object of public that no extension made: (kind, name, how to name it in a DROP). As text: the first branch's
# `name` type (63 bytes) would cut a function's signature short.
_PUBLIC_OBJECTS = """
SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                      WHEN 'f' THEN 'foreign table' ELSE 'table' END, c.relname::text, c.relname::text
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype IN ('e', 'a', 'i'))
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       p.proname || '(' || oidvectortypes(p.proargtypes) || ')', p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.deptype = 'e')
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END, t.typname::text, t.typname::text
FROM pg_type t
WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                  AND d.deptype = 'e')
"""

# Views and foreign keys outside `:names` that depend on a table named in `:names`.
_DEPENDENTS = """
SELECT DISTINCT v.relname FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid
JOIN pg_class v ON v.oid = w.ev_class JOIN pg_class t ON t.oid = d.refobjid
WHERE d.classid = 'pg_rewrite'::regclass AND t.relnamespace = 'public'::regnamespace
  AND t.relname = ANY(%(names)s) AND NOT (v.relnamespace = 'public'::regnamespace AND v.relname = ANY(%(names)s))
UNION
SELECT DISTINCT f.relname FROM pg_constraint k JOIN pg_class f ON f.oid = k.conrelid
JOIN pg_class t ON t.oid = k.confrelid
WHERE k.contype = 'f' AND t.relnamespace = 'public'::regnamespace AND t.relname = ANY(%(names)s)
  AND NOT (f.relnamespace = 'public'::regnamespace AND f.relname = ANY(%(names)s))
"""

_DROP_ORDER = (
    "view",
    "materialized view",
    "table",
    "foreign table",
    "sequence",
    "function",
    "procedure",
    "aggregate",
    "domain",
    "type",
)


def archive_names(listing: str) -> set[str]:
    """Return the names of the relations, sequences and types in public that the archive's list creates."""
    return {m.group(2) for m in map(_ENTRY.match, listing.splitlines()) if m}


def _is_gridkits(conn: psycopg.Connection) -> bool:
    """True when public.alembic_version holds one of gridkit's revisions."""
    from gridkit.db import is_known_revision

    if conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()[0] is None:
        return False
    rows = conn.execute("SELECT version_num FROM public.alembic_version").fetchall()
    return len(rows) == 1 and is_known_revision(rows[0][0])


def clear_script(conninfo: str, password: str | None, listing: str, *, shown: str) -> str:
    """Return the SQL dropping gridkit's objects from the database (run first in the restore's transaction),
    or raise Conflict naming another's objects the restore would clobber."""
    coming = archive_names(listing)
    with psycopg.connect(conninfo, password=password, autocommit=True) as conn:
        # An empty search path: functions are named schema-qualified (regprocedure), as the DROPs need.
        conn.execute("SET search_path = ''")
        gridkits = _is_gridkits(conn)
        objects = conn.execute(_PUBLIC_OBJECTS).fetchall()
        own = [(kind, name, ref) for kind, name, ref in objects if _own(kind, name)]
        # In a database not gridkit's, an object named as gridkit's is another's; in any, one the archive
        # creates that gridkit does not make is.
        clashes = sorted(
            {
                name
                for kind, name, _ in objects
                if (not gridkits and _own(kind, name)) or _foreign_clash(kind, name, coming)
            }
        )
        tables = sorted(name for kind, name, _ in own if kind in ("table", "view", "materialized view"))
        if not clashes:
            clashes = sorted(r[0] for r in conn.execute(_DEPENDENTS, {"names": tables}).fetchall())
        if clashes:
            raise Conflict("db.restore_foreign_objects", path=shown, objects=", ".join(clashes))
        return _drops(conn, own)


def _own(kind: str, name: str) -> bool:
    if kind in ("function", "procedure", "aggregate"):
        return name in OWN_FUNCTIONS
    if kind in ("domain", "type"):
        return name in OWN_TYPES
    return name in OWN_TABLES


def _foreign_clash(kind: str, name: str, coming: set[str]) -> bool:
    """True when another's object (not gridkit's) has the name of one the archive creates."""
    return kind not in ("function", "procedure", "aggregate") and name in coming and not _own(kind, name)


def _drops(conn: psycopg.Connection, own: list[tuple[str, str, str]]) -> str:
    """Return the DROP statements of gridkit's objects, dependents first and without CASCADE: an
    object of another's that depends on one of them makes the transaction fail, not vanish."""
    statements = ["SET client_min_messages = warning;"]
    for schema in OWN_SCHEMAS:
        statements.append(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE;").format(sql.Identifier(schema)).as_string(conn))
    for kind in _DROP_ORDER:
        refs = [ref for k, _, ref in own if k == kind]
        if not refs:
            continue
        if kind in ("function", "procedure", "aggregate"):
            names = ", ".join(refs)  # regprocedure text, schema-qualified: quoted as SQL needs it
        else:
            names = ", ".join(sql.Identifier("public", ref).as_string(conn) for ref in refs)
        statements.append(f"DROP {kind.upper()} IF EXISTS {names};")
    return "\n".join(statements)
