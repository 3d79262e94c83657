"""Errors to responses: GridkitError by its `.status`, HTTP errors by their code.

Under /api/ the body is JSON {"error": type, "message": ...}; elsewhere an HTML page.
Views never catch these errors; anything else is a bug and is logged by Flask as a 500.
"""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from gridkit.errors import GridkitError, SetupError, ValidationError
from gridkit.messages import render
from web.bodies import too_large_message
from web.i18n import catalog, current_language, t

log = logging.getLogger(__name__)


def wants_json() -> bool:
    """True when the request is for the JSON API."""
    return request.path == "/api" or request.path.startswith("/api/")


def web_sentence(exc: GridkitError, lang: str) -> str:
    """Return the error's sentence for a web user: its `<key>.web` variant where the CLI's one names
    command-line options (--dept) that a web page does not have, else the usual sentence."""
    key = f"{exc.key}.web"
    if key in catalog("en"):
        return render(key, lang, **exc.params)
    return exc.render(lang)


def handle_gridkit_error(exc: GridkitError):
    """Return the response for an error a user caused, with the status its class names."""
    if isinstance(exc, SetupError):
        # The page layout would ask the database for the signed-in user; it is not there.
        g.current_user = None
        session = g.pop("db_session", None)
        if session is not None:
            session.invalidate()
    elif g.get("db_session") is not None:
        # A statement the database refused (handle_bad_data) aborted the request's transaction, and the
        # page layout reads the signed-in user through it (a 500 instead of the 400): start afresh.
        # Nothing is lost: what the request committed stays, the rest was to be dropped with the error.
        g.db_session.rollback()
    return _respond(exc.status, type(exc).__name__, web_sentence(exc, current_language()), exc.problems, code=exc.code)


def handle_http_error(exc: HTTPException):
    """Return the response for an HTTP error (unknown URL, wrong method, server error)."""
    status = exc.code or 500
    # Werkzeug's descriptions are English: the reader gets the catalogue's sentence for the status.
    for key in (f"error.message.{status}", f"error.title.{status}", "error.title.other"):
        if key in catalog("en"):
            message = t(key)
            break
    if status == 413:
        message = too_large_message()
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
    return render_template(
        "error.html",
        status=status,
        title=title,
        message=message,
        problems=[p.get("message", str(p)) if isinstance(p, dict) else str(p) for p in problems],
    ), status


def handle_database_down(exc: DBAPIError):
    """Return 503 with advice when the database cannot be reached; the page itself asks it nothing."""
    if not exc.connection_invalidated and not isinstance(exc, (OperationalError, InterfaceError)):
        raise exc
    log.error("database unreachable: %s", exc)
    return handle_gridkit_error(SetupError("web.database_down"))


def handle_bad_data(exc: DataError):
    """Return 400 for a value the database refused (a check this app missed: logged to be fixed)."""
    # The class, SQLSTATE and statement say what to fix; the message is left out, since it may quote
    # the value (`invalid input syntax for type integer: "<a phone or name>"`).
    orig = exc.orig
    log.warning(
        "database refused a value (%s, SQLSTATE %s) in: %s",
        type(orig).__name__,
        getattr(orig, "sqlstate", None),
        exc.statement,
    )
    return handle_gridkit_error(ValidationError("web.bad_value"))


def init_app(app: Flask) -> None:
    """Register the handlers on `app`."""
    app.register_error_handler(GridkitError, handle_gridkit_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(DataError, handle_bad_data)
    app.register_error_handler(OperationalError, handle_database_down)
    app.register_error_handler(InterfaceError, handle_database_down)
