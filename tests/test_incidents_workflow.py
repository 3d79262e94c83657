"""The 7-step workflow on gridkit.incidents.workflow: transitions, roles and scopes, deadlines,
as-of dispatch, duplicates, idempotency, attachments, bad input (nothing changed), and two real
sessions racing for one case."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from factories_incidents import (
    ADMIN,
    C1,
    C2,
    DEPT,
    IN_C1,
    IN_C2,
    OUTSIDE,
    PHONE2,
    PHONE3,
    PNG,
    SUPERVISOR,
    V1_FROM,
    W1,
    cells,
    coordinator_actor,
    make_incident_world,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from gridkit.grids import work
from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor, actor_for
from gridkit.incidents.cases import coordinator_case
from gridkit.incidents.queries import list_incidents, overdue_cases, show_incident
from gridkit.models import Incident, IncidentAttachment, IncidentHistory, WorkCell
from gridkit.rules import now

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def world(session):
    return make_incident_world(session)


def report(session, where=IN_C1, **kw):
    kw.setdefault("description", "井盖破损")
    kw.setdefault("category", "0101")
    return wf.report_incident(session, lon=where[0], lat=where[1], actor=SUPERVISOR, **kw)


def count(session, model=Incident):
    return session.scalar(select(func.count()).select_from(model))


def test_seven_steps_end_to_end(session, world, tmp_path):
    r = report(session, reported_at=T0)
    case = r.incident
    assert r.created and case.status == "reported" and case.code.startswith("SJ20261102")
    assert case.base_cell_id is not None
    wf.accept(session, case.id, SUPERVISOR, at=T0 + timedelta(hours=1))
    wf.classify(session, case.id, SUPERVISOR, category="0101", severity="urgent", at=T0 + timedelta(hours=2))
    # 0101: dispatch 4 h, handling 8 h × 0.5 (urgent), verify 8 h (this world's calendar works every hour).
    assert case.deadlines["dispatch"] == (T0 + timedelta(hours=6)).isoformat()
    assert case.deadlines["handle"] == (T0 + timedelta(hours=10)).isoformat()
    assert case.deadline == T0 + timedelta(hours=18)
    wf.dispatch(session, case.id, SUPERVISOR, at=T0 + timedelta(hours=3))
    assert case.dept_code == DEPT and case.coordinator_id == world["coord1"].id
    assert session.get(WorkCell, case.work_cell_id).code == W1
    assert case.step_deadline == T0 + timedelta(hours=10)
    coord = coordinator_actor(world, 1)
    wf.feedback(
        session,
        case.id,
        coord,
        note="已更换井盖",
        attachments=[("after.png", PNG)],
        home=tmp_path,
        at=T0 + timedelta(hours=5),
    )
    wf.rework(session, case.id, SUPERVISOR, note="照片看不清", at=T0 + timedelta(hours=6))
    assert case.rework_count == 1 and case.status == "dispatched"
    wf.feedback(session, case.id, coord, note="已重拍", at=T0 + timedelta(hours=7))
    wf.close(session, case.id, SUPERVISOR, at=T0 + timedelta(hours=8))
    shown = show_incident(session, case.id)
    assert shown["state"] == "closed" and shown["work_cell"] == W1 and shown["overdue"] is False
    assert [(h["from"], h["to"]) for h in shown["history"]] == [
        (None, "reported"),
        ("reported", "accepted"),
        ("accepted", "classified"),
        ("classified", "dispatched"),
        ("dispatched", "fed_back"),
        ("fed_back", "dispatched"),
        ("dispatched", "fed_back"),
        ("fed_back", "closed"),
    ]
    assert shown["history"][4]["actor"] == "coord1"
    stored = session.scalar(select(IncidentAttachment))
    assert (tmp_path / stored.path).read_bytes() == PNG and stored.media_type == "image/png"
    assert shown["allowed"] == []


def test_illegal_transition_names_state_and_allowed(session, world):
    case = report(session).incident
    with pytest.raises(InvalidTransition) as exc:
        wf.close(session, case.id, SUPERVISOR)
    assert "is reported" in exc.value.message and "accept" in exc.value.message and "reject" in exc.value.message
    assert "已上报" in exc.value.render("zh-CN") and "受理" in exc.value.render("zh-CN")
    assert case.status == "reported" and count(session, IncidentHistory) == 1


def test_roles_and_scope(session, world):
    case = report(session).incident  # in community 1
    with pytest.raises(PermissionDenied):
        wf.accept(session, case.id, coordinator_actor(world, 1))
    with pytest.raises(PermissionDenied) as exc:
        wf.accept(session, case.id, actor_for(session, "street_super"))  # scoped to community 2
    assert "outside" in exc.value.message
    other = report(session, where=IN_C2).incident
    wf.accept(session, other.id, actor_for(session, "street_super"))
    with pytest.raises(PermissionDenied):
        wf.accept(session, case.id, Actor("public", "public"))
    with pytest.raises(NotFound):
        actor_for(session, "nobody")
    assert case.status == "reported"


def test_feedback_only_by_the_cases_coordinator(session, world):
    case = report(session).incident
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    wf.dispatch(session, case.id, SUPERVISOR)
    with pytest.raises(PermissionDenied):
        wf.feedback(session, case.id, coordinator_actor(world, 2), note="不是我的")
    assert case.status == "dispatched"


def test_a_stopped_coordinator_no_longer_sees_nor_answers_the_cells_cases(session, world):
    case = report(session).incident
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    wf.dispatch(session, case.id, SUPERVISOR)
    assert case.coordinator_id == world["coord1"].id
    assert coordinator_case(session, world["coord1"].id, case.id)
    world["coord1"].active = False
    session.flush()
    assert not coordinator_case(session, world["coord1"].id, case.id)
    with pytest.raises(PermissionDenied):
        wf.feedback(session, case.id, coordinator_actor(world, 1), note="已停用")
    assert case.status == "dispatched"


def test_dispatch_uses_the_work_grid_valid_at_report_time(session, world):
    case = report(session, reported_at=now() - timedelta(days=10)).incident
    # A new version moves community 1 into a new work cell and is published after the report.
    draft = work.start_draft(session, DEPT, by="t")
    work.set_members(session, draft, f"{DEPT}{C1}02", cells(C1))
    work.publish(session, draft, at=now() - timedelta(days=1), by="t")
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    wf.dispatch(session, case.id, SUPERVISOR)
    cell = session.get(WorkCell, case.work_cell_id)
    assert cell.code == W1 and cell.version_id == world["version"].id
    assert case.coordinator_id == world["coord1"].id


def test_dispatch_to_another_coordinator_needs_a_reason(session, world):
    case = report(session).incident
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    with pytest.raises(ValidationError):
        wf.dispatch(session, case.id, SUPERVISOR, coordinator_phone=PHONE2)
    with pytest.raises(NotFound):
        wf.dispatch(session, case.id, SUPERVISOR, coordinator_phone=PHONE3, reason="请假")
    wf.dispatch(session, case.id, SUPERVISOR, coordinator_phone=PHONE2, reason="张三请假")
    assert case.coordinator_id == world["coord2"].id
    assert "张三请假" in case.history[-1].note


def test_idempotency_key_gives_one_case(session, world):
    first = report(session, key="app-123")
    again = report(session, key="app-123")
    assert first.created and not again.created and again.incident.id == first.incident.id
    assert count(session) == 1
    with pytest.raises(Conflict):
        report(session, key="app-123", description="另一件事")
    assert count(session) == 1


def test_duplicates_suggested_within_50_m_and_24_h(session, world):
    first = report(session, reported_at=now() - timedelta(hours=2)).incident
    near = report(session, where=(IN_C1[0] + 0.0002, IN_C1[1]))  # ~20 m east
    far = report(session, where=(IN_C1[0] + 0.001, IN_C1[1]))  # ~100 m east
    other_category = report(session, category="0102")
    assert [d["id"] for d in near.duplicates] == [first.id]
    assert far.duplicates == [] and other_category.duplicates == []
    wf.mark_duplicate(session, near.incident.id, SUPERVISOR, of=first.id)
    assert near.incident.duplicate_of_id == first.id and near.incident.status == "duplicate"


def test_outside_every_cell_is_kept_unassigned(session, world):
    case = report(session, where=OUTSIDE).incident
    assert case.base_cell_id is None
    queue = list_incidents(session, unassigned=True)
    assert [i["id"] for i in queue["items"]] == [case.id]
    with pytest.raises(PermissionDenied):  # a scoped supervisor does not see it
        wf.accept(session, case.id, actor_for(session, "street_super"))
    wf.accept(session, case.id, SUPERVISOR)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"category": "9999"}, NotFound),
        ({"component": "4403040101000001"}, NotFound),
        ({"reported_at": "2999-01-01T00:00"}, ValidationError),
        ({"description": "  "}, ValidationError),
        ({"reported_at": "yesterday"}, ValidationError),
    ],
)
def test_bad_reports_change_nothing(session, world, kwargs, error):
    with pytest.raises(error):
        report(session, **kwargs)
    assert count(session) == 0 and count(session, IncidentHistory) == 0


def test_bad_attachments_change_nothing(session, world, tmp_path):
    case = report(session).incident
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    wf.dispatch(session, case.id, SUPERVISOR)
    coord = coordinator_actor(world, 1)
    with pytest.raises(ValidationError) as exc:
        wf.feedback(
            session, case.id, coord, note="好了", attachments=[("photo.jpg", b"%PDF-1.4 not an image")], home=tmp_path
        )
    assert "not an image" in exc.value.message
    with pytest.raises(ValidationError) as exc:
        wf.feedback(
            session, case.id, coord, note="好了", attachments=[("big.png", PNG + b"\0" * (10 * 2**20))], home=tmp_path
        )
    assert "too large" in exc.value.message
    assert case.status == "dispatched" and count(session, IncidentAttachment) == 0
    assert not (tmp_path / "attachments").exists()


def test_overdue_per_step_and_escalation(session, world):
    late = report(session, reported_at=now() - timedelta(hours=30)).incident  # accept limit 2 h
    report(session)
    result = overdue_cases(session)
    assert result["per_step"] == {"accept": 1}
    assert [c["id"] for c in result["escalation"]] == [late.id]
    assert list_incidents(session, overdue=True)["total"] == 1


def test_concurrent_transitions_exactly_one_wins(engine, pg_server):
    """Two real sessions on their own connections accept and reject the same case at once."""
    url = pg_server.create_database("gridkit_incidents_race", template="gridkit_test_template")
    eng = db.make_engine(url)
    try:
        with Session(eng) as s, s.begin():
            make_incident_world(s, users=False)
            case_id = report(s).incident.id
        barrier = threading.Barrier(2)
        outcomes = {}

        def run(action):
            with Session(eng) as s:
                try:
                    with s.begin():
                        barrier.wait()
                        getattr(wf, action)(s, case_id, SUPERVISOR)
                    outcomes[action] = "won"
                except InvalidTransition as exc:
                    outcomes[action] = exc.message

        threads = [threading.Thread(target=run, args=(a,)) for a in ("accept", "reject")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(o == "won" for o in outcomes.values()) == [False, True]
        loser = next(o for o in outcomes.values() if o != "won")
        assert "cannot" in loser
        with Session(eng) as s:
            assert s.scalar(select(func.count()).select_from(IncidentHistory)) == 2
            assert s.get(Incident, case_id).status in ("accepted", "rejected")
    finally:
        eng.dispose()
        pg_server.drop_database("gridkit_incidents_race")


def test_admin_may_do_every_step(session, world):
    case = report(session).incident
    for action, params in (
        ("accept", {}),
        ("classify", {"category": "E0101"}),
        ("dispatch", {}),
        ("feedback", {"note": "清理完毕"}),
        ("close", {}),
    ):
        wf.transition(session, case.id, action, ADMIN, **params)
    assert case.status == "closed" and case.deadlines["handle"]
    assert show_incident(session, case.code)["id"] == case.id
    assert V1_FROM < case.reported_at and C2


def test_photos_of_a_rolled_back_feedback_leave_no_file(fresh_settings, tmp_path):
    """A feedback whose transaction rolls back (the request failed after the photos were written) leaves no photo
    on disk without its row; a committed one keeps its photo, and a later rollback does not remove it."""
    home = tmp_path / "home"
    with db.transaction(fresh_settings) as session:
        world = make_incident_world(session)
        case = report(session).incident
        wf.accept(session, case.id, SUPERVISOR)
        wf.classify(session, case.id, SUPERVISOR, category="0101")
        wf.dispatch(session, case.id, SUPERVISOR)
        case_id = case.id
    coord = coordinator_actor(world, 1)
    photo = tmp_path / "p.png"
    photo.write_bytes(PNG)
    with pytest.raises(RuntimeError), db.transaction(fresh_settings) as session:
        wf.feedback(session, case_id, coord, note="好了", attachments=[photo], home=home)
        assert len(list((home / "attachments").rglob("*.png"))) == 1  # written before the commit
        raise RuntimeError("the request fails after the feedback")
    assert list((home / "attachments").rglob("*")) == [home / "attachments" / str(case_id)]
    with db.transaction(fresh_settings) as session:
        wf.feedback(session, case_id, coord, note="好了", attachments=[photo], home=home)
    with db.transaction(fresh_settings) as session:
        stored = session.scalars(select(IncidentAttachment)).all()
        assert len(stored) == 1 and (home / stored[0].path).read_bytes() == PNG
    with pytest.raises(RuntimeError), db.transaction(fresh_settings) as session:
        wf.rework(session, case_id, SUPERVISOR, note="再看看")
        wf.feedback(session, case_id, coord, note="同一张照片", attachments=[photo], home=home)
        raise RuntimeError("fails again")
    assert (home / stored[0].path).read_bytes() == PNG


def _edition_with_a_split_cell(session):
    """A new base grid edition, published: the cells of the one in force, but community 1's cell 004 (where IN_C1
    lies) split into a west half keeping its code and a new east half, code 010, in no work cell yet."""
    from geoalchemy2.shape import from_shape, to_shape
    from shapely.geometry import box

    from gridkit.grids.editions import publish_edition
    from gridkit.models import BaseCell, BaseGridEdition
    from gridkit.rules import SRID

    current = session.scalar(select(BaseGridEdition).where(BaseGridEdition.status == "published"))
    edition = BaseGridEdition(name="second")
    session.add(edition)
    session.flush()
    for old in session.scalars(select(BaseCell).where(BaseCell.edition_id == current.id)):
        parts = [(old.code, old.geom)]
        if old.code == f"{C1}004":
            x0, y0, x1, y1 = to_shape(old.geom).bounds
            middle = (x0 + x1) / 2
            parts = [
                (old.code, from_shape(box(x0, y0, middle, y1), srid=SRID)),
                (f"{C1}010", from_shape(box(middle, y0, x1, y1), srid=SRID)),
            ]
        for code, geom in parts:
            session.add(BaseCell(edition_id=edition.id, code=code, community_code=old.community_code, geom=geom))
    session.flush()
    publish_edition(session, edition)
    return to_shape(session.scalar(select(BaseCell.geom).where(BaseCell.code == f"{C1}010"))).bounds


def test_dispatch_after_a_new_edition_follows_whois(session, world):
    """The work grid in force stays drawn on the retired edition: a case is dispatched by the rule of whois and
    of the statistics (the covering cell of the edition in force when it was reported, its work cell by code),
    not by the retired edition's outlines. A case in the new cell no version has placed has no work cell."""
    before = report(session).incident  # reported while the first edition was in force
    x0, y0, x1, y1 = _edition_with_a_split_cell(session)
    new_half = report(session, where=((x0 + x1) / 2, (y0 + y1) / 2)).incident
    kept_half = report(session, where=(x0 - (x1 - x0) / 2, (y0 + y1) / 2)).incident
    for case in (before, new_half, kept_half):
        wf.accept(session, case.id, SUPERVISOR)
        wf.classify(session, case.id, SUPERVISOR, category="0101")
        wf.dispatch(session, case.id, SUPERVISOR)
    w1 = session.scalar(select(WorkCell.id).where(WorkCell.code == W1))
    assert before.work_cell_id == w1 and kept_half.work_cell_id == w1
    assert new_half.work_cell_id is None and new_half.coordinator_id is None
    for case, expected in ((new_half, None), (kept_half, W1)):
        answer = work.responsibility_at(session, case_lon(session, case), case_lat(session, case))
        assert [d["work_cell"] for d in answer["departments"] if d["dept"] == DEPT] == [expected]


def case_lon(session, case):
    return session.scalar(select(func.ST_X(Incident.geom)).where(Incident.id == case.id))


def case_lat(session, case):
    return session.scalar(select(func.ST_Y(Incident.geom)).where(Incident.id == case.id))
