"""The incident category table in the database, seeded from a CSV the deployment can extend."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.models import IncidentCategory
from gridkit.standard.categories import STEP_DEFAULT_HOURS, Category, categories_from_rows, load_categories


def seed_standard_categories(session: Session) -> int:
    """Seed the packaged standard categories into an empty category table (a new city's `gridkit db up`);
    return how many, 0 when the table has categories already (a deployment's own are never overwritten)."""
    if session.scalar(select(IncidentCategory.code).limit(1)) is not None:
        return 0
    return seed_categories(session)


def seed_categories(session: Session, path: str | Path | None = None) -> int:
    """Insert or update the categories of a CSV (default: the packaged seed); return how many."""
    try:
        categories = load_categories() if path is None else _read_categories(Path(path))
    except ValueError as exc:
        raise ValidationError(str(exc))
    if not categories:
        return 0
    rows = [
        {
            "code": c.code,
            "kind": c.kind,
            "major_code": c.major_code,
            "major_name": c.major_name,
            "name": c.name,
            "time_limit_hours": c.time_limit_hours,
            "dept_code": c.dept_code,
            "step_hours": dict(c.step_hours),
            "around_the_clock": c.around_the_clock,
        }
        for c in categories
    ]
    stmt = insert(IncidentCategory).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={
            k: stmt.excluded[k]
            for k in (
                "kind",
                "major_code",
                "major_name",
                "name",
                "time_limit_hours",
                "dept_code",
                "step_hours",
                "around_the_clock",
            )
        },
    )
    session.execute(stmt)
    return len(rows)


def _read_categories(path: Path) -> list[Category]:
    """Return the categories of a deployment's table, read as every imported table is (gridkit.io.tables: CSV in
    UTF-8, GB18030 or UTF-16 with its byte order mark, or XLSX; a quote left open, a ragged row or bytes that are
    no text refused naming the line) instead of as UTF-8 only, where a quote left open swallowed the next lines."""
    from gridkit.io.problems import refusal
    from gridkit.io.tables import TableReadError, read_table

    table = read_table(path)
    if table.problems:
        code, params = refusal(table.source.get("display", path.name), table.problems, "imported")
        raise TableReadError(code, problems=table.problems, source=table.source, **params)
    return categories_from_rows(tuple(table.columns), zip(table.numbers, table.rows), path)


def list_categories(session: Session, kind: str | None = None) -> list[IncidentCategory]:
    """Return categories by code, optionally of one kind."""
    query = select(IncidentCategory).order_by(IncidentCategory.code)
    if kind:
        query = query.where(IncidentCategory.kind == kind)
    return list(session.scalars(query))


def category_rows(session: Session, kind: str | None = None) -> list[dict]:
    """Return categories as rows: code, kind, name, major_code, department, time limits per step and how they
    count (clock: "working", in working hours, or "around_the_clock")."""
    return [
        {
            "code": c.code,
            "kind": c.kind,
            "name": c.name,
            "major_code": c.major_code,
            "major_name": c.major_name,
            "department": c.dept_code,
            "time_limit_hours": c.time_limit_hours,
            "step_hours": step_hours(c),
            "clock": "around_the_clock" if c.around_the_clock else "working",
        }
        for c in list_categories(session, kind)
    ]


def step_hours(category: IncidentCategory) -> dict[str, int]:
    """Return the hours allowed per step: accept, classify, dispatch, handle, verify."""
    hours = dict(STEP_DEFAULT_HOURS)
    hours.update(category.step_hours or {})
    return {
        "accept": hours["accept"],
        "classify": hours["classify"],
        "dispatch": hours["dispatch"],
        "handle": category.time_limit_hours,
        "verify": hours["verify"],
    }


def category(session: Session, code: str) -> IncidentCategory:
    """Return the category `code`, or raise NotFound."""
    found = session.get(IncidentCategory, code) if code else None
    if found is None:
        raise NotFound("incident.unknown_category", category=code)
    return found
