"""Vector tiles (Mapbox Vector Tile, ST_AsMVT) of the public map layers, in EPSG:3857.

Layers: admin-units, base-cells (the edition in force, or a published/retired one by id),
work-cells (one department's version in force, or its version number N), buildings. Tiles hold
codes, names, levels and floors only: never a personal field (no resident, no coordinator).

Storage is EPSG:4490; the tile envelope is transformed to 4490 for the index search and each
feature to 3857 for encoding. Every polygon layer goes through the same steps (`_tile_geom`):
clip to the buffered tile in lon/lat, transform, ST_AsMVTGeom. Admin units tile exactly into
communities and communities into base cells, so with the same steps the outlines of admin units
and work cells land on the very tile coordinates of the cell edges (a different clip or a
simplification of one layer only moves them off by up to a few tile units: the bug this fixes).
Outlines are simplified by half a tile unit only below SIMPLIFY_BELOW, where no cells are drawn.

`generation(session)` changes whenever what tiles show changes through a publish or rollback
(editions and versions published, retired, rolled back), when admin units are added or
removed, and when buildings are added: a cache keyed by it never serves a stale tile.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gridkit.colouring import work_cell_colours
from gridkit.db import autocommit_scalar
from gridkit.errors import NotFound, ValidationError
from gridkit.rules import SRID

MAX_ZOOM = 22
EXTENT = 4096
BUFFER = 64
# Below these zooms a layer's tile is empty: too many features to draw usefully
# (a zoom-12 tile at 22°N is ~9 km wide, ~8,000 base cells of 100 m).
MIN_ZOOM = {"admin-units": 0, "work-cells": 8, "base-cells": 12, "buildings": 14}
LAYERS = tuple(MIN_ZOOM)
# Outlines are simplified only below the zoom from which base cells are drawn: where cells show,
# admin unit and work cell outlines must run exactly along cell edges.
SIMPLIFY_BELOW = MIN_ZOOM["base-cells"]
DEPT_CODE = re.compile(r"^[0-9]{1,6}$")
PG_INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class TileRequest:
    """One tile of one layer with its parameters, validated."""

    layer: str
    z: int
    x: int
    y: int
    dept: str | None = None
    version: int | None = None
    edition: int | None = None

    @property
    def key(self) -> tuple:
        """Return the tuple that names this tile in a cache."""
        return (self.layer, self.dept, self.version, self.edition, self.z, self.x, self.y)


def tile_request(
    layer: str,
    z: int,
    x: int,
    y: int,
    *,
    dept: str | None = None,
    version: int | None = None,
    edition: int | None = None,
) -> TileRequest:
    """Return a validated TileRequest; unknown layer or tile → NotFound, bad parameters → ValidationError."""
    if layer not in MIN_ZOOM:
        raise NotFound("tiles.unknown_layer", layer=layer, layers=", ".join(LAYERS))
    if not 0 <= z <= MAX_ZOOM:
        raise NotFound("tiles.bad_zoom", z=z, max=MAX_ZOOM)
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFound("tiles.outside", z=z, x=x, y=y, last=2**z - 1)
    if layer == "work-cells":
        if not dept or not DEPT_CODE.match(dept):
            raise ValidationError("tiles.dept_needed", value=dept or "")
        if version is not None and not 1 <= version <= PG_INT_MAX:
            raise ValidationError("tiles.bad_version", value=version)
    elif dept is not None or version is not None:
        raise ValidationError("tiles.dept_only_work_cells", layer=layer)
    if edition is not None:
        if layer != "base-cells":
            raise ValidationError("tiles.edition_only_base_cells", layer=layer)
        if not 1 <= edition <= PG_INT_MAX:
            raise NotFound("tiles.edition_not_found", edition=edition)
    return TileRequest(layer, z, x, y, dept, version, edition)


def generation(session: Session) -> str:
    """Return a short text that changes whenever a publish, retirement or rollback changes tiles.

    One cheap query: editions and versions are few rows; admin units a few thousand; the
    building id comes from the primary key index.
    """
    row = session.execute(_GENERATION).one()
    return hashlib.blake2b("|".join(str(v) for v in row).encode(), digest_size=8).hexdigest()


_GENERATION = text("""
    SELECT (SELECT count(*) FROM base_grid_edition WHERE status <> 'draft'),
           (SELECT max(published_at) FROM base_grid_edition),
           (SELECT max(retired_at) FROM base_grid_edition),
           (SELECT count(*) FROM work_grid_version WHERE status <> 'draft'),
           (SELECT max(published_at) FROM work_grid_version),
           (SELECT max(valid_to) FROM work_grid_version),
           (SELECT count(*) FROM admin_unit),
           (SELECT max(id) FROM building)
""")


def tile(session: Session, request: TileRequest, *, memo: dict | None = None) -> bytes:
    """Return the MVT bytes of one tile (b"" when the layer is not drawn at this zoom or empty).

    `memo` is an optional dict kept by the caller for as long as the tile generation stays the
    same: the edition and version in force and the colouring of a published version (which never
    changes) are then looked up once, not per tile.
    """
    memo = {} if memo is None else memo
    query = tile_query(request, memo)
    if query is None:
        look_up(session, request, memo)
        query = tile_query(request, memo)
    return _mvt(session, query.statement, query.params) if query.statement is not None else b""


@dataclass(frozen=True)
class TileQuery:
    """The one query that makes a tile: its statement and bind parameters (no statement: an empty tile)."""

    statement: TextClause | None
    params: dict


EMPTY = TileQuery(None, {})


def tile_query(request: TileRequest, memo: dict) -> TileQuery | None:
    """Return the query of a tile from the lookups `look_up` kept in `memo`, or None when one is not kept yet."""
    too_small = request.z < MIN_ZOOM[request.layer]
    if request.layer == "admin-units":
        return TileQuery(_ADMIN_UNITS, tile_params(request.z, request.x, request.y))
    if request.layer == "buildings":
        return EMPTY if too_small else TileQuery(_BUILDINGS, tile_params(request.z, request.x, request.y))
    if request.layer == "base-cells":
        key = ("edition", request.edition)
        if key not in memo:
            return None
        if memo[key] is None or too_small:
            return EMPTY
        return TileQuery(_BASE_CELLS, {**tile_params(request.z, request.x, request.y), "edition": memo[key]})
    key = ("version", request.dept, request.version)
    if key not in memo:
        return None
    version_id = memo[key]
    if version_id is None or too_small:
        return EMPTY
    palette = memo.get(("palette", version_id))
    if palette is None:
        return None
    return TileQuery(_WORK_CELLS, {**tile_params(request.z, request.x, request.y), **palette})


def pooled_tile(engine: Engine, query: TileQuery) -> bytes:
    """Return the MVT bytes of a tile's query, run without a Session (gridkit.db.autocommit_scalar):
    for a server, whose tile then costs one pool checkout besides the query."""
    if query.statement is None:
        return b""
    data = autocommit_scalar(engine, query.statement, query.params)
    return bytes(data) if data else b""


def look_up(session: Session, request: TileRequest, memo: dict) -> None:
    """Keep in `memo` what the query of a tile needs besides its coordinates: the edition or version
    asked for (parameters are checked at every zoom: a wrong one is an error, not an empty map; see
    tile_request) and a version's colouring as bind parameters; NotFound when they do not exist."""
    if request.layer == "base-cells":
        _memoised(memo, ("edition", request.edition), lambda: _edition(session, request.edition))
    elif request.layer == "work-cells":
        version_id = _memoised(
            memo, ("version", request.dept, request.version), lambda: _version(session, request.dept, request.version)
        )
        if version_id is not None and request.z >= MIN_ZOOM[request.layer]:
            _memoised(
                memo,
                ("palette", version_id),
                lambda: palette_params(version_id, work_cell_colours(session, version_id)),
            )


def tile_params(z: int, x: int, y: int) -> dict:
    """Return the bind parameters every layer's tile query takes."""
    return {"z": z, "x": x, "y": y, "margin": BUFFER / EXTENT, "srid": SRID, "tol": _tolerance(z)}


def palette_params(version_id: int, palette: dict[int, int]) -> dict:
    """Return the extra bind parameters of the work-cells query: the version and its colouring.

    The colouring goes as two array literals ('{1,2,3}', cast in the query): psycopg takes
    milliseconds to send a list of thousands of ints (every tile of a big work grid paid them),
    microseconds to send one string.
    """
    return {"version": version_id, "ids": _array_literal(palette), "colours": _array_literal(palette.values())}


def _array_literal(numbers) -> str:
    return "{" + ",".join(str(int(n)) for n in numbers) + "}"


def _memoised(memo: dict, key: tuple, compute):
    if key not in memo:
        memo[key] = compute()
    return memo[key]


# Work cell labels: at most this many per request (a zoom-15 view holds a few dozen work cells).
LABEL_LIMIT = 2000


def work_cell_labels(session: Session, dept: str, bbox, *, version: int | None = None) -> list[dict]:
    """Return {code, name, colour, lon, lat} of the work cells of a department's version (default: in
    force) whose area meets `bbox` (lon/lat), one label point inside each work cell."""
    request = tile_request("work-cells", 0, 0, 0, dept=dept, version=version)
    version_id = _version(session, request.dept, request.version)
    if version_id is None:
        return []
    minx, miny, maxx, maxy = bbox
    rows = session.execute(
        text("""
        SELECT w.id, w.code, coalesce(w.name, '') AS name, ST_X(p.pt) AS lon, ST_Y(p.pt) AS lat
        FROM work_cell w, LATERAL (SELECT ST_PointOnSurface(w.geom) AS pt) p
        WHERE w.version_id = :version AND w.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, :srid)
        ORDER BY w.code LIMIT :limit"""),
        {
            "version": version_id,
            "minx": minx,
            "miny": miny,
            "maxx": maxx,
            "maxy": maxy,
            "srid": SRID,
            "limit": LABEL_LIMIT,
        },
    ).all()
    colours = work_cell_colours(session, version_id) if rows else {}
    return [
        {"code": r.code, "name": r.name, "colour": colours.get(r.id, 0), "lon": round(r.lon, 6), "lat": round(r.lat, 6)}
        for r in rows
    ]


def raw_tile_sql(layer: str) -> str:
    """Return the SQL text of a layer's tile query (for benchmarks comparing against the server)."""
    return {"admin-units": _ADMIN_UNITS, "buildings": _BUILDINGS, "base-cells": _BASE_CELLS, "work-cells": _WORK_CELLS}[
        layer
    ].text


def _tolerance(z: int) -> float:
    # Half a tile pixel in degrees at the equator (an upper bound elsewhere); 0 when zoomed in.
    return 0.0 if z >= SIMPLIFY_BELOW else 360.0 / (2**z * EXTENT) / 2


def _mvt(session: Session, query, params: dict) -> bytes:
    data = session.execute(query, params).scalar()
    return bytes(data) if data else b""


def _edition(session: Session, edition_id: int | None) -> int | None:
    if edition_id is None:
        return session.execute(
            text(
                "SELECT id FROM base_grid_edition WHERE status = 'published' ORDER BY published_at DESC, "
                "id DESC LIMIT 1"
            )
        ).scalar()
    found = session.execute(
        text("SELECT id FROM base_grid_edition WHERE id = :id AND status <> 'draft'"), {"id": edition_id}
    ).scalar()
    if found is None:
        raise NotFound("tiles.edition_not_found", edition=edition_id)
    return found


def _version(session: Session, dept: str, number: int | None) -> int | None:
    if session.execute(text("SELECT 1 FROM department WHERE code = :d"), {"d": dept}).scalar() is None:
        raise NotFound("tiles.dept_not_found", dept=dept)
    if number is None:
        return session.execute(
            text(
                "SELECT id FROM work_grid_version WHERE dept_code = :d AND status = 'published' AND valid_to IS NULL "
                "ORDER BY valid_from DESC NULLS LAST, id DESC LIMIT 1"
            ),
            {"d": dept},
        ).scalar()
    row = session.execute(
        text("SELECT id, status FROM work_grid_version WHERE dept_code = :d AND number = :n"), {"d": dept, "n": number}
    ).one_or_none()
    if row is None:
        raise NotFound("tiles.version_not_found", dept=dept, version=number)
    if row.status == "draft":
        # A draft has no cached outlines and changes with every edit: the planner's GeoJSON shows it.
        raise NotFound("tiles.version_is_draft", dept=dept, version=number)
    return row.id


# The tile envelope in 3857 for encoding, and in storage lon/lat (with the buffer) for the search.
_BOUNDS = """
    WITH bounds AS (
        SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
               ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), :srid) AS search
    )
"""


def _tile_geom(column: str, *, simplify: bool = False) -> str:
    # The one treatment of every polygon layer (see the module docstring): clip to the buffered
    # tile in lon/lat (a whole district is never transformed for one zoomed-in tile), project,
    # encode. Only outlines are simplified, and only below SIMPLIFY_BELOW (then :tol > 0).
    geom = f"CASE WHEN :tol > 0 THEN ST_Simplify({column}, :tol, true) ELSE {column} END" if simplify else column
    return f"ST_AsMVTGeom(ST_Transform(ST_ClipByBox2D({geom}, b.search), 3857), b.tile, {EXTENT}, {BUFFER}, true)"


def _layer_query(layer: str, features: str, *, extra: str = ""):
    # One layer's tile: the bounds (plus `extra` CTEs), and `features` (rows with a `geom` in tile
    # units, from `bounds b`) encoded by ST_AsMVT; features wholly outside the tile drop out.
    return text(
        f"""{_BOUNDS}{extra}
    SELECT ST_AsMVT(t, '{layer}', {EXTENT}, 'geom') FROM ({features}) t WHERE t.geom IS NOT NULL"""
    )


_ADMIN_UNITS = _layer_query(
    "admin-units",
    f"""
        SELECT a.code, a.name, a.level, {_tile_geom("a.geom", simplify=True)} AS geom
        FROM admin_unit a, bounds b
        WHERE a.geom && b.search""",
)

_BASE_CELLS = _layer_query(
    "base-cells",
    f"""
        SELECT c.code, c.community_code, {_tile_geom("c.geom")} AS geom
        FROM base_cell c, bounds b
        WHERE c.edition_id = :edition AND c.geom && b.search""",
)

_WORK_CELLS = _layer_query(
    "work-cells",
    f"""
        SELECT w.code, coalesce(w.name, '') AS name, coalesce(p.colour, 0) AS colour,
               {_tile_geom("w.geom", simplify=True)} AS geom
        FROM work_cell w CROSS JOIN bounds b LEFT JOIN palette p ON p.id = w.id
        WHERE w.version_id = :version AND w.geom && b.search""",
    extra="""
    , palette AS (SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:colours AS integer[])) AS p(id, colour))""",
)

_BUILDINGS = _layer_query(
    "buildings",
    f"""
        SELECT g.code, g.floors,
               ST_AsMVTGeom(ST_Transform(coalesce(g.footprint, g.geom), 3857), b.tile, {EXTENT}, {BUFFER}, true)
                   AS geom
        FROM building g, bounds b
        -- Two index searches: footprints, and points of buildings without one.
        WHERE g.footprint && b.search OR (g.footprint IS NULL AND g.geom && b.search)""",
)
