"""Coordinators' names and phones, and reporters, in incident views: the platform's personal-data rule applied.

Shown in clear only to an actor whose role may read personal data in the area concerned
(gridkit.users.may_see_personal_data), and then recorded in the audit log (gridkit.pii.mask_or_reveal,
in the caller's transaction); masked for everyone else, and for callers who name no actor.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from gridkit.audit import PERSONAL_DATA_READ, record
from gridkit.incidents.actors import Actor
from gridkit.pii import holds_personal_text, mask_or_reveal, mask_personal_text
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


# The personal fields of one case as shown: its coordinator's name and phone, who reported it (a
# citizen's name or e-mail from a public channel; exports mask it the same way), and its free text (the
# description, the history's notes, the photos' file names) when that carries a phone or citizen ID
# number: a call-back number the reporter left, a note "居民 138… 已联系", a photo named by a number.
CASE_FIELDS = ("name", "phone", "reporter", "description", "notes", "photos")


@dataclass
class CaseShown:
    """One case's personal fields as shown to an actor (masked, or clear and audited)."""

    reporter: str | None
    description: str | None
    notes: list[str | None]
    photos: list[str | None]


def protect_case(
    session: Session,
    coordinator: dict | None,
    reporter: str | None,
    actor: Actor | None,
    *,
    area: str | None,
    incident: str,
    description: str | None = None,
    notes: list[str | None] = (),
    photos: list[str | None] = (),
) -> CaseShown:
    """Mask one case's coordinator (in place), reporter and the phone and ID numbers in its description,
    notes and photos' names, or leave them clear for an actor who may read them in `area` and record that read as one
    audit row (naming only the fields that held personal data); return what is shown."""
    notes, photos = list(notes), list(photos)
    shown = {"name": None, "phone": None, **(coordinator or {}), "reporter": reporter}
    shown.update(description=description, notes=notes, photos=photos)
    fields = tuple(f for f in CASE_FIELDS[:3] if shown.get(f))
    fields += ("description",) if holds_personal_text(description) else ()
    fields += tuple(f for f in ("notes", "photos") if any(holds_personal_text(n) for n in shown[f]))
    if fields:
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
    return CaseShown(shown["reporter"], shown["description"], shown["notes"], shown["photos"])


def protect_case_texts(session: Session, items: list[dict], actor: Actor | None) -> list[dict]:
    """Mask the phone and citizen ID numbers in the descriptions of a list of cases (`items`, each with
    its code, community and description), in place, except where `actor` may read personal data in the
    case's community; those left clear are recorded as one audit row naming the cases. Return `items`."""
    clear = []
    for item in items:
        if not holds_personal_text(item.get("description")):
            continue
        if may_read_coordinators(actor, item.get("community")):
            clear.append(item["code"])
        else:
            item["description"] = mask_personal_text(item["description"])
    if clear:
        record(
            session,
            actor.name,
            PERSONAL_DATA_READ,
            object_type="incident",
            detail_fields=["description"],
            count=len(clear),
            incidents=clear,
        )
    return items
