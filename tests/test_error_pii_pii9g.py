"""Errors do not repeat the phones staff typed unseen, nor tell whose a phone is (pii9g): the number read from
standard input or a hidden prompt is masked in the message (gridkit.pii.mask_typed_phone), on the CLI and the
admin page alike, and a coordinator's name found by a phone is masked too."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from factories_incidents import IN_C1, SUPERVISOR, make_incident_world
from factories_web import USERS, commit, make_web_city, sign_in

from gridkit import db
from gridkit.cli import main
from gridkit.errors import Conflict, NotFound, ValidationError
from gridkit.grids import work
from gridkit.incidents import workflow as wf
from gridkit.messages import render
from gridkit.pii import mask_typed, mask_typed_phone
from gridkit.users import add_user, link_coordinator
from web import create_app

UNKNOWN = "13912345678"  # nobody's phone in the test worlds
SHORT = "1391234567"  # mistyped: one digit short


def _rendered(exc, lang="en") -> str:
    return render(f"error.{exc.code}", lang, **exc.params)


def test_the_typed_phone_masks():
    assert mask_typed_phone(UNKNOWN) == "139****5678"
    assert mask_typed_phone(" 139 1234 5678 ") == "139****5678"
    assert mask_typed_phone("0755-12345678") == "0755-****5678"
    assert mask_typed_phone(SHORT) == mask_typed(SHORT) == "139***4567"
    assert mask_typed_phone("123") == "***"


def _dispatchable(session):
    case = wf.report_incident(
        session, lon=IN_C1[0], lat=IN_C1[1], category="0101", actor=SUPERVISOR, description="井盖破损"
    ).incident
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    return case


@pytest.mark.parametrize("typed", [UNKNOWN, SHORT])
def test_dispatch_to_an_unknown_phone_does_not_repeat_it(session, typed):
    make_incident_world(session)
    case = _dispatchable(session)
    with pytest.raises(NotFound) as refused:
        wf.dispatch(session, case.id, SUPERVISOR, coordinator_phone=typed, reason="张三休假")
    assert refused.value.code == "incident.unknown_coordinator"
    for lang in ("en", "zh-CN"):
        shown = _rendered(refused.value, lang)
        assert typed not in shown and mask_typed_phone(typed) in shown


@pytest.mark.parametrize("typed", [UNKNOWN, SHORT])
def test_linking_a_login_to_an_unknown_phone_does_not_repeat_it(session, typed):
    make_incident_world(session, users=False)
    user = add_user(session, "coord9", "coordinator")
    with pytest.raises(NotFound) as refused:
        link_coordinator(session, user, typed)
    shown = _rendered(refused.value)
    assert typed not in shown and mask_typed_phone(typed) in shown


def test_a_phone_shared_by_two_coordinators_is_not_repeated(session):
    from gridkit.models import Coordinator

    make_incident_world(session, users=False)
    session.add_all([Coordinator(name="王五", phone=UNKNOWN), Coordinator(name="赵六", phone=UNKNOWN)])
    session.flush()
    user = add_user(session, "coord9", "coordinator")
    with pytest.raises(Conflict) as refused:
        link_coordinator(session, user, UNKNOWN)
    assert UNKNOWN not in _rendered(refused.value) and "139****5678" in _rendered(refused.value)


def test_a_taken_phone_tells_neither_the_number_nor_its_owner(session):
    from factories_incidents import DEPT, PHONE1, W1

    make_incident_world(session, users=False)  # 张三 has PHONE1
    with pytest.raises(Conflict) as refused:
        work.add_coordinator(session, "王五", PHONE1, DEPT, [W1])
    shown = _rendered(refused.value)
    assert PHONE1 not in shown and "张三" not in shown
    assert mask_typed_phone(PHONE1) in shown and "张*" in shown


def test_a_mistyped_coordinator_phone_is_not_repeated(session):
    from factories_incidents import DEPT, W1

    make_incident_world(session, users=False)
    with pytest.raises(ValidationError) as refused:
        work.add_coordinator(session, "王五", SHORT, DEPT, [W1])
    shown = _rendered(refused.value)
    assert refused.value.code == "work.coordinator_bad_phone"
    assert SHORT not in shown and mask_typed(SHORT) in shown


def _run(settings, *args, stdin=None):
    return CliRunner().invoke(
        main,
        [str(a) for a in args],
        obj=settings,
        env={"GRIDKIT_LANG": "en", "GRIDKIT_USER": "super1"},
        input=stdin,
        catch_exceptions=False,
    )


def test_the_cli_does_not_repeat_a_phone_read_from_standard_input(fresh_settings):
    case_id = commit(fresh_settings, lambda s: (make_incident_world(s), _dispatchable(s).id)[1])
    dispatched = _run(
        fresh_settings, "incident", "dispatch", case_id, "--coordinator", "-", "--reason", "请假", stdin=UNKNOWN + "\n"
    )
    assert dispatched.exit_code != 0
    assert UNKNOWN not in dispatched.output and "139****5678" in dispatched.output
    added = _run(
        fresh_settings, "user", "add", "coord9", "--role", "coordinator", "--coordinator", "-", stdin=SHORT + "\n"
    )
    assert added.exit_code != 0
    assert SHORT not in added.output and mask_typed(SHORT) in added.output
    with db.session_factory(db.engine_for(fresh_settings))() as session:
        from gridkit.models import User

        assert session.query(User).filter_by(name="coord9").count() == 0  # nothing changed


def test_the_admin_page_does_not_repeat_the_phone_it_was_given(fresh_settings):
    commit(fresh_settings, make_web_city)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    client = app.test_client()
    token = sign_in(client, USERS["admin"])
    response = client.post(
        "/admin/users?lang=en",
        data={"csrf_token": token, "name": "coord9", "role": "coordinator", "coordinator_phone": UNKNOWN},
    )
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert UNKNOWN not in page and "139****5678" in page


def test_a_stored_phone_that_is_not_valid_is_masked_not_quoted(session):
    """A number kept before numbers were checked (or written by another program) was refused by mask_phone with an
    error quoting it in full, on a page or a CLI line meant to show it masked."""
    from gridkit.pii import mask_or_reveal
    from web.api import shown_to

    rows = mask_or_reveal(
        session, [{"phone": "1234567890"}, {"phone": "13800138000"}], reveal=False, actor="a", object_type="x"
    )
    assert rows == [{"phone": "123***7890"}, {"phone": "138****8000"}]
    answer = {"departments": [{"coordinators": [{"phone": "1234567890"}]}]}
    assert shown_to(answer, object(), clear=False) == 0
    assert answer["departments"][0]["coordinators"][0]["phone"] == "123***7890"
