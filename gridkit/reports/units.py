"""Report units and tables: which base cells make each district, street, community, cell or work cell.

A report counts subjects through their base cell (one rule for every statistic) and groups base
cells into units: by code prefix for admin units and cells (base cells of the edition in force),
or through a department's work grid version in force for work cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.grids.work.membership import MEMBERS_IN_EDITION_SQL
from gridkit.io.export_layers import edition_at, versions_at
from gridkit.models import AdminUnit

GROUPINGS = ("district", "street", "community", "cell", "work-cell")
_PREFIX = {"district": 6, "street": 9, "community": 12, "cell": 15}


@dataclass
class Section:
    """One table of a report: a title key, columns (key, label key) and rows of dicts."""

    title: str
    columns: list[str]
    rows: list[dict]
    chart: str | None = None  # the column the chart draws, per row's unit
    # The whole area as one unit, counted by the same SQL (not summed from the rows: a household
    # living in two communities is one household of the street): the files' last row.
    total: dict | None = None
    # The total row's label (catalogue key): what it counts where that is not the rows' sum.
    total_label: str = "report.total"


@dataclass
class ReportResult:
    """A finished report: its name, parameters, sections and notes (in the catalogue's words)."""

    name: str
    params: dict
    sections: list[Section]
    generated_at: datetime
    notes: list = field(default_factory=list)

    @property
    def main(self) -> Section:
        """Return the first section: the one CSV files, previews and charts show."""
        return self.sections[0]

    def to_dict(self) -> dict:
        """Return the report as JSON-ready data."""
        return {
            "report": self.name,
            "params": self.params,
            "generated_at": self.generated_at.isoformat(),
            "sections": [
                {"title": s.title, "columns": s.columns, "rows": s.rows}
                | ({"total": s.total, "total_label": s.total_label} if s.total is not None else {})
                for s in self.sections
            ],
            "notes": [str(n) for n in self.notes],
        }


@dataclass
class Units:
    """The SQL of (cell_id, code, name) rows for a grouping, its parameters and a label."""

    sql: str
    params: dict
    by: str
    dept: str | None = None
    version: int | None = None
    edition: str | None = None
    area_name: str | None = None
    area: str | None = None
    # The column naming each base cell's unit of the grouping: `code`, except in the whole area
    # (`whole_area`), where `code` is one for all and `part` keeps each cell's own unit.
    part: str = "code"


def units(
    session: Session, by: str, *, dept: str | None = None, area: str | None = None, at: datetime | None = None
) -> Units:
    """Return the base cells of each unit of grouping `by`, optionally inside admin unit `area`."""
    if by not in GROUPINGS:
        raise ValidationError("report.unknown_grouping", by=by, groupings=", ".join(GROUPINGS))
    unit = session.get(AdminUnit, area) if area else None
    if area and unit is None:
        raise NotFound("export.unknown_area", area=area)
    edition = edition_at(session, at)
    named = {"edition": edition.name, "area_name": unit.name if unit else None, "area": area}
    params = {"edition": edition.id}
    # Without an area no LIKE at all: the planner then knows every cell of the edition is in.
    in_area = ""
    if area:
        params["area"] = area + "%"
        in_area = " AND b.code LIKE :area"
    if by == "work-cell":
        if not dept:
            raise ValidationError("report.work_cell_needs_dept")
        version = versions_at(session, dept, None, at)[0]
        # A version may be drawn on an older edition: its base cells are matched by code.
        sql = (
            f"SELECT m.cell_id, w.code AS code, w.name AS name FROM ({MEMBERS_IN_EDITION_SQL}) m "
            "JOIN work_cell w ON w.id = m.work_cell_id JOIN base_cell b ON b.id = m.cell_id WHERE true" + in_area
        )
        params.update(version=version.id)
        return Units(sql, params, by, dept, version.number, **named)
    n = _PREFIX[by]
    if by == "cell":
        sql = (
            "SELECT b.id AS cell_id, b.code AS code, a.name AS name FROM base_cell b "
            "LEFT JOIN admin_unit a ON a.code = b.community_code "
            "WHERE b.edition_id = :edition" + in_area
        )
    else:
        sql = (
            f"SELECT b.id AS cell_id, left(b.code, {n}) AS code, a.name AS name FROM base_cell b "
            f"LEFT JOIN admin_unit a ON a.code = left(b.code, {n}) "
            "WHERE b.edition_id = :edition" + in_area
        )
    return Units(sql, params, by, **named)


def whole_area(u: Units) -> Units:
    """Return `u` with all its base cells as one unit (code and name empty): the report's total."""
    from dataclasses import replace

    # A code of its own ('', never NULL: units are joined by code); each cell's unit kept as `part`.
    return replace(
        u, sql=f"SELECT w.cell_id, ''::text AS code, NULL::text AS name, w.code AS part FROM ({u.sql}) w", part="part"
    )


def period(date_from, date_to) -> tuple[datetime | None, datetime | None]:
    """Return the [from, to) bounds of a period given as ISO dates or times (to: whole day included)."""
    from gridkit.rules import period_bounds

    start, end = period_bounds(date_from, date_to)
    if start and end and end <= start:
        raise ValidationError("report.bad_period", start=str(date_from), end=str(date_to))
    return start, end
