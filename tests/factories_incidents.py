"""Test data for incidents: two 3×3 communities, department 200001 (城管) with a published work
grid, coordinators, users of each role, the seed categories."""

from __future__ import annotations

from datetime import UTC, datetime

from factories import STREET, X0, Y0, D, make_base_grid

from gridkit.grids import work
from gridkit.incidents.actors import Actor
from gridkit.incidents.calendar import set_hours
from gridkit.incidents.categories import seed_categories
from gridkit.users import add_user

DEPT = "200001"
C1, C2 = f"{STREET}001", f"{STREET}002"
W1, W2 = f"{DEPT}{C1}01", f"{DEPT}{C2}01"
PHONE1, PHONE2, PHONE3 = "13800138001", "13800138002", "13800138003"
PASSWORD = "correct-horse-7"
V1_FROM = datetime(2020, 1, 1, tzinfo=UTC)
# Inside community 1 (west) and community 2 (east), and outside every cell.
IN_C1 = (X0 + 0.5 * D, Y0 + 1.5 * D)
IN_C2 = (X0 + 4.5 * D, Y0 + 1.5 * D)
OUTSIDE = (X0 - 0.05, Y0 - 0.05)

SUPERVISOR = Actor("super1", "supervisor")
ADMIN = Actor("admin1", "admin")


def cells(community: str) -> list[str]:
    return [f"{community}{n:03d}" for n in range(1, 10)]


# Working hours of every day from 00:00 to 24:00: step times then read as plain hours, whatever the weekday
# (the tests of working time, tests/test_*_cal9e.py, keep the deployment's default hours instead).
ALL_DAY = ("1-7=00:00-24:00",)


def make_incident_world(session, *, users: bool = True, hours: tuple[str, ...] = ALL_DAY) -> dict:
    """Grid, department 200001 (work cells W1 = community 1, W2 = community 2, published 2020-01-01),
    coordinator 1 on W1, coordinator 2 on W2, categories, and users super1 (supervisor), admin1,
    coord1/coord2 (coordinators), street_super (supervisor scoped to community 2), analyst1; the working
    calendar's `hours` (default: every hour of every day; () keeps Monday-Friday 09:00-12:00, 14:00-18:00)."""
    make_base_grid(session, communities=2)
    seed_categories(session)
    if hours:
        set_hours(session, list(hours))
    work.add_department(session, DEPT, "城市管理", jurisdiction=STREET)
    work.add_department(session, "100001", "综治中心", jurisdiction=STREET)
    version = work.start_draft(session, DEPT, by="setup")
    work.set_members(session, version, W1, cells(C1), name="一号网格")
    work.set_members(session, version, W2, cells(C2), name="二号网格")
    work.publish(session, version, at=V1_FROM, by="setup")
    c1 = work.add_coordinator(session, "张三", PHONE1, DEPT, [W1])
    c2 = work.add_coordinator(session, "李四", PHONE2, DEPT, [W2])
    if users:
        add_user(session, "super1", "supervisor", password=PASSWORD)
        add_user(session, "admin1", "admin", password=PASSWORD)
        add_user(session, "coord1", "coordinator", password=PASSWORD, coordinator_id=c1.id)
        add_user(session, "coord2", "coordinator", password=PASSWORD, coordinator_id=c2.id)
        add_user(session, "street_super", "supervisor", scope=C2, password=PASSWORD)
        add_user(session, "analyst1", "analyst", password=PASSWORD)
    session.flush()
    return {"version": version, "coord1": c1, "coord2": c2}


def coordinator_actor(world, n: int = 1) -> Actor:
    return Actor(f"coord{n}", "coordinator", None, world[f"coord{n}"].id)


def dispatched_case(session, description: str, where=IN_C1, category: str = "0101") -> int:
    """Report a case at `where` and take it to dispatched (accepted, classified, sent to its coordinator) as the
    supervisor; return its id."""
    from gridkit.incidents import workflow as wf

    case = wf.report_incident(session, lon=where[0], lat=where[1], description=description, actor=SUPERVISOR)
    wf.accept(session, case.incident.id, SUPERVISOR)
    wf.classify(session, case.incident.id, SUPERVISOR, category=category)
    wf.dispatch(session, case.incident.id, SUPERVISOR)
    return case.incident.id


# The smallest valid images: the first bytes decide the type.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa75\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)
