"""The planner's import of a department's drawn work cells into a draft (gridkit.grids.work.import_polygons).

The page uploads the file twice: once to list its fields (to choose the code and name fields from), then with
the fields, the share threshold and the draft revision the page shows, to import it. Each upload is saved to a
private scratch folder (gridkit.io.retention.scratch_folder) removed when the request ends, and may be as large as
web.bodies.IMPORT_BYTES. The import is all or nothing: a refusal lists every problem and changes nothing. Either
way a report is written (gridkit.grids.work.import_report), whose CSV only the planners who may open the draft
download. Guards as every planner view: planners and administrators whose scope holds the department, the
session's CSRF token, optimistic locking on the revision.
"""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from flask import current_app, jsonify, request, send_file, url_for

from gridkit.errors import ValidationError
from gridkit.grids import work
from gridkit.grids.work.import_polygons import import_work_cells as import_cells
from gridkit.grids.work.import_report import draft_report, report_imported, report_refused
from gridkit.io.problems import problem_text
from gridkit.io.retention import scratch_folder
from gridkit.io.vector import VectorReadError, layer_fields
from web.auth import current_user, login_required
from web.database import db_session, transaction
from web.errors import web_sentence
from web.i18n import catalog, current_language, t
from web.params import body_share, has_nul, parse_int
from web.planner import DEFAULT_SHARE, PLANNER_ROLES, _changes, _require_version_scope, api, bp

# The files a department delivers: a shapefile zipped with its .shx/.dbf/.prj, a GeoPackage, a GeoJSON.
SUFFIXES = (".zip", ".gpkg", ".geojson", ".json")
# Longest file name kept (the name the report and the messages quote).
_NAME_LENGTH = 120
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def _settings():
    return current_app.config["GRIDKIT_SETTINGS"]


def _file_name(raw: str) -> str:
    """Return the uploaded file's own name (no folder, no control characters), as the messages quote it."""
    name = _UNSAFE.sub("", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValidationError("web.import_file_type", file=name[:_NAME_LENGTH], types=" ".join(SUFFIXES))
    stem = name[: -len(suffix)].strip(" .") or "upload"
    return stem[: _NAME_LENGTH - len(suffix)] + suffix


@contextmanager
def _upload():
    """Yield (path, name) of the request's file saved in a private scratch folder, removed afterwards."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("web.import_no_file")
    name = _file_name(upload.filename)
    settings = _settings()
    folder = scratch_folder(settings.home, settings.report_retention_days)
    try:
        path = folder / name
        upload.save(path)
        yield path, name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _form_text(name: str) -> str | None:
    value = (request.form.get(name) or "").strip()
    if has_nul([value]) or len(value) > 254:
        raise ValidationError("web.text", name=name)
    return value or None


def _form_share() -> float:
    raw = (request.form.get("share") or "").strip()
    if not raw:
        return DEFAULT_SHARE
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError("web.share") from None
    return body_share({"share": value}, DEFAULT_SHARE)


@api.post("/drafts/<int:draft_id>/import/fields")
@login_required(roles=PLANNER_ROLES)
@_changes
def import_fields(draft_id: int):
    """Return the fields of the uploaded file's layer: {"file", "layer", "features", "fields"}. Changes nothing."""
    session = db_session()
    _require_version_scope(session, draft_id)
    work.draft(session, draft_id)
    with _upload() as (path, _):
        found = layer_fields(path, layer=_form_text("layer"), encoding=_form_text("encoding"))
    return jsonify(dict(found, draft=draft_id))


@api.post("/drafts/<int:draft_id>/import")
@login_required(roles=PLANNER_ROLES)
@_changes
def import_work_cells(draft_id: int):
    """Make the draft's work cells those drawn in the uploaded file (all or nothing) and return the counts.

    Form: file, code_field, name_field (optional), share (0 < share <= 1, default rules.WORK_CELL_SHARE),
    revision; layer, encoding, src_crs as `gridkit workgrid import` takes them (optional). A refusal (400) lists
    every problem by feature number and code; either answer links the report.
    """
    session = db_session()
    _require_version_scope(session, draft_id)
    revision = parse_int(request.form.get("revision", ""), "revision")
    code_field = _form_text("code_field")
    if code_field is None:
        raise ValidationError("web.import_code_field")
    name_field, share = _form_text("name_field"), _form_share()
    read = {name: _form_text(name) for name in ("layer", "encoding", "src_crs")}
    settings, lang, by = _settings(), current_language(), current_user().name
    with _upload() as (path, name):
        try:
            with transaction() as session:
                result = import_cells(
                    session,
                    work.draft(session, draft_id),
                    path,
                    code_field=code_field,
                    name_field=name_field,
                    share=share,
                    expected_revision=revision,
                    by=by,
                    settings=settings,
                    **read,
                )
        except VectorReadError as exc:  # the file or its features: reported, nothing written
            report = report_refused(settings.home, draft_id, exc, name, lang)
            return jsonify(_refusal(exc, draft_id, report, lang)), 400
    report = report_imported(settings.home, result, name, lang)
    s = result.summary()
    counts = {k: s[k] for k in ("work_cells", "base_cells_assigned", "split", "unassigned", "work_cells_removed")}
    return jsonify(
        dict(
            counts,
            draft=draft_id,
            revision=result.revision,
            file=name,
            message=t("planner.import.done", file=name, **counts),
            notes=[_line(n, lang) for n in result.notes],
            report=_report_url(draft_id, report),
        )
    )


def _line(entry: dict, lang: str) -> dict:
    """Return a problem or note as the page lists it: feature number, code, field, kind and sentence (its `.web`
    variant where the command's sentence names an option, --layer, that is a field of the page's form)."""
    key = entry.get("key")
    if key and f"{key}.web" in catalog("en"):
        entry = dict(entry, key=f"{key}.web")
    return {k: entry.get(k) for k in ("index", "code", "field", "kind")} | {"message": problem_text(entry, lang)}


def _refusal(exc: VectorReadError, draft_id: int, report: str, lang: str) -> dict:
    problems = [_line(p, lang) for p in exc.problems]
    unlisted = dict(getattr(exc.problems, "unlisted", {}))
    return {
        "error": type(exc).__name__,
        "code": exc.code,
        "draft": draft_id,
        "message": t("planner.import.refused", count=len(problems) + sum(unlisted.values())),
        "reason": web_sentence(exc, lang),
        "problems": problems,
        "unlisted": unlisted,
        "notes": [_line(n, lang) for n in getattr(exc, "notes", [])],
        "report": _report_url(draft_id, report),
    }


def _report_url(draft_id: int, report: str) -> str:
    return url_for("planner.import_report", draft_id=draft_id, report=report)


@bp.get("/draft/<int:draft_id>/import-reports/<report>.csv")
@login_required(roles=PLANNER_ROLES)
def import_report(draft_id: int, report: str):
    """Send the CSV report of an import into the draft, to planners whose scope holds its department."""
    session = db_session()
    _require_version_scope(session, draft_id)
    path = draft_report(_settings().home, draft_id, report)
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=path.name, etag=False)
