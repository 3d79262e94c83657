"""Degrees, minutes and seconds with 60 seconds (113°58′60″E: a tool rounding 59.996″ without carrying it) are read
as the next minute, and 60 minutes with no seconds as the next degree; past 60 is refused saying so, naming the
row. Real Shenzhen cafés (../shared/data/shenzhen-cafes-poi) as buildings and as historic cases."""

from __future__ import annotations

import geopandas as gpd
import pytest
from sqlalchemy import func, select

from gridkit.coords import dms_degrees, dms_fault
from gridkit.errors import ValidationError
from gridkit.incidents.categories import seed_categories
from gridkit.incidents.importer import import_incidents, load_mapping
from gridkit.io.problems import problem_text
from gridkit.io.subjects import SubjectImportRefused, import_buildings
from gridkit.models import Building, Incident
from tests.test_crs_crs8c import CAFES, case_file


def rounded_without_carry(value: float, east: str) -> str:
    """Return `value` as a tool writes it that rounds the seconds to 2 decimals and never carries: 59.996″ → 60.00″."""
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return f"{degrees}°{minutes}′{seconds:.2f}″{east}"


def just_below_the_minute(value: float) -> float:
    """Return the degrees 0.004″ before the whole minute nearest `value` (about 0.1 m west or south of it)."""
    return round(value * 60) / 60 - 0.004 / 3600


@pytest.mark.parametrize(
    ("text", "degrees"),
    [
        ("113°58′60″E", 113 + 59 / 60),
        ("113°58′60.00″E", 113 + 59 / 60),
        ("东经113度58分60秒", 113 + 59 / 60),
        ("113°59′60″E", 114.0),
        ("113°60′E", 114.0),
        ("113°60′00″E", 114.0),
        ("113°60.0′W", -114.0),
        ("22°31′59.99″N", 22 + 31 / 60 + 59.99 / 3600),
    ],
)
def test_sixty_seconds_or_minutes_are_the_carry_of_a_rounding(text, degrees):
    assert dms_degrees(text) == pytest.approx(degrees, abs=1e-12)
    assert dms_fault(text) is None


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("113°58′60.5″E", "seconds"),
        ("113°58′61″E", "seconds"),
        ("113°60′5″E", "minutes"),
        ("113°61′E", "minutes"),
        ("东经113度75分", "minutes"),
    ],
)
def test_more_than_sixty_is_refused_saying_which(text, part):
    assert dms_degrees(text) is None
    fault = dms_fault(text)
    assert fault.key == f"coords.dms_{part}_over_60"
    assert f"{part} must be below 60" in fault.render("en")


def test_what_is_no_degrees_minutes_seconds_has_no_fault_to_tell():
    assert dms_fault("abc") is None and dms_fault("114.05") is None and dms_fault("东经114度") is None


def test_cafes_written_with_sixty_seconds_are_placed_at_the_next_minute(session, tmp_path):
    cafes = gpd.read_file(CAFES)
    lines = ["code,lon,lat"]
    expected = {}
    for i, p in enumerate(cafes.geometry):
        lon, lat = just_below_the_minute(p.x), just_below_the_minute(p.y)
        lines.append(f"C{i},{rounded_without_carry(lon, 'E')},{rounded_without_carry(lat, 'N')}")
        expected[f"C{i}"] = (round(p.x * 60) / 60, round(p.y * 60) / 60)
    assert sum(line.count("60.00″") for line in lines) == 2 * len(cafes)
    path = tmp_path / "cafes.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_buildings(session, path, mapping={"code": "code", "lon": "lon", "lat": "lat"})
    stored = session.execute(select(Building.code, func.ST_X(Building.geom), func.ST_Y(Building.geom))).all()
    assert len(stored) == len(cafes)
    for code, lon, lat in stored:
        assert (lon, lat) == pytest.approx(expected[code], abs=1e-9)


def test_a_cafe_with_sixty_one_seconds_is_refused_naming_its_line(session, tmp_path):
    path = tmp_path / "cafes.csv"
    path.write_text("code,lon,lat\nC0,113°58′4.13″E,22°32′18.6″N\nC1,113°58′61″E,22°32′18.6″N\n", encoding="utf-8")
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path, mapping={"code": "code", "lon": "lon", "lat": "lat"})
    [found] = info.value.problems
    assert found["index"] == 3 and found["kind"] == "bad_coordinate"
    assert found["message"].startswith("cafes.csv, line 3: lon ('113°58′61″E') is no position in degrees")
    assert "seconds must be below 60" in found["message"]
    assert "秒须小于 60" in problem_text(found, "zh-CN")
    assert session.scalar(select(func.count()).select_from(Building)) == 0


def test_cases_with_sixty_seconds_are_read_and_past_sixty_refused_by_line(session, tmp_path):
    seed_categories(session)
    mapping_path, cafes = case_file(tmp_path, 4490, None)
    lines = (tmp_path / "cases.csv").read_text(encoding="utf-8").splitlines()[:4]
    p = cafes.geometry.iloc[0]
    lon, lat = just_below_the_minute(p.x), just_below_the_minute(p.y)
    lines[1] = lines[1].rsplit(",", 2)[0] + f",{rounded_without_carry(lon, 'E')},{rounded_without_carry(lat, 'N')}"
    (tmp_path / "cases.csv").write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    savepoint = session.begin_nested()
    assert import_incidents(session, tmp_path / "cases.csv", load_mapping(mapping_path))["without_location"] == 0
    x, y = session.execute(select(func.ST_X(Incident.geom), func.ST_Y(Incident.geom))).one()
    assert (x, y) == pytest.approx((round(p.x * 60) / 60, round(p.y * 60) / 60), abs=1e-9)
    savepoint.rollback()
    lines[3] = lines[3].rsplit(",", 2)[0] + ",113°60′12″E,22°32′18.6″N"
    (tmp_path / "cases.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        import_incidents(session, tmp_path / "cases.csv", load_mapping(mapping_path))
    [found] = info.value.problems
    assert found["index"] == 4 and found["kind"] == "bad_location"
    # A case's place is never quoted as typed (gridkit.pii.typed_location): its shape, or rounded to about 100 m.
    said = "cases.csv, line 4: the location ('###°##′##″E' (each digit as #); about 22.539) is no position"
    assert found["message"].startswith(said) and "18.6″" not in found["message"]
    assert "minutes must be below 60" in found["message"]
