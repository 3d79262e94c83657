"""Features whose geometry is no number or has no area are told what is wrong with them, naming the feature: not
that the file's coordinate system is wrong, not "is a MultiLineString", not a GEOS traceback."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from gridkit.io.problems import problem_text
from gridkit.io.subjects import SubjectImportRefused, import_buildings
from gridkit.io.vector import VectorReadError, read_vector
from gridkit.models import Building
from tests.data.make_subject_files import centre
from tests.factories import make_base_grid

SQUARE = "[[[114.05, 22.53], [114.06, 22.53], [114.06, 22.54], [114.05, 22.53]]]"


def _geojson(path, *geometries: tuple[str, str]):
    """Write features C0, C1 … of the (type, coordinates text) given: JSON text, so that NaN can be written."""
    features = ", ".join(
        f'{{"type": "Feature", "properties": {{"code": "C{i}"}}, '
        f'"geometry": {{"type": "{kind}", "coordinates": {coordinates}}}}}'
        for i, (kind, coordinates) in enumerate(geometries)
    )
    path.write_text(f'{{"type": "FeatureCollection", "features": [{features}]}}', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("kind", "coordinates"),
    [
        ("Polygon", "[[[114.05, 22.53], [NaN, 22.53], [114.06, 22.54], [114.05, 22.53]]]"),
        ("Polygon", "[[[114.05, 22.53], [Infinity, 22.53], [114.06, 22.54], [114.05, 22.53]]]"),
        ("LineString", "[[114.05, 22.53], [NaN, NaN]]"),
    ],
)
@pytest.mark.parametrize("alone", [True, False])
def test_a_feature_with_coordinates_that_are_no_number_is_told_so(tmp_path, kind, coordinates, alone):
    """Alone in its file it was told that the file's CRS was probably wrong (1 of 1 features outside China); a NaN
    vertex (left out of the bounding box by GEOS) passed the China check and broke the repair with a traceback."""
    others = [] if alone else [("Polygon", SQUARE)] * 2
    path = _geojson(tmp_path / "one.geojson", (kind, coordinates), *others)
    with pytest.raises(VectorReadError) as info:
        read_vector(path, multipart="keep" if kind == "Polygon" else None, code_field="code")
    [found] = info.value.problems
    assert found["kind"] == "not_convertible" and found["index"] == 0, found
    assert found["message"].startswith("one.geojson, feature 0 (code C0): has coordinates that are not finite")
    assert "coordinate system (" not in found["message"] and "outside China" not in found["message"]
    assert "不是有限数值" in problem_text(found, "zh-CN")


@pytest.mark.parametrize(
    "ring",
    [
        "[[114.05, 22.53], [114.06, 22.53], [114.07, 22.53], [114.05, 22.53]]",  # every vertex on one line
        "[[114.05, 22.53], [114.05, 22.53], [114.05, 22.53], [114.05, 22.53]]",  # one point repeated
        "[[114.05, 22.53], [114.06, 22.54], [114.05, 22.53], [114.06, 22.54], [114.05, 22.53]]",  # there and back
    ],
)
@pytest.mark.parametrize("multipart", ["keep", "single"])
def test_a_polygon_with_no_area_is_said_to_be_degenerate(tmp_path, ring, multipart):
    path = _geojson(tmp_path / "cells.geojson", ("Polygon", SQUARE), ("Polygon", f"[{ring}]"))
    with pytest.raises(VectorReadError) as info:
        read_vector(path, multipart=multipart, code_field="code")
    [found] = info.value.problems
    assert found["kind"] == "degenerate_polygon" and found["index"] == 1
    assert found["message"].startswith("cells.geojson, feature 1 (code C1): is a Polygon with no area (degenerate")
    assert "面积为零" in problem_text(found, "zh-CN")


def test_a_building_footprint_with_no_area_is_not_called_a_multilinestring(session, tmp_path):
    make_base_grid(session)
    (x0, y0), (x1, y1) = centre(0), centre(1)
    square = [[x0, y0], [x0 + 0.0002, y0], [x0 + 0.0002, y0 + 0.0002], [x0, y0 + 0.0002], [x0, y0]]
    flat = [[x1, y1], [x1 + 0.0001, y1], [x1 + 0.0002, y1], [x1 + 0.0001, y1], [x1, y1]]
    features = [
        {"type": "Feature", "properties": {"code": "B1"}, "geometry": {"type": "Polygon", "coordinates": [square]}},
        {"type": "Feature", "properties": {"code": "B2"}, "geometry": {"type": "Polygon", "coordinates": [flat]}},
    ]
    path = tmp_path / "buildings.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path)
    [found] = info.value.problems
    assert found["kind"] == "degenerate_polygon" and found["index"] == 1, found
    assert "buildings.geojson, feature 1" in found["message"] and "MultiLineString" not in found["message"]
    assert session.scalar(select(func.count()).select_from(Building)) == 0


def test_a_multipolygon_with_one_part_of_no_area_keeps_its_other_part_as_a_repair(session, tmp_path):
    make_base_grid(session)
    (x0, y0) = centre(0)
    square = [[x0, y0], [x0 + 0.0002, y0], [x0 + 0.0002, y0 + 0.0002], [x0, y0 + 0.0002], [x0, y0]]
    flat = [[x0, y0], [x0 + 0.0001, y0], [x0 + 0.0002, y0], [x0, y0]]
    geometry = {"type": "MultiPolygon", "coordinates": [[square], [flat]]}
    path = tmp_path / "buildings.geojson"
    feature = {"type": "Feature", "properties": {"code": "B1"}, "geometry": geometry}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    result = import_buildings(session, path)
    assert result.created == 1
    assert [n["index"] for n in result.notes if n["kind"] == "geometry_repaired"] == [0]
