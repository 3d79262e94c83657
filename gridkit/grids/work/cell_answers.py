"""Who is responsible in every base cell of the editions in force, loaded set-based: `CellAnswers`.

`responsibility_at(session, lon, lat)` (now) depends on the point only through the base cells
of the edition in force covering it (a `ResponsibilityCache` key). Its answer is the first covering
cell (code order) with its community, and per department the work cell of the version in force
holding that cell's code (the membership rule of the statistics, gridkit.grids.work.membership),
with its active coordinators, or none, `unplaced` when the version neither places nor excludes the code. `CellAnswers`
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

from gridkit.grids.work.membership import members_in_edition_sql, unplaced_codes
from gridkit.models import BaseCell, Department
from gridkit.standard.codes import DEFAULT_PROFILE

# One row per (department, work cell of its version in force), or one per department without any:
# the work cell's members (cells of the edition in force :edition, matched by code) as int4 big-endian
# bytes, so a million memberships cost no Python objects. The coordinators are those `responsibility_at`
# lists: active, by id.
_WORK_CELLS = text(f"""
SELECT d.code AS dept, d.name AS dept_name, v.id AS version_id, v.number, w.code AS work_cell,
       w.name AS work_cell_name,
       coalesce((SELECT json_agg(json_build_object('id', c.id, 'name', c.name, 'phone', c.phone) ORDER BY c.id)
                 FROM coordinator_assignment ca JOIN coordinator c ON c.id = ca.coordinator_id
                 WHERE ca.work_cell_id = w.id AND c.active), '[]'::json) AS coordinators,
       (SELECT string_agg(int4send(mm.cell_id), ''::bytea)
        FROM ({members_in_edition_sql(version="v.id", edition=":edition")}) mm
        WHERE mm.work_cell_id = w.id) AS members
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
    def __init__(self, size: int, none: dict):
        self.slots = np.full(size, -1, dtype=np.int32)  # per position: index into cells, -1 none
        self.cells: list[dict] = []
        self.none = none
        self.unplaced = np.zeros(size, dtype=bool)  # per position: a code the version neither places nor excludes


class CellAnswers:
    """The answers of `responsibility_at` (now) for every key over the edition in force (see the module docstring)."""

    def __init__(self, session: Session, edition: int | None, versions: Sequence[int], cells: EditionCells | None):
        """`edition`: the edition in force (None: none); `versions`: the ids of the versions in force;
        `cells`: the edition's EditionCells, whose positions make a key (None: no edition)."""
        self._codes = cells.codes if cells is not None else np.zeros(0, dtype=CODE_DTYPE)
        positions = {code: i for i, code in enumerate(self._codes.tolist())}
        communities = np.unique(self._codes.astype(f"S{COMMUNITY_CODE_LENGTH}"))
        self._community_names = dict(
            session.execute(_COMMUNITY_NAMES, {"codes": [c.decode() for c in communities]}).all()
        )
        self._departments: list[_Department] = []
        for row in session.execute(_WORK_CELLS, {"versions": list(versions), "edition": edition}):
            if not self._departments or self._departments[-1].none["dept"] != row.dept:
                none = {
                    "dept": row.dept,
                    "dept_name": row.dept_name,
                    "version": row.number,
                    "work_cell": None,
                    "work_cell_name": None,
                    "coordinators": [],
                    "unplaced": False,
                }
                self._departments.append(_Department(len(self._codes), none))
                if row.version_id is not None and edition is not None:
                    unplaced = unplaced_codes(session, session.get(Department, row.dept), row.version_id, edition)
                    self._departments[-1].unplaced[[positions[c.encode()] for c in unplaced]] = True
            dept = self._departments[-1]
            if row.work_cell is None or row.members is None or cells is None:
                continue
            at, _ = cells.positions(np.frombuffer(row.members, dtype=">i4").astype(np.int64))
            dept.slots[at] = len(dept.cells)
            dept.cells.append(
                {
                    **dept.none,
                    "work_cell": row.work_cell,
                    "work_cell_name": row.work_cell_name,
                    "coordinators": row.coordinators,
                }
            )

    def answer(self, positions: tuple, lon: float, lat: float, at: str) -> dict:
        """Return the answer of `responsibility_at` at (lon, lat) now (`at`, ISO) for the cells of the edition
        in force covering it (`positions`, code order), as a new dict the caller may change."""
        code = community = community_name = None
        chosen = None
        for position in positions:
            cell = self._codes[position].decode()
            name = self._community_names.get(cell[:COMMUNITY_CODE_LENGTH])
            if name is not None:  # responsibility_at joins the community (a foreign key: always there)
                code, community, community_name, chosen = cell, cell[:COMMUNITY_CODE_LENGTH], name, position
                break
        departments = []
        for dept in self._departments:
            found = dept.none
            if chosen is not None:
                slot = dept.slots[chosen]
                if slot >= 0:
                    found = dept.cells[slot]
                elif dept.unplaced[chosen]:
                    found = {**found, "unplaced": True}
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
