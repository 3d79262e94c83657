"""Imports fed real-shaped and hostile files, as a city's GIS staff would: nothing lost, altered unsaid or
refused unclearly (the audit of branch aud9j)."""

from __future__ import annotations

import json

from sqlalchemy import select

from gridkit.io.subjects import import_buildings
from gridkit.models import Building
from tests.data.make_subject_files import centre
from tests.factories_import_subjects import by_kind, grid, refused  # noqa: F401 - fixtures used by name


def _features(*features) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def _feature(code: str, geometry: dict | None, **properties) -> dict:
    return {"type": "Feature", "properties": {"code": code, **properties}, "geometry": geometry}


# -- notes of a vector file's batches ---------------------------------------------------------------------


def test_repairs_and_dropped_z_of_a_vector_file_are_noted(session, grid, tmp_path):
    # Each batch of a layer is checked as it is read, after the import has started: its notes (a bow-tie
    # footprint made valid, heights dropped) were kept by the reader but never reached the import's report.
    x, y = centre(0)
    d = 0.0002
    bow_tie = [[x, y], [x + d, y + d], [x + d, y], [x, y + d], [x, y]]
    path = tmp_path / "bow_tie.geojson"
    path.write_text(
        json.dumps(
            _features(
                _feature("BT1", {"type": "Polygon", "coordinates": [bow_tie]}),
                _feature("BT2", {"type": "Point", "coordinates": [x, y, 12.5]}),
            )
        )
    )
    result = import_buildings(session, path)
    assert result.created == 2
    kinds = {(n["kind"], n["index"]) for n in result.notes}
    assert ("geometry_repaired", 0) in kinds
    assert ("z_dropped", None) in kinds
    repaired = next(n for n in result.notes if n["kind"] == "geometry_repaired")
    assert "Self-intersection" in repaired["message"] and "feature 0" in repaired["message"]
    assert session.scalar(select(Building.footprint.ST_IsValid()).where(Building.code == "BT1"))
