"""gridkit's web interface: a Flask app factory; views are thin wrappers around gridkit functions."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from gridkit.config import Settings
from gridkit.keys import kept_key
from gridkit.pii import ScrubPersonalData
from gridkit.rules import use_time_zone


def create_app(settings: Settings | None = None) -> Flask:
    """Return the gridkit web app for `settings` (default: from GRIDKIT_* environment variables)."""
    from web import (
        admin,
        analyst,
        api,
        auth,
        bodies,
        coordinator,
        coordinator_cases,
        database,
        errors,
        fastpath,
        i18n,
        incidents_api,
        ogc,
        oidc,
        open311,
        paging,
        params,
        planner,
        planner_import,  # noqa: F401 (its views join planner's blueprints before they are registered)
        public,
        security,
        shell,
        supervisor,
        tiles,
        vendor,
    )

    settings = settings or Settings.from_env()
    use_time_zone(settings.time_zone)  # the city's days and times on every page, report and export
    app = Flask(__name__)
    # Ids in URLs stop at PostgreSQL's integer range: a larger one is a 404, not a database error.
    app.url_map.converters["int"] = params.IdConverter
    app.config["GRIDKIT_SETTINGS"] = settings
    app.config["SECRET_KEY"] = secret_key(settings)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.secure_cookies
    )
    # GeoJSON keeps its member order ("type" first) and Chinese names stay readable.
    app.json.sort_keys = False
    app.json.ensure_ascii = False

    # A request's unexpected error is logged with its traceback, which quotes the row a statement refused.
    if not any(isinstance(f, ScrubPersonalData) for f in app.logger.filters):
        app.logger.addFilter(ScrubPersonalData())
    bodies.init_app(app)
    database.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    shell.init_app(app)
    paging.init_app(app)
    oidc.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(planner.bp)
    app.register_blueprint(planner.api)
    app.register_blueprint(incidents_api.bp)
    app.register_blueprint(supervisor.bp)
    app.register_blueprint(coordinator_cases.bp)
    app.register_blueprint(analyst.bp)
    app.register_blueprint(ogc.bp)
    app.register_blueprint(open311.bp)
    app.register_blueprint(coordinator.bp)
    app.register_blueprint(coordinator.api)
    app.register_blueprint(admin.bp)
    app.register_blueprint(tiles.bp)
    app.register_blueprint(oidc.bp)
    app.register_blueprint(vendor.bp)
    if settings.trusted_proxies:
        # The client's address as the trusted proxies saw it (rate limits, sign-in throttling).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)
    # Cached tiles are sent before Flask's request handling (same headers, no database).
    app.wsgi_app = fastpath.FastPath(app, app.wsgi_app)
    return app


def secret_key(settings: Settings) -> str:
    """Return the key that signs sessions: GRIDKIT_SECRET_KEY, else one kept in GRIDKIT_HOME/secret_key."""
    return kept_key(settings.home, "secret_key", settings.secret_key, setting="GRIDKIT_SECRET_KEY", what="session key")
