"""The planner tests' data and clients (tests/test_web_planner*.py): two 3×3 communities, department
DEPT with a published version and a draft, users of every kind; a signed-in planner's client."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from factories_web import commit
from geoalchemy2.shape import from_shape
from shapely.geometry import box
from sqlalchemy import select

from gridkit import db
from gridkit.grids import work
from gridkit.models import SRID, BaseCell, BaseGridEdition, WorkCell, WorkCellMember
from gridkit.users import add_user
from tests.factories import STREET, X0, Y0, D, make_base_grid
from web import create_app

WEB = Path(__file__).resolve().parent.parent / "web"
PASSWORD = "correct-horse-7"
DEPT, OTHER_DEPT = "100001", "200002"
C1, C2 = f"{STREET}001", f"{STREET}002"
# Work cells: department + area + sequence (20 digits).
# Coded for the street (area part 440304001000), so that base cells may move between them: a work
# cell's area part must name an admin unit holding all its base cells.
A, B = f"{DEPT}{STREET}00001", f"{DEPT}{STREET}00002"
NEW = f"{DEPT}{C1}01"  # coded for community 1: the editor suggests the community's next free code


def cell(community: str, n: int) -> str:
    """Base cell n (1-9, north-west first) of a community of the 3×3 test grid."""
    return f"{community}{n:03d}"


def make_planner_data(session) -> dict:
    """Two 3×3 communities side by side; department DEPT (jurisdiction: the street) with version 1
    published (A = community 1, B = community 2) and version 2 drafted from it; department
    OTHER_DEPT (jurisdiction: community 1) with nothing yet; users of every kind."""
    make_base_grid(session, communities=2)
    work.add_department(session, DEPT, "城市管理", jurisdiction=STREET)
    work.add_department(session, OTHER_DEPT, "民政服务", jurisdiction=C1)
    first = work.start_draft(session, DEPT, by="setup")
    work.set_members(session, first, A, [cell(C1, n) for n in range(1, 10)], name="一号网格")
    work.set_members(session, first, B, [cell(C2, n) for n in range(1, 10)], name="二号网格")
    work.publish(session, first, by="setup")
    draft = work.start_draft(session, DEPT, by="setup")
    add_user(session, "planner1", "planner", password=PASSWORD)
    add_user(session, "planner2", "planner", password=PASSWORD)
    add_user(session, "admin1", "admin", password=PASSWORD)
    add_user(session, "street1", "planner", scope=STREET, password=PASSWORD)
    add_user(session, "community1", "planner", scope=C1, password=PASSWORD)
    add_user(session, "coord1", "coordinator", password=PASSWORD)
    return {"published": first.id, "draft": draft.id}


def read(settings, query):
    with db.session_factory(db.engine_for(settings))() as session:
        return query(session)


def members(settings, version_id: int) -> dict[str, str]:
    """Return {base cell code: work cell code} of a version, read from the database."""
    return read(
        settings,
        lambda s: dict(
            s.execute(
                select(BaseCell.code, WorkCell.code)
                .join(WorkCellMember, WorkCellMember.base_cell_id == BaseCell.id)
                .join(WorkCell, WorkCell.id == WorkCellMember.work_cell_id)
                .where(WorkCellMember.version_id == version_id)
            ).all()
        ),
    )


@pytest.fixture
def planner_app(fresh_settings):
    ids = commit(fresh_settings, make_planner_data)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings, ids


def login(client, name: str) -> str:
    """Sign `name` in and return the session's CSRF token (as the pages hand it to their scripts)."""
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, f"{name} could not sign in"
    # Signing in starts a fresh session: its token is on the next page (here: the sign-out form).
    html = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def post(client, url, token, payload):
    return client.post(url, json=payload, headers={"X-CSRF-Token": token})


@pytest.fixture
def planner(planner_app):
    app, settings, ids = planner_app
    client = app.test_client()
    token = login(client, "planner1")
    return client, token, settings, ids


def make_overlapping_edition(session, name: str = "2027-draft") -> BaseGridEdition:
    """A draft edition copying the published one, whose cell 5 of community 1 reaches into cell 6."""
    published = session.scalar(select(BaseGridEdition).where(BaseGridEdition.status == "published"))
    edition = BaseGridEdition(name=name, status="draft")
    session.add(edition)
    session.flush()
    for code, community, geom in session.execute(
        select(BaseCell.code, BaseCell.community_code, BaseCell.geom).where(BaseCell.edition_id == published.id)
    ):
        session.add(BaseCell(edition_id=edition.id, code=code, community_code=community, geom=geom))
    session.flush()
    grown = session.scalar(select(BaseCell).where(BaseCell.edition_id == edition.id, BaseCell.code == cell(C1, 5)))
    # Cell 5 is the middle one (column 1, row 1): it grows 30 % into cell 6 to the east.
    grown.geom = from_shape(box(X0 + D, Y0 + D, X0 + 2.3 * D, Y0 + 2 * D), srid=SRID)
    session.flush()
    return edition
