"""Who is responsible for a point now, answered from memory: `ResponsibilityCache`.

The answer of `responsibility_at(session, lon, lat)` (now) depends on the point only through the
set of base cells of the edition in force covering it (work cells are matched to them by code,
whichever edition a version was drawn on). The cache keeps, per *state* of the database, an in-memory
index of that edition's base cells (shapely STRtree) and what decides the answer in every one of them
(`CellAnswers`, loaded set-based when the state is read): a point is located in memory and answered without the database
from the first request, by the rule of `responsibility_at` (tested against it, cell by cell).

A point within EDGE_DEGREES of a cell edge goes to the database every time: on an edge PostGIS's
ST_Covers and GEOS may disagree by rounding, and the answer depends on more than one cell there.

The state is the generation (`responsibility_generation`: what publishes, rollbacks, admin units,
departments, coordinators and their assignments look like) and the versions in force now; it is
read again (one query) after any commit in this process (the `commits` counter the caller passes),
at most every `recheck` seconds otherwise (the rule of gridkit.freshness.ReadMark, as the tile
cache of web/tiles.py), and as soon as a version's validity starts or ends (`until`); the cells'
answers are loaded again when it changed. While one thread reads a new state, the others ask the
database directly; `warm` reads it ahead of the first request. `at=` in the past is not cached:
callers call `responsibility_at`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import shapely
from sqlalchemy import func, select, text, union_all
from sqlalchemy.orm import Session

from gridkit import rules, tiles
from gridkit.errors import ValidationError
from gridkit.freshness import NEVER, ReadMark
from gridkit.grids.base import check_lon_lat
from gridkit.grids.work.cell_answers import CellAnswers, EditionCells
from gridkit.grids.work.responsibility import responsibility_at
from gridkit.grids.work.versions import versions_in_force
from gridkit.models import BaseGridEdition, WorkGridVersion

# Closer than this to a cell edge (degrees, ~0.1 mm), a point is answered by the database.
EDGE_DEGREES = 1e-9
RECHECK_SECONDS = 1.0

# Besides what the tiles show (gridkit.tiles.generation): names of admin units and departments,
# coordinators (name, phone, active) and their assignments. Sums of row hashes: one pass each.
_GENERATION = text("""
    SELECT (SELECT count(*) || ':' || coalesce(sum(hashtext(code || '|' || name)), 0) FROM admin_unit),
           (SELECT count(*) || ':' || coalesce(sum(hashtext(code || '|' || name)), 0) FROM department),
           (SELECT count(*) || ':' || coalesce(sum(hashtext(
                id || '|' || name || '|' || coalesce(phone, '') || '|' || active)), 0) FROM coordinator),
           (SELECT count(*) || ':' || coalesce(sum(hashtext(coordinator_id || '|' || work_cell_id)), 0)
            FROM coordinator_assignment)
""")


def responsibility_generation(session: Session) -> tuple[str, str]:
    """Return (generation, tile generation): the first changes whenever an answer of
    `responsibility_at` may change other than by the passing of time (see `_in_force_now`), the
    second whenever what the tiles show changes (base cells of the editions included)."""
    tile_generation = tiles.generation(session)
    row = session.execute(_GENERATION).one()
    parts = [tile_generation, *(str(v) for v in row)]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest(), tile_generation


def _in_force_now(session: Session, at: datetime) -> tuple[int | None, tuple, datetime | None]:
    """Return (edition in force, ((version id, its base edition id), ...) in force at `at`, when
    that set next changes), by the rules responsibility_at applies."""
    edition = session.scalar(
        select(BaseGridEdition.id)
        .where(rules.edition_in_force(BaseGridEdition))
        .order_by(BaseGridEdition.published_at.desc().nulls_last())
        .limit(1)
    )
    in_force = versions_in_force(at)
    versions = session.execute(select(in_force.c.id, in_force.c.base_edition_id).order_by(in_force.c.dept_code)).all()
    was = rules.WAS_IN_FORCE_VALUES
    changes = union_all(
        select(WorkGridVersion.valid_from.label("t")).where(
            WorkGridVersion.status.in_(was), WorkGridVersion.valid_from > at
        ),
        select(WorkGridVersion.valid_to.label("t")).where(
            WorkGridVersion.status.in_(was), WorkGridVersion.valid_to > at
        ),
    ).subquery()
    until = session.scalar(select(func.min(changes.c.t)))
    return edition, tuple((v.id, v.base_edition_id) for v in versions), until


class _EditionIndex:
    """The base cells of one edition in memory: covering cells of a point, or None near an edge."""

    def __init__(self, session: Session, edition_id: int):
        rows = session.execute(
            text("SELECT id, code, ST_AsBinary(geom) FROM base_cell WHERE edition_id = :e ORDER BY code"),
            {"e": edition_id},
        ).all()
        self.cells = EditionCells([r[0] for r in rows], [r[1] for r in rows])
        self.geoms = shapely.from_wkb([bytes(r[2]) for r in rows]) if rows else np.zeros(0, dtype=object)
        shapely.prepare(self.geoms)
        self.edges = shapely.boundary(self.geoms)
        self.tree = shapely.STRtree(self.geoms)

    def covering(self, point) -> tuple | None:
        """Return the positions (code order) of the cells covering `point`, or None when it lies near an edge."""
        near = self.tree.query(point)
        if len(near) == 0:
            return ()
        if (shapely.distance(self.edges[near], point) <= EDGE_DEGREES).any():
            return None
        return tuple(sorted(near[shapely.covers(self.geoms[near], point)].tolist()))


@dataclass
class _State:
    """What the answers are valid for: a generation and the versions in force, until `until`."""

    generation: str
    index: _EditionIndex | None  # the edition in force's cells (None: no edition in force)
    until: datetime | None
    answers: CellAnswers

    def key(self, lon: float, lat: float):
        """Return the positions of the cells of the edition in force covering the point, None near an edge."""
        return self.index.covering(shapely.Point(lon, lat)) if self.index is not None else ()


class ResponsibilityCache:
    """`responsibility_at` for now, from memory (see the module docstring). Thread-safe; one per database."""

    def __init__(
        self,
        *,
        recheck: float = RECHECK_SECONDS,
        commits: Callable[[], int] = lambda: 0,
    ):
        self.recheck = recheck
        self.commits = commits
        self._state: _State | None = None
        self._indexes: dict = {}  # (edition id, tile generation) -> _EditionIndex
        self._checked = NEVER  # when the last state read started
        self._refreshing = threading.Lock()
        self.hits = self.direct = self.checks = 0

    def responsibility(self, connect: Callable[[], AbstractContextManager[Session]], lon: float, lat: float) -> dict:
        """Return `responsibility_at(session, lon, lat)` (now) as a new dict the caller may change.

        `connect()` yields a session for the database work a miss or a state check needs.
        """
        check_lon_lat(lon, lat)
        state = self._current(connect)
        key = state.key(lon, lat) if state is not None else None
        if key is None:
            self.direct += 1
            with connect() as session:
                return responsibility_at(session, lon, lat)
        self.hits += 1
        return state.answers.answer(key, lon, lat, rules.now().isoformat())

    def warm(self, connect: Callable[[], AbstractContextManager[Session]]) -> None:
        """Read the state now (index and every cell's answer), so that the first request finds it."""
        self._current(connect)

    def kept(self, lon: float, lat: float) -> dict | None:
        """Return the answer for (lon, lat) now from memory as `responsibility` would (a new dict), or None
        when that would need the database (no state read yet, near an edge, or the state is due for its check)."""
        state, now = self._state, rules.now()
        if state is None or not self._fresh(state, time.monotonic(), self.commits(), now):
            return None
        try:
            check_lon_lat(lon, lat)
        except ValidationError:
            return None
        key = state.key(lon, lat)
        if key is None:
            return None
        self.hits += 1
        return state.answers.answer(key, lon, lat, now.isoformat())

    def _fresh(self, state: _State, started: float, commits: int, now: datetime) -> bool:
        return self._checked.trusted(self.recheck, commits, started) and (state.until is None or now < state.until)

    def _current(self, connect) -> _State | None:
        """Return the state valid now, reading it again when it may have changed; None while another thread does."""
        started, commits, now = time.monotonic(), self.commits(), rules.now()
        state = self._state
        if state is not None and self._fresh(state, started, commits, now):
            return state
        if not self._refreshing.acquire(blocking=False):
            # Another thread reads the state. Only the periodic check is due (no commit here, no
            # validity change): the kept state stays good meanwhile; otherwise ask the database.
            if state is not None and commits == self._checked.commits and (state.until is None or now < state.until):
                return state
            return None
        try:
            with connect() as session:
                self.checks += 1
                generation, tile_generation = responsibility_generation(session)
                edition, versions, until = _in_force_now(session, now)
                # A publish of an edition changes `edition` (and the tile generation): every answer is read again.
                stamp = f"{generation}|{edition}|{versions}"
                if state is None or state.generation != stamp:
                    index, self._indexes = None, {}
                    if edition is not None:
                        key = (edition, tile_generation)
                        index = self._indexes.get(key) or _EditionIndex(session, edition)
                        self._indexes[key] = index
                    cells = index.cells if index is not None else None
                    answers = CellAnswers(session, edition, [v[0] for v in versions], cells)
                    state = _State(stamp, index, until, answers)
                else:
                    state.until = until
            self._state = state
            self._checked = ReadMark(started, commits)
            return state
        finally:
            self._refreshing.release()
