"""gridkit's web interface: a Flask app factory; views are thin wrappers around gridkit functions."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

from gridkit.config import Settings
from gridkit.errors import SetupError


def create_app(settings: Settings | None = None) -> Flask:
    """Return the gridkit web app for `settings` (default: from GRIDKIT_* environment variables)."""
    from web import api, auth, database, errors, i18n, planner, public

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["GRIDKIT_SETTINGS"] = settings
    app.config["SECRET_KEY"] = secret_key(settings)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    # GeoJSON keeps its member order ("type" first) and Chinese names stay readable.
    app.json.sort_keys = False
    app.json.ensure_ascii = False

    database.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(planner.bp)
    app.register_blueprint(planner.api)
    return app


def secret_key(settings: Settings) -> str:
    """Return the key that signs sessions: GRIDKIT_SECRET_KEY, else one kept in GRIDKIT_HOME/secret_key."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.home) / "secret_key"
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL with mode 0600: the key is never readable by others, not even for a moment.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip()
    except FileExistsError:
        return path.read_text().strip()   # another process created it a moment ago
    except OSError as exc:
        raise SetupError(f"cannot keep the session key in {path} ({exc.strerror}): make "
                         "GRIDKIT_HOME writable or set GRIDKIT_SECRET_KEY.")
