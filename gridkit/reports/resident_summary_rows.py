"""The resident summary's full rebuild from the residents' columns held by the client (a first load,
gridkit.io.subjects.resident_load): the rows `resident_summary._REBUILD` would insert, grouped by pyarrow while the
server builds the new tables' indexes again, then COPYed (the summary's tables are small: one row per cell and
one per split household's cell).

The same rows as the SQL rebuild (tests/test_resident_summary_rows_imp9j.py compares them on random households
split over cells): a cell's residents, registered and floating counts, and its households (distinct, neither
NULL nor empty); a household (not empty) with members in several cells has one split row per cell. Households
are grouped byte for byte, as the `C` collation of `resident.household` compares them. (A module of its own:
pyarrow stays out of what every command imports at start.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.db.arrays import COPY_HEADER, COPY_TRAILER
from gridkit.db.copy_rows import copy_tuples
from gridkit.reports.resident_summary import clear_for_rebuild

__all__ = ["SummaryRows", "summary_pairs", "summary_rows", "write_summary_rows"]

# A binary COPY row of resident_cell_summary (base_cell_id, residents, registered, floating, households).
_CELL_ROW = np.dtype([("n", ">i2")] + [(f"{name}{k}", ">i4") for k in range(5) for name in ("l", "v")])


@dataclass
class SummaryRows:
    """The summary's rows: per cell (cells, residents, registered, floating, households: numpy int32) and the split
    households' (split_cells, split_households: in the primary key's order, by cell then household)."""

    cells: np.ndarray
    residents: np.ndarray
    registered: np.ndarray
    floating: np.ndarray
    households: np.ndarray
    split_cells: np.ndarray
    split_households: pa.Array


def summary_pairs(cells: np.ndarray, households: pa.Array, registered: np.ndarray, floating: np.ndarray) -> pa.Table:
    """Return some residents grouped by (cell, household): columns cell, household, residents, registered,
    floating; the residents are given as their cells (int32, 0 = none: not counted), households (string, null
    where none) and population types (bool: registered, floating). A first load groups each chunk so as it reads
    it (on the thread that read it, reusing its memory: grouping a million rows at once, in another thread, took
    ~100 MB more at its peak)."""
    placed = cells != 0
    if not placed.all():
        cells, households = cells[placed], households.filter(pa.array(placed))
        registered, floating = registered[placed], floating[placed]
    table = pa.table(
        {
            "cell": pa.array(cells, pa.int32()),
            "household": households,
            "residents": pa.array(np.ones(len(cells), np.int32)),
            "registered": pa.array(registered.astype(np.int32)),
            "floating": pa.array(floating.astype(np.int32)),
        }
    )
    return _regrouped(table)


def _regrouped(pairs: pa.Table) -> pa.Table:
    """Return `pairs` (summary_pairs' columns) with one row per (cell, household), the counts summed."""
    counts = ("residents", "registered", "floating")
    grouped = pairs.group_by(["cell", "household"], use_threads=False).aggregate([(c, "sum") for c in counts])
    return grouped.rename_columns(["cell", "household", *counts])


def summary_rows(parts: list[pa.Table]) -> SummaryRows:
    """Return the summary of the residents grouped in `parts` (summary_pairs' tables)."""
    groups = _regrouped(pa.concat_tables(parts))
    named = pc.fill_null(pc.not_equal(groups["household"], ""), False)
    groups = groups.append_column("named", named.cast(pa.int32()))
    per_cell = (
        groups.group_by("cell", use_threads=False)
        .aggregate([("residents", "sum"), ("registered", "sum"), ("floating", "sum"), ("named", "sum")])
        .sort_by("cell")
    )
    pairs = groups.filter(named).select(["cell", "household"])
    spread = pairs.group_by("household", use_threads=False).aggregate([("cell", "count")])
    split = spread.filter(pc.greater(spread["cell_count"], 1))["household"]
    split_pairs = pairs.filter(pc.is_in(pairs["household"], value_set=split)).sort_by(
        [("cell", "ascending"), ("household", "ascending")]
    )

    def column(t: pa.Table, name: str) -> np.ndarray:
        return t[name].to_numpy().astype(np.int32)

    return SummaryRows(
        cells=column(per_cell, "cell"),
        residents=column(per_cell, "residents_sum"),
        registered=column(per_cell, "registered_sum"),
        floating=column(per_cell, "floating_sum"),
        households=column(per_cell, "named_sum"),
        split_cells=column(split_pairs, "cell"),
        split_households=split_pairs["household"].combine_chunks(),
    )


def write_summary_rows(session: Session, rows: SummaryRows) -> None:
    """Rebuild the resident summary with `rows` (what `resident_summary.refresh` would compute from the residents
    now stored), in the caller's transaction."""
    clear_for_rebuild(session)
    cells = np.empty(len(rows.cells), dtype=_CELL_ROW)
    cells["n"] = 5
    for k, values in enumerate((rows.cells, rows.residents, rows.registered, rows.floating, rows.households)):
        cells[f"l{k}"], cells[f"v{k}"] = 4, values
    n = len(rows.split_cells)
    split = copy_tuples(n, [(rows.split_cells.astype(">i4"), np.ones(n, bool))], [rows.split_households]) if n else b""
    with db.driver_connection(session).cursor() as cur:
        sql = "COPY resident_cell_summary (base_cell_id, residents, registered, floating, households) FROM STDIN"
        with cur.copy(f"{sql} (FORMAT binary)") as copy:
            copy.write(COPY_HEADER + cells.tobytes() + COPY_TRAILER)
        sql = "COPY resident_split_household (base_cell_id, household) FROM STDIN"
        with cur.copy(f"{sql} (FORMAT binary)") as copy:
            copy.write(COPY_HEADER + bytes(split) + COPY_TRAILER)
