"""Personal data on the paths earlier audits missed: what a masked export lets be rebuilt, free text in
case views and lists, IDs on the command line, and the files left on disk (exports, photos)."""

from __future__ import annotations

import csv
import json
import logging
import os
import stat
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from factories_exports import make_city
from factories_incidents import IN_C1, PNG, SUPERVISOR, coordinator_actor, make_incident_world
from factories_web import POINT_A, RESIDENT_NAMES, USERS, A, commit, make_web_city, sign_in
from sqlalchemy import select, text
from test_incidents_pii_inc10 import login
from test_open311 import open311  # noqa: F401 (the fixture)
from test_public_places_priv7b import HOME, NEAR
from test_public_places_priv7b import _report as report_at_home
from test_reports_web import PASSWORD as WEB_PASSWORD
from test_reports_web import login as web_login

from gridkit import db
from gridkit.audit import PERSONAL_DATA_READ
from gridkit.cli import main
from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.incidents.queries import list_incidents, show_incident
from gridkit.io.export import ExportOptions, export_layer
from gridkit.io.subjects import import_residents
from gridkit.models import AuditLog, Coordinator
from gridkit.pii import pii_key, scrub_log_text
from gridkit.standard.ids import citizen_id_check_char
from gridkit.users import add_user
from tests.data.make_subject_files import RESIDENTS
from tests.factories import make_base_grid
from tests.factories_import_subjects import DATA, KEY, buildings, grid  # noqa: F401 - fixtures used by name
from web import create_app
from web.database import db_session as web_db_session

# -- a masked residents export must not give the citizen ID back ------------------------------------------


def _ids_consistent_with(row: dict) -> int:
    """Return how many valid citizen IDs agree with what one exported row shows: the masked ID's first 4
    and last 4 characters and the birth date (or year) exported; digits 5-6 (the county) left free."""
    masked = row["id_number"]
    if row.get("birth_date"):
        days = [date.fromisoformat(row["birth_date"][:10])]
    else:
        year = int(row["birth_year"])
        days = [date(year, 1, 1) + timedelta(n) for n in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)]
    found = 0
    for county in range(100):
        for day in days:
            first17 = f"{masked[:4]}{county:02d}{day:%Y%m%d}{masked[-4:-1]}"
            found += citizen_id_check_char(first17) == masked[-1]
    return found


def test_a_masked_residents_export_does_not_give_the_citizen_id_back(session, grid, tmp_path):
    buildings(session)
    import_residents(session, DATA / "residents.csv", pii_key=KEY)
    path = tmp_path / "residents.csv"
    summary = export_layer(session, ExportOptions("residents", "csv", path), actor="test")
    assert summary["masked"]
    with path.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(RESIDENTS)
    for row in rows:
        # With the whole birth date, about 9 IDs in 100 county digits pass the check character, and the
        # community's county code picks one: the ID. The year alone leaves thousands.
        assert _ids_consistent_with(row) > 1000, row
    assert "birth_date" not in rows[0] and {int(r["birth_year"]) for r in rows} == {
        int(number[6:10]) for number, *_ in RESIDENTS
    }
    # Unmasked (audited), the date is whole.
    unmasked = tmp_path / "unmasked.csv"
    admin = add_user(session, "city-admin", "admin")
    export_layer(session, ExportOptions("residents", "csv", unmasked, unmasked=True), user=admin, actor="test")
    with unmasked.open(encoding="utf-8-sig") as f:
        dates = {r["birth_date"][:10] for r in csv.DictReader(f)}
    assert dates == {f"{n[6:10]}-{n[10:12]}-{n[12:14]}" for n, *_ in RESIDENTS}


# -- a case's free text: the reporter's call-back number in the description and the notes -----------------

CALL_BACK = "13900139000"


def _case_with_numbers(session) -> dict:
    """A case in community 1 whose description and accept note carry a citizen's phone (world of
    tests/factories_incidents.py); return its id and code."""
    world = make_incident_world(session)
    case = wf.report_incident(
        session,
        lon=IN_C1[0],
        lat=IN_C1[1],
        description=f"路灯不亮，请回电 {CALL_BACK}",
        category="0101",
        actor=SUPERVISOR,
    ).incident
    wf.accept(session, case.id, SUPERVISOR, note=f"已电话联系 {CALL_BACK}，身份证 44030419900101123X")
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    wf.dispatch(session, case.id, SUPERVISOR)
    session.flush()
    return {"id": case.id, "code": case.code, "world": world}


def _reads(session) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).where(AuditLog.action == PERSONAL_DATA_READ).order_by(AuditLog.id)))


def _texts(data: dict) -> str:
    return json.dumps([data["description"], *(h["note"] for h in data["history"])], ensure_ascii=False)


def test_a_case_view_masks_numbers_in_its_text_for_who_may_not_read_them_and_audits_the_others(session):
    case = _case_with_numbers(session)
    before = len(_reads(session))
    for actor in (None, Actor("analyst1", "analyst")):
        shown = _texts(show_incident(session, case["id"], actor))
        assert CALL_BACK not in shown and "123X" in shown and "19900101" not in shown
        assert "139****9000" in shown
    assert len(_reads(session)) == before
    clear = show_incident(session, case["id"], SUPERVISOR)
    assert clear["description"].endswith(CALL_BACK) and "44030419900101123X" in _texts(clear)
    (audit,) = _reads(session)[before:]
    assert audit.actor == "super1" and {"description", "notes"} <= set(audit.detail["detail_fields"])


def test_a_photo_named_by_a_phone_number_is_shown_as_its_text_is(session, tmp_path):
    case = _case_with_numbers(session)
    coordinator = coordinator_actor(case["world"], 1)
    wf.feedback(session, case["id"], coordinator, note="已处理", attachments=[(f"{CALL_BACK}.png", PNG)], home=tmp_path)
    (masked,) = show_incident(session, case["id"], None)["attachments"]
    assert masked["name"] == "139****9000.png"
    before = len(_reads(session))
    (clear,) = show_incident(session, case["id"], SUPERVISOR)["attachments"]
    assert clear["name"] == f"{CALL_BACK}.png"
    (audit,) = _reads(session)[before:]
    assert "photos" in audit.detail["detail_fields"]


def test_case_lists_mask_numbers_in_descriptions_unless_the_actor_may_read_them_there(session):
    case = _case_with_numbers(session)
    before = len(_reads(session))

    def description(actor, **kw):
        (item,) = [i for i in list_incidents(session, actor=actor, **kw)["items"] if i["id"] == case["id"]]
        return item["description"]

    assert description(None) == "路灯不亮，请回电 139****9000"
    # A supervisor of community 2 does not list the case at all; an analyst's actor reads it masked.
    assert description(Actor("analyst1", "analyst")) == "路灯不亮，请回电 139****9000"
    assert len(_reads(session)) == before
    assert description(SUPERVISOR) == f"路灯不亮，请回电 {CALL_BACK}"
    assert description(coordinator_actor(case["world"], 1)) == f"路灯不亮，请回电 {CALL_BACK}"
    reads = _reads(session)[before:]
    assert [(a.actor, a.object_type, a.detail["detail_fields"], a.detail["incidents"]) for a in reads] == [
        ("super1", "incident", ["description"], [case["code"]]),
        ("coord1", "incident", ["description"], [case["code"]]),
    ]
    assert description(SUPERVISOR, descriptions=False) is None
    assert len(_reads(session)) == before + 2


def test_cli_case_show_and_list_without_a_reader_mask_the_text(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        case = _case_with_numbers(session)
    env = {"GRIDKIT_LANG": "en", "GRIDKIT_USER": ""}
    runner = CliRunner()
    for args in (["incident", "show", str(case["id"]), "--json"], ["incident", "list", "--json"]):
        result = runner.invoke(main, args, obj=fresh_settings, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert CALL_BACK not in result.output and "139****9000" in result.output
    shown = runner.invoke(
        main, ["incident", "show", str(case["id"]), "--as", "super1", "--json"], obj=fresh_settings, env=env
    )
    assert CALL_BACK in shown.output
    with db.session_factory(db.engine_for(fresh_settings))() as session:
        assert [a.actor for a in _reads(session)] == ["super1"]


def test_the_coordinators_case_list_reads_the_call_back_number_audited(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        case = _case_with_numbers(session)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    client = app.test_client()
    login(client, "coord1")
    assert CALL_BACK in client.get("/coordinator/cases").get_data(as_text=True)
    assert client.get("/api/incidents").get_json()["items"][0]["description"].endswith(CALL_BACK)
    with db.session_factory(db.engine_for(fresh_settings))() as session:
        reads = [(a.actor, a.detail["incidents"]) for a in _reads(session)]
    assert reads == [("coord1", [case["code"]])] * 2


# -- a citizen ID on the command line ----------------------------------------------------------------------


def test_a_resident_found_by_citizen_id_read_from_stdin_or_asked_and_the_lookup_audited(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_base_grid(session, rows=3, cols=3, communities=2)
        buildings(session)
        import_residents(session, DATA / "residents.csv", pii_key=pii_key(fresh_settings))
    number = RESIDENTS[0][0]
    runner = CliRunner()
    env = {"GRIDKIT_LANG": "en"}

    def responsible(*key, **kw):
        args = ["subjects", "responsible", "--kind", "residents", *key, "--json"]
        result = runner.invoke(main, args, obj=fresh_settings, env=env, catch_exceptions=False, **kw)
        assert result.exit_code == 0, result.output
        return result

    piped = responsible("-", input=number + "\n")
    asked = responsible(input=number + "\n")
    assert number not in asked.output  # asked without echo
    assert json.loads(piped.stdout)["identity"] == json.loads(asked.stdout)["identity"]
    typed = responsible(number)
    assert (
        "shell history" in typed.stderr and json.loads(typed.stdout)["identity"] == number[:4] + "*" * 10 + number[-4:]
    )
    with db.session_factory(db.engine_for(fresh_settings))() as session:
        reads = [r for r in _reads(session) if r.object_type == "resident"]
    assert len(reads) == 3 and all(r.detail["detail_fields"] == ["base_cell"] for r in reads)
    assert not any(number in json.dumps(r.detail) or number == r.object_id for r in reads)
    empty = runner.invoke(main, ["subjects", "responsible", "--kind", "residents", "-"], obj=fresh_settings, env=env)
    assert empty.exit_code == 1 and "no KEY was given" in empty.output


# -- files left on disk ------------------------------------------------------------------------------------


def test_case_photos_are_readable_by_their_owner_only_whatever_the_umask(session, tmp_path):
    case = _case_with_numbers(session)
    home = tmp_path / "home"
    (home / "attachments").mkdir(parents=True, mode=0o755)  # as an older gridkit, or a restore, left it
    (home / "attachments").chmod(0o755)
    old = os.umask(0o022)
    try:
        wf.feedback(
            session,
            case["id"],
            coordinator_actor(case["world"], 1),
            note="已处理",
            attachments=[("face.png", PNG)],
            home=home,
        )
    finally:
        os.umask(old)
    (photo,) = (home / "attachments").rglob("*.png")
    assert photo.read_bytes() == PNG
    assert stat.S_IMODE((home / "attachments").stat().st_mode) == 0o700
    assert stat.S_IMODE(photo.stat().st_mode) & 0o077 == 0


def test_an_unmasked_export_is_written_owner_only_and_leaves_nothing_beside_it(session, grid, tmp_path):
    buildings(session)
    import_residents(session, DATA / "residents.csv", pii_key=KEY)
    admin = add_user(session, "city-admin", "admin")
    out = tmp_path / "out"
    out.mkdir()
    old = os.umask(0o022)
    try:
        for fmt in ("csv", "gpkg", "shp"):
            path = out / f"residents-{fmt}.{ {'shp': 'zip'}.get(fmt, fmt) }"
            export_layer(session, ExportOptions("residents", fmt, path, unmasked=True), user=admin, actor="test")
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, fmt
        masked = out / "masked.csv"
        export_layer(session, ExportOptions("residents", "csv", masked), actor="test")
    finally:
        os.umask(old)
    assert stat.S_IMODE(masked.stat().st_mode) == 0o644  # nothing personal in clear: the user's umask
    assert sorted(p.name for p in out.iterdir()) == [
        "masked.csv",
        "residents-csv.csv",
        "residents-gpkg.gpkg",
        "residents-shp.zip",
    ]


def _audit_refused(pg_server, settings) -> None:
    """A city whose audit rows cannot be written (a full disk, a broken grant; here a trigger): an
    unmasked export fails after its file was written."""
    engine = db.engine_for(settings)
    with db.session_factory(engine)() as session, session.begin():
        make_city(session)
        add_user(session, "boss", "admin", password=WEB_PASSWORD)
    # As the owner: the trigger that breaks the audit log is DDL.
    with db.engine_for(pg_server.owner_settings(settings)).begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION public.refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$"
        )
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION public.refuse_audit()"
        )


def test_a_cli_export_whose_audit_row_fails_leaves_no_file(pg_server, fresh_settings, tmp_path):
    _audit_refused(pg_server, fresh_settings)
    path = tmp_path / "residents.csv"
    args = ["export", "residents", "-o", str(path), "--unmasked", "--as", "boss"]
    result = CliRunner().invoke(main, args, obj=fresh_settings, env={"GRIDKIT_LANG": "en"})
    assert result.exit_code != 0 and not path.exists()


def test_a_web_export_whose_audit_row_fails_leaves_no_file_on_the_server(pg_server, fresh_settings):
    _audit_refused(pg_server, fresh_settings)
    app = create_app(fresh_settings)
    app.config.update(TESTING=True, PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    token = web_login(client, "boss")
    answer = client.post(
        "/analyst/export", data={"csrf_token": token, "layer": "residents", "format": "csv", "unmasked": "1"}
    )
    assert answer.status_code == 500 and "居民1号" not in answer.get_data(as_text=True)
    assert [p for p in (fresh_settings.home / "exports").rglob("*")] == []


# -- Open311: an exact place (a citizen's doorstep) read by a trusted key or staff is audited ---------------


def test_open311_answers_giving_exact_places_are_audited(open311):  # noqa: F811
    client, settings = open311
    code = report_at_home(settings)
    one = f"/open311/v2/requests/{code}.json"

    def reads():
        with db.session_factory(db.engine_for(settings))() as session:
            return [(a.actor, a.detail["count"], a.detail["detail_fields"]) for a in _reads(session)]

    client.get(one)
    client.get("/open311/v2/requests.json")
    assert reads() == []  # the public reads places to 100 m: nothing personal, nothing audited
    assert client.get(f"{one}?api_key=s3cret").get_json()[0]["long"] == pytest.approx(HOME[0], abs=1e-9)
    listed = client.get("/open311/v2/requests.json?api_key=s3cret").get_json()
    assert reads() == [("open311:city-hotline", 1, ["place"]), ("open311:city-hotline", len(listed), ["place"])]
    app = create_app(settings)
    app.config["TESTING"] = True
    for name in ("sup_all", "sup_c2"):
        staff = app.test_client()
        sign_in(staff, name)
        staff.get(one)
    assert reads()[2:] == [("sup_all", 1, ["place"])]  # sup_c2 read the place to 100 m


def test_a_coordinator_reads_open311_places_as_the_public(open311):  # noqa: F811
    """A coordinator's cases are those of their work cells; Open311 lists the whole city's, exactly
    for whoever may read personal data there, which a coordinator (no scope) could everywhere."""
    client, settings = open311
    code = report_at_home(settings)

    def linked(session):
        first = session.scalar(select(Coordinator.id).order_by(Coordinator.id))
        add_user(session, "coord_any", "coordinator", password="correct-horse-7", coordinator_id=first)

    commit(settings, linked)
    app = create_app(settings)
    app.config["TESTING"] = True
    coordinator = app.test_client()
    sign_in(coordinator, "coord_any")
    answer = coordinator.get(f"/open311/v2/requests/{code}.json").get_json()[0]
    assert (answer["long"], answer["lat"]) == pytest.approx(NEAR, abs=1e-9)
    listed = coordinator.get("/open311/v2/requests.json").get_data(as_text=True)
    assert str(HOME[0]) not in listed
    with db.session_factory(db.engine_for(settings))() as session:
        assert _reads(session) == []


def test_an_unmasked_exports_audit_row_holds_no_number_from_its_filters(session, tmp_path):
    case = _case_with_numbers(session)
    description = f"路灯不亮，请回电 {CALL_BACK}"
    admin = add_user(session, "city-admin", "admin")
    options = ExportOptions("incidents", "csv", tmp_path / "i.csv", unmasked=True, where={"description": description})
    assert export_layer(session, options, user=admin, actor="test")["features"] == 1
    session.flush()
    (row,) = [r for r in _reads(session) if r.object_type == "export"]
    assert CALL_BACK not in json.dumps(row.detail, ensure_ascii=False)
    assert row.detail["where"] == {"description": "路灯不亮，请回电 139****9000"} and case["code"]


# -- what a browser keeps: answers made for a signed-in user are not cached -----------------------------------


def test_answers_carrying_personal_data_are_kept_by_no_cache(fresh_settings):
    commit(fresh_settings, make_web_city)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    visitor, coordinator, analyst = app.test_client(), app.test_client(), app.test_client()
    whois = f"/api/whois?lon={POINT_A[0]}&lat={POINT_A[1]}"
    assert "no-store" not in visitor.get(whois).headers.get("Cache-Control", "")  # no phone in it
    sign_in(coordinator, USERS["coordinator"])
    cell = coordinator.get(f"/api/work-cells/{A}")
    assert RESIDENT_NAMES[0] in cell.get_data(as_text=True) and cell.headers["Cache-Control"] == "no-store"
    for url in (whois, "/coordinator", "/coordinator/cases", "/api/me"):
        response = coordinator.get(url)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store", url
    tile = coordinator.get("/tiles/admin-units/0/0/0.mvt")
    assert tile.headers["Cache-Control"] == "public, no-cache"  # tiles carry no personal data: cached as before
    token = sign_in(analyst, USERS["analyst"])
    download = analyst.post("/analyst/export", data={"csrf_token": token, "layer": "residents", "format": "csv"})
    assert download.status_code == 200 and download.headers["Cache-Control"] == "no-store"


# -- logs: a refused row quoted by PostgreSQL ------------------------------------------------------------------


PERSON = {"name": "王小明", "phone": "13800138000"}


def test_a_500s_logged_traceback_quotes_no_refused_row(fresh_settings, caplog):
    app = create_app(fresh_settings)
    app.config.update(TESTING=True, PROPAGATE_EXCEPTIONS=False)

    def failing():
        # A bug that reaches the database with a resident's row: its error's DETAIL quotes the row.
        session = web_db_session()
        session.execute(text("CREATE TEMP TABLE person (name text, phone text CHECK (length(phone) = 5))"))
        session.execute(text("INSERT INTO person VALUES (:name, :phone)"), PERSON)

    app.add_url_rule("/failing", "failing", failing)
    with caplog.at_level(logging.ERROR, logger="web"):
        assert app.test_client().get("/failing").status_code == 500
    logged = caplog.text
    assert "CheckViolation" in logged and "Failing row contains (…)" in logged
    assert PERSON["phone"] not in logged and PERSON["name"] not in logged


def test_scrubbed_log_text_keeps_what_says_what_failed():
    detail = (
        "DETAIL:  Key (name, phone)=(王小明, 13800138000) already exists.\n"
        "DETAIL:  Failing row contains (7, 王(小)明, x)."
    )
    assert (
        scrub_log_text(detail) == "DETAIL:  Key (name, phone)=(…) already exists.\nDETAIL:  Failing row contains (…)."
    )
    assert scrub_log_text("dispatch to 13800138000 failed in case 2026120500000001") == (
        "dispatch to 138****8000 failed in case 2026120500000001"
    )


def test_import_reports_are_readable_by_their_owner_only_whatever_the_umask(tmp_path):
    from gridkit.io.report import write_report

    home = tmp_path / "home"
    (home / "reports").mkdir(parents=True, mode=0o755)  # as an older gridkit left it
    (home / "reports").chmod(0o755)
    old = os.umask(0o022)
    try:
        json_path, _ = write_report(home, "residents", [], [], {"refused": True})
    finally:
        os.umask(old)
    assert stat.S_IMODE((home / "reports").stat().st_mode) == 0o700 and json_path.parent == home / "reports"
