"""Personal data on the command line: phones read from stdin or asked unseen, a resident erased, and a bug's
traceback without the row PostgreSQL quotes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from gridkit import db
from gridkit.cli import main
from gridkit.io.subjects import import_residents
from gridkit.models import AuditLog, Coordinator, Resident, ResidentCell, User
from gridkit.pii import hash_citizen_id, pii_key
from gridkit.reports import resident_summary
from gridkit.users import add_user
from tests.data.make_subject_files import RESIDENTS
from tests.factories import make_base_grid
from tests.factories_import_subjects import DATA, buildings
from tests.test_cli import DEPT, WC1, _publish_two_work_cells

ENGLISH = {"GRIDKIT_LANG": "en"}
PHONE = "13912345678"


def run(settings, *args, input=None):
    return CliRunner().invoke(main, list(args), obj=settings, input=input, env=ENGLISH, catch_exceptions=False)


def _session(settings):
    return db.session_factory(db.engine_for(settings))()


@pytest.fixture
def grid_settings(fresh_settings):
    with _session(fresh_settings) as session, session.begin():
        make_base_grid(session, rows=3, cols=3)
    return fresh_settings


# -- phones given to commands (coordinator add, user add) ---------------------------------------------------


def test_a_coordinators_phone_is_read_from_stdin_or_asked_unseen_and_typed_it_is_warned(grid_settings):
    _publish_two_work_cells(grid_settings)
    add = ("coordinator", "add", "--dept", DEPT, "--work-cell", WC1, "--json")
    piped = run(grid_settings, *add, "张伟", "--phone", "-", input=PHONE + "\n")
    assert piped.exit_code == 0, piped.output
    asked = run(grid_settings, *add, "李娜", input="13912345679\n")
    assert asked.exit_code == 0, asked.output
    assert "13912345679" not in asked.output and "not shown as you type" in asked.stderr  # asked without echo
    typed = run(grid_settings, *add, "王芳", "--phone", "13912345670")
    assert typed.exit_code == 0 and "shell history" in typed.stderr and "shell history" not in typed.stdout
    empty = run(grid_settings, *add, "赵六", "--phone", "-", input="\n")
    assert empty.exit_code == 1 and "no phone number was given" in empty.output
    with _session(grid_settings) as session:
        phones = dict(session.execute(select(Coordinator.name, Coordinator.phone)).all())
    assert phones == {"张伟": PHONE, "李娜": "13912345679", "王芳": "13912345670"}


def test_a_coordinator_login_is_linked_by_a_phone_read_after_the_password_on_stdin(grid_settings):
    _publish_two_work_cells(grid_settings)
    run(grid_settings, "coordinator", "add", "张伟", "--phone", "-", "--dept", DEPT, "--work-cell", WC1, input=PHONE)
    added = run(
        grid_settings,
        "user",
        "add",
        "zhang.wei",
        "--role",
        "coordinator",
        "--password-stdin",
        "--coordinator",
        "-",
        "--json",
        input=f"a-long-password\n{PHONE}\n",
    )
    assert added.exit_code == 0 and "shell history" not in added.output, added.output
    with _session(grid_settings) as session:
        user = session.scalar(select(User).where(User.name == "zhang.wei"))
        assert user.coordinator_id == session.scalar(select(Coordinator.id).where(Coordinator.phone == PHONE))


# -- gridkit subjects erase --kind residents -----------------------------------------------------------------


@pytest.fixture
def residents_settings(fresh_settings):
    with _session(fresh_settings) as session, session.begin():
        make_base_grid(session, rows=3, cols=3, communities=2)
        buildings(session)
        import_residents(session, DATA / "residents.csv", pii_key=pii_key(fresh_settings))
        add_user(session, "city.admin", "admin")
        add_user(session, "other.admin", "admin", scope="440304001002")
        add_user(session, "an.analyst", "analyst")
        add_user(session, "a.supervisor", "supervisor")
    return fresh_settings


def _summary(session) -> list[tuple]:
    return session.execute(text("SELECT * FROM resident_cell_summary ORDER BY base_cell_id")).all()


def _rebuilt_summary(session) -> list[tuple]:
    """The summary as a full rebuild from the residents makes it (rolled back)."""
    with session.begin_nested() as nested:
        resident_summary.refresh(session)
        rows = _summary(session)
        nested.rollback()
    return rows


def erase(settings, *args, input=None):
    return run(settings, "subjects", "erase", "--kind", "residents", *args, input=input)


def test_a_resident_is_erased_with_their_cell_row_and_the_counts_stay_right(residents_settings):
    number, name, phone, household = RESIDENTS[0][:4]  # 王小明 of household H0001, with 王小红
    with _session(residents_settings) as session:
        rid = session.scalar(select(Resident.id).where(Resident.name == name))
        assert session.get(ResidentCell, rid) is not None
        before = _summary(session)
    erased = erase(residents_settings, "-", "--as", "city.admin", "--yes", "--json", input=number + "\n")
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.stdout)["id"] == rid and number not in erased.output
    with _session(residents_settings) as session:
        key = pii_key(residents_settings)
        assert session.scalar(select(Resident).where(Resident.id_number_hash == hash_citizen_id(key, number))) is None
        assert session.get(ResidentCell, rid) is None
        after = _summary(session)
        assert after != before and after == _rebuilt_summary(session)
        assert resident_summary.is_current(session)
        # The rest of the household stays, and stays one household.
        assert session.scalar(select(func.count()).where(Resident.household == household)) == 1
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "personal_data.erased")).all()
    assert [(a.actor, a.object_type, a.object_id) for a in audit] == [("city.admin", "resident", str(rid))]
    assert not any(v in json.dumps(audit[0].detail, ensure_ascii=False) for v in (number, name, phone))
    again = erase(residents_settings, "--as", "city.admin", "--yes", input=number + "\n")
    assert again.exit_code == 1 and "no resident has that citizen ID number: nothing was erased" in again.output
    assert number not in again.output
    missing = erase(residents_settings, "--id", "999999", "--as", "city.admin", "--yes")
    assert missing.exit_code == 1 and "no resident has row id 999999" in missing.output


@pytest.mark.parametrize(
    "user,refusal",
    [
        (None, "role '-' may not erase personal data"),
        ("an.analyst", "role 'analyst' may not erase"),
        ("a.supervisor", "role 'supervisor' may not erase"),
        ("other.admin", "role 'admin' may not erase personal data in area 440304001001"),
    ],
)
def test_only_an_administrator_whose_scope_holds_the_resident_may_erase(residents_settings, user, refusal):
    number = RESIDENTS[0][0]
    with _session(residents_settings) as session:
        before = session.scalar(select(func.count()).select_from(Resident))
    refused = erase(residents_settings, "-", "--yes", *(["--as", user] if user else []), input=number + "\n")
    assert refused.exit_code == 1 and refusal in refused.output, refused.output
    with _session(residents_settings) as session:
        assert session.scalar(select(func.count()).select_from(Resident)) == before
        assert not session.scalars(select(AuditLog).where(AuditLog.action == "personal_data.erased")).all()


def test_an_erasure_by_row_id_asks_first_and_no_changes_nothing(residents_settings):
    with _session(residents_settings) as session:
        rid = session.scalar(select(Resident.id).where(Resident.name == RESIDENTS[5][1]))  # unassigned: outside
    kept = erase(residents_settings, "--id", str(rid), "--as", "city.admin", input="n\n")
    assert kept.exit_code == 1 and "cannot be undone" in kept.output
    with _session(residents_settings) as session:
        assert session.get(Resident, rid) is not None
    gone = erase(residents_settings, "--id", str(rid), "--as", "city.admin", input="y\n")
    assert gone.exit_code == 0 and f"Resident {rid} erased" in gone.output, gone.output
    with _session(residents_settings) as session:
        assert session.get(Resident, rid) is None and resident_summary.is_current(session)


# -- a bug's traceback quotes no row --------------------------------------------------------------------------


def test_an_unexpected_database_error_shows_its_traceback_without_the_refused_row(pg_server, grid_settings):
    _publish_two_work_cells(grid_settings)
    # As the owner: the constraint the service does not know of is DDL.
    with _session(pg_server.owner_settings(grid_settings)) as session, session.begin():
        # A constraint the service does not know of: PostgreSQL refuses the row and quotes it in DETAIL.
        session.execute(text("ALTER TABLE coordinator ADD CONSTRAINT no_zhang CHECK (name <> '张三丰')"))
    failed = run(
        grid_settings, "coordinator", "add", "张三丰", "--phone", "-", "--dept", DEPT, "--work-cell", WC1, input=PHONE
    )
    assert failed.exit_code == 1
    assert "CheckViolation" in failed.stderr and "Failing row contains (…)" in failed.stderr, failed.output
    assert "unexpected error (IntegrityError)" in failed.stderr
    assert "张三丰" not in failed.output and PHONE not in failed.output
    with _session(grid_settings) as session:
        assert session.scalar(select(func.count()).select_from(Coordinator)) == 0


# -- where unassigned residents are ---------------------------------------------------------------------------


def test_listing_unassigned_residents_with_their_points_is_an_audited_read(residents_settings):
    def reads():
        with _session(residents_settings) as session:
            return session.scalars(select(AuditLog).where(AuditLog.action == "personal_data.read")).all()

    with _session(residents_settings) as session:
        rows = session.execute(
            text(
                "SELECT id FROM resident r WHERE NOT EXISTS (SELECT 1 FROM resident_cell c WHERE c.resident_id = r.id)"
            )
        ).all()
    assert rows  # 孙悟 lives outside every cell
    buildings_only = run(residents_settings, "subjects", "unassigned", "--kind", "buildings", "--json")
    assert buildings_only.exit_code == 0 and reads() == []
    listed = run(residents_settings, "subjects", "unassigned", "--json")
    assert listed.exit_code == 0, listed.output
    points = [r for r in json.loads(listed.stdout) if r["kind"] == "residents"]
    assert len(points) == len(rows) and points[0]["lon"] is not None
    [read] = reads()
    assert read.object_type == "resident" and read.detail["count"] == len(rows)
    assert read.detail["detail_fields"] == ["lon", "lat"] and str(points[0]["lon"]) not in json.dumps(read.detail)
