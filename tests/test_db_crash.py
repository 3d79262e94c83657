"""Crashes an operator meets: a restore killed half-way, a server killed with -9, a reboot.

Real processes are killed (SIGKILL) at the moment named; the next `gridkit db up` must find the
home consistent again, and say what it did."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from gridkit import db
from gridkit.config import Settings
from tests.test_db_private import _public_tmpdir, run

ROOT = Path(__file__).resolve().parent.parent
PORT = 5655

# The restore, in a process of its own, stopped (the file `ready` written, then asleep) at one point
# of the swap, to be killed there with SIGKILL.
_CHILD = """
import sys, time
from pathlib import Path
from gridkit.config import Settings
from gridkit.db import backup as b

home, dump, point, url = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ready = Path(home).parent / "ready"

def stop():
    ready.write_text("x")
    time.sleep(600)

if point == "photos_swapped":
    b._end_sessions = lambda conn: stop()
elif point == "between_renames":
    rename, calls = b._rename_database, []
    def renamed(conn, old, new):
        rename(conn, old, new)
        calls.append(old)
        if len(calls) == 1:
            stop()
    b._rename_database = renamed
elif point == "database_swapped":
    swap = b._swap_databases
    def swapped(conn, staging, replaced):
        swap(conn, staging, replaced)
        stop()
    b._swap_databases = swapped
elif point == "psql_before":
    b._psql_transaction = lambda *args: stop()
elif point == "psql_after":
    psql = b._psql_transaction
    def ran(*args):
        psql(*args)
        stop()
    b._psql_transaction = ran
if point == "backup_dumped":
    b.write_archive = lambda *args: stop()
    b.backup(Settings(home=Path(home), pg_port=PORT, database_url=url or None), dump)
else:
    b.restore(Settings(home=Path(home), pg_port=PORT, database_url=url or None), dump)
""".replace("PORT", str(PORT))


@pytest.fixture
def home():
    """A home with an embedded cluster and two departments, one photo, a backup of it, then a third
    department and a second photo made after the backup."""
    root = _public_tmpdir()
    settings = Settings(home=root / "home", pg_port=PORT)
    run(settings, "db", "up")
    run(settings, "dept", "add", "100001", "综治中心")
    photos = settings.home / "attachments" / "1"
    photos.mkdir(parents=True)
    (photos / "before.png").write_bytes(b"old")
    run(settings, "db", "backup", str(root / "city.dump"))
    run(settings, "dept", "add", "200001", "城管")
    (photos / "after.png").write_bytes(b"new")
    db.forget_engine(settings)
    yield settings
    db.forget_engine(settings)
    db.cluster_for(settings).destroy()
    shutil.rmtree(root, ignore_errors=True)


def _kill_restore_at(settings: Settings, point: str) -> None:
    ready = settings.home.parent / "ready"
    dump = settings.home.parent / "city.dump"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(settings.home), str(dump), point, settings.database_url or ""],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert child.poll() is None, child.stdout.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def _departments(settings) -> list[str]:
    with db.engine_for(settings).connect() as conn:
        return conn.scalars(text("SELECT code FROM department ORDER BY code")).all()


def _photos(settings) -> list[str]:
    return sorted(p.name for p in (settings.home / "attachments").rglob("*.png"))


def _databases(settings) -> list[str]:
    with db.cluster_for(settings).connect("postgres") as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'gridkit%' ORDER BY 1")]


def _leftovers(settings) -> list[str]:
    return sorted(p.name for p in settings.home.iterdir() if p.name.startswith(".attachments-restore-"))


@pytest.mark.parametrize("point", ["photos_swapped", "between_renames"])
def test_a_restore_killed_before_the_database_swap_is_undone_by_the_next_db_up(home, point):
    _kill_restore_at(home, point)
    # The backup's extracted dump (every resident's record) was in the home's staging folder, not left in /tmp.
    assert len(list(home.home.glob(".attachments-restore-*/database.dump"))) == 1
    done = json.loads(run(home, "db", "up", "--json").output)
    assert done["interrupted_restore"] == {"outcome": "undone", "backup": str(home.home.parent / "city.dump")}
    said = run(home, "db", "up").output
    assert "interrupted" not in said  # said once, when it was found
    assert _departments(home) == ["100001", "200001"]
    assert _photos(home) == ["after.png", "before.png"]
    assert _databases(home) == ["gridkit"] and _leftovers(home) == []
    # The live database takes connections again (the swap had closed it to them).
    run(home, "dept", "add", "300001", "民政")


def test_a_restore_killed_after_the_database_swap_is_finished_by_the_next_db_up(home):
    _kill_restore_at(home, "database_swapped")
    result = run(home, "db", "up")
    assert "interrupted restore" in result.output and "finished" in result.output
    assert _departments(home) == ["100001"]
    assert _photos(home) == ["before.png"]
    assert _databases(home) == ["gridkit"] and _leftovers(home) == []
    with db.engine_for(home).connect() as conn:
        detail = conn.scalar(text("SELECT detail FROM audit_log WHERE action = 'database.restored'"))
    assert detail["path"] == str(home.home.parent / "city.dump") and detail["interrupted"] is True
    run(home, "dept", "add", "300001", "民政")


def test_db_status_says_a_restore_was_interrupted_and_settles_it_when_the_server_runs(home):
    _kill_restore_at(home, "photos_swapped")
    db.cluster_for(home).stop()
    status = json.loads(run(home, "db", "status", "--json", ok=False).output)
    assert status["interrupted_restore"] is True and status["running"] is False
    db.cluster_for(home).start()
    status = json.loads(run(home, "db", "status", "--json").output)
    assert status["interrupted_restore"] == {"outcome": "undone", "backup": str(home.home.parent / "city.dump")}
    assert status["reachable"] is True
    assert _departments(home) == ["100001", "200001"]
    assert _photos(home) == ["after.png", "before.png"] and _leftovers(home) == []
    assert json.loads(run(home, "db", "status", "--json").output)["interrupted_restore"] is False


def test_any_command_settles_an_interrupted_restore(home):
    _kill_restore_at(home, "between_renames")
    listed = json.loads(run(home, "dept", "list", "--json").output)  # engine_for, as `gridkit serve` starts
    assert sorted(d["code"] for d in listed) == ["100001", "200001"]
    assert _photos(home) == ["after.png", "before.png"] and _leftovers(home) == []
    assert _databases(home) == ["gridkit"]


def test_a_second_restore_while_one_runs_is_refused_and_the_running_one_is_not_undone(home):
    ready = home.home.parent / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(home.home), str(home.home.parent / "city.dump"), "photos_swapped", ""],
        cwd=ROOT,
    )
    try:
        while not ready.exists():
            assert child.poll() is None
            time.sleep(0.1)
        refused = run(home, "db", "restore", str(home.home.parent / "city.dump"), "--yes", ok=False)
        assert refused.exit_code == 1 and "already running" in refused.output
        # The running restore has closed the database to connections for its swap.
        status = json.loads(run(home, "db", "status", "--json", ok=False).output)
        assert status["interrupted_restore"] is False and status["restore_running"] is True
        assert len(_leftovers(home)) == 1  # the running restore's staging is left alone
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    run(home, "db", "up")
    assert _departments(home) == ["100001", "200001"] and _photos(home) == ["after.png", "before.png"]


def test_a_server_killed_with_sigkill_and_its_pid_taken_by_another_process_starts_again(home):
    """kill -9 of the postmaster leaves postmaster.pid and the socket file; after a reboot its pid may be
    any other process's (here a `sleep`): `gridkit db up` must not take that process for the server."""
    cluster = _killed_server(home)
    squatter = subprocess.Popen(["sleep", "300"])
    try:
        pidfile = cluster.data_dir / "postmaster.pid"
        lines = pidfile.read_text().splitlines()
        pidfile.write_text("\n".join([str(squatter.pid)] + lines[1:]) + "\n")
        assert not cluster.status().running
        run(home, "db", "up")
        assert cluster.pid() not in (None, squatter.pid)
        assert _departments(home) == ["100001", "200001"]
    finally:
        squatter.kill()
        squatter.wait()


def test_a_reboot_that_emptied_the_socket_folder_needs_only_db_up(home):
    cluster = _killed_server(home)
    shutil.rmtree(cluster.socket_dir)
    run(home, "db", "up")
    assert _departments(home) == ["100001", "200001"]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=str(cluster.socket_dir), port=PORT, dbname="gridkit", user="gridkit", password="x")


def _killed_server(home):
    """Kill the home's server with SIGKILL, wait until it is gone, and return its cluster."""
    cluster = db.cluster_for(home)
    pid = cluster.pid()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return cluster


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
@pytest.fixture
def external(fresh_owner_settings, tmp_path):
    """An external database with the state of `home` (two departments, two photos, a backup of one each)."""
    settings = Settings(home=tmp_path / "work" / "home", database_url=fresh_owner_settings.database_url)
    run(settings, "dept", "add", "100001", "综治中心")
    photos = settings.home / "attachments" / "1"
    photos.mkdir(parents=True)
    (photos / "before.png").write_bytes(b"old")
    run(settings, "db", "backup", str(settings.home.parent / "city.dump"))
    run(settings, "dept", "add", "200001", "城管")
    (photos / "after.png").write_bytes(b"new")
    return settings


def test_an_external_restore_killed_before_its_transaction_is_undone(external):
    _kill_restore_at(external, "psql_before")
    done = json.loads(run(external, "db", "up", "--json").output)
    assert done["interrupted_restore"]["outcome"] == "undone"
    assert _departments(external) == ["100001", "200001"]
    assert _photos(external) == ["after.png", "before.png"] and _leftovers(external) == []


def test_an_external_restore_killed_after_its_transaction_is_finished(external):
    _kill_restore_at(external, "psql_after")
    done = json.loads(run(external, "db", "up", "--json").output)
    assert done["interrupted_restore"]["outcome"] == "finished"
    assert _departments(external) == ["100001"]
    assert _photos(external) == ["before.png"] and _leftovers(external) == []


def _start_at(settings: Settings, point: str, target: Path) -> subprocess.Popen:
    ready = settings.home.parent / "ready"
    ready.unlink(missing_ok=True)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(settings.home), str(target), point, ""], cwd=ROOT)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    return child


def test_a_backup_killed_half_way_leaves_its_copy_of_the_data_only_until_the_next_backup(home):
    target = home.home.parent / "nightly.dump"
    partials = f".{target.name}.*.partial"
    live = _start_at(home, "backup_dumped", target)
    try:
        made = sorted(home.home.parent.glob(partials))
        assert len(made) == 2 and all(oct(p.stat().st_mode & 0o777) == "0o600" for p in made)
        for p in made:  # an hour old, as a night's backup would be by morning
            os.utime(p, (time.time() - 3600, time.time() - 3600))
        # A backup that runs meanwhile leaves the live one's files alone.
        run(home, "db", "backup", str(home.home.parent / "other.dump"))
        run(home, "db", "backup", str(target), "--force")
        assert sorted(home.home.parent.glob(partials)) == made
    finally:
        os.kill(live.pid, signal.SIGKILL)
        live.wait()
    assert sorted(home.home.parent.glob(partials)) == made  # kill -9: nothing removed them
    run(home, "db", "backup", str(target), "--force")
    assert list(home.home.parent.glob(partials)) == []
