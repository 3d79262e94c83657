"""The resident summary's full rebuild from the residents' columns held by the client (a first load,
gridkit.io.subjects.resident_load): the rows the SQL rebuild (`resident_summary.refresh`) would insert, grouped on the
client (each chunk as it is read, then the chunks' groups merged while the server builds the new tables' indexes
again), then given as arrays to the owner's function that writes the summary (the summary's tables are small: one
row per cell and one per split household's cell).

The same rows as the SQL rebuild (tests/test_resident_summary_rows_imp9j.py compares them on random households
split over cells): a cell's residents, registered and floating counts, and its households (distinct, neither
NULL nor empty); a household (not empty) with members in several cells has one split row per cell. Households
are grouped and ordered byte for byte, as the `C` collation of `resident.household` compares them. (A module of its own:
pyarrow stays out of what every command imports at start.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.db.arrays import Int4Array, bind_arrays
from gridkit.db.copy_rows import text_array

__all__ = ["SummaryRows", "summary_pairs", "summary_rows", "write_summary_rows"]


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


_COUNTS = ("residents", "registered", "floating")


def summary_pairs(cells: np.ndarray, households: pa.Array, registered: np.ndarray, floating: np.ndarray) -> pa.Table:
    """Return some residents grouped by (household, cell), in that order: columns cell, household, residents,
    registered, floating; the residents are given as their cells (int32, 0 = none: not counted), households
    (string, null where none) and population types (bool: registered, floating). A first load groups each chunk
    so as it reads it: a few MB kept instead of its rows."""
    placed = cells != 0
    if not placed.all():
        cells, households = cells[placed], households.filter(pa.array(placed))
        registered, floating = registered[placed], floating[placed]
    ones = np.ones(len(cells), np.int32)
    table = pa.table(
        {
            "cell": pa.array(cells, pa.int32()),
            "household": households,
            "residents": ones,
            "registered": registered.astype(np.int32),
            "floating": floating.astype(np.int32),
        }
    )
    return _merged(table)[0]


def _merged(pairs: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """Return `pairs` (summary_pairs' columns) with one row per (household, cell), in that order, the counts
    summed, and each row's household as a number (0, 1, … in that order; NULL is one of them).

    By a sort, not by hashing the households: pyarrow's hash grouping of strings took ~60 MB more at its peak
    for the ~350,000 pairs of a million residents (and ~16 MB more the first time it ran in a thread)."""
    order = pc.sort_indices(pairs, sort_keys=[("household", "ascending"), ("cell", "ascending")])
    pairs = pairs.take(order)
    households, cells = pairs["household"].combine_chunks(), pairs["cell"].to_numpy()
    if not len(cells):
        return pairs, np.zeros(0, np.int64)
    # Rows of one household follow one another (NULLs last, together).
    missing = households.is_null().to_numpy(zero_copy_only=False)
    same = pc.fill_null(pc.equal(households[1:], households[:-1]), False).to_numpy(zero_copy_only=False)
    same |= missing[1:] & missing[:-1]
    household_of = np.cumsum(np.r_[True, ~same]) - 1
    starts = np.flatnonzero(np.r_[True, ~(same & (cells[1:] == cells[:-1]))])
    merged = {"cell": cells[starts], "household": households.take(pa.array(starts))}
    for name in _COUNTS:
        merged[name] = np.add.reduceat(pairs[name].to_numpy(), starts).astype(np.int32)
    return pa.table(merged), household_of[starts]


def summary_rows(parts: list[pa.Table]) -> SummaryRows:
    """Return the summary of the residents grouped in `parts` (summary_pairs' tables)."""
    groups, household_of = _merged(pa.concat_tables(parts))
    group_cells = groups["cell"].to_numpy()
    # A household is counted when it is neither NULL nor empty.
    named = pc.fill_null(pc.not_equal(groups["household"], ""), False).to_numpy(zero_copy_only=False)
    cell_ids, cell_of = np.unique(group_cells, return_inverse=True)

    def per_cell(values) -> np.ndarray:
        return np.bincount(cell_of, weights=values, minlength=len(cell_ids)).astype(np.int32)

    # A named household with several (household, cell) pairs is split: one row per pair.
    spread = np.bincount(household_of[named], minlength=len(household_of) and household_of[-1] + 1)
    split = named & (spread[household_of] > 1)
    split_pairs = groups.filter(pa.array(split)).select(["cell", "household"])
    split_pairs = split_pairs.sort_by([("cell", "ascending"), ("household", "ascending")])
    return SummaryRows(
        cells=cell_ids.astype(np.int32),
        residents=per_cell(groups["residents"].to_numpy()),
        registered=per_cell(groups["registered"].to_numpy()),
        floating=per_cell(groups["floating"].to_numpy()),
        households=per_cell(named),
        split_cells=split_pairs["cell"].to_numpy().astype(np.int32),
        split_households=split_pairs["household"].combine_chunks(),
    )


def write_summary_rows(session: Session, rows: SummaryRows) -> None:
    """Rebuild the resident summary with `rows` (what `resident_summary.refresh` would compute from the residents
    now stored), in the caller's transaction, through the owner's `gridkit_load_resident_summary` (the summary
    is the database's to write: migration 20261209_sec10b); the columns go as binary arrays, no Python object per
    row."""
    counts = [rows.cells, rows.residents, rows.registered, rows.floating, rows.households, rows.split_cells]
    with db.driver_connection(session).cursor() as cur:
        bind_arrays(cur)
        cur.execute(
            "SELECT gridkit_load_resident_summary(%s, %s, %s, %s, %s, %s, %s)",
            [Int4Array(column) for column in counts] + [text_array(rows.split_households)],
        )
