"""Who is responsible in every base cell of the editions in force, loaded set-based: `CellAnswers`.

`responsibility_at(session, lon, lat)` (now) depends on the point only through the base cells
covering it, in the edition in force and in the base editions of the versions in force (the parts
of a `ResponsibilityCache` key). Its answer is the first covering cell (code order) of the edition
in force, with its community, and per department the work cell of the first covering cell (code
order) of its version's base edition that has one, with its active coordinators. `CellAnswers`
loads those facts for every cell at once (two statements, whatever the number of cells) and
composes the answer of any key in memory, so no point away from an edge needs the database.

Memory: per cell of an edition, its code (15 bytes, kept with the index) and per department in
force a work-cell slot (4 bytes); per work cell one small dict. Measured (tracemalloc): 10,000 cells
× 3 departments (300 work cells) 0.43 MB; 1,000,000 cells × 3 departments (30,000 work cells)
42 MB, loaded in 4.4–5.6 s (1.0 s of it CPU here, the rest PostgreSQL) on a loaded 2-core machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.models import BaseCell
from gridkit.standard.codes import DEFAULT_PROFILE

# One row per (department, work cell of its version in force), or one per department without any:
# the work cell's members as int4 big-endian bytes, so a million memberships cost no Python objects.
# The coordinators are those `responsibility_at` lists: active, by id.
_WORK_CELLS = text("""
SELECT d.code AS dept, d.name AS dept_name, v.number, v.base_edition_id, w.code AS work_cell,
       w.name AS work_cell_name,
       coalesce((SELECT json_agg(json_build_object('id', c.id, 'name', c.name, 'phone', c.phone) ORDER BY c.id)
                 FROM coordinator_assignment ca JOIN coordinator c ON c.id = ca.coordinator_id
                 WHERE ca.work_cell_id = w.id AND c.active), '[]'::json) AS coordinators,
       (SELECT string_agg(int4send(m.base_cell_id), ''::bytea) FROM work_cell_member m
        WHERE m.work_cell_id = w.id AND m.version_id = v.id) AS members
FROM department d
LEFT JOIN work_grid_version v ON v.dept_code = d.code AND v.id = ANY(:versions)
LEFT JOIN work_cell w ON w.version_id = v.id
ORDER BY d.code, w.id
""")

_COMMUNITY_NAMES = text("SELECT code, name FROM admin_unit WHERE code = ANY(:codes)")

# A base cell's code starts with its community's (the standard's code layout; constraint code_prefix).
COMMUNITY_CODE_LENGTH = DEFAULT_PROFILE.community_digits
# Cell codes kept as fixed-width ASCII bytes, as wide as the column.
CODE_DTYPE = f"S{BaseCell.__table__.c.code.type.length}"


class EditionCells:
    """What `CellAnswers` needs of one edition's cells, in code order (the positions of a key)."""

    def __init__(self, ids: Sequence[int], codes: Sequence[str]):
        ids = np.array(ids, dtype=np.int64)
        self.codes = np.array(codes, dtype=CODE_DTYPE)  # bytes (ASCII digits)
        self._order = np.argsort(ids, kind="stable")
        self._sorted_ids = ids[self._order]

    def __len__(self) -> int:
        return len(self.codes)

    def positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (positions of those of `ids` that are cells here, a mask of which ones are)."""
        at = np.searchsorted(self._sorted_ids, ids)
        found = at < len(self._sorted_ids)
        found[found] = self._sorted_ids[at[found]] == ids[found]
        return self._order[at[found]], found


class _Department:
    def __init__(self, part: int | None, size: int, none: dict):
        self.part = part  # which part of a key holds its version's base edition's cells (None: no version)
        self.slots = np.full(size, -1, dtype=np.int32)  # per position: index into cells, -1 none
        self.cells: list[dict] = []
        self.none = none


class CellAnswers:
    """The answers of `responsibility_at` (now) for every key over `editions` (see the module docstring)."""

    def __init__(self, session: Session, edition: int | None, versions: Sequence[int], editions: dict):
        """`edition`: the edition in force (None: none); `versions`: the ids of the versions in force;
        `editions`: edition id -> EditionCells, in the order of the parts of a key."""
        parts = {edition_id: i for i, edition_id in enumerate(editions)}
        cells = list(editions.values())
        self._top = parts.get(edition) if edition is not None else None
        self._codes = cells[self._top].codes if self._top is not None else np.zeros(0, dtype=CODE_DTYPE)
        communities = np.unique(self._codes.astype(f"S{COMMUNITY_CODE_LENGTH}"))
        self._community_names = dict(
            session.execute(_COMMUNITY_NAMES, {"codes": [c.decode() for c in communities]}).all()
        )
        self._departments: list[_Department] = []
        for row in session.execute(_WORK_CELLS, {"versions": list(versions)}):
            if not self._departments or self._departments[-1].none["dept"] != row.dept:
                part = parts.get(row.base_edition_id) if row.number is not None else None
                none = {
                    "dept": row.dept,
                    "dept_name": row.dept_name,
                    "version": row.number,
                    "work_cell": None,
                    "work_cell_name": None,
                    "coordinators": [],
                }
                self._departments.append(_Department(part, len(cells[part]) if part is not None else 0, none))
            dept = self._departments[-1]
            if row.work_cell is None or row.members is None or dept.part is None:
                continue
            at, _ = cells[dept.part].positions(np.frombuffer(row.members, dtype=">i4").astype(np.int64))
            dept.slots[at] = len(dept.cells)
            dept.cells.append(
                {
                    **dept.none,
                    "work_cell": row.work_cell,
                    "work_cell_name": row.work_cell_name,
                    "coordinators": row.coordinators,
                }
            )

    def answer(self, key: tuple, lon: float, lat: float, at: str) -> dict:
        """Return the answer of `responsibility_at` at (lon, lat) now (`at`, ISO) for the cells `key`
        covering it, as a new dict the caller may change."""
        code = community = community_name = None
        if self._top is not None:
            for position in key[self._top]:
                cell = self._codes[position].decode()
                name = self._community_names.get(cell[:COMMUNITY_CODE_LENGTH])
                if name is not None:  # responsibility_at joins the community (a foreign key: always there)
                    code, community, community_name = cell, cell[:COMMUNITY_CODE_LENGTH], name
                    break
        departments = []
        for dept in self._departments:
            found = dept.none
            if dept.part is not None:
                for position in key[dept.part]:
                    slot = dept.slots[position]
                    if slot >= 0:
                        found = dept.cells[slot]
                        break
            departments.append({**found, "coordinators": [dict(person) for person in found["coordinators"]]})
        return {
            "lon": lon,
            "lat": lat,
            "at": at,
            "base_cell": code,
            "community": community,
            "community_name": community_name,
            "departments": departments,
        }
