"""The resident summary per base cell that population reports read, refreshed when residents change.

Counting households means grouping every resident by household, which takes about a minute over
five million residents. Reports read instead two small tables (see the migration
20261203_exp12_resident_summary):

- `resident_cell_summary`: residents, registered, floating and households of each base cell;
- `resident_split_household`: (household, base cell) for households living in several base cells.

A unit's households = the sum of its cells' households, less (cells − 1) for each split household
with several cells in the unit: exact, and reading a few thousand rows instead of millions.

A statement trigger on `resident` adds a row to `resident_change` for every statement that changes
residents (one row per statement: imports stay as fast as they were). Two ways bring the summary
up to date:

- `residents_changed(session, cells)`, called by an import or an assignment at its end, inside its
  transaction: recounts only the base cells it touched (all of them: a full rebuild, when it does
  not say or touched many) and removes its own transaction's log rows. The first report after it
  reads the summary as it is (a few milliseconds, whatever the number of residents).
- `ensure_current(session)`, called by every report: a full rebuild when the log still has rows
  (a change made elsewhere, e.g. a resident edited by hand). The log is emptied *before* the
  rebuild reads the residents, so a change committed meanwhile keeps its row and is picked up by
  the next report.

Both take a transaction-level advisory lock first: two transactions never recount at once, and
the second one's statements see the first one's committed counts.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.grids.problems import without_jit

# An advisory lock key of the summary's maintenance (any constant shared by every caller).
LOCK_KEY = 0x6772_6B12
# Above this many touched cells a full rebuild is cheaper than recounting cell by cell.
FULL_REBUILD_CELLS = 500

# Memory for the rebuild's groups (this transaction only): millions of (cell, household) groups
# stay in memory instead of spilling to disk.
REFRESH_WORK_MEM = "256MB"

_REBUILD = """
    WITH g AS MATERIALIZED (
        SELECT c.base_cell_id, r.household, count(*) AS n,
               count(*) FILTER (WHERE r.population_type = 'registered') AS reg,
               count(*) FILTER (WHERE r.population_type = 'floating') AS flo
        FROM resident_cell c JOIN resident r ON r.id = c.resident_id GROUP BY c.base_cell_id, r.household),
    split AS (
        INSERT INTO resident_split_household (household, base_cell_id)
        SELECT g.household, g.base_cell_id FROM g
        JOIN (SELECT household FROM g WHERE household <> '' GROUP BY household HAVING count(*) > 1) s
          ON s.household = g.household
        -- In the primary key's order: each insert goes to the index's last page (twice as fast for millions).
        ORDER BY g.base_cell_id, g.household
        RETURNING 1)
    INSERT INTO resident_cell_summary (base_cell_id, residents, registered, floating, households)
    SELECT base_cell_id, sum(n), sum(reg), sum(flo), count(*) FILTER (WHERE household <> '')
    FROM g GROUP BY base_cell_id"""


def is_current(session: Session) -> bool:
    """True when no resident changed since the summary was last rebuilt (as this transaction sees it)."""
    return not session.execute(text("SELECT EXISTS (SELECT 1 FROM resident_change)")).scalar_one()


def refresh(session: Session) -> None:
    """Rebuild the resident summary from the residents (in the caller's transaction)."""
    clear_for_rebuild(session)
    session.execute(text(f"SET LOCAL work_mem = '{REFRESH_WORK_MEM}'"))
    session.execute(text(_REBUILD))


def clear_for_rebuild(session: Session) -> None:
    """Empty the resident summary and the change log before a full rebuild (`refresh`, or the rows a first load
    computed: gridkit.reports.resident_summary_rows), the summary's lock taken (in the caller's transaction)."""
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    # First empty the log (only rows of committed changes are visible, and those are in the
    # snapshot of the rebuild that follows), then the summary.
    session.execute(text("DELETE FROM resident_change"))
    session.execute(text("DELETE FROM resident_split_household"))
    session.execute(text("DELETE FROM resident_cell_summary"))


def ensure_current(session: Session) -> bool:
    """Rebuild the resident summary if residents changed since; return True when it was rebuilt."""
    if is_current(session):
        return False
    refresh(session)
    return True


# The upkeep of a few cells, in one statement that reads each member of the touched cells once (`m`: the cell's
# index, then each resident by its key; a lateral subquery kept apart by OFFSET 0 is looked up member by member
# whatever the statistics say, where a join may be planned as a hash join over every resident):
# - the cells' counts are written over the old ones (`put`), cells left without residents lose their row (`emptied`);
# - the households with a member there now (`m`) or a split-household row there before are counted again: their
#   (household, cell) pairs are those of `m` and those of their other members, found by the household's index,
#   whose cells are looked up only for the members not already in `m` (outside the touched cells);
# - of their split-household rows, those no longer true go (`stale`): the old rows of the touched cells that are
#   not split households' rows now, and, in the other cells, those of the households now in one cell only (a
#   household's members in an untouched cell have not changed: its old rows there are among its pairs), each
#   found by the primary key; the new rows are added, the rows that stay are not written again.
# The rows deleted and inserted by the same statement are never the same keys.
_UPKEEP = """
    WITH m AS MATERIALIZED (
        SELECT c.base_cell_id, r.id, r.household, r.population_type FROM resident_cell c
        CROSS JOIN LATERAL (SELECT r.id, r.household, r.population_type FROM resident r
                            WHERE r.id = c.resident_id OFFSET 0) r
        WHERE c.base_cell_id = ANY(:cells)),
    counted AS MATERIALIZED (
        SELECT base_cell_id, count(*) AS residents,
               count(*) FILTER (WHERE population_type = 'registered') AS registered,
               count(*) FILTER (WHERE population_type = 'floating') AS floating,
               count(DISTINCT household) FILTER (WHERE household <> '') AS households
        FROM m GROUP BY base_cell_id),
    put AS (
        INSERT INTO resident_cell_summary (base_cell_id, residents, registered, floating, households)
        SELECT base_cell_id, residents, registered, floating, households FROM counted
        ON CONFLICT (base_cell_id) DO UPDATE SET residents = excluded.residents, registered = excluded.registered,
            floating = excluded.floating, households = excluded.households),
    emptied AS (
        DELETE FROM resident_cell_summary s WHERE s.base_cell_id = ANY(:cells)
        AND NOT EXISTS (SELECT 1 FROM counted n WHERE n.base_cell_id = s.base_cell_id)),
    h AS MATERIALIZED (
        SELECT household FROM m WHERE household <> ''
        UNION SELECT household FROM resident_split_household WHERE base_cell_id = ANY(:cells)),
    pairs AS MATERIALIZED (
        SELECT household, base_cell_id FROM m WHERE household <> ''
        UNION
        SELECT o.household, c.base_cell_id FROM h
        CROSS JOIN LATERAL (SELECT r.id, r.household FROM resident r WHERE r.household = h.household OFFSET 0) o
        CROSS JOIN LATERAL (SELECT c.base_cell_id FROM resident_cell c WHERE c.resident_id = o.id OFFSET 0) c
        WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.id = o.id)),
    counted_pairs AS MATERIALIZED (
        SELECT household, base_cell_id, count(*) OVER (PARTITION BY household) AS k FROM pairs),
    split AS (SELECT household, base_cell_id FROM counted_pairs WHERE k > 1),
    stale AS (
        DELETE FROM resident_split_household s WHERE s.ctid = ANY(ARRAY(
            SELECT x.ctid FROM (
                SELECT household, base_cell_id FROM resident_split_household o WHERE o.base_cell_id = ANY(:cells)
                AND NOT EXISTS (SELECT 1 FROM split n
                                WHERE n.household = o.household AND n.base_cell_id = o.base_cell_id)
                UNION ALL
                SELECT household, base_cell_id FROM counted_pairs WHERE k = 1 AND NOT base_cell_id = ANY(:cells)) o
            CROSS JOIN LATERAL (SELECT x.ctid FROM resident_split_household x
                                WHERE x.base_cell_id = o.base_cell_id AND x.household = o.household OFFSET 0) x)))
    INSERT INTO resident_split_household (household, base_cell_id)
    SELECT household, base_cell_id FROM split ORDER BY base_cell_id, household
    ON CONFLICT DO NOTHING"""


def residents_changed(session: Session, cells=None) -> None:
    """Bring the resident summary up to date after this transaction changed residents.

    Call it at the end of an import or assignment, in its transaction, with the ids of every base
    cell a resident entered or left (both the old and the new cell of a moved resident), or None
    when unknown (a full rebuild). Recounts those cells and the households spread over them, and
    removes the change-log rows of this transaction; other transactions' rows stay for
    `ensure_current`. Cheap for a few cells; a full rebuild (seconds for millions of residents)
    when `cells` is None or large.
    """
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    ids = None if cells is None else sorted({int(c) for c in cells if c is not None})
    if ids is None or len(ids) > FULL_REBUILD_CELLS:
        refresh(session)  # counts the others' committed changes too: the whole log goes
        return
    session.execute(text("DELETE FROM resident_change WHERE txid = txid_current()"))
    if not ids:
        return
    # Its estimated cost (each lateral lookup priced at its worst) passes PostgreSQL's JIT thresholds over millions
    # of residents: compiling it with inlining and optimization took 0.5 s of server CPU, twice what running it takes
    # (5,000,000 residents, 20 cells: 0.72-0.91 s with JIT, 0.24-0.27 s without).
    with without_jit(session):
        session.execute(text(_UPKEEP), {"cells": ids})


def population_sql(unit_frame: str) -> str:
    """Return the population report's SELECT over the summary, given the units' WITH clause."""
    return (
        unit_frame
        + """,
        r AS (SELECT u.code, sum(s.residents)::int AS residents, sum(s.registered)::int AS registered,
                     sum(s.floating)::int AS floating, sum(s.households)::int AS households
              FROM resident_cell_summary s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code),
        x AS (SELECT code, sum(k - 1)::int AS extra
              FROM (SELECT u.code, h.household, count(*) AS k FROM resident_split_household h
                    JOIN u ON u.cell_id = h.base_cell_id GROUP BY u.code, h.household) t
              WHERE k > 1 GROUP BY code)
        SELECT c.code, c.name, c.base_cells, coalesce(r.residents, 0) AS residents,
               coalesce(r.registered, 0) AS registered, coalesce(r.floating, 0) AS floating,
               coalesce(r.households, 0) - coalesce(x.extra, 0) AS households,
               round(100.0 * coalesce(r.floating, 0) / nullif(r.residents, 0), 1)::float8 AS floating_pct
        FROM cells c LEFT JOIN r ON r.code = c.code LEFT JOIN x ON x.code = c.code ORDER BY c.code"""
    )
