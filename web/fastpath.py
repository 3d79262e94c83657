"""Tile cache hits answered before Flask's request handling (a WSGI middleware).

A tile already in the server cache (web/tiles.py) under a generation that needs no check now is
sent straight from the cache with the very headers the tile view and the app's after-request
hooks give it (caching headers, `Vary: Cookie`, anti-framing, Content-Security-Policy): no
request context, session, language or URL matching, which cost several times what sending the
bytes does. Anything else goes to Flask unchanged: another method or URL, a query parameter
other than dept/version/edition (e.g. `lang`, which sets a cookie), percent-escapes or NUL
bytes, a value the tile view refuses (Flask answers the 400/404), a tile not cached yet, or a
generation due for its check.
"""

from __future__ import annotations

import re

from flask import Flask

from gridkit.errors import GridkitError
from web.params import INT_MAX
from web.security import security_headers
from web.tiles import MVT_TYPE, if_none_match, tile_headers, tile_request

_TILE = re.compile(r"/tiles/([a-z-]{1,20})/([0-9]{1,10})/([0-9]{1,10})/([0-9]{1,10})\.mvt")
_TILE_ARGS = ("dept", "version", "edition")
# What the i18n after-request hook adds to every response's Vary.
_VARY_ALSO = "Cookie"


class FastPath:
    """WSGI middleware in front of `app.wsgi_app`: cached tiles without Flask (see the module docstring)."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET":
            path = environ.get("PATH_INFO", "")
            if path.startswith("/tiles/"):
                answer = self._cached_tile(environ, path)
                if answer is not None:
                    status, headers, body = answer
                    start_response(status, headers)
                    return [body]
        return self.wsgi_app(environ, start_response)

    def _cached_tile(self, environ, path: str):
        match = _TILE.fullmatch(path)
        cache = self.app.extensions.get("gridkit_tile_cache")
        if match is None or cache is None:
            return None
        args = _plain_args(environ.get("QUERY_STRING", ""))
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
        entry = cache.get(req.key, generation) if generation is not None else None
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


def _plain_args(query: str) -> dict | None:
    """Return the tile parameters of a query string, or None when it holds anything else or anything escaped."""
    if not query:
        return {}
    if "%" in query or "+" in query or "\x00" in query:
        return None
    args = {}
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if not sep or name not in _TILE_ARGS or name in args:
            return None
        args[name] = value
    return args
