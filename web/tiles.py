"""Vector tiles: /tiles/<layer>/<z>/<x>/<y>.mvt with ETag, revalidation and a server-side cache.

The cache is an in-process LRU keyed by the tile (layer, parameters, z/x/y) and stamped with
`gridkit.tiles.generation`, read once per request: a publish, retirement or rollback changes
the generation, so the next request after it rebuilds the tile; a stale tile is never served.
Browsers revalidate every time (`no-cache`) and get 304 while the content is unchanged.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import text

from gridkit import tiles as tiles_service
from gridkit.errors import NotFound, ValidationError
from web.database import db_session
from web.i18n import t
from web.params import bbox_arg

bp = Blueprint("tiles", __name__, url_prefix="/tiles")

MVT_TYPE = "application/vnd.mapbox-vector-tile"
CACHE_ENTRIES = 20_000
CACHE_BYTES = 128 * 1024 * 1024


class TileCache:
    """A thread-safe LRU of (etag, bytes) per tile key, emptied when the generation changes."""

    def __init__(self, max_entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.generation: str | None = None
        self.colours: dict = {}  # {work grid version id: {work cell id: colour}}
        self._entries: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def sync(self, generation: str) -> None:
        """Forget every tile made under another generation."""
        with self._lock:
            if generation != self.generation:
                self._entries.clear()
                self._bytes = 0
                self.colours = {}
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


def tile_cache(app=None) -> TileCache:
    """Return the app's tile cache (one per app, so one per database)."""
    app = app or current_app
    return app.extensions.setdefault("gridkit_tile_cache", TileCache())


@bp.get("/<layer>/<int:z>/<int:x>/<int:y>.mvt")
def tile(layer: str, z: int, x: int, y: int):
    """Return one vector tile; ?dept=CODE[&version=N] for work-cells, ?edition=ID for base-cells."""
    req = tiles_service.tile_request(
        layer, z, x, y, dept=_text_arg("dept"), version=_int_arg("version"), edition=_int_arg("edition")
    )
    session = db_session()
    generation = tiles_service.generation(session)
    cache = tile_cache()
    cache.sync(generation)
    entry = cache.get(req.key, generation)
    if entry is None:
        data = tiles_service.tile(session, req, colours=cache.colours)
        entry = (f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"', data)
        cache.put(req.key, generation, entry)
    etag, data = entry
    headers = {
        "ETag": etag,
        "Cache-Control": "public, no-cache",
        "Vary": "Accept-Encoding",
        "X-Tile-Generation": generation,
    }
    if etag in _if_none_match():
        return Response(status=304, headers=headers)
    return Response(data, mimetype=MVT_TYPE, headers=headers)


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
    """Give templates `tile_url(layer)` (an XYZ template for Leaflet) and the layers' first zooms."""
    return {
        "tile_url": lambda layer: f"{request.script_root}{bp.url_prefix}/{layer}/{{z}}/{{x}}/{{y}}.mvt",
        "tile_min_zoom": tiles_service.MIN_ZOOM,
    }


def _if_none_match() -> set[str]:
    header = request.headers.get("If-None-Match", "")
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def _text_arg(name: str) -> str | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if "\x00" in raw or len(raw) > 100:
        raise ValidationError("tiles.dept_needed", value=raw[:20])
    return raw.strip() or None


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 10:
        if name == "edition":
            raise NotFound("tiles.edition_not_found", edition=raw[:20])
        raise ValidationError("tiles.bad_version", value=raw[:20])
    return int(raw)
