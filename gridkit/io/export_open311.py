"""Open311 GeoReport v2 in gridkit's words: services are incident categories, requests are incidents.

A posted request enters the incident workflow at step 1 (信息采集, state `reported`) through
`gridkit.incidents.workflow.report_incident`, with its source (`open311`, or `open311:NAME` for
a trusted source) on the case.
Reporter names, e-mails and phones are kept on the incident only as the reporter and never
listed back. Statuses: `open` while the case is not finished, else `closed`. The public reads no
staff note: status_notes is the catalogue's sentence for the case's state (a duplicate names its
original), and phone or citizen ID numbers written in a description are masked
(gridkit.pii.mask_personal_text). A case's place is public only to about 100 m
(gridkit.pii.public_location_sql), without the building a post named (gridkit.pii.public_text): its
exact point for a trusted source's key and for signed-in staff who may read personal data in the
case's community, each answer giving exact points recorded in the audit log (ExactReader).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridkit.audit import PERSONAL_DATA_READ, record
from gridkit.errors import NotFound, ValidationError
from gridkit.incidents.report import DESCRIPTION_MAX
from gridkit.incidents.workflow import report_incident
from gridkit.messages import render
from gridkit.models import Building, Incident, IncidentCategory
from gridkit.pii import ADDRESS_TAG, mask_personal_text, public_location_sql, public_text
from gridkit.rules import (
    CHINA_LAT,
    CHINA_LON,
    FINISHED_INCIDENT_STATES,
    local_tz,
    now,
    parse_time,
)

MAX_REQUESTS = 1000
DEFAULT_DAYS = 90
# A post sent twice (a double tap, a client retrying after a timeout) is one case: a post without a key
# of its own is keyed by what it says and who sent it, within the window of this length it arrived in.
RETRY_WINDOW = timedelta(minutes=10)


def services(session: Session) -> list[dict]:
    """Return every incident category as an Open311 service."""
    rows = session.scalars(select(IncidentCategory).order_by(IncidentCategory.code))
    return [
        {
            "service_code": c.code,
            "service_name": c.name,
            "description": f"{c.major_name} · {c.name} ({'部件' if c.kind == 'component' else '事件'}, "
            f"{c.time_limit_hours} h {'全天' if c.around_the_clock else '工作时'})",
            "metadata": False,
            "type": "realtime",
            "keywords": c.kind,
            "group": c.major_name,
        }
        for c in rows
    ]


def _status(state: str) -> str:
    return "closed" if state in FINISHED_INCIDENT_STATES else "open"


def _time(value):
    return value.astimezone(local_tz()).isoformat() if value is not None else None


@dataclass(frozen=True)
class ExactReader:
    """Who reads cases' exact points: `name` (for the audit log) and `may(community)`, True where they may
    (community None: the case lies outside every cell). An exact point can be a citizen's home: every
    answer giving any is one personal_data.read audit row in the caller's transaction."""

    name: str
    may: Callable[[str | None], bool]


def staff_reader(user) -> ExactReader | None:
    """Return what a signed-in `user` reads exactly in Open311's answers: the cases of the communities
    where their role and scope allow personal data (gridkit.users.may_see_personal_data). Not a
    coordinator's: Open311 lists every case of the city, and a coordinator's are only those of their
    work cells (gridkit.incidents.queries), read in their own workspace; here they read as the public."""
    from gridkit.users import may_see_personal_data

    if user is None or user.role == "coordinator":
        return None
    return ExactReader(user.name, lambda area: may_see_personal_data(user, area))


_REQUESTS_SQL = f"""
SELECT s.id, s.code, s.status, s.description, s.category_code, k.name AS service_name, s.reported_at,
       s.deadline, s.closed_at, s.dept_code, d.name AS dept_name, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat,
       ST_X({public_location_sql("s.geom")}) AS public_lon, ST_Y({public_location_sql("s.geom")}) AS public_lat,
       b.community_code AS community,
       (SELECT max(h.at) FROM incident_history h WHERE h.incident_id = s.id) AS updated_at,
       o.code AS original_code
FROM incident s LEFT JOIN incident_category k ON k.code = s.category_code
LEFT JOIN department d ON d.code = s.dept_code
LEFT JOIN incident o ON o.id = s.duplicate_of_id
LEFT JOIN base_cell b ON b.id = s.base_cell_id
WHERE {{where}} ORDER BY s.reported_at DESC, s.id DESC LIMIT :lim"""


def _request_doc(row, lang: str | None, exact: ExactReader | None) -> dict:
    # Staff notes (dispatch reasons, coordinators' feedback) may name people: the public reads the state's sentence.
    if exact is not None and exact.may(row.community):
        lon, lat, description = row.lon, row.lat, mask_personal_text(row.description)
    else:
        lon, lat, description = row.public_lon, row.public_lat, public_text(row.description)
    return {
        "service_request_id": row.code,
        "status": _status(row.status),
        "status_notes": render(f"open311.status_note.{row.status}", lang, original=row.original_code or "-"),
        "service_name": row.service_name,
        "service_code": row.category_code,
        "description": description,
        "agency_responsible": row.dept_name,
        "service_notice": None,
        "requested_datetime": _time(row.reported_at),
        "updated_datetime": _time(row.updated_at),
        "expected_datetime": _time(row.deadline),
        "address": None,
        "address_id": None,
        "zipcode": None,
        # A case may have no place yet (imported without one): lat/long are then null.
        "lat": None if lat is None else round(lat, 7),
        "long": None if lon is None else round(lon, 7),
        "media_url": None,
    }


def requests(
    session: Session,
    *,
    ids: list[str] | None = None,
    service_code: str | None = None,
    start: str | None = None,
    end: str | None = None,
    status: str | None = None,
    lang: str | None = None,
    exact: ExactReader | None = None,
) -> list[dict]:
    """Return requests (newest first, at most 1000): by ids, else filtered; default the last 90 days.
    Status notes in `lang` (default zh-CN); each place exact where `exact.may(community)` is true (the
    exact places given recorded as one audit row, ExactReader), else to about 100 m
    (gridkit.pii.public_location_sql)."""
    params: dict = {"lim": MAX_REQUESTS}
    clauses = ["true"]
    if ids:
        clauses.append("s.code = ANY(:ids)")
        params["ids"] = ids
    else:
        end_at = parse_time(end, field="end_date") if end else None
        start_at = parse_time(start, field="start_date") if start else (end_at or now()) - timedelta(days=DEFAULT_DAYS)
        clauses.append("s.reported_at >= :start")
        params["start"] = start_at
        if end_at:
            clauses.append("s.reported_at <= :end")
            params["end"] = end_at
        if service_code:
            clauses.append("s.category_code = ANY(:codes)")
            params["codes"] = [c.strip() for c in service_code.split(",") if c.strip()]
        if status:
            wanted = {s.strip() for s in status.split(",")}
            if not wanted <= {"open", "closed"}:
                raise ValidationError("open311.bad_status", status=status)
            finished = [s.value for s in FINISHED_INCIDENT_STATES]
            if wanted == {"open"}:
                clauses.append("NOT (s.status = ANY(:finished))")
                params["finished"] = finished
            elif wanted == {"closed"}:
                clauses.append("s.status = ANY(:finished)")
                params["finished"] = finished
    rows = session.execute(text(_REQUESTS_SQL.format(where=" AND ".join(clauses))), params).all()
    docs = [_request_doc(row, lang, exact) for row in rows]
    placed = sum(1 for row in rows if exact is not None and row.lon is not None and exact.may(row.community))
    if placed:
        asked = {"ids": ids, "service_code": service_code, "start": start, "end": end, "status": status}
        record(
            session,
            exact.name,
            PERSONAL_DATA_READ,
            object_type="incident",
            detail_fields=["place"],
            count=placed,
            via="open311",
            query={k: v for k, v in asked.items() if v},
        )
    return docs


def request_by_id(session: Session, request_id: str, lang: str | None = None, exact: ExactReader | None = None) -> dict:
    """Return one request (its place as `requests` gives it), or raise NotFound."""
    found = requests(session, ids=[request_id], lang=lang, exact=exact)
    if not found:
        raise NotFound("open311.unknown_request", request=request_id)
    return found[0]


def _location(session: Session, lat, lon, address_id) -> tuple[float, float]:
    if address_id:
        point = func.coalesce(Building.geom, func.ST_PointOnSurface(Building.footprint))
        row = session.execute(select(func.ST_X(point), func.ST_Y(point)).where(Building.code == address_id)).first()
        if row is None:
            raise ValidationError("open311.unknown_address", address_id=address_id)
        return float(row[0]), float(row[1])
    if lat in (None, "") or lon in (None, ""):
        raise ValidationError("open311.no_location")
    try:
        lat_f, lon_f = float(lat), float(lon)
    except ValueError:
        raise ValidationError("open311.bad_location", lat=lat, long=lon) from None
    if not (CHINA_LON[0] <= lon_f <= CHINA_LON[1] and CHINA_LAT[0] <= lat_f <= CHINA_LAT[1]):
        raise ValidationError("open311.outside", lat=lat, long=lon)
    return lon_f, lat_f


def create_request(
    session: Session,
    *,
    service_code: str | None,
    lat=None,
    lon=None,
    address_id=None,
    description: str | None = None,
    reporter: str | None = None,
    source: str = "open311",
    key: str | None = None,
) -> Incident:
    """Report a new incident from an Open311 post through the workflow's report step (信息采集).

    `source` is "open311", or "open311:NAME" for a trusted source (kept in the case's source);
    without a description the service's name describes the case. Without `key`, the same post again
    within RETRY_WINDOW returns the case the first one made.
    """
    if not service_code:
        raise ValidationError("open311.no_service_code")
    category = session.get(IncidentCategory, service_code)
    if category is None:
        raise ValidationError("open311.unknown_service", service_code=service_code)
    lon_f, lat_f = _location(session, lat, lon, address_id)
    text_ = (description or "").strip() or category.name
    suffix = ADDRESS_TAG.format(address_id) if address_id else ""
    # Refused, not cut: a citizen's words are never shortened without telling them.
    if len(text_) + len(suffix) > DESCRIPTION_MAX:
        raise ValidationError("open311.description_too_long", length=len(text_), limit=DESCRIPTION_MAX - len(suffix))
    text_ += suffix
    if key is None:
        key = _post_key(source, service_code, lon_f, lat_f, text_, reporter)
    report = report_incident(
        session,
        description=text_,
        lon=lon_f,
        lat=lat_f,
        category=service_code,
        source=source[:30],
        reporter=reporter,
        actor="open311",
        key=key,
    )
    return report.incident


def reporter_of(first_name=None, last_name=None, email=None, phone=None) -> str | None:
    """Return how to reach a post's citizen, as kept on the case (personal data: shown masked or
    audited, never listed back): the name, then the e-mail and phone given, at most 100 characters."""
    name = " ".join(v.strip() for v in (first_name, last_name) if v and v.strip())
    parts = [p for p in (name, (email or "").strip(), (phone or "").strip()) if p]
    return " / ".join(parts)[:100] or None


def _post_key(source: str, service_code: str, lon: float, lat: float, text_: str, reporter: str | None) -> str:
    """Return the idempotency key of a post: a digest of its content and sender, and its RETRY_WINDOW."""
    content = json.dumps([source, service_code, round(lon, 7), round(lat, 7), text_, reporter], ensure_ascii=False)
    window = int(now().timestamp() // RETRY_WINDOW.total_seconds())
    return f"open311:{hashlib.sha256(content.encode()).hexdigest()[:40]}:{window}"
