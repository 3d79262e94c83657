"""A draft started before another version was published is never published over it (audit), with two real
sessions in threads: the draft records the version in force when it was started, and publish compares versions,
not times (a publish time from the application's clock against a creation time from the database's)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from gridkit import db, rules
from gridkit.errors import Conflict
from gridkit.grids.work import add_department, draft, publish, set_members, start_draft
from tests.factories import DISTRICT, STREET, make_base_grid
from tests.factories_web import commit

DEPT = "100001"
COMMUNITY = STREET + "001"
WEST, EAST = f"{DEPT}{COMMUNITY}01", f"{DEPT}{COMMUNITY}02"


def cell(seq: int) -> str:
    return f"{COMMUNITY}{seq:03d}"


def city(session) -> int:
    """Version 1 (west column + cell 5, the rest east) in force; return a draft that moves cell 5 east."""
    make_base_grid(session)
    add_department(session, DEPT, "综治", jurisdiction=DISTRICT)
    first = start_draft(session, DEPT, by="planner")
    set_members(session, first, WEST, [cell(s) for s in (1, 4, 5, 7)])
    set_members(session, first, EAST, [cell(s) for s in (2, 3, 6, 8, 9)])
    publish(session, first, at=datetime(2026, 1, 1, tzinfo=UTC), by="planner")
    moving = start_draft(session, DEPT, by="planner-a")
    set_members(session, moving, EAST, [cell(5)])
    return moving.id


def wait_for_lock_waiter(settings, timeout: float = 30) -> None:
    """Return once another session waits for a lock (the department's row)."""
    engine = db.engine_for(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            ):
                return
        time.sleep(0.05)
    raise AssertionError("no session waited for the department's lock")


def holder_of_cell_5(session, version_number: int) -> str:
    return session.scalar(
        text(
            "SELECT w.code FROM work_cell w JOIN work_cell_member m ON m.work_cell_id = w.id "
            "JOIN base_cell b ON b.id = m.base_cell_id JOIN work_grid_version v ON v.id = w.version_id "
            "WHERE v.dept_code = :d AND v.number = :n AND b.code = :c"
        ),
        {"d": DEPT, "n": version_number, "c": cell(5)},
    )


def test_a_draft_started_before_a_publish_on_a_host_whose_clock_lags_is_refused(fresh_settings, monkeypatch):
    """Planner B starts a draft of version 1 and holds the department's lock; planner A's publish waits for it, then
    publishes version 2 from a web host whose clock is 5 s behind the database's. B's draft, published next, would
    undo version 2: it is refused (the times said the draft was the newer)."""
    settings = fresh_settings
    moving = commit(settings, city)
    real_now = rules.now
    monkeypatch.setattr(rules, "now", lambda: real_now() - (timedelta(seconds=5) if _on("A") else timedelta(0)))
    b_holds, b_may_commit = threading.Event(), threading.Event()
    stale: dict = {}
    errors: list[BaseException] = []

    def planner_b():
        with db.transaction(settings) as session:
            stale["id"] = start_draft(session, DEPT, by="planner-b").id
            b_holds.set()
            b_may_commit.wait(timeout=30)

    def planner_a():
        b_holds.wait(timeout=30)
        with db.transaction(settings) as session:
            stale["v2"] = publish(session, draft(session, moving), by="planner-a").number

    threads = [_thread("B", planner_b, errors), _thread("A", planner_a, errors)]
    for thread in threads:
        thread.start()
    wait_for_lock_waiter(settings)  # A waits for B's lock on the department
    b_may_commit.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and stale["v2"] == 2
    with pytest.raises(Conflict) as refused:
        commit(settings, lambda s: publish(s, draft(s, stale["id"]), by="planner-b"))
    assert refused.value.key == "error.work.published_since_draft"
    assert commit(settings, lambda s: holder_of_cell_5(s, 2)) == EAST  # version 2 stays in force, unchanged


def test_a_draft_started_while_another_version_is_being_published_carries_it(fresh_settings):
    """Planner B starts a draft between planner A's publish and its commit: it waits for A's commit, then starts
    from version 2 (recording it as the version in force), so its publish undoes nothing and is accepted."""
    settings = fresh_settings
    moving = commit(settings, city)
    published, a_may_commit = threading.Event(), threading.Event()
    started: dict = {}
    errors: list[BaseException] = []

    def planner_a():
        with db.transaction(settings) as session:
            publish(session, draft(session, moving), by="planner-a")
            published.set()
            a_may_commit.wait(timeout=30)

    def planner_b():
        published.wait(timeout=30)
        with db.transaction(settings) as session:
            new = start_draft(session, DEPT, by="planner-b")
            started.update(id=new.id, based_on=new.based_on_id, in_force=new.in_force_at_start_id)

    threads = [_thread("A", planner_a, errors), _thread("B", planner_b, errors)]
    for thread in threads:
        thread.start()
    wait_for_lock_waiter(settings)  # B waits for A's lock on the department
    a_may_commit.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    v2 = commit(settings, lambda s: s.scalar(text("SELECT id FROM work_grid_version WHERE number = 2")))
    assert started["based_on"] == started["in_force"] == v2
    assert commit(settings, lambda s: publish(s, draft(s, started["id"]), by="planner-b").number) == 3
    assert commit(settings, lambda s: holder_of_cell_5(s, 3)) == EAST


def _on(name: str) -> bool:
    return threading.current_thread().name == name


def _thread(name: str, target, errors: list) -> threading.Thread:
    def run():
        try:
            target()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    return threading.Thread(target=run, name=name)
