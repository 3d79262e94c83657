"""A file that cannot be written whole (a full disk) does not stay half written: an import's report, and a
report the analyst page was writing for download. The disk is "full" for a child process by its file size
limit (RLIMIT_FSIZE, with SIGXFSZ ignored a write past it fails with EFBIG, as one on a full disk with
ENOSPC), so the test's own files and the database are not touched by it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from factories_incidents import make_incident_world

from gridkit import db

ROOT = Path(__file__).resolve().parent.parent
FULL_AT = 1024  # bytes: every report below is larger

_LIMIT = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
def disk_full():
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
"""


def _child(code: str, limit: int = FULL_AT) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _LIMIT.format(limit=limit) + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_an_import_report_that_cannot_be_written_whole_leaves_no_file(tmp_path):
    said = _child(
        "from gridkit.io.report import write_report\n"
        f"home = {str(tmp_path)!r}\n"
        "problems = [{'kind': 'bad_code', 'index': i, 'code': 'x' * 40, 'message': 'bad code'} for i in range(200)]\n"
        "write_report(home, 'ok-import', [], [], {'rows': 1})\n"
        "disk_full()\n"
        "try:\n"
        "    write_report(home, 'residents-import', problems, [], {'refused': True})\n"
        "except OSError as exc:\n"
        "    print(exc.errno)\n"
    )
    assert said == "27"  # EFBIG: the disk was "full"
    left = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert len(left) == 3 and all("ok-import" in name for name in left), left


def test_a_report_download_sent_or_not_written_whole_leaves_nothing_in_the_home(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_incident_world(session)
    home = fresh_settings.home
    said = _child(
        "import json\n"
        "from pathlib import Path\n"
        "from gridkit.config import Settings\n"
        "from web import create_app\n"
        "from factories_web import sign_in\n"
        f"home = Path({str(home)!r})\n"
        f"app = create_app(Settings(home=home, database_url={fresh_settings.database_url!r}))\n"
        "app.config['TESTING'] = True\n"
        "client = app.test_client()\n"
        "token = sign_in(client, 'analyst1')\n"
        "def left():\n"
        "    return sorted(str(p.relative_to(home)) for p in (home / 'exports').rglob('*'))\n"
        "whole = client.get('/analyst/report?name=incidents&format=xlsx')\n"
        "assert whole.status_code == 200 and len(whole.data) > 1024, whole.status_code\n"
        "assert whole.content_length == len(whole.data) and whole.data[:2] == b'PK'\n"
        "layer = client.post('/analyst/export', data={'csrf_token': token, 'layer': 'base-cells', 'format': 'gpkg'})\n"
        "assert layer.status_code == 200 and layer.content_length == len(layer.data) > 1024, layer.status_code\n"
        "sent = left()\n"
        "disk_full()\n"
        "app.config['PROPAGATE_EXCEPTIONS'] = False\n"
        "half = client.get('/analyst/report?name=incidents&format=xlsx')\n"
        "print(json.dumps([sent, half.status_code, left()]))\n"
    )
    sent, status, left = json.loads(said)
    assert sent == []  # a download sent leaves nothing in the home
    assert status == 500 and left == []


def test_a_photo_that_cannot_be_written_whole_leaves_no_part_file(tmp_path):
    said = _child(
        "from pathlib import Path\n"
        "from sqlalchemy.orm import Session\n"
        "from factories_incidents import PNG\n"
        "from gridkit.incidents.attachments import check_attachment, store\n"
        f"home = Path({str(tmp_path)!r})\n"
        "photo = check_attachment(('井盖.png', PNG + bytes(8192)))\n"
        "disk_full()\n"
        "try:\n"
        "    store(Session(), photo, home, 7, None)\n"
        "except OSError as exc:\n"
        "    print(exc.errno)\n"
    )
    assert said == "27"
    assert [p.name for p in (tmp_path / "attachments").rglob("*") if p.is_file()] == []


def test_a_key_that_cannot_be_written_whole_is_never_kept_nor_used_empty(tmp_path):
    from gridkit.errors import SetupError
    from gridkit.keys import kept_key

    said = _child(
        "from gridkit.keys import kept_key\n"
        "from gridkit.errors import SetupError\n"
        "disk_full()\n"
        "try:\n"
        f"    kept_key({str(tmp_path)!r}, 'pii_key', None, setting='GRIDKIT_PII_KEY', what='key')\n"
        "except SetupError as exc:\n"
        "    print(exc.key)\n",
        limit=16,  # a key is 64 characters
    )
    assert said == "error.keys.cannot_keep"
    assert list(tmp_path.iterdir()) == []  # nothing kept: the next start makes a whole key
    key = kept_key(tmp_path, "pii_key", None, setting="GRIDKIT_PII_KEY", what="key")
    assert len(key) == 64 and (tmp_path / "pii_key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["pii_key"]

    # A key file an older gridkit left empty is refused, naming the file and the setting.
    (tmp_path / "secret_key").write_text("")
    try:
        kept_key(tmp_path, "secret_key", None, setting="GRIDKIT_SECRET_KEY", what="session key")
    except SetupError as exc:
        said = exc.render("en")
    assert str(tmp_path / "secret_key") in said and "GRIDKIT_SECRET_KEY" in said and "empty" in said
