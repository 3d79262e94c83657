"""Decimal commas (114,05): read in a semicolon-separated CSV (Excel's CSV where the comma is the decimal mark),
refused with a sentence saying so anywhere else; buildings, residents, entities and historic cases."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select, text

from gridkit.errors import ValidationError
from gridkit.incidents.categories import seed_categories
from gridkit.incidents.importer import import_incidents, load_mapping
from gridkit.io.problems import problem_text
from gridkit.io.subjects import building_load, import_buildings, import_entities, import_residents
from gridkit.models import Building, Incident, LegalEntity, Resident
from tests.data.make_subject_files import centre, citizen_id, credit_code
from tests.factories_import_subjects import (  # noqa: F401 - fixtures used by name
    KEY,
    cell_code,
    cell_of,
    grid,
    record_first_loads,
    refused,
)
from tests.test_incidents_baltimore import DATA as BALTIMORE
from tests.test_incidents_baltimore import EXTRA_CATEGORIES, MAPPING, make_baltimore_grid


def comma(value: float) -> str:
    """Return `value` as a European spreadsheet writes it: a decimal comma."""
    return repr(value).replace(".", ",")


def write_semicolons(path: Path, header: list[str], rows: list[list]) -> Path:
    path.write_text("\n".join(";".join(map(str, r)) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def test_semicolon_csv_with_decimal_commas_is_read(session, grid, tmp_path):
    b1, b2 = centre(1, 1), centre(4, 2)
    buildings = write_semicolons(
        tmp_path / "buildings.csv",
        ["code", "address", "floors", "lon", "lat"],
        [["DC01", "红荔路1号", 6, comma(b1[0]), comma(b1[1])], ["DC02", "红荔路2号", 3, comma(b2[0]), comma(b2[1])]],
    )
    result = import_buildings(session, buildings)
    assert (result.created, result.assigned) == (2, 2)
    assert cell_of(session, Building, code="DC01") == cell_code(1, 1)
    assert cell_of(session, Building, code="DC02") == cell_code(4, 2)
    point = to_shape(session.scalar(select(Building.geom).where(Building.code == "DC02")))
    assert (point.x, point.y) == pytest.approx(b2, abs=1e-9)
    r = centre(5, 0)
    residents = write_semicolons(
        tmp_path / "residents.csv",
        ["id_number", "name", "population_type", "building_code", "lon", "lat"],
        [
            [citizen_id(1), "王小明", "registered", "", comma(r[0]), comma(r[1])],
            [citizen_id(2), "王小红", "流动", "DC01", "", ""],
        ],
    )
    result = import_residents(session, residents, pii_key=KEY)
    assert (result.created, result.assigned) == (2, 2)
    assert cell_of(session, Resident, name="王小明") == cell_code(5, 0)
    assert cell_of(session, Resident, name="王小红") == cell_code(1, 1)
    e = centre(0, 2)
    entities = write_semicolons(
        tmp_path / "entities.csv",
        ["credit_code", "name", "lon", "lat"],
        [[credit_code(1), "园岭科技", comma(e[0]), comma(e[1])]],
    )
    assert import_entities(session, entities).assigned == 1
    assert cell_of(session, LegalEntity, name="园岭科技") == cell_code(0, 2)


def test_a_first_load_reads_decimal_commas_too(session, grid, tmp_path, monkeypatch):
    loads = record_first_loads(monkeypatch, building_load, "gridkit.io.subjects.buildings.first_load")
    rows = [
        [f"FL{i:02d}", f"路{i}号", comma(centre(i % 6, i % 3)[0]), comma(centre(i % 6, i % 3)[1])] for i in range(12)
    ]
    result = import_buildings(session, write_semicolons(tmp_path / "b.csv", ["code", "address", "lon", "lat"], rows))
    assert loads and loads[0] is not None  # written by the first load, not after a fallback
    assert (result.created, result.assigned) == (12, 12)
    assert cell_of(session, Building, code="FL07") == cell_code(1, 1)


def test_a_decimal_comma_in_a_comma_separated_file_is_refused_saying_so(session, grid, tmp_path):
    path = tmp_path / "b.csv"
    path.write_text('code,address,lon,lat\nDC01,红荔路1号,"114,0505","22,5305"\n', encoding="utf-8")
    error = refused(session, import_buildings, path)
    (problem,) = error.problems
    assert problem["kind"] == "bad_coordinate" and problem["field"] == "lon"
    assert "lon ('114,0505') is written with a decimal comma" in problem_text(problem, "en")
    assert "semicolon-separated CSV" in problem_text(problem, "en")
    assert "lon ('114,0505') 用逗号作小数点" in problem_text(problem, "zh-CN")
    # Anything else that is not a number keeps its own sentence.
    path.write_text('code,address,lon,lat\nDC01,红荔路1号,"1,234,5",22.5305\n', encoding="utf-8")
    assert "is not a number" in problem_text(refused(session, import_buildings, path).problems[0], "en")


def _baltimore_rows(n: int = 300) -> pd.DataFrame:
    return pd.read_csv(BALTIMORE, dtype=str, keep_default_na=False).head(n)


def _stored_places(session) -> list[tuple]:
    return session.execute(text("SELECT code, ST_X(geom), ST_Y(geom), base_cell_id FROM incident ORDER BY code")).all()


def test_historic_cases_in_a_semicolon_csv_with_decimal_commas(session, tmp_path):
    seed_categories(session)
    seed_categories(session, EXTRA_CATEGORIES)
    make_baltimore_grid(session)
    raw = _baltimore_rows()
    plain = tmp_path / "cases.csv"
    raw.to_csv(plain, index=False)
    savepoint = session.begin_nested()
    expected = import_incidents(session, plain, load_mapping(MAPPING))
    places = _stored_places(session)
    savepoint.rollback()
    european = raw.copy()
    for column in ("Latitude", "Longitude"):
        european[column] = european[column].str.replace(".", ",", regex=False)
    assert european["Longitude"].str.contains(",").sum() > 200
    path = tmp_path / "cases_eu.csv"
    european.to_csv(path, index=False, sep=";")
    savepoint = session.begin_nested()  # the case history is append-only for the application role
    got = import_incidents(session, path, load_mapping(MAPPING))
    assert got["imported"] == expected["imported"] == 300 and got["assigned"] == expected["assigned"] > 200
    assert _stored_places(session) == places
    savepoint.rollback()
    # The same decimal commas in a comma-separated file: refused, row by row, saying what they are.
    path = tmp_path / "cases_commas.csv"
    european.to_csv(path, index=False)
    with pytest.raises(ValidationError) as exc:
        import_incidents(session, path, load_mapping(MAPPING))
    first = exc.value.problems[0]
    assert first["kind"] == "bad_location" and "written with decimal commas" in first["message"]
    assert "用逗号作小数点" in problem_text(first, "zh-CN")
    assert session.scalar(select(func.count()).select_from(Incident)) == 0
