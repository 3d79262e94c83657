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

The summary and the log are the database's to write (migration 20261209_sec10b): the application role reads
them, and the statements that recount them are the owner's functions `gridkit_refresh_resident_summary()` and
`gridkit_resident_summary_upkeep(cells)`, which it calls.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# Above this many touched cells a full rebuild is cheaper than recounting cell by cell.
FULL_REBUILD_CELLS = 500


def is_current(session: Session) -> bool:
    """True when no resident changed since the summary was last rebuilt (as this transaction sees it)."""
    return not session.execute(text("SELECT EXISTS (SELECT 1 FROM resident_change)")).scalar_one()


def refresh(session: Session) -> None:
    """Rebuild the resident summary from the residents (in the caller's transaction; the log is emptied first)."""
    session.execute(text("SELECT gridkit_refresh_resident_summary()"))


def ensure_current(session: Session) -> bool:
    """Rebuild the resident summary if residents changed since; return True when it was rebuilt."""
    if is_current(session):
        return False
    refresh(session)
    return True


def residents_changed(session: Session, cells=None) -> None:
    """Bring the resident summary up to date after this transaction changed residents.

    Call it at the end of an import or assignment, in its transaction, with the ids of every base
    cell a resident entered or left (both the old and the new cell of a moved resident), or None
    when unknown (a full rebuild). Recounts those cells and the households spread over them, and
    removes the change-log rows of this transaction; other transactions' rows stay for
    `ensure_current`. Cheap for a few cells; a full rebuild (seconds for millions of residents)
    when `cells` is None or large.
    """
    ids = None if cells is None else sorted({int(c) for c in cells if c is not None})
    if ids is None or len(ids) > FULL_REBUILD_CELLS:
        refresh(session)  # counts the others' committed changes too: the whole log goes
        return
    session.execute(text("SELECT gridkit_resident_summary_upkeep(CAST(:cells AS integer[]))"), {"cells": ids})


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
