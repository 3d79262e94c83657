"""How large a request body may be: a larger one is refused with 413, in the page's language, before it
is read by the app (Open311 sets its own, smaller limit).

Without a limit an anonymous POST of a gigabyte to /login was taken whole (spooled to disk by the server
and again by the form parser) before the missing CSRF token refused it.
"""

from __future__ import annotations

from flask import Flask, request

from gridkit.incidents.attachments import MAX_BYTES, MAX_FILES
from web.i18n import t

# A feedback with photos: MAX_FILES photos of at most MAX_BYTES each, and the form's few fields.
UPLOAD_BYTES = MAX_FILES * MAX_BYTES + 1024**2
# Every other body: forms, and the planner's JSON (base cell codes, a drawn polygon).
BODY_BYTES = 16 * 1024**2
# What the server itself takes before the app sees a request (waitress refuses more without reading it,
# in plain English): above UPLOAD_BYTES, so that a user over the limit still reads the app's page.
SERVER_BYTES = 2 * UPLOAD_BYTES
# The views that take photos (a feedback).
UPLOAD_ENDPOINTS = frozenset({"coordinator_cases.feedback", "supervisor.act", "incidents_api.act"})
# A planner's file of drawn work cells (a zipped shapefile, GeoPackage, GeoJSON): as much as a feedback's photos,
# the most the server takes without a second limit. A city's work grid drawn by hand is a few MB.
IMPORT_BYTES = UPLOAD_BYTES
# The views that take such a file (its fields read, or imported).
IMPORT_ENDPOINTS = frozenset({"planner_api.import_fields", "planner_api.import_work_cells"})


def too_large_message() -> str:
    """Return the sentence of a 413 for this request, in its language: its limit, and the photos' on a feedback."""
    limit = request.max_content_length or BODY_BYTES
    text = t("error.message.413", mb=limit // 1024**2)
    if request.endpoint in UPLOAD_ENDPOINTS:
        text += " " + t("error.message.413_photos", photos=MAX_FILES, photo_mb=MAX_BYTES // 1024**2)
    return text


def init_app(app: Flask) -> None:
    """Limit every request body to BODY_BYTES, those of the views taking photos to UPLOAD_BYTES, and those taking
    a file to import to IMPORT_BYTES."""
    app.config["MAX_CONTENT_LENGTH"] = BODY_BYTES

    @app.url_value_preprocessor
    def _limit_body(endpoint, values) -> None:
        # Before every before_request (the NUL check reads the form): the limit holds from the first read.
        if endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = UPLOAD_BYTES
        elif endpoint in IMPORT_ENDPOINTS:
            request.max_content_length = IMPORT_BYTES
