"""Errors to responses: GridkitError by its `.status`, HTTP errors by their code.

Under /api/ the body is JSON {"error": type, "message": ...}; elsewhere an HTML page.
Views never catch these errors; anything else is a bug and is logged by Flask as a 500.
"""

from __future__ import annotations

from flask import Flask, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from gridkit.errors import GridkitError, SetupError
from web.i18n import catalog, current_language, t


def wants_json() -> bool:
    """True when the request is for the JSON API."""
    return request.path == "/api" or request.path.startswith("/api/")


def handle_gridkit_error(exc: GridkitError):
    """Return the response for an error a user caused, with the status its class names."""
    if isinstance(exc, SetupError):
        # The page layout would ask the database for the signed-in user; it is not there.
        g.current_user = None
    return _respond(exc.status, type(exc).__name__, exc.render(current_language()), exc.problems,
                    code=exc.code)


def handle_http_error(exc: HTTPException):
    """Return the response for an HTTP error (unknown URL, wrong method, server error)."""
    status = exc.code or 500
    key = f"error.message.{status}"
    if wants_json():
        message = exc.description
    else:
        message = t(key) if key in catalog("en") else exc.description
    return _respond(status, type(exc).__name__, message, [])


def _respond(status: int, error: str, message: str, problems: list, code: str | None = None):
    if wants_json():
        body = {"error": error, "message": message}
        if code is not None:
            body["code"] = code
        if problems:
            # Structured problems (dicts from validation) stay objects a script can read.
            body["problems"] = [p if isinstance(p, dict) else str(p) for p in problems]
        return jsonify(body), status
    key = f"error.title.{status}"
    title = t(key) if key in catalog("en") else t("error.title.other")
    return render_template("error.html", status=status, title=title, message=message,
                           problems=[p.get("message", str(p)) if isinstance(p, dict) else str(p)
                                     for p in problems]), status


def init_app(app: Flask) -> None:
    """Register the handlers on `app`."""
    app.register_error_handler(GridkitError, handle_gridkit_error)
    app.register_error_handler(HTTPException, handle_http_error)
