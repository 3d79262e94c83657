"""Coordinators' names and phones, and reporters, in incident views: the platform's personal-data rule applied.

Shown in clear only to an actor whose role may read personal data in the area concerned
(gridkit.users.may_see_personal_data), and then recorded in the audit log (gridkit.pii.mask_or_reveal,
in the caller's transaction); masked for everyone else, and for callers who name no actor.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gridkit.incidents.actors import Actor
from gridkit.pii import mask_or_reveal
from gridkit.users import may_see_personal_data

# The personal fields of a coordinator record.
COORDINATOR_FIELDS = ("name", "phone")


def may_read_coordinators(actor: Actor | None, area: str | None) -> bool:
    """True when `actor` may read coordinators' names and phones for a place in admin unit `area`."""
    return actor is not None and may_see_personal_data(actor, area)


def protect_coordinators(
    session: Session, records: list[dict], actor: Actor | None, *, area: str | None, **detail
) -> list[dict]:
    """Mask the coordinators' names and phones in `records` in place, or leave them clear for an actor
    who may read them in `area` and record that read in the audit log; return the records.

    `detail` goes into the audit row (what was shown: e.g. incident=…, or evaluation=…).
    """
    carrying = [r for r in records if any(r.get(f) for f in COORDINATOR_FIELDS)]
    if not carrying:
        return records
    fields = tuple(f for f in COORDINATOR_FIELDS if any(r.get(f) for r in carrying))
    mask_or_reveal(
        session,
        carrying,
        reveal=may_read_coordinators(actor, area),
        actor=actor.name if actor is not None else "anonymous",
        object_type="coordinator",
        fields=fields,
        **detail,
    )
    return records


# The personal fields of one case as shown: its coordinator's name and phone, and who reported it
# (a citizen's name or e-mail from a public channel; exports mask it the same way).
CASE_FIELDS = ("name", "phone", "reporter")


def protect_case(
    session: Session,
    coordinator: dict | None,
    reporter: str | None,
    actor: Actor | None,
    *,
    area: str | None,
    incident: str,
) -> str | None:
    """Mask one case's coordinator (in place) and reporter, or leave them clear for an actor who may
    read them in `area` and record that read as one audit row; return the reporter as shown."""
    shown = {"name": None, "phone": None, **(coordinator or {}), "reporter": reporter}
    fields = tuple(f for f in CASE_FIELDS if shown.get(f))
    if not fields:
        return reporter
    mask_or_reveal(
        session,
        [shown],
        reveal=may_read_coordinators(actor, area),
        actor=actor.name if actor is not None else "anonymous",
        object_type="incident",
        object_id=incident,
        fields=fields,
        incident=incident,
    )
    if coordinator is not None:
        coordinator.update(name=shown["name"], phone=shown["phone"])
    return shown["reporter"]
