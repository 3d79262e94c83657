"""The analyst's page /analyst: exports to download, report previews and files, a choropleth map.

For analysts and administrators (one guard for the blueprint); a scoped user's exports, reports
and maps cover its scope only (gridkit.users.area_in_scope). Every view is one gridkit call:
`export_layer` (a CSRF-checked form post), `run_report` or `choropleth`. Files are written under
GRIDKIT_HOME/exports and removed once sent.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote

from flask import (
    Blueprint,
    current_app,
    jsonify,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import select

from gridkit import messages
from gridkit.admin import local_gauss_kruger_epsg
from gridkit.errors import GridkitError
from gridkit.io.export import FORMATS, LAYERS, ExportOptions, export_layer, parse_where, small_counts_note
from gridkit.io.export_writers import ENCODINGS
from gridkit.io.retention import scratch_folder
from gridkit.models import AdminUnit, Department
from gridkit.reports import GROUPINGS, report_list, resident_summary, run_report
from gridkit.reports.choropleth import COUNTS, LEVELS
from gridkit.reports.choropleth import choropleth_json as choropleth_text
from gridkit.reports.render import (
    REPORT_FORMATS,
    chart_svg,
    header_block,
    section_table_html,
    write_report_file,
)
from gridkit.users import area_in_scope, may_see_personal_data
from web.auth import check_csrf, current_user, login_required
from web.database import db_session, transaction
from web.errors import handle_gridkit_error, web_sentence
from web.i18n import current_language, strings

bp = Blueprint("analyst", __name__, url_prefix="/analyst")

ANALYST_ROLES = ("analyst", "admin")
# Output CRSs offered (label keys analyst.crs.<choice>); "gauss_kruger" is the city's own CGCS2000 3-degree zone.
CRS_CHOICES = ("EPSG:4490", "EPSG:4326", "gauss_kruger", "gcj02")
SUFFIX = {"shp": ".zip", "gpkg": ".gpkg", "geojson": ".geojson", "csv": ".csv", "xlsx": ".xlsx", "html": ".html"}
PREVIEW_ROWS = 50
JS_STRINGS = (
    "analyst.export.writing",
    "analyst.export.started",
    "analyst.loading",
    "analyst.failed",
    "analyst.legend",
    "analyst.no_rows",
    "map.control.zoom_in",
    "map.control.zoom_out",
)


@bp.before_request
@login_required(roles=ANALYST_ROLES)
def _guard():
    """Only signed-in analysts and administrators enter."""
    return


def _scratch() -> Path:
    settings = current_app.config["GRIDKIT_SETTINGS"]
    # Folders of downloads a stopped server never sent are removed first (gridkit.io.retention).
    return scratch_folder(settings.home, settings.report_retention_days)


def _send(path: Path, name: str):
    """Send a written file, taken out of the home (with its folder) before it is sent: the open file is read
    to the end of the download, and nothing stays behind, even when the download is cut or the server stops.
    (A callback on the response's close never ran: a file response goes to the server as it is.)"""
    file = open(path, "rb")  # noqa: SIM115 - closed by the server when the download ends
    try:
        size = os.fstat(file.fileno()).st_size
        shutil.rmtree(path.parent, ignore_errors=True)
        response = send_file(file, as_attachment=True, download_name=name, etag=False)
    except BaseException:
        file.close()
        raise
    response.content_length = size
    return response


@bp.errorhandler(GridkitError)
def _error(exc: GridkitError):
    # The page's scripts read JSON; downloads and the page itself get the usual error page.
    if request.path.endswith(".json"):
        return jsonify(
            {"error": type(exc).__name__, "code": exc.code, "message": web_sentence(exc, current_language())}
        ), exc.status
    return handle_gridkit_error(exc)


@bp.get("/")
def index():
    """The page: export form, reports, choropleth."""
    session = db_session()
    user = current_user()
    areas = session.execute(
        select(AdminUnit.code, AdminUnit.name, AdminUnit.level)
        .where(AdminUnit.level.in_(("district", "street", "community")))
        .order_by(AdminUnit.code)
    ).all()
    departments = session.execute(select(Department.code, Department.name).order_by(Department.code)).all()
    lang = current_language()
    reports = [dict(r, label=messages.render(r["title"], lang)) for r in report_list()]

    def named(prefix, values):
        # Labels of values chosen from data: (value, label in the page's language).
        return [(v, messages.render(f"{prefix}.{v}", lang)) for v in values]

    return render_template(
        "analyst.html",
        layers=named("analyst.layer", LAYERS),
        formats=FORMATS,
        crs_choices=_crs_choices(session, lang),
        encodings=ENCODINGS,
        areas=areas,
        departments=departments,
        reports=reports,
        groupings=named("report.by", GROUPINGS),
        report_formats=REPORT_FORMATS,
        counts=named("report.col", COUNTS),
        levels=named("report.by", LEVELS),
        # A scoped user's exports cover its scope: whether it may unmask is asked for that area.
        may_unmask=may_see_personal_data(user, area_in_scope(session, user, None)),
        js_strings=strings(*JS_STRINGS),
        export_cookie=EXPORT_NOTE_COOKIE,
    )


@bp.post("/export")
def export():
    """Export a layer and send the file: a form post of layer, format, crs, encoding, area, where, dept, at
    and unmasked, with this session's CSRF token.

    A POST, not a GET: an export (unmasked: an audited read of personal data, written on the server)
    must not be started by a link or a redirect from another site, which a SameSite=Lax cookie follows."""
    check_csrf()
    args = request.form
    fmt = args.get("format", "gpkg")
    layer = args.get("layer", "")
    folder = _scratch()
    path = folder / f"{layer}{SUFFIX.get(fmt, '')}"
    options = ExportOptions(
        layer=layer,
        format=fmt,
        path=path,
        crs=args.get("crs") or "EPSG:4490",
        encoding=args.get("encoding") or "utf-8",
        area=args.get("area") or None,
        where=parse_where(line for line in args.get("where", "").splitlines() if line.strip()),
        dept=args.get("dept") or None,
        at=args.get("at") or None,
        unmasked=args.get("unmasked") == "1",
        max_features=current_app.config["GRIDKIT_SETTINGS"].export_max_features,
    )
    user = current_user()
    try:
        with transaction() as session:
            summary = export_layer(session, options, user=user, actor=f"web:{user.name}")
    except BaseException:
        # The file may be written already (the audit row's commit failed): nothing is left behind.
        shutil.rmtree(folder, ignore_errors=True)
        raise
    response = _send(path, path.name)
    _export_notes(response, summary)
    return response


# A download leaves the page as it was, so what the reader must know of the file (counts of 1–2 residents left
# empty in a masked export: gridkit.rules.SMALL_COUNT_MAX, the summary's "small_counts_hidden") is sent back in a
# short-lived cookie named by the form's download token, which the page's script (gridkit-analyst.js) reads once
# the download starts and shows under the form, in the page's language. The cookie holds no data, only the sentence.
EXPORT_NOTE_COOKIE = "gk_export_"
_DOWNLOAD_TOKEN = re.compile(r"[a-z0-9]{8,40}")


def _export_notes(response, summary: dict) -> None:
    token = request.form.get("download_token", "")
    if not _DOWNLOAD_TOKEN.fullmatch(token):
        return  # no script on the page (or a client of its own): the file is all it asked for
    notes = [note.render(current_language()) for note in (small_counts_note(summary),) if note is not None]
    response.set_cookie(
        EXPORT_NOTE_COOKIE + token,
        quote("\n".join(notes), safe=""),
        max_age=300,
        path=url_for("analyst.index"),
        samesite="Strict",
        secure=current_app.config["GRIDKIT_SETTINGS"].secure_cookies,
        httponly=False,  # read by the page's script, the one purpose of the cookie
    )


def _report_args() -> dict:
    args = request.args
    user = current_user()
    area = area_in_scope(db_session(), user, args.get("area") or None)
    return {
        "by": args.get("by") or None,
        "dept": args.get("dept") or None,
        "area": area,
        "date_from": args.get("from") or None,
        "date_to": args.get("to") or None,
        # Counts of 1–2 residents single a person out: hidden from a reader who may not see residents there.
        "hide_small_counts": not may_see_personal_data(user, area),
    }


def _current_session():
    """Return the request's session after committing a rebuild of the resident summary, if one was due.

    Report views only read: without this, a rebuild made inside a report would be rolled back
    with the request and made again by every later request."""
    with transaction() as session:
        resident_summary.ensure_current(session)
    return db_session()


@bp.get("/report.json")
def report_preview():
    """A report's header, first rows and chart, for the page's preview."""
    name = request.args.get("name", "")
    result = run_report(_current_session(), name, **_report_args())
    lang = current_language()
    return jsonify(
        {
            "name": name,
            "title": messages.render(f"report.{name}.title", lang),
            "header": header_block(result, lang),
            "sections": [
                {
                    "title": messages.render(s.title, lang),
                    "rows": len(s.rows),
                    "table": section_table_html(s, lang, PREVIEW_ROWS),
                    "chart": chart_svg(s, lang),
                }
                for s in result.sections
            ],
        }
    )


@bp.get("/report")
def report_download():
    """A report as a file: ?name=&format=csv|xlsx|html and the report's parameters."""
    name = request.args.get("name", "")
    fmt = request.args.get("format", "xlsx")
    result = run_report(_current_session(), name, **_report_args())
    folder = _scratch()
    path = folder / f"{name}{SUFFIX.get(fmt, '')}"
    try:
        write_report_file(result, path, fmt, lang=current_language())
    except BaseException:
        # A file half written (a full disk) goes with its folder: rmdir alone would fail on it and stay.
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _send(path, path.name)


@bp.get("/choropleth.json")
def choropleth_json():
    """A count per cell or community as GeoJSON: ?count=&by=cell|community&area=."""
    user = current_user()
    area = area_in_scope(db_session(), user, request.args.get("area") or None)
    body = choropleth_text(
        _current_session(),
        request.args.get("count", "residents"),
        request.args.get("by", "community"),
        area=area,
        hide_small_counts=not may_see_personal_data(user, area),
    )
    return current_app.response_class(body, mimetype="application/json")


def _crs_choices(session, lang: str) -> list[tuple[str, str]]:
    """Return (value, label) of each output CRS; the Gauss-Kruger one is the zone of the city's admin units."""
    zone = local_gauss_kruger_epsg(session)
    meridian = 75 + 3 * (zone - 4534)  # EPSG:4534 is central meridian 75E, each next code 3 degrees east
    choices = []
    for choice in CRS_CHOICES:
        value = f"EPSG:{zone}" if choice == "gauss_kruger" else choice
        choices.append((value, messages.render(f"analyst.crs.{choice}", lang, epsg=zone, meridian=meridian)))
    return choices
