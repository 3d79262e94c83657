"""Vector tiles: /tiles/<layer>/<z>/<x>/<y>.mvt with ETag, revalidation and a server-side cache.

The cache is an in-process LRU keyed by the tile (layer, parameters, z/x/y) and stamped with
`gridkit.tiles.generation`, with the lookups of that generation (`TileCache.memo`). Hits, and
misses whose lookups are kept, are answered by web/fastpath.py before Flask; this view answers
the rest. A cache hit touches no database: the generation is read again (one cheap query) only

- on the first tile request after any commit made in this process (a publish, retirement or
  rollback through the web app, or anything else: every SQLAlchemy commit marks it unchecked), and
- at most every `GRIDKIT_TILE_RECHECK_SECONDS` (app config, default RECHECK_SECONDS = 1 s)
  otherwise, which catches a publish by another process (the CLI, another server): the rule of
  gridkit.freshness.ReadMark.

Staleness bound: a publish in this process is never served stale; a publish committed by another
process is seen by every request that starts more than RECHECK_SECONDS after its commit (the
check that opens a window runs its query after the window's start, so a commit before the start
is always visible). Browsers revalidate every time (`no-cache`) and get 304 while the content is
unchanged; the same bound holds for them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import text

from gridkit import tiles as tiles_service
from gridkit.colouring import PALETTE
from gridkit.errors import NotFound, ValidationError
from gridkit.freshness import NEVER, ReadMark
from web.database import COMMITS, db_session, reading_session
from web.i18n import t
from web.params import bbox_arg

bp = Blueprint("tiles", __name__, url_prefix="/tiles")

MVT_TYPE = "application/vnd.mapbox-vector-tile"
CACHE_ENTRIES = 20_000
CACHE_BYTES = 128 * 1024 * 1024
# How long a generation read from the database is trusted when this process commits nothing.
RECHECK_SECONDS = 1.0


class TileCache:
    """A thread-safe LRU of (etag, bytes) per tile key, emptied when the generation changes."""

    def __init__(
        self, max_entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES, recheck: float = RECHECK_SECONDS
    ):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.recheck = recheck
        self.generation: str | None = None
        # Lookups valid for one generation (gridkit.tiles.look_up): {("palette", version id): bind
        # parameters of its colouring, ("version", dept, number): id, ("edition", id): id}.
        self.memo: dict = {}
        self._checked = NEVER  # when the last generation query started
        self._entries: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.checks = 0

    def _trusted(self, started: float, commits: int) -> bool:
        """Whether the generation read last may be used without a check at `started` after `commits`."""
        return self.generation is not None and self._checked.trusted(self.recheck, commits, started)

    def fresh_generation(self) -> str | None:
        """Return the generation when it needs no check now (see current_generation), else None."""
        return self.generation if self._trusted(time.monotonic(), COMMITS.count) else None

    def current_generation(self, read) -> str:
        """Return the generation, calling `read()` (a database query) only when it may have changed."""
        started, commits = time.monotonic(), COMMITS.count
        if self._trusted(started, commits):
            return self.generation
        generation = read()
        with self._lock:
            self.checks += 1
            # Only ever move forward: a slower check that started before a newer one may have read
            # an older generation, and must not bring it back.
            if started >= self._checked.at:
                self._sync(generation)
                self._checked = ReadMark(started, commits)
            return self.generation

    def sync(self, generation: str) -> None:
        """Forget every tile made under another generation."""
        with self._lock:
            self._sync(generation)

    def _sync(self, generation: str) -> None:
        if generation != self.generation:
            self._entries.clear()
            self._bytes = 0
            self.memo = {}
            self.generation = generation

    def get(self, key: tuple, generation: str):
        """Return (etag, data) of a tile made under `generation`, or None."""
        with self._lock:
            entry = self._entries.get(key) if generation == self.generation else None
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple, generation: str, entry: tuple) -> None:
        """Keep `entry` for `key` if it was made under the current generation."""
        with self._lock:
            if generation != self.generation:
                return
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._entries[key] = entry
            self._bytes += len(entry[1])
            while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped[1])


def app_kept(app, name: str, make):
    """Return the app's kept state `name` (one per app, so one per database), made once by
    `make(recheck)`: how long what it read is trusted while this process commits nothing
    (GRIDKIT_TILE_RECHECK_SECONDS, default RECHECK_SECONDS)."""
    app = app or current_app
    kept = app.extensions.get(name)
    if kept is None:
        recheck = float(app.config.get("GRIDKIT_TILE_RECHECK_SECONDS", RECHECK_SECONDS))
        kept = app.extensions.setdefault(name, make(recheck))
    return kept


def tile_cache(app=None) -> TileCache:
    """Return the app's tile cache (one per app, so one per database)."""
    return app_kept(app, "gridkit_tile_cache", lambda recheck: TileCache(recheck=recheck))


@bp.get("/<layer>/<int:z>/<int:x>/<int:y>.mvt")
def tile(layer: str, z: int, x: int, y: int):
    """Return one vector tile; ?dept=CODE[&version=N] for work-cells, ?edition=ID for base-cells."""
    args = request.args
    req = tile_request(layer, z, x, y, args.get("dept"), args.get("version"), args.get("edition"))
    cache = tile_cache()
    generation = cache.current_generation(_read_generation)
    entry = cache.get(req.key, generation)
    if entry is None:
        with reading_session() as session:
            entry = tile_entry(tiles_service.tile(session, req, memo=cache.memo))
        cache.put(req.key, generation, entry)
    etag, data = entry
    headers = tile_headers(etag, generation)
    if etag in if_none_match(request.headers.get("If-None-Match", "")):
        return Response(status=304, headers=headers)
    return Response(data, mimetype=MVT_TYPE, headers=headers)


def tile_entry(data: bytes) -> tuple[str, bytes]:
    """Return the cache entry of a tile's bytes: (ETag, bytes), the ETag a hash of the content."""
    return f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"', data


def tile_request(layer: str, z: int, x: int, y: int, dept: str | None, version: str | None, edition: str | None):
    """Return the validated tiles_service.TileRequest of a URL's parts and query values (as sent, or None)."""
    return tiles_service.tile_request(
        layer,
        z,
        x,
        y,
        dept=_text_value(dept),
        version=_int_value("version", version),
        edition=_int_value("edition", edition),
    )


def tile_headers(etag: str, generation: str) -> dict:
    """Return the caching headers of a tile (web/fastpath.py sends the same)."""
    return {
        "ETag": etag,
        "Cache-Control": "public, no-cache",
        "Vary": "Accept-Encoding",
        "X-Tile-Generation": generation,
    }


def _read_generation() -> str:
    with reading_session() as session:
        return tiles_service.generation(session)


@bp.get("/work-cells/labels.json")
def work_cell_labels():
    """Return label points of a department's work cells in view: ?dept=CODE[&version=N]&bbox=minx,miny,maxx,maxy."""
    bbox = bbox_arg()
    if bbox is None:
        raise ValidationError("tiles.bbox_needed")
    return jsonify(
        {
            "labels": tiles_service.work_cell_labels(
                db_session(), _text_arg("dept") or "", bbox, version=_int_arg("version")
            )
        }
    )


@bp.get("/layers.json")
def layers():
    """Return the tile layers with their URL templates and minimum zooms, and the departments
    whose work grid has a version in force (one work-cells layer each)."""
    rows = (
        db_session()
        .execute(
            text(
                "SELECT d.code, d.name, v.number FROM department d JOIN work_grid_version v ON v.dept_code = d.code "
                "WHERE v.status = 'published' AND v.valid_to IS NULL ORDER BY d.code"
            )
        )
        .all()
    )
    base = request.script_root + bp.url_prefix
    return jsonify(
        {
            "layers": [
                {"name": name, "url": f"{base}/{name}/{{z}}/{{x}}/{{y}}.mvt", "minZoom": tiles_service.MIN_ZOOM[name]}
                for name in tiles_service.LAYERS
            ],
            "maxZoom": tiles_service.MAX_ZOOM,
            "labels": f"{base}/work-cells/labels.json",
            "departments": [
                {"code": code, "name": name, "version": number, "label": t("tiles.layer.work_cells", dept=name)}
                for code, name, number in rows
            ],
        }
    )


@bp.app_context_processor
def tile_urls() -> dict:
    """Give templates `tile_url(layer)` (an XYZ template for Leaflet), the layers' first zooms and
    the work cell palette."""
    return {
        "tile_url": lambda layer: f"{request.script_root}{bp.url_prefix}/{layer}/{{z}}/{{x}}/{{y}}.mvt",
        "tile_min_zoom": tiles_service.MIN_ZOOM,
        "tile_palette": list(PALETTE),
    }


def if_none_match(header: str) -> set[str]:
    """Return the ETags of an If-None-Match header (weak ones as strong)."""
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def _text_arg(name: str) -> str | None:
    return _text_value(request.args.get(name))


def _text_value(raw: str | None) -> str | None:
    if raw is None:
        return None
    if "\x00" in raw or len(raw) > 100:
        raise ValidationError("tiles.dept_needed", value=raw[:20])
    return raw.strip() or None


def _int_arg(name: str) -> int | None:
    return _int_value(name, request.args.get(name))


def _int_value(name: str, raw: str | None) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        if name == "edition":
            raise NotFound("tiles.edition_not_found", edition=raw[:20])
        raise ValidationError("tiles.bad_version", value=raw[:20])
    return int(raw)
