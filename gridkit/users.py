"""Users and roles: who may sign in, with which role, over which area."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gridkit.admin import area_prefix
from gridkit.errors import Conflict, NotFound, PermissionDenied, ValidationError
from gridkit.models import (
    ROLES,
    AdminUnit,
    BaseCell,
    Coordinator,
    CoordinatorAssignment,
    LoginFailure,
    User,
    WorkCellMember,
)
from gridkit.pii import mask_typed_phone
from gridkit.search import like_literal
from gridkit.standard.codes import admin_code_prefix

# Roles that may read personal data (names, ID numbers, phones) inside their scope.
PII_ROLES = frozenset({"admin", "coordinator", "supervisor"})
_SCRYPT = dict(n=2**14, r=8, p=1, dklen=32)


def hash_password(password: str) -> str:
    """Return a salted scrypt hash of `password` in the form scrypt$salt$hash."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


# A new password's length, in characters; it is kept exactly as typed (spaces too).
PASSWORD_LENGTH = (8, 200)


def check_new_password(password: str) -> None:
    """Raise ValidationError unless `password` may be set: between PASSWORD_LENGTH characters."""
    shortest, longest = PASSWORD_LENGTH
    if len(password) < shortest:
        raise ValidationError("users.short_password", minimum=shortest)
    if len(password) > longest:
        raise ValidationError("users.long_password", maximum=longest)


def check_password(stored: str | None, password: str) -> bool:
    """True when `password` matches the stored hash."""
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


def add_user(
    session: Session,
    name: str,
    role: str,
    *,
    scope: str | None = None,
    password: str | None = None,
    coordinator_id: int | None = None,
) -> User:
    """Create a user; refuse unknown roles, unknown scopes and names already taken."""
    if role not in ROLES:
        raise ValidationError("users.unknown_role", role=role, roles=", ".join(ROLES))
    if not 2 <= len(name) <= 50 or not all(c.isalnum() or c in "_.@-" for c in name) or not name.isascii():
        raise ValidationError("users.bad_name", name=name)
    if password is not None:
        check_new_password(password)
    if scope is not None and session.get(AdminUnit, scope) is None:
        raise NotFound("users.unknown_scope", scope=scope)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict("users.exists", name=name)
    user = User(
        name=name,
        role=role,
        scope_code=scope,
        coordinator_id=coordinator_id,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def list_users(
    session: Session,
    scope_code: str | None = None,
    name_contains: str | None = None,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[User]:
    """Return the users scoped inside admin unit `scope_code` (None: every user), by name: the
    accounts an administrator of that scope manages (gridkit.users.check_may_manage); with
    `name_contains`, only the names holding that text (any case, taken literally); with `limit`, that
    many from `offset` (a page of a city's thousands of accounts)."""
    query = _users(select(User), scope_code, name_contains).order_by(User.name).offset(offset).limit(limit)
    return list(session.scalars(query))


def count_users(session: Session, scope_code: str | None = None, name_contains: str | None = None) -> int:
    """Return how many users list_users would return without a limit."""
    return session.scalar(_users(select(func.count()).select_from(User), scope_code, name_contains))


def user_names(session: Session, scope_code: str | None = None) -> list[str]:
    """Return the names of the users list_users would return (no objects loaded)."""
    return list(session.scalars(_users(select(User.name), scope_code, None)))


def coordinator_names(session: Session, ids) -> dict[int, str]:
    """Return {id: name} of the coordinators `ids` (None among them ignored): those of a page of users."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(Coordinator.id, Coordinator.name).where(Coordinator.id.in_(wanted))).all())


def _users(query, scope_code: str | None, name_contains: str | None):
    if name_contains:
        query = query.where(User.name.ilike(f"%{like_literal(name_contains)}%"))
    if scope_code is not None:
        tree = select(AdminUnit.code).where(AdminUnit.code == scope_code).cte("tree", recursive=True)
        child = AdminUnit.__table__.alias("child")
        tree = tree.union_all(select(child.c.code).join(tree, child.c.parent_code == tree.c.code))
        query = query.where(User.scope_code.in_(select(tree.c.code)))
    return query


# Checked against when the name is unknown, so that a wrong name costs the same time as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def authenticate(session: Session, name: str, password: str) -> User | None:
    """Return the active user with this name and password, or None.

    An unknown name is checked against a dummy hash: the answer takes as long as for a known
    name, so timing does not tell who exists.
    """
    user = session.scalar(select(User).where(User.name == name, User.active.is_(True)))
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    if not check_password(stored, password) or user is None or not user.password_hash:
        return None
    return user


def may_see_personal_data(user: User | None, area_code: str | None = None) -> bool:
    """True when `user`'s role may read personal data and `area_code` lies in the user's scope."""
    if user is None or user.role not in PII_ROLES:
        return False
    if user.scope_code is None:
        return True
    # A scoped user sees personal data only where the area is known to lie in the scope.
    return area_code is not None and area_code.startswith(admin_code_prefix(user.scope_code))


def may_erase_personal_data(user: User | None, area_code: str | None = None) -> bool:
    """True when `user` may erase a person's data in `area_code`: an administrator (erasing is the data
    controller's act, not a reader's) who may read personal data there (may_see_personal_data)."""
    return user is not None and user.role == "admin" and may_see_personal_data(user, area_code)


def area_within(session: Session, code: str, scope_code: str | None) -> bool:
    """True when admin unit `code` is `scope_code` or lies under it in the admin unit tree."""
    if scope_code is None:
        return True
    chain = select(AdminUnit.code, AdminUnit.parent_code).where(AdminUnit.code == code).cte("chain", recursive=True)
    parent = AdminUnit.__table__.alias("parent")
    chain = chain.union_all(
        select(parent.c.code, parent.c.parent_code).join(chain, parent.c.code == chain.c.parent_code)
    )
    return bool(session.scalar(select(func.count()).select_from(chain).where(chain.c.code == scope_code)))


def area_in_scope(session: Session, user: User | None, area: str | None) -> str | None:
    """Return the area a user's export, report or map covers: `area` when it lies in the user's scope,
    the scope itself when no area is asked (None: the whole city); an area outside it is refused.

    The one rule for area-filtered reads by scoped users: without it, a district's analyst would
    read every district by leaving the area out or naming another one. A city-level scope is the
    whole city (a district code does not start with its city's code)."""
    scope = getattr(user, "scope_code", None)
    if scope is None:
        return area
    if area is None:
        return None if session.scalar(select(AdminUnit.level).where(AdminUnit.code == scope)) == "city" else scope
    if not area_within(session, area, scope):
        raise PermissionDenied("users.area_outside_scope", area=area, scope=scope)
    return area


def check_may_manage(session: Session, admin: User, *scopes: str | None) -> None:
    """Raise PermissionDenied unless administrator `admin` may manage accounts of each of `scopes`
    (an account's scope, or one to be given; None: the whole city).

    An administrator with a scope manages only accounts scoped inside it and gives only scopes
    inside it: otherwise a district's administrator would make itself (or anyone) city-wide, or
    take over a city-wide account by resetting its password."""
    if admin.scope_code is None:
        return
    for code in scopes:
        if code is None or not area_within(session, code, admin.scope_code):
            raise PermissionDenied("users.manage_outside_scope", scope=admin.scope_code, area=code or "-")


# -- accounts: administration, sign-in limits, coordinator links ---------------------------------------

# Failed sign-ins counted over this window: more than the limits below refuse further attempts.
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_LIMIT_PER_NAME = 5
LOGIN_LIMIT_PER_ADDRESS = 20


def user_named(session: Session, name: str) -> User:
    """Return the user called `name`, or raise NotFound."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound("account.user_not_found", name=name)
    return user


def login_refused(session: Session, name: str, address: str) -> bool:
    """True when `name` or `address` had too many failed sign-ins within LOGIN_WINDOW."""
    since = func.now() - LOGIN_WINDOW

    def failures(*where):
        return select(func.count()).select_from(LoginFailure).where(LoginFailure.at > since, *where).scalar_subquery()

    by_name, by_address = session.execute(
        select(failures(LoginFailure.name == name[:100]), failures(LoginFailure.address == address[:64]))
    ).one()
    return by_name >= LOGIN_LIMIT_PER_NAME or by_address >= LOGIN_LIMIT_PER_ADDRESS


def record_login_failure(session: Session, name: str, address: str) -> None:
    """Count one failed sign-in for `name` and `address` (the caller commits, also on failure)."""
    session.add(LoginFailure(name=name[:100], address=address[:64]))
    session.execute(delete(LoginFailure).where(LoginFailure.at < func.now() - 4 * LOGIN_WINDOW))


def clear_login_failures(session: Session, name: str) -> None:
    """Forget the failed sign-ins of `name` after a successful one."""
    session.execute(delete(LoginFailure).where(LoginFailure.name == name[:100]))


def end_sessions(user: User) -> None:
    """End every session of `user`: the session generation they carry no longer matches."""
    user.session_generation = (user.session_generation or 0) + 1


def set_password(session: Session, user: User, password: str) -> None:
    """Give `user` a new password and end their sessions."""
    check_new_password(password)
    user.password_hash = hash_password(password)
    end_sessions(user)


def set_role(session: Session, user: User, role: str, scope: str | None) -> None:
    """Change `user`'s role and scope (None: the whole city) and end their sessions."""
    if role not in ROLES:
        raise ValidationError("users.unknown_role", role=role, roles=", ".join(ROLES))
    if scope is not None and session.get(AdminUnit, scope) is None:
        raise NotFound("users.unknown_scope", scope=scope)
    user.role, user.scope_code = role, scope
    end_sessions(user)


def set_active(user: User, active: bool) -> None:
    """Allow or stop `user`'s sign-in; stopping ends their sessions."""
    user.active = active
    if not active:
        end_sessions(user)


def check_may_link(session: Session, admin: User, coordinator: Coordinator) -> None:
    """Raise PermissionDenied unless every base cell of every work cell `coordinator` covers lies in
    administrator `admin`'s scope (check_may_manage's rule for the cells a coordinator login reads).

    A coordinator login reads the residents of its coordinator's cells whatever its own scope: linked to a
    coordinator of another district, a district administrator's new login would read that district's people."""
    if admin.scope_code is None:
        return
    outside = (
        select(BaseCell.id)
        .join(WorkCellMember, WorkCellMember.base_cell_id == BaseCell.id)
        .join(CoordinatorAssignment, CoordinatorAssignment.work_cell_id == WorkCellMember.work_cell_id)
        .where(
            CoordinatorAssignment.coordinator_id == coordinator.id,
            ~BaseCell.community_code.startswith(area_prefix(session, admin.scope_code)),
        )
    )
    if session.scalar(select(outside.exists())):
        raise PermissionDenied("account.coordinator_outside_scope", scope=admin.scope_code)


def coordinator_by_phone(session: Session, phone: str) -> Coordinator:
    """Return the active coordinator with this phone number, or raise NotFound."""
    found = list(
        session.scalars(
            select(Coordinator).where(Coordinator.phone == phone.strip(), Coordinator.active.is_(True)).limit(2)
        )
    )
    if not found:
        raise NotFound("account.coordinator_not_found", phone=mask_typed_phone(phone))
    if len(found) > 1:
        raise Conflict("account.coordinator_ambiguous", phone=mask_typed_phone(phone))
    return found[0]


def link_coordinator(session: Session, user: User, phone: str, *, by: User | None = None) -> Coordinator:
    """Link a coordinator login to the coordinator with this phone: their work cells become its scope.

    `by`: the administrator linking it (None: the CLI's operator), who may link only a coordinator whose
    every work cell lies in their scope (check_may_link)."""
    if user.role != "coordinator":
        raise ValidationError("account.not_a_coordinator", name=user.name)
    coordinator = coordinator_by_phone(session, phone)
    if by is not None:
        check_may_link(session, by, coordinator)
    user.coordinator_id = coordinator.id
    return coordinator
