"""The subject import tests' grid, work grids and helpers (tests/test_import_buildings.py, test_import_subjects.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gridkit.errors import ValidationError
from gridkit.grids.importer import ImportRefused
from gridkit.grids.work import add_department, publish, set_members, start_draft
from gridkit.io.subjects import SubjectImportRefused, import_buildings
from gridkit.models import BaseCell, Building, Coordinator, CoordinatorAssignment, LegalEntity, Resident
from tests.conftest import SHARED_DATA
from tests.data.make_subject_files import COMMUNITIES, DEPARTMENTS, work_cell
from tests.factories import make_base_grid

DATA = Path(__file__).resolve().parent / "data" / "subjects"
BUND = SHARED_DATA / "shanghai-bund-osm" / "buildings_polygons.geojson"
KEY = b"test-personal-data-key"
PROBLEM_KEYS = {"index", "code", "field", "kind", "message"}


# -- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def grid(session):
    """6×3 base cells in two communities (see tests/data/make_subject_files.py)."""
    return make_base_grid(session, rows=3, cols=3, communities=2)


@pytest.fixture
def work_grids(session, grid):
    """Departments 100001 and 200001, each with one published work cell per community."""
    for dept, name in DEPARTMENTS:
        add_department(session, dept, name)
        draft = start_draft(session, dept)
        for i, community in enumerate(COMMUNITIES, start=1):
            set_members(session, draft, work_cell(dept, i), [f"{community}{seq:03d}" for seq in range(1, 10)])
        publish(session, draft)
    return grid


def cell_code(col: int, row: int) -> str:
    """Return the code of base cell (col 0-5 west→east, row 0-2 south→north) of the `grid` fixture."""
    community, c = divmod(col, 3)
    return f"{COMMUNITIES[community]}{(2 - row) * 3 + c + 1:03d}"


MODELS = (Building, Resident, LegalEntity, Coordinator, CoordinatorAssignment)


def counts(session) -> tuple[int, ...]:
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in MODELS)


def refused(session, function, *args, **kwargs) -> SubjectImportRefused:
    """Run an import that must be refused; check it wrote nothing and its problems have the standard shape."""
    before = counts(session)
    with pytest.raises(SubjectImportRefused) as info:
        function(session, *args, **kwargs)
    session.flush()
    assert counts(session) == before, "a refused import wrote something"
    error = info.value
    assert isinstance(error, ImportRefused) and isinstance(error, ValidationError)
    assert error.problems and all(set(p) - {"key", "params"} == PROBLEM_KEYS for p in error.problems)
    return error


def by_kind(error) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for p in error.problems:
        found.setdefault(p["kind"], []).append(p)
    return found


def cell_of(session, model, **where) -> str | None:
    """Return the base cell code of the one subject of `model` whose columns equal `where` (None: unassigned)."""
    query = (
        select(BaseCell.code)
        .select_from(model)
        .outerjoin(BaseCell, BaseCell.id == model.base_cell_id)
        .where(*(getattr(model, k) == v for k, v in where.items()))
    )
    return session.scalar(query)


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def buildings(session):
    """Import tests/data/subjects/buildings.csv (B001-B006)."""
    return import_buildings(session, DATA / "buildings.csv")


def record_first_loads(monkeypatch, load_module, used_as: str) -> list:
    """Make every file large enough for `load_module`'s first load (building_load, resident_load) and return
    the list that collects what each call of it, made through `used_as` (the importer's name for it), returned."""
    monkeypatch.setattr(load_module, "FIRST_LOAD_BYTES", 0)
    returned: list = []
    first_load = load_module.first_load

    def recorded(*args, **kwargs):
        returned.append(first_load(*args, **kwargs))
        return returned[-1]

    monkeypatch.setattr(used_as, recorded)
    return returned
