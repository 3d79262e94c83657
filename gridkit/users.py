"""Users and roles: who may sign in, with which role, over which area."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridkit.errors import Conflict, NotFound, ValidationError
from gridkit.models import ROLES, AdminUnit, User

# Roles that may read personal data (names, ID numbers, phones) inside their scope.
PII_ROLES = frozenset({"admin", "coordinator", "supervisor"})
_SCRYPT = dict(n=2**14, r=8, p=1, dklen=32)


def hash_password(password: str) -> str:
    """Return a salted scrypt hash of `password` in the form scrypt$salt$hash."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(stored: str | None, password: str) -> bool:
    """True when `password` matches the stored hash."""
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


def add_user(session: Session, name: str, role: str, *, scope: str | None = None,
             password: str | None = None, coordinator_id: int | None = None) -> User:
    """Create a user; refuse unknown roles, unknown scopes and names already taken."""
    if role not in ROLES:
        raise ValidationError("users.unknown_role", role=role, roles=", ".join(ROLES))
    if not 2 <= len(name) <= 50 or not all(c.isalnum() or c in "_.@-" for c in name) or not name.isascii():
        raise ValidationError("users.bad_name", name=name)
    if password is not None and len(password) < 8:
        raise ValidationError("users.short_password", minimum=8)
    if scope is not None and session.get(AdminUnit, scope) is None:
        raise NotFound("users.unknown_scope", scope=scope)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict("users.exists", name=name)
    user = User(name=name, role=role, scope_code=scope, coordinator_id=coordinator_id,
                password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    """Return every user, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def authenticate(session: Session, name: str, password: str) -> User | None:
    """Return the active user with this name and password, or None."""
    user = session.scalar(select(User).where(User.name == name, User.active.is_(True)))
    if user is None or not check_password(user.password_hash, password):
        return None
    return user


def may_see_personal_data(user: User | None, area_code: str | None = None) -> bool:
    """True when `user`'s role may read personal data and `area_code` lies in the user's scope."""
    if user is None or user.role not in PII_ROLES:
        return False
    if user.scope_code is None:
        return True
    # A scoped user sees personal data only where the area is known to lie in the scope.
    return area_code is not None and area_code.startswith(user.scope_code)
