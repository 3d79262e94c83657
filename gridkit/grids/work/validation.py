"""Validation of a work grid version: coverage, jurisdiction, connectivity, codes, coordinators."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.admin import area_prefix
from gridkit.errors import ValidationError
from gridkit.grids.base import current_edition
from gridkit.grids.work.membership import check_work_cell
from gridkit.grids.work.versions import version_profile
from gridkit.messages import Message
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition, Department, WorkCell, WorkCellMember, WorkGridVersion
from gridkit.rules import VersionState
from gridkit.standard import codes


@dataclass
class Problem:
    """One thing wrong with a work grid version; `message` is rendered in the reader's language."""

    type: str
    severity: str  # "error" blocks publishing, "warning" does not
    message: Message
    codes: list[str] = field(default_factory=list)

    def render(self, lang: str | None = None) -> str:
        """Return the problem's sentence in `lang` (default zh-CN)."""
        return self.message.render(lang)

    def to_dict(self, lang: str | None = None) -> dict:
        """Return the problem as a JSON-ready dict: the sentence in `lang`, and its key and parameters."""
        return {
            "type": self.type,
            "severity": self.severity,
            "message": self.render(lang),
            "key": self.message.key,
            "params": self.message.params,
            "codes": list(self.codes),
        }


def validate_version(
    session: Session, version: WorkGridVersion, *, coordinator_required: bool = False, geometry_cached: bool = False
) -> list[Problem]:
    """Return every problem of the version: coverage of the jurisdiction, connectivity, codes, coordinators.

    With geometry_cached, connectivity is read from work_cell.geom (just computed by publish).
    """
    dept = session.get(Department, version.dept_code)
    scope = area_prefix(session, dept.jurisdiction_code)
    problems = _edition_problems(session, version)
    problems += _coverage_problems(session, version, scope)
    problems += _multipart_problems(session, version, geometry_cached)
    problems += _code_problems(session, version)
    problems += _coordinator_problems(session, version, coordinator_required)
    return problems


def _edition_problems(session: Session, version: WorkGridVersion) -> list[Problem]:
    """Return an error when a draft is drawn on a base grid edition that is no longer in force.

    Its coverage would be checked against the retired edition's cells: cells the new edition added
    would be left in no work cell, unseen. Published and retired versions keep their edition.
    """
    in_force = current_edition(session)
    if version.status != VersionState.DRAFT or in_force is None or in_force.id == version.base_edition_id:
        return []
    drawn_on = session.get(BaseGridEdition, version.base_edition_id)
    return [
        Problem(
            "retired_base_edition",
            "error",
            Message(
                "work.problem.retired_base_edition",
                edition=drawn_on.name,
                retired_at=rules.iso(drawn_on.retired_at),
                current=in_force.name,
            ),
        )
    ]


def _listed(codes: list[str], most: int = 10) -> str:
    """Return the first `most` codes joined, with how many more there are."""
    return ", ".join(codes[:most]) + (f" … (+{len(codes) - most})" if len(codes) > most else "")


def _coverage_problems(session: Session, version: WorkGridVersion, scope: str) -> list[Problem]:
    """Return the base cells of the jurisdiction (area code prefix `scope`) in no work cell, and those outside it."""
    problems: list[Problem] = []
    uncovered = session.scalars(
        text(
            # NOT IN over one hashed set: the planner misjudges NOT EXISTS on a fresh draft's rows.
            "SELECT b.code FROM base_cell b WHERE b.edition_id = :e AND b.community_code LIKE :scope "
            "AND b.id NOT IN (SELECT m.base_cell_id FROM work_cell_member m WHERE m.version_id = :v "
            "                 UNION ALL SELECT x.base_cell_id FROM work_grid_exclusion x WHERE x.version_id = :v) "
            "ORDER BY b.code"
        ),
        {"e": version.base_edition_id, "v": version.id, "scope": scope + "%"},
    ).all()
    if uncovered:
        problems.append(
            Problem(
                "unassigned_base_cells",
                "error",
                Message("work.problem.unassigned_base_cells", count=len(uncovered), codes=_listed(uncovered)),
                list(uncovered),
            )
        )
    outside = session.scalars(
        text(
            "SELECT b.code FROM work_cell_member m JOIN base_cell b ON b.id = m.base_cell_id "
            "WHERE m.version_id = :v AND b.community_code NOT LIKE :scope ORDER BY b.code"
        ),
        {"v": version.id, "scope": scope + "%"},
    ).all()
    if outside:
        problems.append(
            Problem(
                "outside_jurisdiction",
                "error",
                Message("work.problem.outside_jurisdiction", count=len(outside), scope=scope),
                list(outside),
            )
        )
    return problems


def _multipart_problems(session: Session, version: WorkGridVersion, geometry_cached: bool) -> list[Problem]:
    """Return the work cells whose base cells fall apart in more than one piece."""
    parts_sql = (
        "SELECT w.code, ST_NumGeometries(w.geom) FROM work_cell w WHERE w.version_id = :v "
        "AND ST_NumGeometries(w.geom) > 1 ORDER BY w.code"
        if geometry_cached
        else "SELECT w.code, ST_NumGeometries(ST_Multi(ST_UnaryUnion(ST_Collect(b.geom)))) FROM work_cell w "
        "JOIN work_cell_member m ON m.work_cell_id = w.id JOIN base_cell b ON b.id = m.base_cell_id "
        "WHERE w.version_id = :v GROUP BY w.code HAVING "
        "ST_NumGeometries(ST_Multi(ST_UnaryUnion(ST_Collect(b.geom)))) > 1 ORDER BY w.code"
    )
    return [
        Problem(
            "multipart_work_cell",
            "error",
            Message("work.problem.multipart_work_cell", code=code, parts=parts),
            [code],
        )
        for code, parts in session.execute(text(parts_sql), {"v": version.id})
    ]


def _coordinator_problems(session: Session, version: WorkGridVersion, coordinator_required: bool) -> list[Problem]:
    """Return the work cells without an active coordinator (an error only when `coordinator_required`)."""
    lonely = session.scalars(
        text(
            "SELECT w.code FROM work_cell w WHERE w.version_id = :v AND NOT EXISTS "
            "(SELECT 1 FROM coordinator_assignment a JOIN coordinator c ON c.id = a.coordinator_id "
            " WHERE a.work_cell_id = w.id AND c.active) ORDER BY w.code"
        ),
        {"v": version.id},
    ).all()
    if not lonely:
        return []
    return [
        Problem(
            "no_coordinator",
            "error" if coordinator_required else "warning",
            Message("work.problem.no_coordinator", count=len(lonely)),
            list(lonely),
        )
    ]


def _code_problems(session: Session, version: WorkGridVersion) -> list[Problem]:
    """Return the work cells whose code breaks the layout or whose area part names another street than their cells.

    An area part naming a community or a street must name the street of every base cell of the
    work cell (a work cell of community 440304001001 may take in cells of a neighbouring community
    of the same street, not of street 440304002); one naming a district or city must hold them.
    """
    profile = version_profile(session, version)
    known_areas = set(session.scalars(select(AdminUnit.code)))
    communities: dict[str, list[str]] = {}
    for code, community in session.execute(
        select(WorkCell.code, BaseCell.community_code)
        .distinct()
        .join(WorkCellMember, WorkCellMember.work_cell_id == WorkCell.id)
        .join(BaseCell, BaseCell.id == WorkCellMember.base_cell_id)
        .where(WorkCell.version_id == version.id)
        .order_by(WorkCell.code, BaseCell.community_code)
    ):
        communities.setdefault(code, []).append(community)
    problems = []
    for code in session.scalars(select(WorkCell.code).where(WorkCell.version_id == version.id).order_by(WorkCell.code)):
        try:
            check_work_cell(session, version, code, known_areas=known_areas, profile=profile)
        except ValidationError as exc:
            problems.append(Problem("work_cell_code", "error", Message(exc.key, **exc.params), [code]))
            continue
        admin = codes.area_admin_code(codes.work_cell_parts(code, profile)[1], profile)
        prefix = codes.street_code_of(admin) or area_prefix(session, admin)
        foreign = [c for c in communities.get(code, []) if not c.startswith(prefix)]
        if foreign:
            problems.append(
                Problem(
                    "work_cell_area",
                    "error",
                    Message("work.problem.work_cell_area", code=code, area=prefix, communities=", ".join(foreign[:5])),
                    [code],
                )
            )
    return problems
