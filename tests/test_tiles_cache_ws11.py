"""The tile server cache: a hit touches no database connection; a publish in this process is
seen by the very next request; a publish by another process within the documented bound
(GRIDKIT_TILE_RECHECK_SECONDS)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from flask import request
from sqlalchemy import event, text
from test_tiles import DEPT, TILE, commit, make_work_grid, read_tile, url

from gridkit import db, tiles
from gridkit.grids import work
from web import create_app
from web.tiles import COMMITS, TileCache, tile_cache

ROOT = Path(__file__).resolve().parent.parent
RECHECK = 1.5


@pytest.fixture
def app(fresh_settings):
    commit(fresh_settings, make_work_grid)
    app = create_app(fresh_settings)
    app.config.update(TESTING=True, GRIDKIT_TILE_RECHECK_SECONDS=RECHECK)
    return app


def checkouts(app) -> list:
    """Return a list that grows by one for every connection taken from the app's pool."""
    taken: list = []
    event.listen(db.engine_for(app.config["GRIDKIT_SETTINGS"]).pool, "checkout", lambda *a: taken.append(1))
    return taken


def test_cache_hits_and_304s_take_no_database_connection(app):
    app.config["GRIDKIT_TILE_RECHECK_SECONDS"] = 600  # however slow the machine, no recheck falls due
    client = app.test_client()
    first = client.get(url("work-cells", f"dept={DEPT}"))
    assert first.status_code == 200
    taken = checkouts(app)
    cache = tile_cache(app)
    checks, hits = cache.checks, cache.hits
    for _ in range(20):
        assert client.get(url("work-cells", f"dept={DEPT}")).data == first.data
        assert (
            client.get(url("work-cells", f"dept={DEPT}"), headers={"If-None-Match": first.headers["ETag"]}).status_code
            == 304
        )
    assert taken == [] and cache.checks == checks and cache.hits == hits + 40


def test_a_publish_in_this_process_is_seen_by_the_next_request(app, tmp_path):
    client = app.test_client()
    before = client.get(url("work-cells", f"dept={DEPT}"))
    commit(app.config["GRIDKIT_SETTINGS"], lambda session: work.rollback(session, DEPT, 1, by="test"))
    # Version 2 (a copy of 1) is in force: same cells, but the tile is rebuilt at once.
    after = client.get(url("work-cells", f"dept={DEPT}"))
    assert after.headers["X-Tile-Generation"] != before.headers["X-Tile-Generation"]
    assert sorted(read_tile(after.data, "work-cells", tmp_path)["code"]) == sorted(
        read_tile(before.data, "work-cells", tmp_path / "b")["code"]
    )


PUBLISH_ELSEWHERE = textwrap.dedent(
    """
    import sys
    from gridkit import db
    from gridkit.config import Settings
    from gridkit.grids import work

    settings = Settings(home=sys.argv[1], database_url=sys.argv[2])
    with db.session_factory(db.engine_for(settings))() as session, session.begin():
        draft = work.start_draft(session, sys.argv[3], by="cli")
        for code in sys.argv[5:]:
            work.set_members(session, draft, code, [])
        work.set_members(session, draft, sys.argv[4], [sys.argv[4][6:18] + "%03d" % n for n in range(1, 10)])
        work.publish(session, draft, by="cli")
    """
)


def test_a_publish_by_another_process_is_seen_within_the_recheck_interval(app, tmp_path):
    from test_tiles import C1

    settings = app.config["GRIDKIT_SETTINGS"]
    client = app.test_client()
    before = client.get(url("work-cells", f"dept={DEPT}"))
    checks = tile_cache(app).checks
    # Another process merges community 1's three work cells into one and publishes.
    subprocess.run(
        [
            sys.executable,
            "-c",
            PUBLISH_ELSEWHERE,
            str(settings.home),
            settings.database_url,
            DEPT,
            f"{DEPT}{C1}01",
            f"{DEPT}{C1}02",
            f"{DEPT}{C1}03",
        ],
        check=True,
        cwd=ROOT,
        env=dict(os.environ),
        timeout=120,
    )
    committed = time.monotonic()
    # This process committed nothing: until the interval is over the generation is not read again
    # (the tile may still be the old one); from then on the new version is served.
    time.sleep(max(0.0, RECHECK - (time.monotonic() - committed)) + 0.05)
    after = client.get(url("work-cells", f"dept={DEPT}"))
    assert tile_cache(app).checks == checks + 1
    assert after.headers["ETag"] != before.headers["ETag"]
    codes = sorted(read_tile(after.data, "work-cells", tmp_path)["code"])
    assert f"{DEPT}{C1}02" not in codes and f"{DEPT}{C1}01" in codes


def test_a_slow_check_does_not_bring_back_an_older_generation():
    cache = TileCache(recheck=600)
    assert cache.current_generation(lambda: "g1") == "g1"

    def slow_read():
        # While this check reads, a commit lands and a newer request reads the new generation.
        COMMITS.bump()
        assert cache.current_generation(lambda: "g2") == "g2"
        return "g1"  # what the slow check's query saw, before that commit

    COMMITS.bump()  # a commit in this process: the next request checks
    assert cache.current_generation(slow_read) == "g2"
    assert cache.current_generation(lambda: pytest.fail("no query within the interval")) == "g2"


def test_a_miss_whose_lookups_are_kept_is_made_before_flask(app):
    app.config["GRIDKIT_TILE_RECHECK_SECONDS"] = 600  # however slow the machine, no recheck falls due
    through_flask: list = []
    app.before_request(lambda: through_flask.append(request.full_path))
    client = app.test_client()
    first = client.get(url("work-cells", f"dept={DEPT}"))  # Flask: looks up the version and its colouring
    assert first.status_code == 200 and len(through_flask) == 1
    z, x, y = TILE
    paths = {
        (z + 1, 2 * x + i, 2 * y + j): f"/tiles/work-cells/{z + 1}/{2 * x + i}/{2 * y + j}.mvt?dept={DEPT}"
        for i in (0, 1)
        for j in (0, 1)
    }
    made = {quarter: client.get(path) for quarter, path in paths.items()}
    for response in made.values():
        assert response.status_code == 200
        assert sorted(response.headers.keys()) == sorted(first.headers.keys())
        for name in ("Cache-Control", "Vary", "X-Tile-Generation", "Content-Type", "X-Frame-Options"):
            assert response.headers[name] == first.headers[name]
    # Kept from then on, with the ETag of its bytes: a revalidation gets 304.
    quarter = next(q for q, response in made.items() if response.data)
    again = client.get(paths[quarter], headers={"If-None-Match": made[quarter].headers["ETag"]})
    assert again.status_code == 304
    assert len(through_flask) == 1  # none of these went through Flask
    # A department never looked up is not kept: Flask answers (404), as for every parameter it refuses.
    assert client.get(f"/tiles/work-cells/{z}/{x}/{y}.mvt?dept=999999").status_code == 404
    assert len(through_flask) == 2
    # The very tiles the service makes.
    settings = app.config["GRIDKIT_SETTINGS"]
    for quarter, response in made.items():
        request_ = tiles.tile_request("work-cells", *quarter, dept=DEPT)
        assert response.data == commit(settings, lambda session, r=request_: tiles.tile(session, r))


def test_a_miss_on_a_lost_connection_is_answered_through_flask(app, pg_server):
    app.config["GRIDKIT_TILE_RECHECK_SECONDS"] = 600
    client = app.test_client()
    assert client.get(url("work-cells", f"dept={DEPT}")).status_code == 200  # the lookups are kept
    engine = db.engine_for(app.config["GRIDKIT_SETTINGS"])
    pid = db.autocommit_scalar(engine, text("SELECT pg_backend_pid()"), {})  # the pool's last connection
    with pg_server._admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.05)
    z, x, y = TILE
    response = client.get(f"/tiles/work-cells/{z + 1}/{2 * x}/{2 * y}.mvt?dept={DEPT}")
    assert response.status_code == 200
    request_ = tiles.tile_request("work-cells", z + 1, 2 * x, 2 * y, dept=DEPT)
    assert response.data == commit(app.config["GRIDKIT_SETTINGS"], lambda session: tiles.tile(session, request_))
    assert db.autocommit_scalar(engine, text("SELECT pg_backend_pid()"), {}) != pid
