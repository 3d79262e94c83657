"""Signing in and out, the signed-in user, and `login_required` for the role blueprints."""

from __future__ import annotations

import hmac
import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached

from gridkit.errors import GridkitError, PermissionDenied, Unauthorized, ValidationError
from gridkit.freshness import ReadMark
from gridkit.messages import Message
from gridkit.models import User
from gridkit.users import (
    authenticate,
    clear_login_failures,
    end_sessions,
    login_refused,
    record_login_failure,
)
from web.database import COMMITS, db_session, transaction
from web.errors import wants_json
from web.i18n import t
from web.tiles import app_kept

bp = Blueprint("auth", __name__)


def current_user() -> User | None:
    """Return the signed-in, still active user of this request, or None.

    The user read from the database is kept in this process (`KnownUsers`) and reused without a
    query while nothing was committed here and for at most GRIDKIT_TILE_RECHECK_SECONDS (1 s): a
    sign-out, a stopped user or a role change made through this process counts at once, one
    made by another process (the CLI, another server) within that time."""
    if "current_user" not in g:
        user = None
        user_id = session.get("user_id")
        if user_id is not None:
            known = known_users().fresh(user_id, session.get("generation"))
            if known is not None:
                user = db_session().merge(known, load=False)
            else:
                mark = ReadMark.now(COMMITS.count)  # before the read: a commit meanwhile makes the copy untrusted
                user = db_session().get(User, user_id)
                # A session of a stopped user, or from before a sign-out or password change, is over.
                if user is None or not user.active or session.get("generation") != user.session_generation:
                    session.clear()
                    user = None
                else:
                    known_users().keep(user, mark)
        g.current_user = user
    return g.current_user


class KnownUsers:
    """Active users read by this process, as detached copies, each with when it was read."""

    def __init__(self, recheck: float):
        self.recheck = recheck
        self._users: dict[int, tuple[User, ReadMark]] = {}

    def fresh(self, user_id: int, generation) -> User | None:
        """Return the kept copy of an active user of that session generation, if still trusted."""
        entry = self._users.get(user_id)
        if entry is None:
            return None
        user, mark = entry
        if not mark.trusted(self.recheck, COMMITS.count) or generation != user.session_generation:
            return None
        return user

    def keep(self, user: User, mark: ReadMark) -> None:
        """Keep a detached copy of `user`, read as `mark` tells."""
        copy = User(**{attr.key: getattr(user, attr.key) for attr in inspect(User).column_attrs})
        make_transient_to_detached(copy)
        self._users[user.id] = (copy, mark)


def known_users(app=None) -> KnownUsers:
    """Return the app's KnownUsers."""
    return app_kept(app, "gridkit_known_users", KnownUsers)


def login_required(roles=None):
    """Decorate a view so that only signed-in users (of one of `roles`, if given) reach it.

    Use as `@login_required` or `@login_required(roles=("admin", "planner"))`. Anonymous
    visitors of HTML pages are sent to the sign-in page; API callers get 401 JSON.
    """
    if callable(roles):
        return login_required()(roles)
    allowed = tuple(roles) if roles else ()

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                if wants_json():
                    raise Unauthorized("web.sign_in_first")
                return redirect(url_for("auth.login", next=_here()))
            if allowed and user.role not in allowed:
                raise PermissionDenied(
                    "web.role_denied", role=Message(f"role.{user.role}"), roles=[Message(f"role.{r}") for r in allowed]
                )
            return view(*args, **kwargs)

        return wrapped

    return decorator


def csrf_token() -> str:
    """Return this browser session's token for forms that change state."""
    if "csrf_token" not in session:
        session["csrf_token"] = secrets.token_urlsafe(32)
    return session["csrf_token"]


CSRF_HEADER = "X-CSRF-Token"


def check_csrf() -> None:
    """Raise ValidationError unless the request carries this session's token.

    Forms post it as the field `csrf_token`; scripts send it in the X-CSRF-Token header.
    """
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token", "")
    expected = session.get("csrf_token")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ValidationError("web.csrf")


class TooManyAttempts(GridkitError):
    """Too many failed sign-ins for a name or an address: wait, or ask for a password reset."""

    status = 429


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form; on a right name and password, remember the user and go on.

    Failed attempts are counted per name and per address (gridkit.users.login_refused): past
    the limit every attempt is refused with 429 without checking the password.
    """
    next_ = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", error=None, next=next_ or "")
    check_csrf()
    name = request.form.get("name", "").strip()[:100]
    if not name or not request.form.get("password"):
        # Nothing to check (the browser's own check is off without JavaScript): not a failed attempt.
        return render_template("login.html", error=t("login.missing"), next=next_ or ""), 200
    address = request.remote_addr or "unknown"
    with transaction() as db:
        if login_refused(db, name, address):
            record_login_failure(db, name, address)
            refused = True
        else:
            refused = False
            user = authenticate(db, name, request.form.get("password", ""))
            if user is None:
                record_login_failure(db, name, address)
            else:
                clear_login_failures(db, name)
                user_id, generation = user.id, user.session_generation
    if refused:
        raise TooManyAttempts("web.login_limited")
    if user is None:
        return render_template("login.html", error=t("login.failed"), next=next_ or ""), 200
    session.clear()  # a fresh session: no fixation of a pre-login session
    session["user_id"] = user_id
    session["generation"] = generation
    return redirect(next_ or home_of(user))


def home_of(user: User) -> str:
    """Return the URL of `user`'s workspace (the home page for a role without one)."""
    endpoint = WORKSPACES.get(user.role)
    if endpoint and endpoint in current_app.view_functions:
        return url_for(endpoint)
    return url_for("public.home")


# Each role's workspace (an endpoint); roles whose blueprint is not registered go home.
WORKSPACES = {
    "admin": "admin.index",
    "planner": "planner.index",
    "coordinator": "coordinator.index",
    "supervisor": "supervisor.index",
    "analyst": "analyst.index",
}


@bp.route("/logout", methods=["POST"])
def logout():
    """End the session on the server (the user's session generation moves on) and go home."""
    check_csrf()
    user = current_user()
    if user is not None:
        with transaction() as db:
            fresh = db.get(User, user.id)
            if fresh is not None:
                end_sessions(fresh)
    session.clear()
    return redirect(url_for("public.home"))


def _here() -> str:
    query = request.query_string.decode()
    return request.script_root + request.path + (f"?{query}" if query else "")


def _safe_next(target: str | None) -> str | None:
    # Only paths on this site: "next" must not send a signed-in user to another host. Control
    # characters neither: a line break cannot go into the Location header (it was a 500 after sign-in).
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if not target.isprintable():
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def init_app(app: Flask) -> None:
    """Make `current_user()` and `csrf_token()` available to templates."""
    app.jinja_env.globals.update(current_user=current_user, csrf_token=csrf_token, home_of=home_of)
