"""Every base cell's whois answer loaded set-based when the cache reads its state
(gridkit.grids.work.cell_answers): the service's answer from the first request, fresh after a
publish and when a version's validity starts."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from factories import X0, Y0, D
from factories_web import C1, C2, DEPT, POINT_A, base_cell, commit, make_web_city
from sqlalchemy import text

from gridkit import db, rules
from gridkit.config import Settings
from gridkit.grids import work
from gridkit.grids.work import responsibility_at
from gridkit.grids.work.responsibility_cache import ResponsibilityCache
from web import create_app
from web.api import responsibility_cache, warm_whois
from web.database import COMMITS

DEPT2, DEPT3 = "200001", "300001"
W1, W2 = f"{DEPT2}{C1}01", f"{DEPT2}{C1}02"
# Interiors, shared edges, corners and points outside every cell of the two 3 × 3 communities.
POINTS = [(X0 + i * D / 4, Y0 + j * D / 4) for i in range(-3, 28) for j in range(-3, 16)]


def _richer_city(session) -> None:
    """The web city, plus a department whose work grid covers community 1 only (two work cells, one
    with two coordinators of whom one is inactive) and a department without any published version."""
    make_web_city(session)
    work.add_department(session, DEPT2, "环境卫生", jurisdiction=C1)
    draft = work.start_draft(session, DEPT2, by="setup")
    work.set_members(session, draft, W1, [base_cell(C1, n) for n in range(1, 5)], name="一号")
    work.set_members(session, draft, W2, [base_cell(C1, n) for n in range(5, 10)], name=None)
    work.publish(session, draft, by="setup")
    work.add_coordinator(session, "赵六", "13600000001", DEPT2, [W1])
    gone = work.add_coordinator(session, "钱七", "13600000002", DEPT2, [W1])
    work.add_coordinator(session, "孙八", None, DEPT2, [W1, W2])
    gone.active = False
    work.add_department(session, DEPT3, "消防", jurisdiction=C2)
    work.start_draft(session, DEPT3, by="setup")


@pytest.fixture
def settings(fresh_settings):
    commit(fresh_settings, _richer_city)
    return fresh_settings


class _Connect:
    """`connect` for the cache, counting the sessions it opens (each is a trip to the database)."""

    def __init__(self, settings):
        self.settings = settings
        self.opened = 0

    @contextmanager
    def __call__(self):
        self.opened += 1
        with db.session_factory(db.engine_for(self.settings))() as session:
            yield session


def _service(settings, lon, lat) -> dict:
    """The service's answer, read without a commit (which would make the cache read its state again)."""
    with db.session_factory(db.engine_for(settings))() as session:
        return _without_time(responsibility_at(session, lon, lat))


def _without_time(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "at"}


def test_every_point_is_answered_from_memory_from_the_first_request_as_the_service_answers(settings):
    cache = ResponsibilityCache(recheck=600)
    connect = _Connect(settings)
    cache.warm(connect)
    assert connect.opened == 1  # the state and every cell's answer: one session
    answers = [cache.responsibility(connect, lon, lat) for lon, lat in POINTS]
    # Only points on an edge (or corner) went to the database; every other point was answered from memory.
    assert connect.opened == 1 + cache.direct and cache.hits == len(POINTS) - cache.direct
    assert 0 < cache.direct < len(POINTS) // 2
    for (lon, lat), answer in zip(POINTS, answers):
        assert _without_time(answer) == _service(settings, lon, lat), (lon, lat)
    # What the richer city covers: a cell with no work cell in a department, a department without a
    # version, an inactive coordinator left out, a point outside every cell.
    inside_c2 = _without_time(cache.responsibility(connect, X0 + 4.5 * D, Y0 + 1.5 * D))
    depts = {d["dept"]: d for d in inside_c2["departments"]}
    assert inside_c2["base_cell"] == base_cell(C2, 5) and depts[DEPT]["work_cell"] == f"{DEPT}{C2}01"
    assert depts[DEPT2] == {
        "dept": DEPT2,
        "dept_name": "环境卫生",
        "version": 1,
        "work_cell": None,
        "work_cell_name": None,
        "coordinators": [],
        "unplaced": False,
    }
    assert depts[DEPT3]["version"] is None and depts[DEPT3]["work_cell"] is None
    north_west = {d["dept"]: d for d in cache.responsibility(connect, X0 + 0.5 * D, Y0 + 2.5 * D)["departments"]}
    assert [c["name"] for c in north_west[DEPT2]["coordinators"]] == ["赵六", "孙八"]
    outside = cache.responsibility(connect, X0 - D, Y0 - D)
    assert outside["base_cell"] is None and all(d["work_cell"] is None for d in outside["departments"])
    # Answers are new dicts: a caller hiding phones does not change the next answer.
    north_west[DEPT2]["coordinators"][0]["phone"] = None
    again = {d["dept"]: d for d in cache.responsibility(connect, X0 + 0.5 * D, Y0 + 2.5 * D)["departments"]}
    assert again[DEPT2]["coordinators"][0]["phone"] == "13600000001"


def test_after_a_publish_every_cell_is_loaded_again(settings):
    cache = ResponsibilityCache(recheck=600, commits=lambda: COMMITS.count)
    connect = _Connect(settings)
    cache.warm(connect)
    north_west = (X0 + 0.5 * D, Y0 + 2.5 * D)
    assert cache.kept(*north_west)["departments"][1]["work_cell"] == W1

    def move(session):
        draft = work.start_draft(session, DEPT2, by="test")
        work.set_members(session, draft, W2, [base_cell(C1, 1)])
        work.publish(session, draft, by="test")

    commit(settings, move)  # a commit of this process: the kept state is not trusted any more
    assert cache.kept(*north_west) is None
    answer = cache.responsibility(connect, *north_west)  # reads the new state, answers from memory
    assert answer["departments"][1]["work_cell"] == W2 and answer["departments"][1]["version"] == 2
    assert _without_time(answer) == _service(settings, *north_west)
    hits = cache.hits
    # Every other cell of the new state is answered from memory too (no trip per cell).
    opened = connect.opened
    for lon, lat in POINTS:
        kept = cache.kept(lon, lat)
        if kept is not None:
            assert _without_time(kept) == _service(settings, lon, lat), (lon, lat)
    assert connect.opened == opened and cache.hits - hits > len(POINTS) // 2


def test_a_version_that_starts_later_is_answered_from_its_start(settings):
    cache = ResponsibilityCache(recheck=600, commits=lambda: COMMITS.count)
    connect = _Connect(settings)
    starts = rules.now() + timedelta(seconds=1.5)

    def move_later(session):
        draft = work.start_draft(session, DEPT, by="test")
        work.set_members(session, draft, f"{DEPT}{C1}02", [base_cell(C1, 5)], name="中心")
        work.publish(session, draft, by="test", at=starts)

    commit(settings, move_later)
    cache.warm(connect)
    assert cache.kept(*POINT_A)["departments"][0]["work_cell"] == f"{DEPT}{C1}01"
    time.sleep(max(0.0, (starts - rules.now()).total_seconds()) + 0.1)
    assert cache.kept(*POINT_A) is None  # the state's `until` has passed
    answer = cache.responsibility(connect, *POINT_A)
    assert answer["departments"][0]["work_cell"] == f"{DEPT}{C1}02"
    assert _without_time(answer) == _service(settings, *POINT_A)
    assert cache.kept(*POINT_A)["departments"][0]["work_cell"] == f"{DEPT}{C1}02"


def test_a_warmed_app_sends_a_visitors_first_whois_before_flask_without_phones(settings):
    app = create_app(settings)
    app.config["TESTING"] = True
    warm_whois(app).join()
    cache = responsibility_cache(app)
    assert cache.checks == 1
    lon, lat = X0 + 0.5 * D, Y0 + 2.5 * D
    body = app.test_client().get(f"/api/whois?lon={lon}&lat={lat}").get_json()
    assert cache.hits == 1 and cache.checks == 1  # the fast path: no Flask view, no state read
    assert body["phones"] == "hidden"
    assert [c["phone"] for d in body["departments"] for c in d["coordinators"]] == [None, None, None]
    expected = _service(settings, lon, lat)
    for dept in expected["departments"]:
        for person in dept["coordinators"]:
            person["phone"] = None
    assert _without_time(body) == {**expected, "phones": "hidden"}
    commit(settings, lambda s: s.execute(text("UPDATE coordinator SET name = '赵六六' WHERE name = '赵六'")))
    body = app.test_client().get(f"/api/whois?lon={lon}&lat={lat}").get_json()
    assert body["departments"][1]["coordinators"][0]["name"] == "赵六六"


def test_a_server_starting_while_the_database_is_down_still_answers_whois_once_it_is_up(settings, tmp_path, caplog):
    down = create_app(Settings(home=tmp_path, database_url="postgresql://nobody:secret@127.0.0.1:1/none"))
    warm_whois(down).join()  # no exception out of the thread: a warning, and nothing read
    assert "whois answers not loaded at start" in caplog.text and responsibility_cache(down).checks == 0
    app = create_app(settings)
    app.config["TESTING"] = True
    lon, lat = X0 + 0.5 * D, Y0 + 2.5 * D
    body = app.test_client().get(f"/api/whois?lon={lon}&lat={lat}").get_json()  # not warmed: Flask reads the state
    assert body["base_cell"] == base_cell(C1, 1) and responsibility_cache(app).checks == 1
