"""The embedded database is gridkit's alone, works for an unprivileged user, and is backed up and restored."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import main
from gridkit.config import Settings
from gridkit.db.embedded import ADMIN_ROLE, APP_ROLE, OWNER_ROLE
from tests.factories import X0, Y0, D, make_base_grid

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = {"GRIDKIT_LANG": "en"}
DEPT = "100001"
WC1 = f"{DEPT}44030400100101"
WC2 = f"{DEPT}44030400100102"
PSQL = "/usr/lib/postgresql/15/bin/psql"


def _public_tmpdir(mode=0o755) -> Path:
    # pytest's own tmp dirs are private to root; the server user must be able to reach the home.
    path = Path(tempfile.mkdtemp(prefix="gk-home-"))
    os.chmod(path, mode)
    return path


def run(settings, *args, ok=True, env=ENGLISH, input=None):
    result = CliRunner(env=env).invoke(main, list(args), obj=settings, input=input, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _as_nobody(args, env=None, **kwargs):
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=180,
        user="nobody",
        group="nogroup",
        extra_groups=[],
        env=env or {"PATH": "/usr/bin:/bin"},
        **kwargs,
    )


@pytest.fixture(scope="module")
def embedded():
    """A home with an embedded cluster made by `gridkit db up`, removed afterwards."""
    home = _public_tmpdir()
    settings = Settings(home=home / "home", pg_port=5496)
    run(settings, "db", "up")
    yield settings
    db.forget_engine(settings)
    db.cluster_for(settings).destroy()
    shutil.rmtree(home, ignore_errors=True)


def test_the_embedded_database_is_private(embedded):
    cluster = db.cluster_for(embedded)
    assert stat.S_IMODE(cluster.socket_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((cluster.socket_dir / f".s.PGSQL.{cluster.port}").stat().st_mode) == 0o700
    assert stat.S_IMODE(cluster.passfile.stat().st_mode) == 0o600
    hba = [
        line.split()
        for line in (cluster.data_dir / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert hba == [["local", "all", "all", "scram-sha-256"]]
    engine = db.engine_for(embedded)
    with engine.connect() as conn:
        me, is_super = conn.execute(
            text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        ).one()
        assert (me, is_super) == (APP_ROLE, False)
        owners = set(
            conn.scalars(
                text(
                    "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'spatial_ref_sys'"
                )
            )
        )
        assert owners == {OWNER_ROLE}
        roles = dict(conn.execute(text("SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'gridkit%'")).all())
        assert roles == {ADMIN_ROLE: True, OWNER_ROLE: False, APP_ROLE: False}
    # The application writes rows but cannot change the schema.
    with pytest.raises(Exception, match="permission denied|must be owner"):
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE audit_log"))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another OS user")
def test_another_os_user_is_refused(embedded):
    cluster = db.cluster_for(embedded)
    for role in (APP_ROLE, ADMIN_ROLE):
        proc = _as_nobody(
            [
                PSQL,
                "-w",
                "-h",
                str(cluster.socket_dir),
                "-p",
                str(cluster.port),
                "-U",
                role,
                "-d",
                "gridkit",
                "-c",
                "SELECT name, phone FROM coordinator",
            ]
        )
        assert proc.returncode != 0
        assert "Permission denied" in proc.stderr or "password" in proc.stderr, proc.stderr
    # Not the passwords either.
    assert _as_nobody(["/bin/cat", str(cluster.passfile)]).returncode != 0


def test_read_only_commands_do_not_create_a_database(tmp_path):
    settings = Settings(home=tmp_path / "home", pg_port=5495)
    for args in (("admin", "list"), ("dept", "list"), ("db", "backup", str(tmp_path / "x.dump"))):
        result = run(settings, *args, ok=False)
        assert result.exit_code == 1
        assert result.output.count("\n") == 1 and "run `gridkit db up`" in result.output, result.output
    chinese = run(settings, "admin", "list", ok=False, env={})
    assert "请先运行 `gridkit db up`" in chinese.output
    status = run(settings, "db", "status", "--json", ok=False)
    assert status.exit_code == 1
    assert json.loads(status.output)["reachable"] is False
    assert not (settings.home / "pgdata").exists()


def test_db_status_exits_non_zero_when_unreachable(tmp_path):
    settings = Settings(home=tmp_path, database_url="postgresql://x:pw@127.0.0.1:1/none")
    result = run(settings, "db", "status", ok=False)
    assert result.exit_code == 1
    assert re.search(r"^Reachable +no$", result.output, re.M) and "pw" not in result.output


def _counts(settings) -> dict[str, int]:
    with Session(db.engine_for(settings)) as session:
        tables = session.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        ).all()
        return {t: session.scalar(text(f'SELECT count(*) FROM "{t}"')) for t in tables}


def _build_city(settings):
    with Session(db.engine_for(settings)) as session, session.begin():
        make_base_grid(session, rows=3, cols=3)
    run(settings, "dept", "add", DEPT, "综治中心", "--jurisdiction", "440304")
    draft = json.loads(run(settings, "workgrid", "draft", "--dept", DEPT, "--json").output)
    west = ",".join(f"440304001001{s:03d}" for s in (1, 4, 7))
    rest = ",".join(f"440304001001{s:03d}" for s in (2, 3, 5, 6, 8, 9))
    run(settings, "workgrid", "assign", "--draft", str(draft["id"]), "--work-cell", WC1, "--cells", west)
    run(settings, "workgrid", "assign", "--draft", str(draft["id"]), "--work-cell", WC2, "--cells", rest)
    run(settings, "workgrid", "publish", "--draft", str(draft["id"]))
    run(settings, "coordinator", "add", "张伟", "--phone", "13812345678", "--dept", DEPT, "--work-cell", WC1)


def _whois(settings, at):
    return json.loads(run(settings, "whois", str(X0 + D / 2), str(Y0 + 2.5 * D), "--at", at, "--json").output)


def _round_trip(settings, tmp_path):
    at = datetime.now(UTC).isoformat()
    before, answer = _counts(settings), _whois(settings, at)
    assert answer["departments"][0]["coordinators"][0]["name"] == "张伟"
    dump = tmp_path / "gridkit.dump"
    assert json.loads(run(settings, "db", "backup", str(dump), "--json").output)["bytes"] > 0
    # Changes after the backup are undone by the restore.
    run(settings, "dept", "add", "200001", "城管")
    run(settings, "user", "add", "wang.planner", "--role", "planner")
    assert _counts(settings) != before
    # A file that is not a backup is refused and changes nothing.
    bogus = tmp_path / "bogus.dump"
    bogus.write_bytes(b"not a dump")
    refused = run(settings, "db", "restore", str(bogus), "--yes", ok=False)
    assert refused.exit_code == 1 and "is not a gridkit backup" in refused.output
    assert _counts(settings)["department"] == before["department"] + 1
    run(settings, "db", "restore", str(dump), "--yes")
    after = _counts(settings)
    # The restored audit log is the backed-up one and the restore's own row.
    assert after.pop("audit_log") == before["audit_log"] + 1
    assert after == {t: n for t, n in before.items() if t != "audit_log"}
    assert _whois(settings, at) == answer
    run(settings, "dept", "add", "300001", "民政")  # the restored database is writable, sequences included


def test_backup_and_restore_round_trip_embedded(embedded, tmp_path):
    _build_city(embedded)
    _round_trip(embedded, tmp_path)
    # The restored tables still belong to the owner and the application is still no superuser.
    with db.engine_for(embedded).connect() as conn:
        assert set(
            conn.scalars(
                text(
                    "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'spatial_ref_sys'"
                )
            )
        ) == {OWNER_ROLE}


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_backup_and_restore_round_trip_external(fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    _round_trip(fresh_owner_settings, tmp_path)


def _runtime_for_nobody(dest: Path) -> str:
    """Copy gridkit, its migrations and the installed packages `gridkit db` imports into `dest`.

    The checkout and its .venv may be private (e.g. under /root, mode 700): the unprivileged user
    runs the copy with the system's Python of the same version.
    """
    probe = (
        "import sys, sysconfig; from pathlib import Path; import gridkit.cli, gridkit.cli.db, gridkit.models; "
        "import alembic.command, alembic.config, alembic.script, alembic.runtime.migration, alembic.context; "
        "import geoalchemy2.alembic_helpers, sqlalchemy.dialects.postgresql.psycopg, psycopg; "
        "gridkit.cli.main.get_command(None, 'db'); pure = Path(sysconfig.get_paths()['purelib']); "
        "print('\\n'.join(sorted({Path(m.__file__).relative_to(pure).parts[0] for m in list(sys.modules.values()) "
        "if getattr(m, '__file__', None) and Path(m.__file__).is_relative_to(pure)})))"
    )
    names = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=str(dest)
    ).stdout.split()
    purelib = Path(sysconfig.get_paths()["purelib"])
    site = dest / "site"
    site.mkdir()
    for name in names:
        if name.startswith(("__editable__", "_distutils_hack", "gridkit")):
            continue
        source = purelib / name
        if source.is_dir():
            shutil.copytree(source, site / name, ignore=shutil.ignore_patterns("__pycache__", "tests"))
            libs = purelib / f"{name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, site / libs.name)
        else:
            shutil.copy2(source, site / name)
    for info in purelib.glob("*.dist-info"):
        shutil.copytree(info, site / info.name)
    shutil.copytree(ROOT / "gridkit", dest / "gridkit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "migrations", dest / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
    for path in dest.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IRGRP | stat.S_IROTH | (0o055 if path.is_dir() else 0))
    return f"{dest}:{site}"


def test_db_up_status_down_as_an_unprivileged_user():
    """The embedded default works for a normal user too (as root, the suite runs it as 'nobody' from a copy)."""
    home = _public_tmpdir(0o777)
    env = {"GRIDKIT_HOME": str(home / "home"), "GRIDKIT_PG_PORT": "5477", "PATH": "/usr/bin:/bin", **ENGLISH}
    kwargs = {}
    python = sys.executable
    if os.geteuid() == 0:
        python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
        assert os.path.exists(python), f"{python} is needed to run gridkit as an unprivileged user"
        runtime = _public_tmpdir()
        env["PYTHONPATH"] = _runtime_for_nobody(runtime)
        kwargs = {"user": "nobody", "group": "nogroup", "extra_groups": []}
    else:
        runtime = None

    def gridkit(*args, ok=True):
        proc = subprocess.run(
            [python, "-m", "gridkit.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            cwd=str(home),
            **kwargs,
        )
        assert (proc.returncode == 0) == ok, proc.stderr
        return proc.stdout

    try:
        if runtime is not None:
            assert ROOT not in [Path(p) for p in env["PYTHONPATH"].split(":")]
        gridkit("db", "up")
        status = json.loads(gridkit("db", "status", "--json"))
        assert status["running"] and status["reachable"] and status["schema_current"] == db.head_revision()
        expected_user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        assert status["server_user"] == expected_user
        assert "stopped" in gridkit("db", "down")
        stopped = json.loads(gridkit("db", "status", "--json", ok=False))
        assert stopped["reachable"] is False
    finally:
        subprocess.run([python, "-m", "gridkit.cli", "db", "down"], env=env, capture_output=True, **kwargs)
        shutil.rmtree(home, ignore_errors=True)
        if runtime is not None:
            shutil.rmtree(runtime, ignore_errors=True)
