"""Who acts on a case: a signed-in user (role + geographic scope) or a public reporting channel."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, PermissionDenied
from gridkit.messages import Message
from gridkit.models import User
from gridkit.standard.codes import admin_code_prefix

# Who may do what. Reporting is open to every role and to public channels (hotline, Open311).
SUPERVISING = ("supervisor", "admin")
ACTION_ROLES = {
    "report": ("admin", "supervisor", "coordinator", "planner", "analyst", "public"),
    "accept": SUPERVISING,
    "reject": SUPERVISING,
    "duplicate": SUPERVISING,
    "classify": SUPERVISING,
    "dispatch": SUPERVISING,
    # The coordinator who does the work reports back; an administrator may record it for them.
    "feedback": ("coordinator", "admin"),
    "close": SUPERVISING,
    "rework": SUPERVISING,
}


@dataclass(frozen=True)
class Actor:
    """Someone acting on cases: name (for the history), role, scope (admin unit code prefix or
    None for the whole city) and, for a coordinator, the coordinator record they are."""

    name: str
    role: str
    scope_code: str | None = None
    coordinator_id: int | None = None

    @classmethod
    def of_user(cls, user: User) -> Actor:
        """Return the actor a user account is."""
        return cls(user.name, user.role, user.scope_code, user.coordinator_id)

    @property
    def scope_pattern(self) -> str | None:
        """The SQL LIKE pattern of the community codes in this actor's scope (None: the whole city), the
        same rule as covers(): a city's scope 440300 is every code starting 4403."""
        return f"{admin_code_prefix(self.scope_code)}%" if self.scope_code else None

    def covers(self, community_code: str | None) -> bool:
        """True when a place in `community_code` (None: outside every cell) lies in this actor's scope."""
        if self.scope_code is None:
            return True
        return community_code is not None and community_code.startswith(admin_code_prefix(self.scope_code))


def public_channel(name: str | None) -> Actor:
    """Return the actor for a report from a public channel (hotline, app, Open311): may only report."""
    return Actor(name or "public", "public")


def actor_for(session: Session, username: str | None) -> Actor:
    """Return the actor of an active user account; refuse a missing or unknown name."""
    if not username:
        raise PermissionDenied("incident.actor_missing")
    user = session.scalar(select(User).where(User.name == username, User.active.is_(True)))
    if user is None:
        raise NotFound("incident.actor_unknown", user=username)
    return Actor.of_user(user)


def as_actor(actor: Actor | User | str | None) -> Actor:
    """Return an Actor from an Actor, a User, or the name of a public channel (None: 'public')."""
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, User):
        return Actor.of_user(actor)
    return public_channel(actor)


def check_role(actor: Actor, action: str) -> None:
    """Raise PermissionDenied unless the actor's role may take `action`."""
    allowed = ACTION_ROLES[action]
    if actor.role not in allowed:
        raise PermissionDenied(
            "incident.role_denied",
            user=actor.name,
            role=Message(f"role.{actor.role}"),
            action=Message(f"incident.action.{action}"),
            roles=[Message(f"role.{r}") for r in allowed if r != "public"],
        )


def check_scope(actor: Actor, community_code: str | None, case_code: str) -> None:
    """Raise PermissionDenied unless the case's place lies in the actor's scope."""
    if not actor.covers(community_code):
        raise PermissionDenied(
            "incident.out_of_scope",
            user=actor.name,
            scope=actor.scope_code,
            incident=case_code,
            area=community_code or "-",
        )
