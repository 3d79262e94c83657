"""Erasing a person's data: a resident who moved away, or a data subject's erasure request (PIPL art. 47).

What a resident's row held goes in one transaction, the caller's:

- the `resident` row (name, phone, birth date, household, the ID's keyed hash and masked form, place) and,
  by its foreign key's ON DELETE CASCADE, its `resident_cell` row: no other table references a resident;
- the resident summary of the base cell it was in (`resident_cell_summary`, `resident_split_household`) is
  recounted at once (gridkit.reports.resident_summary.residents_changed), so every count of residents and
  households is right from the next read on; the other members of its household stay, counted as before;
- the audit log keeps what it holds of the resident (the row id of earlier reads) and gains one row naming
  the row id erased, never the ID number, the name or the phone.

Cases keep their reporter as free text (no link to a resident): they are not changed.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gridkit.audit import PERSONAL_DATA_ERASED, record
from gridkit.errors import NotFound, PermissionDenied, ValidationError
from gridkit.models import BaseCell, Resident, ResidentCell
from gridkit.pii import hash_citizen_id
from gridkit.reports.resident_summary import residents_changed
from gridkit.users import may_erase_personal_data


def resident_to_erase(session: Session, user, *, id_number: str | None = None, row_id: int | None = None, pii_key=None):
    """Return (id, masked ID, base cell code, community code) of the resident with this citizen ID number
    (matched by its keyed hash) or row id; NotFound when there is none (the number is not repeated),
    PermissionDenied unless `user` may erase personal data where it lives (may_erase_personal_data)."""
    if (id_number is None) == (row_id is None):
        raise ValidationError("erase.one_key")
    if id_number is not None:
        where = Resident.id_number_hash == hash_citizen_id(pii_key, id_number)
    else:
        where = Resident.id == row_id
    row = session.execute(
        select(Resident.id, Resident.id_number_masked, BaseCell.code, BaseCell.community_code)
        .outerjoin(ResidentCell, ResidentCell.resident_id == Resident.id)
        .outerjoin(BaseCell, BaseCell.id == ResidentCell.base_cell_id)
        .where(where)
    ).first()
    if row is None:
        raise NotFound("erase.resident_not_found" if row_id is None else "erase.resident_id_not_found", id=row_id)
    _check_may_erase(user, row.community_code)
    return row


def _check_may_erase(user, community: str | None) -> None:
    if not may_erase_personal_data(user, community):
        raise PermissionDenied("erase.denied", role=getattr(user, "role", None) or "-", area=community or "-")


def erase_resident(session: Session, resident_id: int, *, user, actor: str, via: str = "cli") -> dict:
    """Delete resident `resident_id` and its base cell row, recount its cell's summary and record the erasure;
    return {"id", "base_cell"}. Refused unless `user` may erase personal data where the resident lives."""
    row = session.execute(
        select(Resident.id, ResidentCell.base_cell_id, BaseCell.code, BaseCell.community_code)
        .outerjoin(ResidentCell, ResidentCell.resident_id == Resident.id)
        .outerjoin(BaseCell, BaseCell.id == ResidentCell.base_cell_id)
        .where(Resident.id == resident_id)
        .with_for_update(of=Resident)
    ).first()
    if row is None:
        raise NotFound("erase.resident_id_not_found", id=resident_id)
    _check_may_erase(user, row.community_code)
    session.execute(delete(Resident).where(Resident.id == resident_id))  # its resident_cell row by cascade
    residents_changed(session, [row.base_cell_id] if row.base_cell_id is not None else [])
    record(session, actor, PERSONAL_DATA_ERASED, object_type="resident", object_id=resident_id, via=via)
    return {"id": resident_id, "base_cell": row.code}
