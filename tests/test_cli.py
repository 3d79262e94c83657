"""The gridkit command end to end, each test on a database of its own."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import main
from gridkit.config import Settings
from tests.factories import X0, Y0, D, make_base_grid

DEPT = "100001"
WC1 = f"{DEPT}44030400100101"
WC2 = f"{DEPT}44030400100102"


# The tests read the English sentences; the default language is Chinese (see test_default_language_is_chinese).
ENGLISH = {"GRIDKIT_LANG": "en"}


def run(settings, *args, input=None, ok=True, env=ENGLISH):
    result = CliRunner(env=env).invoke(main, list(args), obj=settings, input=input, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def run_json(settings, *args):
    return json.loads(run(settings, *args, "--json").stdout)


@pytest.fixture
def grid_settings(fresh_settings):
    """A fresh database with a 3×3 published base grid in one community."""
    engine = db.engine_for(fresh_settings)
    with Session(engine) as session, session.begin():
        make_base_grid(session, rows=3, cols=3)
    return fresh_settings


def test_help_lists_commands_by_noun():
    result = CliRunner().invoke(main, ["--help"])
    for noun in (
        "db",
        "admin",
        "basegrid",
        "dept",
        "workgrid",
        "coordinator",
        "whois",
        "import",
        "assign",
        "subjects",
        "user",
        "serve",
        "demo",
    ):
        assert f"  {noun} " in result.output


def test_db_status_json_on_external_database(fresh_settings):
    status = run_json(fresh_settings, "db", "status")
    assert status["mode"] == "external"
    assert status["reachable"] is True
    assert status["schema_current"] == status["schema_head"] == db.head_revision()


def test_db_down_refuses_external_server(fresh_settings):
    result = run(fresh_settings, "db", "down", ok=False)
    assert result.exit_code == 1
    assert "will not stop it" in result.output
    assert "Traceback" not in result.output


def test_unreachable_database_url_is_one_line(tmp_path):
    settings = Settings(home=tmp_path, database_url="postgresql://x:pw@127.0.0.1:1/none")
    result = run(settings, "dept", "list", ok=False)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "cannot connect to GRIDKIT_DATABASE_URL" in result.output and "pw" not in result.output


def test_bad_setting_in_environment_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "gridkit.cli", "db", "url"],
        capture_output=True,
        text=True,
        env={"GRIDKIT_PORT": "fivethousand", "PATH": "/usr/bin:/bin", **ENGLISH},
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "Error: GRIDKIT_PORT='fivethousand' is not a port number: give a number 1-65535."


def test_port_taken_is_one_line(grid_settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run(grid_settings, "serve", "--port", str(port), ok=False)
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_user_add_with_password_and_duplicates(fresh_settings):
    result = run(
        fresh_settings,
        "user",
        "add",
        "wang.planner",
        "--role",
        "planner",
        "--password-stdin",
        "--json",
        input="a-long-secret\n",
    )
    out = json.loads(result.output)
    assert out == {"id": out["id"], "name": "wang.planner", "role": "planner", "scope": None, "has_password": True}
    dup = run(fresh_settings, "user", "add", "wang.planner", "--role", "analyst", ok=False)
    assert dup.exit_code == 1 and "exists already" in dup.output
    bad_role = run(fresh_settings, "user", "add", "li", "--role", "mayor", ok=False)
    assert bad_role.exit_code == 2
    bad_scope = run(fresh_settings, "user", "add", "li", "--role", "analyst", "--scope", "999999", ok=False)
    assert "not a known admin unit" in bad_scope.output
    users = run_json(fresh_settings, "user", "list")
    assert [u["name"] for u in users] == ["wang.planner"]


def test_dept_add_validates_code(grid_settings):
    bad = run(grid_settings, "dept", "add", "1234", "综治", ok=False)
    assert bad.exit_code == 1 and "must be 6 digits" in bad.output
    run(grid_settings, "dept", "add", DEPT, "综治中心", "--jurisdiction", "440304")
    assert run_json(grid_settings, "dept", "list") == [
        {"code": DEPT, "name": "综治中心", "jurisdiction": "440304", "current_version": None, "work_cells": 0}
    ]


def _publish_two_work_cells(settings):
    run(settings, "dept", "add", DEPT, "综治中心", "--jurisdiction", "440304")
    draft = run_json(settings, "workgrid", "draft", "--dept", DEPT)
    west = ",".join(f"440304001001{s:03d}" for s in (1, 4, 7))
    rest = ",".join(f"440304001001{s:03d}" for s in (2, 3, 5, 6, 8, 9))
    run(settings, "workgrid", "assign", "--draft", str(draft["id"]), "--work-cell", WC1, "--cells", west)
    invalid = run(settings, "workgrid", "validate", "--draft", str(draft["id"]), "--json", ok=False)
    assert invalid.exit_code == 1
    problems = json.loads(invalid.output)
    assert problems[0]["type"] == "unassigned_base_cells" and len(problems[0]["codes"]) == 6
    refused = run(settings, "workgrid", "publish", "--draft", str(draft["id"]), ok=False)
    assert "cannot be published" in refused.output
    run(settings, "workgrid", "assign", "--draft", str(draft["id"]), "--work-cell", WC2, "--cells", rest)
    run(settings, "workgrid", "publish", "--draft", str(draft["id"]))
    return draft


def test_workgrid_publish_and_whois(grid_settings):
    _publish_two_work_cells(grid_settings)
    run(grid_settings, "coordinator", "add", "张伟", "--phone", "13812345678", "--dept", DEPT, "--work-cell", WC1)
    # Centre of the north-west cell (sequence 001).
    lon, lat = X0 + D / 2, Y0 + 2.5 * D
    answer = run_json(grid_settings, "whois", str(lon), str(lat))
    assert answer["base_cell"] == "440304001001001"
    assert answer["community"] == "440304001001"
    assert answer["departments"] == [
        {
            "dept": DEPT,
            "dept_name": "综治中心",
            "version": 1,
            "work_cell": WC1,
            "work_cell_name": None,
            "coordinators": [{"id": 1, "name": "张伟", "phone": "138****5678"}],
            "unplaced": False,
        }
    ]
    before = run_json(grid_settings, "whois", str(lon), str(lat), "--at", "2000-01-01T00:00")
    assert before["departments"][0]["work_cell"] is None
    history = run_json(grid_settings, "workgrid", "history", "--dept", DEPT)
    assert [(v["number"], v["status"], v["work_cells"]) for v in history] == [(1, "published", 2)]


def test_whois_on_shared_edge_takes_smallest_code(grid_settings):
    # The corner shared by cells 001, 002, 004 and 005.
    answer = run_json(grid_settings, "whois", str(X0 + D), str(Y0 + 2 * D))
    assert answer["base_cell"] == "440304001001001"


def test_whois_refuses_swapped_coordinates(grid_settings):
    result = run(grid_settings, "whois", str(Y0), str(X0), ok=False)
    assert result.exit_code == 1 and "give longitude first" in result.output


def test_whois_show_phones_is_audited(grid_settings):
    _publish_two_work_cells(grid_settings)
    run(grid_settings, "coordinator", "add", "张伟", "--phone", "13812345678", "--dept", DEPT, "--work-cell", WC1)
    answer = run_json(grid_settings, "whois", str(X0 + D / 2), str(Y0 + 2.5 * D), "--show-phones")
    assert answer["departments"][0]["coordinators"][0]["phone"] == "13812345678"
    from gridkit.audit import recent

    with Session(db.engine_for(grid_settings)) as session:
        rows = recent(session, action="personal_data.read")
    assert len(rows) == 1 and rows[0].actor.startswith("cli:")


def test_basegrid_and_admin_listings(grid_settings):
    cells = run_json(grid_settings, "basegrid", "cells")
    assert len(cells) == 9 and cells[0]["code"] == "440304001001001"
    assert 9000 < cells[0]["area_m2"] < 12500
    editions = run_json(grid_settings, "basegrid", "editions")
    assert editions[0]["cells"] == 9 and editions[0]["status"] == "published"
    communities = run_json(grid_settings, "admin", "list", "--level", "community")
    assert [c["code"] for c in communities] == ["440304001001"]


def test_import_categories_extends_the_table(grid_settings, tmp_path):
    extra = tmp_path / "extra.csv"
    extra.write_text(
        "code,kind,major_code,major_name,name,time_limit_hours\nE0699,event,06,其他事件,无人机违规飞行,12\n",
        encoding="utf-8",
    )
    assert run_json(grid_settings, "import", "categories", str(extra)) == {"categories": 1}
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "code,kind,major_code,major_name,name,time_limit_hours\nE0699,event,06,其他事件,无人机违规飞行,-1\n",
        encoding="utf-8",
    )
    result = run(grid_settings, "import", "categories", str(bad), ok=False)
    assert result.exit_code == 1 and "time_limit_hours must be positive" in result.output


def test_coordinator_list_masks_phones_unless_asked(grid_settings):
    _publish_two_work_cells(grid_settings)
    run(
        grid_settings,
        "coordinator",
        "add",
        "张伟",
        "--phone",
        "13812345678",
        "--dept",
        DEPT,
        "--work-cell",
        f"{WC1},{WC2}",
    )
    rows = run_json(grid_settings, "coordinator", "list", "--dept", DEPT)
    assert rows == [{"id": 1, "name": "张伟", "phone": "138****5678", "dept_code": DEPT, "work_cells": [WC1, WC2]}]
    assert run_json(grid_settings, "coordinator", "list", "--dept", "300001") == []
    shown = run_json(grid_settings, "coordinator", "list", "--show-phones")
    assert shown[0]["phone"] == "13812345678"
    bad = run(
        grid_settings, "coordinator", "add", "李娜", "--phone", "12345", "--dept", DEPT, "--work-cell", WC1, ok=False
    )
    assert bad.exit_code == 1 and "李娜" in bad.output


def test_serve_answers_http(grid_settings):
    """`gridkit serve` really serves: a separate process, a real socket, the home page and the API."""
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "GRIDKIT_DATABASE_URL": grid_settings.database_url,
        "GRIDKIT_HOME": str(grid_settings.home),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridkit.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/summary", timeout=5) as resp:
                    summary = json.load(resp)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "gridkit serve did not answer within 60 s"
                time.sleep(0.3)
        assert summary["base_cells"] == 9
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert resp.status == 200 and "统一空间基础网格" in resp.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_one_person_covers_two_departments(grid_settings):
    """多员合一: the same phone is the same coordinator, in whichever department."""
    _publish_two_work_cells(grid_settings)
    run(grid_settings, "dept", "add", "200001", "城管", "--jurisdiction", "440304")
    draft = run_json(grid_settings, "workgrid", "draft", "--dept", "200001")
    cells = ",".join(f"440304001001{s:03d}" for s in range(1, 10))
    run(
        grid_settings,
        "workgrid",
        "assign",
        "--draft",
        str(draft["id"]),
        "--work-cell",
        "20000144030400100101",
        "--cells",
        cells,
    )
    run(grid_settings, "workgrid", "publish", "--draft", str(draft["id"]))
    first = run_json(
        grid_settings, "coordinator", "add", "张伟", "--phone", "13812345678", "--dept", DEPT, "--work-cell", WC1
    )
    second = run_json(
        grid_settings,
        "coordinator",
        "add",
        "张伟",
        "--phone",
        "13812345678",
        "--dept",
        "200001",
        "--work-cell",
        "20000144030400100101",
    )
    assert first["id"] == second["id"]
    answer = run_json(grid_settings, "whois", str(X0 + D / 2), str(Y0 + 2.5 * D))
    assert [d["coordinators"][0]["id"] for d in answer["departments"]] == [first["id"], first["id"]]
    clash = run(
        grid_settings,
        "coordinator",
        "add",
        "李娜",
        "--phone",
        "13812345678",
        "--dept",
        DEPT,
        "--work-cell",
        WC2,
        ok=False,
    )
    assert clash.exit_code == 1 and "belongs to coordinator" in clash.output


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"GRIDKIT_PG_BIN": "/nowhere/bin"}, "PostgreSQL 15 is not installed"),
        ({"GRIDKIT_HOME": "/proc/gridkit-home"}, "GRIDKIT_HOME=/proc/gridkit-home is not writable"),
    ],
)
def test_bad_embedded_setup_is_one_line_saying_what_to_do(tmp_path, env, expected):
    full = {"PATH": "/usr/bin:/bin", "GRIDKIT_HOME": str(tmp_path / "home"), **ENGLISH, **env}
    proc = subprocess.run(
        [sys.executable, "-m", "gridkit.cli", "db", "up"], capture_output=True, text=True, env=full, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_default_language_is_chinese(fresh_settings):
    """Without GRIDKIT_LANG the CLI speaks Chinese: its own lines and the errors it renders."""
    ok = run(fresh_settings, "dept", "add", DEPT, "综治中心", env={})
    assert ok.output.strip() == f"部门 {DEPT} 综治中心 已添加"
    refused = run(fresh_settings, "db", "down", ok=False, env={})
    assert refused.exit_code == 1 and "gridkit 不会停止它" in refused.output
    english = run(fresh_settings, "db", "down", ok=False)
    assert "will not stop it" in english.output


def test_json_output_is_the_same_in_every_language(fresh_settings):
    run(fresh_settings, "dept", "add", DEPT, "综治中心")
    chinese = run(fresh_settings, "dept", "list", "--json", env={}).output
    assert json.loads(chinese) == json.loads(run(fresh_settings, "dept", "list", "--json").output)


def test_nouns_are_imported_only_when_their_command_runs(tmp_path):
    """`gridkit db url` loads the db noun alone: not the web app, not the grids, not the importers."""
    heavy = ("flask", "geopandas", "web", "gridkit.cli.workgrid", "gridkit.grids.work", "gridkit.io.subjects")
    code = (
        "import sys; from gridkit.cli import main\n"
        "try:\n    main(['db', 'url'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "GRIDKIT_HOME": str(tmp_path)},
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]"
