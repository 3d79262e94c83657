"""Publishing a work grid version (validate, cache geometry, close the previous one) and rollback."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.errors import Conflict, InvalidTransition, ValidationError
from gridkit.grids.work.validation import validate_version
from gridkit.grids.work.versions import (
    current_version,
    lock_department,
    start_draft,
    state_name,
    touch_draft,
    version_by_number,
)
from gridkit.messages import Message
from gridkit.models import WorkGridVersion
from gridkit.rules import VersionState


def _cache_work_cell_geometry(session: Session, version: WorkGridVersion) -> None:
    """Store each work cell's geometry: the union of its base cells."""
    session.execute(
        text(
            "UPDATE work_cell w SET geom = u.geom FROM ("
            " SELECT m.work_cell_id AS id, ST_Multi(ST_UnaryUnion(ST_Collect(b.geom))) AS geom"
            " FROM work_cell_member m JOIN base_cell b ON b.id = m.base_cell_id"
            " WHERE m.version_id = :v GROUP BY m.work_cell_id) u WHERE w.id = u.id"
        ),
        {"v": version.id},
    )


def publish(
    session: Session,
    version: WorkGridVersion,
    *,
    at: datetime | None = None,
    by: str | None = None,
    coordinator_required: bool = False,
    expected_revision: int | None = None,
    refuse_stale: bool = True,
) -> WorkGridVersion:
    """Publish a draft: validate, cache work cell geometries, close the previous version's validity.

    With expected_revision, a draft changed since the publisher looked at it is refused (Conflict).
    Publishes of one department are serialised (a row lock on the department, held until commit):
    of two planners publishing at once, the second waits, then finds the draft published already
    (InvalidTransition) or a version published after its draft was started, which its draft would
    silently undo (Conflict, naming it): it is refused, never a second version in force.
    `refuse_stale=False` skips that last check, for a draft started under the lock (rollback).
    """
    lock_department(session, version.dept_code)
    session.refresh(version)  # another transaction may have published it while this one waited
    if version.status != VersionState.DRAFT:
        raise InvalidTransition(
            "work.publish_not_draft", number=version.number, dept=version.dept_code, status=state_name(version.status)
        )
    if refuse_stale:
        _refuse_if_published_since(session, version)
    if expected_revision is not None:
        touch_draft(session, version, expected_revision=expected_revision, by=by)
    savepoint = session.begin_nested()
    # The union is computed once: validation checks connectivity on it and publishing keeps it.
    _cache_work_cell_geometry(session, version)
    errors = [
        p
        for p in validate_version(session, version, coordinator_required=coordinator_required, geometry_cached=True)
        if p.severity == "error"
    ]
    if errors:
        savepoint.rollback()
        raise ValidationError(
            "work.publish_refused",
            draft=version.id,
            problems=[p.to_dict() for p in errors],
            reasons=[p.message for p in errors],
        )
    savepoint.commit()
    at = at or rules.now()
    previous = current_version(session, version.dept_code)
    if previous is not None:
        if previous.valid_from and previous.valid_from > at:
            raise InvalidTransition(
                "work.valid_from_later",
                number=previous.number,
                valid_from=rules.iso(previous.valid_from),
                at=rules.iso(at),
            )
        previous.valid_to = at
        previous.status = VersionState.RETIRED
        session.flush()
    version.status = VersionState.PUBLISHED
    version.published_at = rules.now()
    version.valid_from = at
    version.updated_by = by or version.updated_by
    session.flush()
    return version


def rollback(
    session: Session, dept_code: str, to_number: int, *, by: str | None = None, at: datetime | None = None
) -> WorkGridVersion:
    """Publish a copy of an earlier version as a new version (published versions never change)."""
    source = version_by_number(session, dept_code, to_number)
    if source.status == VersionState.DRAFT:
        raise InvalidTransition("work.rollback_to_draft", number=to_number)
    lock_department(session, dept_code)
    copy = start_draft(session, dept_code, from_version=to_number, by=by, note=f"rollback to version {to_number}")
    try:
        return publish(session, copy, by=by, at=at, refuse_stale=False)
    except ValidationError as exc:
        # The copy is not kept (the caller rolls back): say what is wrong with the version and what to do.
        raise ValidationError(
            "work.rollback_refused",
            number=to_number,
            dept=dept_code,
            reasons=exc.params["reasons"],
            problems=exc.problems,
        ) from None


def _refuse_if_published_since(session: Session, draft: WorkGridVersion) -> None:
    """Refuse (Conflict) a draft when the department's version in force is not the one that was in force when the
    draft was started (recorded then, under the department's lock): publishing it would undo that version without
    anyone deciding so. Versions, not times: the publish time is the application's clock and a draft's creation
    time the database's transaction start, and a draft started while another version was being published was
    not told apart by them."""
    current = session.scalar(
        select(WorkGridVersion)
        .where(WorkGridVersion.dept_code == draft.dept_code, rules.version_in_force(WorkGridVersion))
        .execution_options(populate_existing=True)
    )
    if current is None or current.id == draft.in_force_at_start_id:
        return
    raise Conflict(
        "work.published_since_draft",
        draft=draft.id,
        dept=draft.dept_code,
        number=current.number,
        who=current.updated_by or current.created_by or Message("work.someone"),
        when=rules.iso(current.published_at),
    )
