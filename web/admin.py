"""The administrator's page /admin: users (add, reset password, role and scope, stop or allow
sign-in, link a coordinator) and the audit log. Every change is a CSRF-checked POST in one
transaction, itself written to the audit log. An administrator with a scope manages only accounts
scoped inside it (gridkit.users.check_may_manage)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from gridkit import audit
from gridkit.audit import recent, record
from gridkit.models import ROLES
from gridkit.users import (
    add_user,
    check_may_manage,
    coordinator_names,
    count_users,
    link_coordinator,
    list_users,
    set_active,
    set_password,
    set_role,
    user_named,
    user_names,
)
from web.auth import check_csrf, current_user, login_required
from web.database import db_session, transaction
from web.i18n import current_language
from web.paging import page_request, pager
from web.params import BIGINT_MAX, int_arg, text_arg

bp = Blueprint("admin", __name__, url_prefix="/admin")

AUDIT_ROWS = 100
USER_PAGE_SIZE = 50


@bp.before_request
@login_required(roles=("admin",))
def _admins_only():
    """Only administrators enter; every POST carries the session's CSRF token."""
    if request.method == "POST":
        check_csrf()


def _form(name: str, *, max_length: int = 100) -> str | None:
    value = (request.form.get(name) or "").strip()
    return value[:max_length] or None


@bp.get("")
def index():
    """Show the users and the newest audit rows (?action= filters them, ?before=ID pages back).

    An administrator with a scope sees the accounts scoped inside it and the audit rows they made:
    the log tells who read which personal data where, and what they searched for."""
    session = db_session()
    scope, action = current_user().scope_code, text_arg("action", max_length=50)
    # A city has thousands of accounts: the table shows a page of them, found by name (read a page at a time).
    found = text_arg("user", max_length=50)
    page, offset = page_request(USER_PAGE_SIZE)
    shown = list_users(session, scope, found, limit=USER_PAGE_SIZE, offset=offset)
    coordinators = coordinator_names(session, [u.coordinator_id for u in shown])
    rows = recent(
        session,
        limit=AUDIT_ROWS,
        action=action,
        before=int_arg("before", high=BIGINT_MAX),
        users=None if scope is None else user_names(session, scope),
    )
    return render_template(
        "admin.html",
        users=shown,
        user_pages=pager(count_users(session, scope, found), page, USER_PAGE_SIZE),
        found=found or "",
        roles=ROLES,
        coordinators=coordinators,
        audit=rows,
        # Each action by its label in the reader's language (its code in a tooltip and the filter's values).
        action_labels=_action_labels([r.action for r in rows], action),
        action=action or "",
        done=text_arg("done", max_length=40),
    )


def _action_labels(shown: list[str], asked: str | None) -> dict[str, str]:
    """Return {code: label} of every known audit action, then of the shown and asked ones not known (older rows)."""
    lang = current_language()
    codes = dict.fromkeys([*audit.ACTIONS, *shown, *([asked] if asked else [])])
    return {code: audit.action_label(code, lang) for code in codes}


def _done(what: str):
    return redirect(url_for("admin.index", done=what))


@bp.post("/users")
def add():
    """Add a user: name, role, optional scope, password and (for coordinators) the coordinator's phone."""
    me = current_user()
    scope = _form("scope", max_length=20)
    with transaction() as session:
        check_may_manage(session, me, scope)
        user = add_user(
            session,
            _form("name", max_length=50) or "",
            _form("role", max_length=20) or "",
            scope=scope,
            # As typed: a password is never stripped or cut (the user signs in with what they typed).
            password=request.form.get("password") or None,
        )
        _link_and_record(session, me, user, audit.USER_ADDED)
    return _done("added")


def _link_and_record(session, me, user, action: str) -> None:
    """Link the user to the coordinator with the form's phone (if given, and the coordinator's cells in `me`'s
    scope); audit `action` with role and scope."""
    phone = _form("coordinator_phone", max_length=20)
    if phone:
        link_coordinator(session, user, phone, by=me)
    record(
        session,
        me.name,
        action,
        object_type="user",
        object_id=user.name,
        role=user.role,
        scope=user.scope_code,
        via="web",
    )


@bp.post("/users/<name>/password")
def reset_password(name: str):
    """Give a user a new password (their sessions end)."""
    me = current_user()
    with transaction() as session:
        user = user_named(session, name[:50])
        check_may_manage(session, me, user.scope_code)
        set_password(session, user, request.form.get("password", ""))
        record(session, me.name, audit.USER_PASSWORD_RESET, object_type="user", object_id=user.name, via="web")
    return _done("password")


@bp.post("/users/<name>/role")
def change_role(name: str):
    """Set a user's role and scope (empty scope: the whole city); link a coordinator by phone."""
    me = current_user()
    scope = _form("scope", max_length=20)
    with transaction() as session:
        user = user_named(session, name[:50])
        check_may_manage(session, me, user.scope_code, scope)
        set_role(session, user, _form("role", max_length=20) or "", scope)
        _link_and_record(session, me, user, audit.USER_ROLE_CHANGED)
    return _done("role")


@bp.post("/users/<name>/active")
def change_active(name: str):
    """Stop (active=0) or allow (active=1) a user's sign-in."""
    me = current_user()
    active = request.form.get("active") == "1"
    with transaction() as session:
        user = user_named(session, name[:50])
        check_may_manage(session, me, user.scope_code)
        set_active(user, active)
        record(
            session,
            me.name,
            audit.USER_ACTIVATED if active else audit.USER_STOPPED,
            object_type="user",
            object_id=user.name,
            via="web",
        )
    return _done("active")
