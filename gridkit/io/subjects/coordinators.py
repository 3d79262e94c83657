"""Import a coordinator roster: name, phone, department, work cells. See gridkit.io.subjects."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from gridkit.io.problems import problem
from gridkit.io.subjects.common import (
    _LENGTHS,
    _PAIRS_PER_STATEMENT,
    _WORK_CELL_SEPARATORS,
    SubjectImportResult,
    _phone,
)
from gridkit.io.subjects.job import Job
from gridkit.messages import Message
from gridkit.models import Coordinator, CoordinatorAssignment, Department, WorkCell, WorkGridVersion
from gridkit.pii import mask_typed as _mask
from gridkit.rules import VersionState

__all__ = ["import_coordinators"]


def import_coordinators(
    session: Session,
    path,
    *,
    mapping: dict | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    sheet: str | None = None,
    src_crs: str | None = None,
) -> SubjectImportResult:
    """Import a coordinator roster (name, phone, dept, work_cells) all or nothing.

    One row per person per department; the phone identifies the person across rows and against
    the database (多员合一). Work cells are codes of the department's current published version.
    `src_crs` is accepted for a uniform signature and not used. Never commits.
    """
    job = Job(
        session, "coordinators", path, mapping=mapping, encoding=encoding, src_crs=src_crs, layer=layer, sheet=sheet
    )
    job.load_all()
    people = _people(job, _departments(session))
    in_db = _people_in_db(job, people)
    if job.problems:
        job.refuse()

    new_people = [p for p in people if p not in in_db]
    with session.begin_nested():
        ids = {}
        if new_people:
            new_ids = session.scalars(
                insert(Coordinator).returning(Coordinator.id, sort_by_parameter_order=True),
                [{"name": people[p]["name"], "phone": p, "active": True} for p in new_people],
            )
            ids.update(zip(new_people, new_ids))
        reactivated = []
        for phone, rows in in_db.items():
            ids[phone] = rows[0].id
            if not rows[0].active:
                reactivated.append(rows[0].id)
        if reactivated:
            session.execute(update(Coordinator).where(Coordinator.id.in_(reactivated)).values(active=True))
            job.notes.append(
                problem(
                    "reactivated",
                    Message("imports.reactivated", count=len(reactivated), ids=", ".join(map(str, reactivated))),
                )
            )
        pairs = [{"coordinator_id": ids[p], "work_cell_id": c} for p in people for c in sorted(people[p]["cells"])]
        added = 0
        for start in range(0, len(pairs), _PAIRS_PER_STATEMENT):  # bind parameters are limited to 65535
            chunk = pairs[start : start + _PAIRS_PER_STATEMENT]
            added += len(
                session.execute(
                    pg_insert(CoordinatorAssignment)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .returning(CoordinatorAssignment.work_cell_id)
                ).all()
            )
        session.flush()
    return SubjectImportResult(
        "coordinators",
        created=len(new_people),
        updated=len(people) - len(new_people),
        notes=job.notes,
        source=job.source,
        extra={"assignments": added, "departments": len({d for p in people.values() for d in p["depts"]})},
    )


def _people(job: Job, departments) -> dict[str, dict]:
    """Return phone → {"name", "position", "cells", "depts"} of the roster's rows, recording their problems."""
    n = len(job.table.rows)
    people: dict[str, dict] = {}  # phone → {"name", "position", "cells": set of work cell ids}
    seen_dept: dict = {}
    for position in range(n):
        phone = _phone(job, position, required=True, code=None)
        if phone is not None:
            job.row_code[position] = _mask(phone)
        name = job.text(position, "name", required=True, limit=_LENGTHS["name"])
        dept = _department(job, position, departments)
        cells = _work_cells(job, position, dept)
        if phone is None or name is None:
            continue
        code = _mask(phone)
        person = people.get(phone)
        if person is None:
            person = people[phone] = {"name": name, "position": position, "cells": set(), "depts": set()}
        elif person["name"] != name:
            job.report(
                position,
                "phone_conflict",
                "name",
                Message(
                    "imports.phone_other_name",
                    phone=code,
                    first=Message(f"imports.unit.{job.table.unit}", number=job.table.numbers[person["position"]]),
                ),
                code,
            )
            continue
        if dept is not None:
            if (phone, dept["code"]) in seen_dept:
                job.report(
                    position,
                    "duplicate_row",
                    "dept",
                    Message(
                        "imports.coordinator_again",
                        phone=code,
                        dept=dept["code"],
                        first=Message(
                            f"imports.unit.{job.table.unit}", number=job.table.numbers[seen_dept[phone, dept["code"]]]
                        ),
                    ),
                    code,
                )
                continue
            seen_dept[phone, dept["code"]] = position
            person["depts"].add(dept["code"])
        person["cells"].update(cells)
    return people


def _people_in_db(job: Job, people: dict[str, dict]) -> dict[str, list]:
    """Return phone → coordinators in the database with that phone; record conflicts with the roster."""
    session = job.session
    in_db: dict[str, list] = defaultdict(list)
    if people:
        for row in session.execute(
            text("SELECT id, name, phone, active FROM coordinator WHERE phone = ANY(:p) ORDER BY id"),
            {"p": list(people)},
        ):
            in_db[row.phone].append(row)
    for phone, person in people.items():
        found = in_db.get(phone, [])
        code = _mask(phone)
        if len(found) > 1:
            job.report(
                person["position"],
                "phone_conflict",
                "phone",
                Message("imports.phone_shared", count=len(found), phone=code, ids=", ".join(str(r.id) for r in found)),
                code,
            )
        elif found and found[0].name != person["name"]:
            job.report(
                person["position"],
                "phone_conflict",
                "name",
                Message("imports.phone_in_db", phone=code, id=found[0].id),
                code,
            )
    return in_db


def _departments(session: Session) -> dict:
    """Return {code or name: {"code", "version": current version id or None, "cells": {code: id}}}."""
    versions = dict(
        session.execute(
            select(WorkGridVersion.dept_code, WorkGridVersion.id).where(
                WorkGridVersion.status == VersionState.PUBLISHED, WorkGridVersion.valid_to.is_(None)
            )
        ).all()
    )
    cells: dict[int, dict[str, int]] = defaultdict(dict)
    if versions:
        for version_id, code, cell_id in session.execute(
            select(WorkCell.version_id, WorkCell.code, WorkCell.id).where(
                WorkCell.version_id.in_(list(versions.values()))
            )
        ):
            cells[version_id][code] = cell_id
    result = {}
    for code, name in session.execute(select(Department.code, Department.name)):
        version = versions.get(code)
        entry = {"code": code, "name": name, "version": version, "cells": cells.get(version, {})}
        result[code] = entry
        result.setdefault(name, entry)
    return result


def _department(job: Job, position: int, departments: dict) -> dict | None:
    value = job.value(position, "dept")
    if value is None:
        job.report(position, "missing_value", "dept", Message("imports.missing_dept"))
        return None
    dept = departments.get(value)
    if dept is None:
        known = ", ".join(sorted(k for k, v in departments.items() if k == v["code"])) or Message("imports.none_yet")
        job.report(
            position,
            "unknown_department",
            "dept",
            Message("imports.unknown_department", value=value, known=known),
        )
        return None
    if dept["version"] is None:
        job.report(
            position,
            "no_published_version",
            "dept",
            Message("imports.no_published_version", dept=dept["code"]),
        )
        return None
    return dept


def _work_cells(job: Job, position: int, dept: dict | None) -> set[int]:
    value = job.value(position, "work_cells")
    if value is None:
        job.report(
            position,
            "missing_value",
            "work_cells",
            Message("imports.missing_work_cells"),
        )
        return set()
    if job.lossy(position, "work_cells"):  # a 20-digit code typed into a number cell: Excel kept 15 digits
        job.report(position, "number_precision", "work_cells", Message("imports.work_cell_as_number", raw=value), value)
        return set()
    codes = [c for c in _WORK_CELL_SEPARATORS.split(value) if c]
    if dept is None:
        return set()
    unknown = [c for c in codes if c not in dept["cells"]]
    if unknown:
        job.report(
            position,
            "unknown_work_cell",
            "work_cells",
            Message("imports.unknown_work_cells", cells=", ".join(unknown), dept=dept["code"]),
        )
    return {dept["cells"][c] for c in codes if c in dept["cells"]}
