"""Test data for exports, reports and the open APIs: two communities of 3×3 cells, one department
with two work grid versions (v1 from 2020, v2 from 2025), coordinators, subjects with Chinese text
and incidents of both kinds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from factories import STREET, X0, Y0, D, make_base_grid
from geoalchemy2.shape import from_shape
from shapely.geometry import LineString, Point
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.grids import work
from gridkit.models import (
    SRID,
    Building,
    Component,
    Incident,
    IncidentCategory,
    IncidentHistory,
    LegalEntity,
    Resident,
)

DEPT = "100001"
C1, C2 = f"{STREET}001", f"{STREET}002"
# Work cell 1 is coded for the street (it holds a cell of community 2 in version 2), 2 for community 2.
WC1, WC2 = f"{DEPT}{STREET}00001", f"{DEPT}{C2}01"
V1_FROM = datetime(2020, 6, 1, tzinfo=UTC)
V2_FROM = datetime(2025, 1, 1, tzinfo=UTC)
REPORTED = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def _cells(community: str) -> list[str]:
    return [f"{community}{i:03d}" for i in range(1, 10)]


def make_city(session: Session, *, residents_per_cell: int = 2) -> dict:
    """Make the grid, department 综治 with versions 1 and 2, coordinators and subjects. Returns facts."""
    make_base_grid(session, communities=2)
    v1, v2, zhang = _make_work_grids(session)
    _add_categories(session)
    from gridkit.models import BaseCell

    cells = {c.code: c for c in session.query(BaseCell)}
    # The cases were dispatched to work cell 1 of version 2 (in force when they were reported).
    dispatched_to = session.scalar(
        text("SELECT id FROM work_cell WHERE version_id = :v AND code = :c"), {"v": v2.id, "c": WC1}
    )
    n = 0
    for i, code in enumerate(sorted(cells)):
        cell = cells[code]
        community = 0 if code.startswith(C1) else 1
        seq = int(code[-3:]) - 1
        x = X0 + community * 3 * D + (seq % 3) * D + D / 2
        y = Y0 + (2 - seq // 3) * D + D / 2
        n = _add_subjects(session, i, cell, Point(x, y), residents_per_cell, n)
        if i < 6:
            _add_incident(session, i, cell, Point(x, y), zhang, dispatched_to)
    _add_components(session, cells[sorted(cells)[0]])
    session.flush()
    return {
        "cells": len(cells),
        "residents": n,
        "buildings": len(cells),
        "entities": len(cells),
        "incidents": 6,
        "components": 3,
        "v1": v1,
        "v2": v2,
    }


def _make_work_grids(session: Session):
    """Department DEPT with versions 1 (from V1_FROM) and 2 (from V2_FROM) and their coordinators.

    Returns version 1, version 2 and 张三丰, work cell 1's coordinator in version 1.
    """
    work.add_department(session, DEPT, "综合治理")
    v1 = work.start_draft(session, DEPT)
    # Version 1: one work cell for both communities' first rows, one for the rest.
    work.set_members(session, v1, WC1, _cells(C1), name="园岭一网格")
    work.set_members(session, v1, WC2, _cells(C2), name="园岭二网格")
    work.publish(session, v1, at=V1_FROM)
    zhang = work.add_coordinator(session, "张三丰", "13800135678", DEPT, [WC1], version=v1)
    work.add_coordinator(session, "李四", "13900139999", DEPT, [WC2], version=v1)
    v2 = work.start_draft(session, DEPT)
    # Version 2 moves community 2's first cell into work cell 1.
    work.set_members(session, v2, WC1, _cells(C1) + [f"{C2}001"], name="园岭一网格")
    work.publish(session, v2, at=V2_FROM)
    work.add_coordinator(session, "王五", "13700137777", DEPT, [WC1], version=v2)
    work.add_coordinator(session, "李四", "13900139999", DEPT, [WC2], version=v2)
    return v1, v2, zhang


def _add_categories(session: Session) -> None:
    """Add the component category 0101 and the event category E0101 unless they exist."""
    for code, name in (("0101", "上水井盖"), ("E0101", "暴露垃圾")):
        if session.get(IncidentCategory, code) is None:
            session.add(
                IncidentCategory(
                    code=code,
                    kind="component" if code[0] == "0" else "event",
                    major_code=code[-4:-2],
                    major_name="市容环境",
                    name=name,
                    time_limit_hours=24,
                )
            )
    session.flush()


def _add_subjects(session: Session, i: int, cell, point: Point, residents_per_cell: int, n: int) -> int:
    """Add building i, its residents and a legal entity at `point` in `cell`; return the residents made so far."""
    building = Building(
        code=f"B{i:04d}",
        address=f"深圳市福田区园岭街道{i}号楼",
        floors=i % 30 + 1,
        geom=from_shape(point, srid=SRID),
        base_cell_id=cell.id,
    )
    session.add(building)
    session.flush()
    for k in range(residents_per_cell):
        n += 1
        birth = date(2020 - (n * 7) % 90, 1 + n % 12, 1 + n % 28)
        resident = Resident(
            id_number_hash=f"{n:064d}",
            id_number_masked="4403**********123X",
            name=f"居民{n}号",
            phone=f"1380000{n:04d}",
            household=f"H{i:04d}",
            population_type="registered" if k == 0 else "floating",
            building_id=building.id,
            geom=from_shape(point, srid=SRID),
            base_cell_id=cell.id,
        )
        if hasattr(Resident, "birth_date"):
            resident.birth_date = birth
        session.add(resident)
    session.add(
        LegalEntity(
            credit_code=f"91440300MA5F{i:06d}",
            name=f"深圳市园岭{i}号科技有限公司",
            address=f"园岭街道{i}号",
            geom=from_shape(point, srid=SRID),
            base_cell_id=cell.id,
        )
    )
    return n


def _add_incident(session: Session, i: int, cell, point: Point, coordinator, work_cell_id: int) -> None:
    """Add incident i (i < 6) at `point` with its history: closed in 10 h (i < 3) or 40 h, or still dispatched."""
    category = "0101" if i % 2 == 0 else "E0101"
    closed = REPORTED + timedelta(hours=10 if i < 3 else 40) if i % 3 != 2 else None
    incident = Incident(
        code=f"INC{i:04d}",
        category_code=category,
        description=f"井盖缺失{i}",
        status="closed" if closed else "dispatched",
        severity="normal",
        geom=from_shape(point, srid=SRID),
        base_cell_id=cell.id,
        dept_code=DEPT,
        work_cell_id=work_cell_id,
        reporter="赵六",
        reported_at=REPORTED + timedelta(days=i),
        coordinator_id=coordinator.id,
        deadline=REPORTED + timedelta(days=i, hours=24),
        closed_at=closed + timedelta(days=i) if closed else None,
    )
    session.add(incident)
    session.flush()
    steps = [
        (None, "reported", 0),
        ("reported", "accepted", 1),
        ("accepted", "classified", 2),
        ("classified", "dispatched", 3),
    ]
    if closed:
        steps += [("dispatched", "fed_back", 8), ("fed_back", "closed", 10 if i < 3 else 40)]
    for frm, to, hours in steps:
        session.add(
            IncidentHistory(
                incident_id=incident.id,
                at=incident.reported_at + timedelta(hours=hours),
                actor="test",
                from_status=frm,
                to_status=to,
            )
        )


def _add_components(session: Session, first) -> None:
    """Components (部件): a manhole cover (point) and a railing (line) in the first cell."""
    session.add_all(
        [
            Component(
                code="4403040101000001",
                category_code="0101",
                name="上水井盖",
                geom=from_shape(Point(X0 + D / 3, Y0 + 2.5 * D), srid=SRID),
                base_cell_id=first.id,
            ),
            Component(
                code="4403040101000002",
                category_code="0101",
                name="护栏",
                geom=from_shape(LineString([(X0 + 0.1 * D, Y0 + 2.2 * D), (X0 + 0.9 * D, Y0 + 2.2 * D)]), srid=SRID),
                base_cell_id=first.id,
            ),
        ]
    )
