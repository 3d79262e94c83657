"""Assignment of subjects (buildings, residents, legal entities, incidents) to base cells.

Rules (the same in bulk and for one subject):
- a point goes to the base cell that covers it (ST_Covers, so edges count); a point on a
  shared edge or corner goes to the covering cell with the smallest code;
- a building with a footprint goes to the cell holding the largest part of the footprint
  (ties: smallest code); parts are compared in square degrees of EPSG:4490, which ranks
  them as square metres do across one footprint; a footprint that only touches cells
  (no area inside any) is unassigned. Without a footprint, a building goes by its point;
- a resident with a building inherits the building's cell (also when the building moves);
  otherwise by its own point;
- a subject outside every cell keeps base_cell_id NULL (a resident: no row in resident_cell,
  gridkit.resident_cells): it stays, is counted and listed.

How, in bulk: points are read a chunk of ids at a time (id, current cell, x, y as binary arrays),
located by `gridkit.spatial.pointindex.PointIndex` (a raster pre-index that reproduces PostGIS
ST_Covers bit for bit, tie-break included) while PostgreSQL reads the next chunks, and only the
subjects whose cell changed are written back, chunk by chunk (PostgreSQL updates one while the client
builds the next: gridkit.db.inorder), by UPDATEs that skip subjects moved meanwhile: the new cells are
bound as binary arrays, indexed by id when the ids cover most of their range (one pass over the
range, no join: a first assignment), joined otherwise. Residents' cells live in their own narrow table:
a bulk assignment freezes the residents (no one may move them) before reading their points, then deletes
their rows there and COPYs the new ones; a smaller one writes them set-based, skipping residents moved
meanwhile (gridkit.resident_cells). Small batches (fewer than ENGINE_MIN_POINTS points, or fewer than
ENGINE_MIN_POINTS_PER_CELL per cell) go to PostGIS directly, since building the index costs
more than it saves there; `assign_one` always does. Footprints and inheritance stay in SQL.
Everything runs in the caller's transaction, which it never commits.

Incrementally: a subject inserted or moved through the ORM (geometry, footprint or building
changed) gets its base cell in the same flush, by session events that
`gridkit.assign_hook.install_assignment_hook` attaches to a session factory (gridkit.db.session_factory
does): no caller of such a session can forget it. Bulk loaders may set session.info[AUTO_ASSIGN] = False
and call assign_subjects once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from functools import partial

import numpy as np
import shapely
from sqlalchemy import ARRAY, Integer, cast, func, select, text, update
from sqlalchemy.orm import Session

from gridkit import db, resident_cells
from gridkit.db.arrays import Float8Array, Int4Array, decode_array
from gridkit.db.inorder import results_in_order, rows_changed_in_order
from gridkit.errors import NotFound, ValidationError
from gridkit.grids.base import current_edition
from gridkit.models import BaseCell, BaseGridEdition, Building, Incident, LegalEntity, Resident, ResidentCell
from gridkit.resident_cells import copy_resident_cells, freeze_residents, set_resident_cells, set_resident_cells_from
from gridkit.rules import point_cell
from gridkit.spatial.bulk import rebuilt_indexes
from gridkit.spatial.pointindex import PointIndex

KINDS = ("buildings", "residents", "entities", "incidents")
TABLES = {"buildings": "building", "residents": "resident", "entities": "legal_entity", "incidents": "incident"}
MODELS = {"buildings": Building, "residents": Resident, "entities": LegalEntity, "incidents": Incident}

# The engine pays for itself from this many points, and once points are at least half as many
# as cells (building the index costs about as much per cell as PostGIS takes per point).
ENGINE_MIN_POINTS = 1000
ENGINE_MIN_POINTS_PER_CELL = 0.5
# Ids per read query (each binary array far below PostgreSQL's 1 GB value limit, and small enough to overlap
# reading and locating), and how many chunks may be asked for and not yet decoded.
READ_CHUNK_IDS = 1 << 18
READ_AHEAD = 4
# The planner's estimate of a table's rows (no scan): whether to read the cells before the points.
_ESTIMATED_ROWS = text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)")

# Which subjects are placed by their own point.
_BY_POINT = {
    "buildings": "{t}.footprint IS NULL",
    "residents": "{t}.building_id IS NULL",
    "entities": "TRUE",
    "incidents": "TRUE",
}
# Where a kind's subjects (as t) and their cell (CELL) are read from: residents' cells in their own table
# (no row: unassigned), joined by CELL_JOIN.
CELL_JOIN = {kind: "" for kind in TABLES} | {"residents": " LEFT JOIN resident_cell c ON c.resident_id = t.id"}
WITH_CELL = {kind: f"{table} t{CELL_JOIN[kind]}" for kind, table in TABLES.items()}
CELL = {kind: "t.base_cell_id" for kind in TABLES} | {"residents": "c.base_cell_id"}
# The table whose base_cell_id column holds a kind's cells.
CELL_TABLE = TABLES | {"residents": "resident_cell"}

# A footprint wholly inside a cell skips the intersection; ST_MakeValid only for broken ones.
_FOOTPRINT_CELL = """(SELECT p.id FROM (
        SELECT b.id, b.code, CASE WHEN ST_Covers(b.geom, f.fp) THEN ST_Area(f.fp)
                                  ELSE ST_Area(ST_Intersection(b.geom, f.fp)) END AS part
        FROM base_cell b WHERE b.edition_id = :e AND ST_Intersects(b.geom, f.fp)) p
     WHERE p.part > 0 ORDER BY p.part DESC, p.code LIMIT 1)"""
_VALID_FOOTPRINT = "CASE WHEN ST_IsValid({t}.footprint) THEN {t}.footprint ELSE ST_MakeValid({t}.footprint) END"

# Writes of the new cells: ids per UPDATE statement (arrays of a few MB; PostgreSQL runs one while the client
# builds the next), and the share of an id range a write must cover to go by id range (one pass, no join).
WRITE_CHUNK_IDS = 1 << 18
DENSE_WRITE_SHARE = 0.25


# -- the index of a base grid edition ---------------------------------------------------------------


@dataclass
class BaseCellIndex:
    """The point index of one edition's base cells, in code order (smallest code wins ties)."""

    edition_id: int
    ids: np.ndarray  # base_cell.id, ordered by code
    index: PointIndex

    def cells_at(self, lon: np.ndarray, lat: np.ndarray, *, threads: int | None = None) -> np.ndarray:
        """Return the id of the base cell covering each CGCS2000 point, 0 where none does (int32)."""
        pos = self.index.locate(lon, lat, threads=threads)
        out = np.zeros(len(pos), dtype=np.int32)
        hit = pos >= 0
        out[hit] = self.ids[pos[hit]]
        return out


def base_cell_index(session: Session, edition: BaseGridEdition) -> BaseCellIndex:
    """Return the point index of `edition`'s base cells, built from their stored coordinates."""
    return _Run(session, edition).index()


@dataclass
class _Run:
    """What one assign_subjects call shares between kinds: the edition and its index, built once."""

    session: Session
    edition: BaseGridEdition
    _index: BaseCellIndex | None = None
    _rows: list | None = None
    _cells: int | None = None

    def fetch_cells(self) -> None:
        """Read the cells' shapes now (the index is built from them later, by the client alone)."""
        if self._index is None and self._rows is None:
            query = text("SELECT id, ST_AsBinary(geom) FROM base_cell WHERE edition_id = :e ORDER BY code")
            self._rows = self.session.execute(query, {"e": self.edition.id}).all()

    def index(self) -> BaseCellIndex:
        if self._index is None:
            self.fetch_cells()
            ids = np.array([r[0] for r in self._rows], dtype=np.int32)
            # WKB keeps the stored doubles exactly: the index must see what PostGIS sees.
            geoms = shapely.from_wkb([bytes(r[1]) for r in self._rows]) if self._rows else np.zeros(0, dtype=object)
            self._index, self._rows = BaseCellIndex(self.edition.id, ids, PointIndex.build(geoms)), None
        return self._index

    def cells(self) -> int:
        if self._cells is None:
            self._cells = self.session.scalar(
                text("SELECT count(*) FROM base_cell WHERE edition_id = :e"), {"e": self.edition.id}
            )
        return self._cells


# -- binary reads and writes through the session's own connection ------------------------------------


@dataclass
class Points:
    """Subjects placed by their own point: id, current base cell (0 = none), lon, lat (NaN = no point)."""

    ids: np.ndarray
    old: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


def read_points(
    session: Session, kind: str, ids: list[int] | None = None, *, each: Callable[[Points], None] | None = None
) -> Points:
    """Return the subjects of `kind` placed by their own point (all, or those in `ids`).

    All of them are read a chunk of ids at a time; `each(chunk)` runs on each chunk as it arrives, while
    PostgreSQL reads the next ones (gridkit.db.inorder).
    """
    table = TABLES[kind]
    # Whole columns as binary arrays: one round trip, no per-row Python objects. Id and current
    # cell share one int8 (one array less to build and send). A missing or empty point reads as
    # NaN, which no cell covers, as in PostGIS.
    select = (
        f"SELECT array_send(array_agg((t.id::int8 << 32) | COALESCE({CELL[kind]}, 0))), "
        f"array_send(array_agg(COALESCE(ST_X(t.geom), 'NaN'))), "
        f"array_send(array_agg(COALESCE(ST_Y(t.geom), 'NaN'))) "
        f"FROM {WITH_CELL[kind]}{{on}} WHERE {_BY_POINT[kind].format(t='t')}"
    )
    # A range of ids reads only that range of a cell table too (PostgreSQL does not carry the subjects' range
    # over an outer join: each chunk would read the whole table).
    on = " AND c.resident_id >= %s AND c.resident_id < %s" if CELL_JOIN[kind] else ""
    conn = db.driver_connection(session)

    def fetch(query: str, params: tuple) -> tuple:
        with conn.cursor(binary=True) as cur:
            cur.execute(query, params)
            return cur.fetchone()

    # Each chunk decoded as it arrives: the client holds the columns once (16 bytes a point), not the
    # query results besides.
    parts = []
    with conn.cursor(binary=True) as cur:
        # JIT compilation costs more than it saves on this one pass.
        cur.execute("SELECT current_setting('jit'), set_config('jit', 'off', true)")
        jit = cur.fetchone()[0]
        if ids is not None:
            chunks = [(select.replace("{on}", "") + " AND t.id = ANY(%s::int[])", (list(ids),))]
        else:
            cur.execute(f"SELECT min(id), max(id) FROM {table}")
            lo, hi = cur.fetchone()
            steps = range(lo, hi + 1, READ_CHUNK_IDS) if lo is not None else ()
            ranged = select.replace("{on}", on) + " AND t.id >= %s AND t.id < %s"
            chunks = [(ranged, (s, s + READ_CHUNK_IDS) * (2 if on else 1)) for s in steps]
    with closing(results_in_order((partial(fetch, *c) for c in chunks), ahead=READ_AHEAD)) as rows:
        for row in rows:
            packed, lon, lat = decode_array(row[0], "q"), decode_array(row[1], "f"), decode_array(row[2], "f")
            parts.append(Points((packed >> 32).astype(np.int32), (packed & 0xFFFFFFFF).astype(np.int32), lon, lat))
            if each is not None:
                each(parts[-1])
    with conn.cursor() as cur:
        cur.execute("SELECT set_config('jit', %s, true)", (jit,))
    if not parts:
        return Points(*(np.zeros(0, dtype=t) for t in (np.int32, np.int32, np.float64, np.float64)))
    columns = zip(*((p.ids, p.old, p.lon, p.lat) for p in parts), strict=True)
    return Points(*(c[0] if len(c) == 1 else np.concatenate(c) for c in columns))


def write_cells(
    session: Session,
    kind: str,
    ids: np.ndarray,
    cells: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    frozen: bool = False,
) -> int:
    """Set base_cell_id (0 = none) of subjects of `kind` located at (lon, lat); return how many changed.

    A subject whose point (or placement by point) changed since it was read is left alone: a
    concurrent move assigns it itself, and a cell from the old point would be wrong. `frozen`: residents
    only, the caller froze them (gridkit.resident_cells.freeze_residents) before reading their points, and
    each of `ids` has a cell other than its stored one: the cells are COPYed in bulk.
    """
    if not len(ids):
        return 0
    if not (ids[1:] > ids[:-1]).all():
        order = np.argsort(ids, kind="stable")
        ids, cells, lon, lat = ids[order], cells[order], lon[order], lat[order]
    if kind == "residents":
        if frozen:
            return copy_resident_cells(session, ids, cells)
        return _write_resident_cells(session, ids, cells, lon, lat)
    conn = db.driver_connection(session)
    # A first assignment writes most of the table: its indexes are built once after, not row by row.
    with rebuilt_indexes(session, TABLES[kind], len(ids)), conn.cursor() as cur:
        if len(ids) >= DENSE_WRITE_SHARE * (int(ids[-1]) - int(ids[0]) + 1):
            return _update_by_id_range(cur, kind, ids, cells, lon, lat)
        return _update_by_join(cur, kind, ids, cells, lon, lat)


# READ COMMITTED re-checks these conditions on a row changed concurrently since we read it: the point
# and the placement rule must still be the ones the cell was computed for (NaN = NaN in PostgreSQL,
# so subjects without a point compare equal too).
_UNCHANGED_SINCE_READ = "COALESCE(ST_X(t.geom), 'NaN') = {x} AND COALESCE(ST_Y(t.geom), 'NaN') = {y} AND {by_point}"


def _update_by_id_range(cur, kind: str, ids, cells, lon, lat) -> int:
    """Write cells of ids covering most of their id range: per range, one pass with the cells bound as
    arrays indexed by id (-1: not written), no temporary table, no join."""
    table = TABLES[kind]
    at = "[t.id - %(lo)s + 1]"
    query = (
        f"UPDATE {table} t SET base_cell_id = NULLIF(%(c)s{at}, 0) "
        f"WHERE t.id >= %(lo)s AND t.id < %(lo)s + %(span)s AND %(c)s{at} >= 0 "
        f"AND t.base_cell_id IS DISTINCT FROM NULLIF(%(c)s{at}, 0) AND "
        + _UNCHANGED_SINCE_READ.format(x=f"%(x)s{at}", y=f"%(y)s{at}", by_point=_BY_POINT[kind].format(t="t"))
    )

    def chunks():
        for lo in range(int(ids[0]), int(ids[-1]) + 1, WRITE_CHUNK_IDS):
            s, e = np.searchsorted(ids, [lo, lo + WRITE_CHUNK_IDS])
            if s == e:
                continue
            span = int(ids[e - 1]) - lo + 1
            pos = ids[s:e] - lo
            c = np.full(span, -1, dtype=np.int32)
            x = np.full(span, np.nan)
            y = np.full(span, np.nan)
            c[pos], x[pos], y[pos] = cells[s:e], lon[s:e], lat[s:e]
            yield {"lo": lo, "span": span, "c": Int4Array(c), "x": Float8Array(x), "y": Float8Array(y)}

    return rows_changed_in_order(cur.connection, query, chunks())


def _write_resident_cells(session: Session, ids, cells, lon, lat) -> int:
    """Write residents' cells set-based, each resident locked (FOR SHARE) and skipped if it moved since read."""
    source = text(
        "SELECT t.id, NULLIF(n.cell, 0) AS cell FROM unnest(CAST(:i AS int[]), CAST(:c AS int[]), "
        "CAST(:x AS float8[]), CAST(:y AS float8[])) AS n(id, cell, x, y) JOIN resident t ON t.id = n.id WHERE "
        + _UNCHANGED_SINCE_READ.format(x="n.x", y="n.y", by_point=_BY_POINT["residents"].format(t="t"))
        + " FOR SHARE OF t"
    )
    changed = 0
    for s in range(0, len(ids), WRITE_CHUNK_IDS):
        k = slice(s, s + WRITE_CHUNK_IDS)
        values = {"i": ids[k].tolist(), "c": cells[k].tolist(), "x": lon[k].tolist(), "y": lat[k].tolist()}
        changed += set_resident_cells_from(session, source.bindparams(**values))
    return changed


def _update_by_join(cur, kind: str, ids, cells, lon, lat) -> int:
    """Write cells of ids scattered over their id range: a join to the bound arrays (unnest)."""
    table = TABLES[kind]
    # Enough memory to hash many pairs in one batch, for these statements only.
    cur.execute("SELECT current_setting('work_mem'), set_config('work_mem', '256MB', true)")
    work_mem = cur.fetchone()[0]
    query = (
        f"UPDATE {table} t SET base_cell_id = NULLIF(n.cell, 0) "
        f"FROM unnest(%(i)s, %(c)s, %(x)s, %(y)s) AS n(id, cell, x, y) "
        f"WHERE t.id = n.id AND t.base_cell_id IS DISTINCT FROM NULLIF(n.cell, 0) AND "
        + _UNCHANGED_SINCE_READ.format(x="n.x", y="n.y", by_point=_BY_POINT[kind].format(t="t"))
    )
    pieces = (slice(s, s + WRITE_CHUNK_IDS) for s in range(0, len(ids), WRITE_CHUNK_IDS))
    chunks = (
        {"i": Int4Array(ids[k]), "c": Int4Array(cells[k]), "x": Float8Array(lon[k]), "y": Float8Array(lat[k])}
        for k in pieces
    )
    changed = rows_changed_in_order(cur.connection, query, chunks)
    cur.execute("SELECT set_config('work_mem', %s, true)", (work_mem,))
    return changed


# -- the steps ---------------------------------------------------------------------------------------


def _ids_filter(alias: str, ids: list[int] | None) -> str:
    # IN (SELECT unnest(...)), not = ANY(...): a bound array is searched linearly for every row, while the
    # subquery becomes a hashed semi-join (10^5 ids: milliseconds instead of minutes).
    return "" if ids is None else f" AND {alias}.id IN (SELECT unnest(CAST(:ids AS int[])))"


def _engine_pays(run: _Run, points: int) -> bool:
    """Whether locating this many points with the index costs less than asking PostGIS for each."""
    return points >= ENGINE_MIN_POINTS and points >= ENGINE_MIN_POINTS_PER_CELL * run.cells()


def _assign_points(run: _Run, kind: str, ids: list[int] | None) -> int:
    """Locate the subjects of `kind` placed by their own point; return how many changed cell."""
    # Located chunk by chunk as read once the first chunk shows the index pays (else after the read, if at all).
    located: list[np.ndarray] | None = []

    def locate(chunk: Points) -> None:
        nonlocal located
        if located is not None and (located or _engine_pays(run, len(chunk.ids))):
            located.append(run.index().cells_at(chunk.lon, chunk.lat))
        else:
            located = None

    # Cells asked for before the reads are queued, so that the client builds the index while PostgreSQL reads.
    expected = len(ids) if ids is not None else run.session.scalar(_ESTIMATED_ROWS, {"t": TABLES[kind]})
    # Residents' cells are COPYed in bulk (all of them, or many), which cannot skip residents moved since read:
    # none may move.
    frozen = kind == "residents" and (ids is None or len(ids) >= resident_cells.COPY_MIN_ROWS)
    if frozen:
        freeze_residents(run.session)
    if _engine_pays(run, expected):
        run.fetch_cells()
    points = read_points(run.session, kind, ids, each=locate)
    n = len(points.ids)
    if n == 0:
        return 0
    if not _engine_pays(run, n):
        # Few points: PostGIS itself (rules.point_cell), the same rule by definition.
        model = MODELS[kind]
        if kind == "residents":
            table = Resident.__table__
            located = select(table.c.id.label("id"), point_cell(BaseCell, run.edition.id, table.c.geom).label("cell"))
            located = located.where(table.c.id.in_(points.ids.tolist())).with_for_update(read=True, of=table)
            return set_resident_cells_from(run.session, located)
        cell = point_cell(BaseCell, run.edition.id, model.geom)
        return run.session.execute(
            update(model)
            .where(model.id.in_(points.ids.tolist()), model.base_cell_id.is_distinct_from(cell))
            .values(base_cell_id=cell)
            .execution_options(synchronize_session=False)
        ).rowcount
    new = np.concatenate(located) if located else run.index().cells_at(points.lon, points.lat)
    moved = new != points.old
    if moved.all():  # a first assignment: no copies
        return write_cells(run.session, kind, points.ids, new, points.lon, points.lat, frozen=frozen)
    return write_cells(
        run.session, kind, points.ids[moved], new[moved], points.lon[moved], points.lat[moved], frozen=frozen
    )


def _assign_footprints(run: _Run, ids: list[int] | None) -> int:
    """Assign buildings with a footprint to the cell holding its largest part; return changes."""
    return run.session.execute(
        text(
            f"UPDATE building t SET base_cell_id = n.cell FROM ("
            f"  SELECT f.id, {_FOOTPRINT_CELL} AS cell FROM ("
            f"    SELECT building.id, {_VALID_FOOTPRINT.format(t='building')} AS fp FROM building "
            f"    WHERE building.footprint IS NOT NULL{_ids_filter('building', ids)}) f) n "
            f"WHERE t.id = n.id AND t.base_cell_id IS DISTINCT FROM n.cell"
        ),
        {"e": run.edition.id, "ids": ids},
    ).rowcount


def follow_buildings(
    session: Session, *, resident_ids: list[int] | None = None, building_ids: list[int] | None = None
) -> int:
    """Give residents with a building their building's cell; return how many changed."""
    source = text(
        "SELECT r.id, b.base_cell_id AS cell FROM resident r JOIN building b ON b.id = r.building_id "
        "LEFT JOIN resident_cell c ON c.resident_id = r.id WHERE c.base_cell_id IS DISTINCT FROM b.base_cell_id"
        + _ids_filter("r", resident_ids)
        + ("" if building_ids is None else " AND b.id IN (SELECT unnest(CAST(:bids AS int[])))")
    )
    given = {"ids": resident_ids, "bids": building_ids}
    return set_resident_cells_from(session, source.bindparams(**{k: v for k, v in given.items() if v is not None}))


def expire_cells(session: Session, kind: str) -> None:
    """Make loaded objects of `kind` read base_cell_id again: it was changed behind the ORM."""
    model = MODELS[kind]
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model):
            session.expire(obj, ["base_cell_id"])


def assign_subjects(
    session: Session,
    kinds: list[str] | None = None,
    *,
    edition: BaseGridEdition | None = None,
    where_ids: dict[str, list[int]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Assign subjects of `kinds` (default all) to the edition's base cells; return counts per kind.

    `progress(done, total)` is called after each kind (kinds done of kinds asked), for progress bars.

    Counts: total, assigned, unassigned, changed (base cell differs from before). `where_ids`
    limits a kind to those ids (a kind missing from it: all). Buildings are assigned before
    residents; residents of a building that moved follow it even when residents are not among
    `kinds` (they are counted as changed residents when they are). Runs in the caller's
    transaction and never commits.
    """
    kinds = list(KINDS) if not kinds else kinds
    for kind in kinds:
        if kind not in KINDS:
            raise ValidationError("assign.unknown_kind", kind=kind, kinds=", ".join(KINDS))
    edition = edition or current_edition(session)
    if edition is None:
        raise NotFound("assign.no_edition")
    session.flush()
    run = _Run(session, edition)
    result = {}
    followers = 0
    for kind in (k for k in KINDS if k in kinds):
        ids = None if where_ids is None or where_ids.get(kind) is None else [int(i) for i in where_ids[kind]]
        changed = 0
        if ids is None or ids:
            if kind == "buildings":
                changed += _assign_footprints(run, ids)
            if kind == "residents":
                changed += followers + follow_buildings(session, resident_ids=ids)
            changed += _assign_points(run, kind, ids)
            if kind == "buildings":
                followers = follow_buildings(session, building_ids=ids)
                expire_cells(session, "residents")
            expire_cells(session, kind)
        total, assigned = _counts(session, kind, ids)
        result[kind] = {"total": total, "assigned": assigned, "unassigned": total - assigned, "changed": changed}
        if progress is not None:
            progress(len(result), len(kinds))
    return result


def _counts(session: Session, kind: str, ids: list[int] | None) -> tuple[int, int]:
    """Return how many subjects of `kind` (all, or those in `ids`) there are and how many have a cell."""
    model = MODELS[kind]
    given = None if ids is None else select(func.unnest(cast(ids, ARRAY(Integer))))
    if kind == "residents":
        # Every row of resident_cell is an assigned resident: two counts, no join.
        total, assigned = select(func.count()).select_from(Resident), select(func.count()).select_from(ResidentCell)
        if given is not None:
            total, assigned = total.where(Resident.id.in_(given)), assigned.where(ResidentCell.resident_id.in_(given))
        return session.scalar(total), session.scalar(assigned)
    query = select(func.count().label("total"), func.count(model.base_cell_id).label("assigned"))
    if given is not None:
        query = query.where(model.id.in_(given))
    return tuple(session.execute(query).one())


def assign_one(session: Session, subject, *, edition: BaseGridEdition | None = None) -> int | None:
    """Assign one subject just inserted or moved to its base cell; return the cell id or None.

    Call it after setting the subject's geometry (or building); it flushes, sets
    `subject.base_cell_id` in the same transaction and, for a building, moves its residents
    along. A resident with a building takes the building's current cell, so assign the
    building first. With no published edition the subject stays unassigned (None).
    """
    kind = next((k for k, m in MODELS.items() if isinstance(subject, m)), None)
    if kind is None:
        raise TypeError(f"cannot assign a {type(subject).__name__}: not a subject")
    session.flush()
    edition = edition or current_edition(session)
    if edition is None:
        return None
    cell = subject_cell(session, kind, subject, edition)
    if kind == "residents":
        set_resident_cells(session, {subject.id: cell})
    else:
        subject.base_cell_id = cell
        session.flush()
    if kind == "buildings":
        if follow_buildings(session, building_ids=[subject.id]):
            expire_cells(session, "residents")
    return cell


def subject_cell(session: Session, kind: str, subject, edition: BaseGridEdition) -> int | None:
    """Return the base cell of one stored subject by the rules (SQL only, no flush)."""
    params = {"e": edition.id, "id": subject.id}
    if kind == "buildings" and subject.footprint is not None:
        cell = session.scalar(
            text(
                f"SELECT {_FOOTPRINT_CELL} FROM (SELECT building.id, {_VALID_FOOTPRINT.format(t='building')} AS fp "
                f"FROM building WHERE building.id = :id) f"
            ),
            params,
        )
    elif kind == "residents" and subject.building_id is not None:
        cell = session.scalar(text("SELECT base_cell_id FROM building WHERE id = :bid"), {"bid": subject.building_id})
    else:
        model = MODELS[kind]
        cell = session.scalar(select(point_cell(BaseCell, edition.id, model.geom)).where(model.id == subject.id))
    return cell


# An ORM session assigns subjects it moved at flush (gridkit.assign_hook); bulk loaders turn it off by
# session.info[AUTO_ASSIGN] = False and call assign_subjects once.
AUTO_ASSIGN = "gridkit_auto_assign"


def unassigned_subjects(session: Session, kind: str | None = None, limit: int | None = None) -> list[dict]:
    """Return subjects outside every base cell: kind, id, code or masked identity, location."""
    kinds = [kind] if kind else list(KINDS)
    queries = {
        "buildings": "SELECT id, code AS ident, COALESCE(geom, ST_PointOnSurface(footprint)) AS loc "
        "FROM building WHERE base_cell_id IS NULL",
        # A resident's location is its own point or its building's.
        "residents": "SELECT r.id, r.id_number_masked AS ident, COALESCE(r.geom, bl.geom) AS loc "
        "FROM resident r LEFT JOIN building bl ON bl.id = r.building_id "
        "WHERE NOT EXISTS (SELECT 1 FROM resident_cell c WHERE c.resident_id = r.id)",
        "entities": "SELECT id, credit_code AS ident, geom AS loc FROM legal_entity WHERE base_cell_id IS NULL",
        "incidents": "SELECT id, code AS ident, geom AS loc FROM incident WHERE base_cell_id IS NULL",
    }
    rows: list[dict] = []
    for k in kinds:
        if k not in KINDS:
            raise ValidationError("assign.unknown_kind", kind=k, kinds=", ".join(KINDS))
        query = f"SELECT id, ident, ST_X(loc) AS lon, ST_Y(loc) AS lat FROM ({queries[k]}) q ORDER BY id"
        if limit:
            query += " LIMIT :limit"
        for r in session.execute(text(query), {"limit": limit}):
            rows.append(
                {
                    "kind": k,
                    "id": r.id,
                    "identity": r.ident,
                    "lon": None if r.lon is None else round(r.lon, 7),
                    "lat": None if r.lat is None else round(r.lat, 7),
                }
            )
    return rows
