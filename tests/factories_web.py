"""A small city for the web's role tests: two communities, one department with a published work
grid (A = community 1, B = community 2), a coordinator per work cell, subjects and a user of every
role. Personal values are distinctive strings, so a test can look for them in any response."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from factories import STREET, X0, Y0, D, make_base_grid
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import select
from werkzeug.serving import make_server

from gridkit import db
from gridkit.grids import work
from gridkit.models import SRID, BaseCell, Building, LegalEntity, Resident
from gridkit.users import add_user, link_coordinator

PASSWORD = "correct-horse-7"
DEPT = "100001"
C1, C2 = f"{STREET}001", f"{STREET}002"
A, B = f"{DEPT}{C1}01", f"{DEPT}{C2}01"
PHONE_A, PHONE_B = "13800138001", "13800138002"
# Personal values that only the owning coordinator (residents) or a PII role (coordinator phones) may read.
RESIDENT_NAMES = ("居民甲一", "居民甲二", "居民乙一")
RESIDENT_PHONES = ("13911110001", "13911110002", "13911110003")
ENTITY_NAME = "甲网格商贸有限公司"
BUILDING_A, BUILDING_B = "B-440304-0001", "B-440304-0002"
ADDRESS_A = "园岭街道红荔路88号"
# Points inside the middle base cell of each community (lon, lat).
POINT_A = (X0 + 1.5 * D, Y0 + 1.5 * D)
POINT_B = (X0 + 4.5 * D, Y0 + 1.5 * D)
# Users by role; "coordinator" is A's coordinator, "coordinator_b" B's, "supervisor_c2" is scoped to community 2.
USERS = {
    "admin": "admin1",
    "planner": "planner1",
    "coordinator": "coord_a",
    "coordinator_b": "coord_b",
    "supervisor": "super1",
    "supervisor_c2": "super_c2",
    "analyst": "analyst1",
}


def commit(settings, fill):
    """Run `fill(session)` in a transaction of its own on the settings' database, committed; return its result."""
    with db.session_factory(db.engine_for(settings))() as session, session.begin():
        return fill(session)


def base_cell(community: str, n: int) -> str:
    """Base cell n (1-9, north-west first) of a community of the 3×3 test grid."""
    return f"{community}{n:03d}"


def _point(lon, lat):
    return from_shape(Point(lon, lat), srid=SRID)


def make_web_city(session) -> dict:
    """Make the city described in the module docstring; return ids worth knowing."""
    make_base_grid(session, communities=2)
    work.add_department(session, DEPT, "城市管理", jurisdiction=STREET)
    draft = work.start_draft(session, DEPT, by="setup")
    work.set_members(session, draft, A, [base_cell(C1, n) for n in range(1, 10)], name="红荔一号网格")
    work.set_members(session, draft, B, [base_cell(C2, n) for n in range(1, 10)], name="红荔二号网格")
    work.publish(session, draft, by="setup")
    coord_a = work.add_coordinator(session, "王芳", PHONE_A, DEPT, [A])
    coord_b = work.add_coordinator(session, "李强", PHONE_B, DEPT, [B])
    middle_a = session.scalar(select(BaseCell.id).where(BaseCell.code == base_cell(C1, 5)))
    middle_b = session.scalar(select(BaseCell.id).where(BaseCell.code == base_cell(C2, 5)))
    building_a = Building(code=BUILDING_A, address=ADDRESS_A, floors=6, geom=_point(*POINT_A), base_cell_id=middle_a)
    building_b = Building(
        code=BUILDING_B, address="园岭街道百花路2号", floors=3, geom=_point(*POINT_B), base_cell_id=middle_b
    )
    session.add_all([building_a, building_b])
    session.flush()
    for i, (name, phone) in enumerate(zip(RESIDENT_NAMES, RESIDENT_PHONES)):
        building, cell = (building_a, middle_a) if i < 2 else (building_b, middle_b)
        session.add(
            Resident(
                id_number_hash=f"hash{i}",
                id_number_masked=f"4403**********{i:03d}1",
                name=name,
                phone=phone,
                household=f"H{i // 2}",
                population_type="registered",
                building_id=building.id,
                geom=_point(*(POINT_A if i < 2 else POINT_B)),
                base_cell_id=cell,
            )
        )
    session.add(
        LegalEntity(
            credit_code="91440300MA5XXXXX1X",
            name=ENTITY_NAME,
            address=ADDRESS_A,
            geom=_point(*POINT_A),
            base_cell_id=middle_a,
        )
    )
    for role, name in USERS.items():
        scope = C2 if role == "supervisor_c2" else None
        user = add_user(session, name, role.split("_")[0], scope=scope, password=PASSWORD)
        if name == "coord_a":
            link_coordinator(session, user, PHONE_A)
        elif name == "coord_b":
            link_coordinator(session, user, PHONE_B)
    session.flush()
    return {"coordinator_a": coord_a.id, "coordinator_b": coord_b.id, "version": draft.id}


def csrf_of(html: str) -> str:
    """Return the CSRF token a page hands to its forms."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, name: str) -> str:
    """Sign `name` in with the test client; return the session's CSRF token."""
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, f"{name} could not sign in"
    return csrf_of(client.get("/").get_data(as_text=True))


@contextmanager
def served(app) -> Iterator[str]:
    """Serve the Flask `app` on a free local port in a thread (for a real browser); yield its base URL."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
