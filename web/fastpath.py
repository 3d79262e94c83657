"""Answers sent before Flask's request handling (a WSGI middleware): tiles, cached or made by their
one query when the lookups they need are kept (see FastPath._made_tile), and visitors' whois answers.

- A tile already in the server cache (web/tiles.py) under a generation that needs no check now;
- `GET /api/whois?lon=&lat=` from a visitor (no session cookie) whose answer the whois cache gives
  from memory (gridkit.grids.work.responsibility_cache: any point away from a cell edge), made
  what a visitor may read by the view's own `shown_to` (no phones) after the view's own
  `whois_point` checks;

are sent with the very headers the views and the app's after-request hooks give them (caching
headers, `Vary: Cookie`, anti-framing, Content-Security-Policy): no request context, session,
language or URL matching, which cost several times what the answer does. Anything else goes to
Flask unchanged: another method or URL, a query parameter not named here (e.g. `lang`, which sets
a cookie, or `at`), percent-escapes or NUL bytes, a value the view refuses (Flask answers the
400/404), a whois point on a cell edge, a state not read yet or a generation due for its check
(Flask reads it).
"""

from __future__ import annotations

import re

from flask import Flask

from gridkit.errors import GridkitError
from gridkit.tiles import pooled_tile, tile_query
from web.api import shown_to, whois_point
from web.database import made_engine
from web.params import INT_MAX
from web.security import security_headers
from web.tiles import MVT_TYPE, if_none_match, tile_entry, tile_headers, tile_request

_TILE = re.compile(r"/tiles/([a-z-]{1,20})/([0-9]{1,10})/([0-9]{1,10})/([0-9]{1,10})\.mvt")
_TILE_ARGS = ("dept", "version", "edition")
_WHOIS_ARGS = ("lon", "lat")
# What the i18n after-request hook adds to every response's Vary.
_VARY_ALSO = "Cookie"


class FastPath:
    """WSGI middleware in front of `app.wsgi_app`: tiles and kept whois answers without Flask (module docstring)."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET":
            path = environ.get("PATH_INFO", "")
            answer = None
            if path.startswith("/tiles/"):
                answer = self._cached_tile(environ, path)
            elif path == "/api/whois":
                answer = self._kept_whois(environ)
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                return [body]
        return self.wsgi_app(environ, start_response)

    def _kept_whois(self, environ):
        cache = self.app.extensions.get("gridkit_whois_cache")
        if cache is None or self.app.config["SESSION_COOKIE_NAME"] + "=" in environ.get("HTTP_COOKIE", ""):
            return None
        args = _plain_args(environ.get("QUERY_STRING", ""), _WHOIS_ARGS)
        if args is None:
            return None
        try:
            lon, lat = whois_point(args.get("lon"), args.get("lat"))
        except GridkitError:
            return None
        result = cache.kept(lon, lat)
        if result is None:
            return None
        shown_to(result, None, False)
        # As jsonify writes it outside debug mode: compact, one newline.
        body = f"{self.app.json.dumps(result, separators=(',', ':'))}\n".encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        return "200 OK", [*headers, *security_headers(self.app), ("Vary", _VARY_ALSO)], body

    def _cached_tile(self, environ, path: str):
        match = _TILE.fullmatch(path)
        cache = self.app.extensions.get("gridkit_tile_cache")
        if match is None or cache is None:
            return None
        args = _plain_args(environ.get("QUERY_STRING", ""), _TILE_ARGS)
        if args is None:
            return None
        layer, *numbers = match.groups()
        z, x, y = (int(n) for n in numbers)
        if max(z, x, y) > INT_MAX:
            return None
        try:
            req = tile_request(layer, z, x, y, *(args.get(name) for name in _TILE_ARGS))
        except GridkitError:
            return None
        generation = cache.fresh_generation()
        if generation is None:
            return None
        entry = cache.get(req.key, generation) or self._made_tile(cache, req, generation)
        if entry is None:
            return None
        etag, data = entry
        headers = tile_headers(etag, generation)
        headers["Vary"] = f"{headers['Vary']}, {_VARY_ALSO}"
        listed = list(headers.items())
        if etag in if_none_match(environ.get("HTTP_IF_NONE_MATCH", "")):
            return "304 NOT MODIFIED", listed + security_headers(self.app), b""
        listed += [("Content-Type", MVT_TYPE), ("Content-Length", str(len(data)))]
        return "200 OK", listed + security_headers(self.app), data

    def _made_tile(self, cache, req, generation: str):
        # A miss whose lookups (edition, version, colouring) the cache keeps for this generation:
        # the tile's one query on a pooled connection. Anything else (a lookup to make, NotFound,
        # no engine yet, a database error) goes to Flask, which makes, refuses or explains it.
        # Tiles are the same for every caller, signed in or not: the tiles view has no guard.
        query = tile_query(req, cache.memo)
        engine = made_engine(self.app)
        if query is None or engine is None:
            return None
        try:
            entry = tile_entry(pooled_tile(engine, query))
        except engine.dialect.loaded_dbapi.Error:
            return None
        cache.put(req.key, generation, entry)
        return entry


def _plain_args(query: str, names: tuple[str, ...]) -> dict | None:
    """Return the parameters `names` of a query string, or None when it holds anything else or anything escaped."""
    if not query:
        return {}
    if "%" in query or "+" in query or "\x00" in query:
        return None
    args = {}
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if not sep or name not in names or name in args:
            return None
        args[name] = value
    return args
