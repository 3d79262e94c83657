"""Headers and request checks every response gets: anti-framing, a Content-Security-Policy with a
per-request nonce for the few inline scripts (folium's map set-up), and refusal of NUL bytes."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request
from markupsafe import Markup

from gridkit.errors import ValidationError
from web.params import has_nul


def csp_nonce() -> str:
    """Return this request's script nonce."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


_TAG = re.compile(r"<(script|style)(?=[\s>])")


def nonced(html: str) -> Markup:
    """Return `html` (trusted markup from folium) with this request's nonce on every script and style tag."""
    return Markup(_TAG.sub(lambda m: f'<{m.group(1)} nonce="{csp_nonce()}"', str(html)))


def _tile_origin(app) -> str:
    from web.mapview import OSM_TILES

    url = app.config.get("GRIDKIT_TILES", OSM_TILES)["url"]
    parts = urlsplit(url.replace("{s}", "a"))
    host = parts.netloc.replace("a.", "*.", 1) if "{s}" in url else parts.netloc
    return f"{parts.scheme}://{host}" if parts.scheme else ""


def content_security_policy(nonce: str | None = None, app=None) -> str:
    """Return the policy: our own scripts plus nonced inline ones, images from us and the basemap.

    Default: this request's nonce and app; outside a request, pass both."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce or csp_nonce()}'",
            # Leaflet positions tiles and markers with inline styles.
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob: {_tile_origin(app or current_app)}".strip(),
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
        ]
    )


# What a browser says (Sec-Fetch-Site) of a request made by this site's own pages, or by its user
# (address bar, bookmark). A request without the header is not a browser's (a script, curl) or an
# old browser's: it carries a session only if its sender was given one.
_OWN_FETCH_SITES = ("same-origin", "none")


def from_another_site() -> bool:
    """Return whether the browser says this request was made by another site: a link, a redirect, a form
    or a script there (Sec-Fetch-Site: cross-site or same-site, i.e. a sibling host).

    A read whose answer is personal data (audited) answers such a request as to a visitor: a
    SameSite=Lax session cookie goes with a top-level navigation from anywhere, so without this another
    site could make a signed-in user's browser read personal data and add audit rows in their name."""
    site = request.headers.get("Sec-Fetch-Site")
    return site is not None and site not in _OWN_FETCH_SITES


# Every response carries these, and the Content-Security-Policy.
FIXED_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)


def security_headers(app) -> list[tuple[str, str]]:
    """Return the security headers of a response made outside Flask's request handling (web/fastpath.py)."""
    return [*FIXED_HEADERS, ("Content-Security-Policy", content_security_policy(secrets.token_urlsafe(16), app))]


def init_app(app: Flask) -> None:
    """Refuse NUL bytes anywhere in a request; add the security headers to every response."""

    @app.before_request
    def _refuse_nul():
        values = [request.path, *request.args.keys(), *request.args.values()]
        if request.method == "POST" and request.mimetype in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            values += [*request.form.keys(), *request.form.values()]
        if has_nul(values):
            raise ValidationError("web.bad_characters")

    @app.after_request
    def _headers(response):
        for name, value in FIXED_HEADERS:
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        if g.get("current_user") is not None and (
            "Cache-Control" not in response.headers or response.headers.get("Content-Disposition")
        ):
            # Made for a signed-in user, it may carry personal data (a cell's residents, a case's call-back
            # number, coordinators' phones, a downloaded export): no browser or proxy keeps it, so it stays
            # neither on a shared computer's disk after sign-out nor behind its back button. Answers that
            # chose their own caching (tiles, static files: nothing personal) keep it.
            response.headers["Cache-Control"] = "no-store"
        return response

    app.jinja_env.globals.update(csp_nonce=csp_nonce)
    app.jinja_env.filters["nonced"] = nonced
