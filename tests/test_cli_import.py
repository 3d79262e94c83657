"""`gridkit admin import` and `gridkit basegrid import` on real files, with reports."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from shapely.geometry import box, mapping
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import main
from gridkit.models import AdminUnit, BaseCell, Resident
from tests.conftest import SHARED_DATA

CNMAPS = SHARED_DATA / "shenzhen-admin" / "sz_city_districts_cnmaps_gcj02.geojson"


def run(settings, *args):
    return CliRunner(env={"GRIDKIT_LANG": "en"}).invoke(main, list(args), obj=settings, catch_exceptions=False)


def _write_geojson(path, features):
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": props, "geometry": mapping(geom)} for props, geom in features
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )


def _count(settings, model):
    with Session(db.engine_for(settings)) as session:
        return session.scalar(select(func.count()).select_from(model))


def _admin_import(settings, path, *options):
    """Run `gridkit admin import PATH OPTIONS…`; return the CliRunner result."""
    return run(settings, "admin", "import", str(path), *options)


def test_import_real_shenzhen_districts_then_cells(fresh_settings, tmp_path):
    cnmaps = ("--code-field", "adcode", "--src-crs", "gcj02", "--json")
    result = _admin_import(fresh_settings, CNMAPS, "--name-field", "district", *cnmaps)
    # The city row has no district name: the whole file is refused, with a report.
    assert result.exit_code == 1
    assert "feature 0 (code 440300): has no name in field 'district'" in result.output
    assert "Report:" in result.output and _count(fresh_settings, AdminUnit) == 0
    result = _admin_import(fresh_settings, CNMAPS, "--name-field", "city", *cnmaps)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["created"] == 10 and summary["levels"] == {"city": 1, "district": 9}
    # Streets and communities of 福田 (440304), drawn by hand near its centre.
    x0, y0, d = 114.05, 22.53, 0.002
    fields = ("--code-field", "code", "--name-field", "name")
    streets = tmp_path / "streets.geojson"
    _write_geojson(streets, [({"code": "440304001", "name": "园岭街道"}, box(x0, y0, x0 + 2 * d, y0 + d))])
    assert _admin_import(fresh_settings, streets, "--level", "street", *fields).exit_code == 0
    communities = tmp_path / "communities.geojson"
    _write_geojson(
        communities,
        [
            ({"code": "440304001001", "name": "红荔社区"}, box(x0, y0, x0 + d, y0 + d)),
            ({"code": "440304001002", "name": "百花社区"}, box(x0 + d, y0, x0 + 2 * d, y0 + d)),
        ],
    )
    assert _admin_import(fresh_settings, communities, "--level", "community", *fields).exit_code == 0
    cells = tmp_path / "cells.geojson"
    _write_geojson(
        cells,
        [({"bm": f"440304001001{i + 1:03d}"}, box(x0 + i * d / 2, y0, x0 + (i + 1) * d / 2, y0 + d)) for i in range(2)]
        + [({"bm": "440304001002001"}, box(x0 + d, y0, x0 + 2 * d, y0 + d))],
    )
    result = run(
        fresh_settings, "basegrid", "import", str(cells), "--code-field", "bm", "--edition", "2026 草稿", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["created"] == 3
    editions = json.loads(run(fresh_settings, "basegrid", "editions", "--json").output)
    assert [(e["name"], e["status"], e["cells"]) for e in editions] == [("2026 草稿", "draft", 3)]


def test_refused_import_writes_report_and_nothing_else(fresh_settings, tmp_path):
    cells = tmp_path / "dup.geojson"
    _write_geojson(
        cells,
        [
            ({"bm": "440304001001001"}, box(114.0, 22.5, 114.001, 22.501)),
            ({"bm": "440304001001001"}, box(114.001, 22.5, 114.002, 22.501)),
        ],
    )
    before = _count(fresh_settings, BaseCell), _count(fresh_settings, AdminUnit)
    result = run(fresh_settings, "basegrid", "import", str(cells), "--code-field", "bm")
    assert result.exit_code == 1
    assert "Nothing was imported" in result.output and "Report:" in result.output
    assert result.output.count("\n") == 1
    text_path = result.output.split("Report: ")[1].split(" (JSON")[0]
    report = open(text_path, encoding="utf-8").read()
    assert "440304001001001" in report
    assert (_count(fresh_settings, BaseCell), _count(fresh_settings, AdminUnit)) == before


SUBJECTS = Path(__file__).resolve().parent / "data" / "subjects"


def test_import_subjects_through_the_cli(fresh_settings):
    """Buildings then residents from CSV; a bad residents file is refused with a report; stats follow."""
    from tests.factories import make_base_grid

    with Session(db.engine_for(fresh_settings)) as session, session.begin():
        make_base_grid(session, rows=3, cols=3, communities=2)
    result = run(fresh_settings, "import", "buildings", str(SUBJECTS / "buildings.csv"), "--json")
    assert result.exit_code == 0, result.output
    buildings = json.loads(result.output)
    assert buildings["created"] > 0
    result = run(fresh_settings, "import", "residents", str(SUBJECTS / "residents.csv"), "--json")
    assert result.exit_code == 0, result.output
    residents = json.loads(result.output)
    assert residents["created"] > 0
    before = _count(fresh_settings, Resident)
    bad = run(fresh_settings, "import", "residents", str(SUBJECTS / "residents_bad.csv"))
    assert bad.exit_code == 1 and "Report:" in bad.output
    report = open(bad.output.split("Report: ")[1].split(" (JSON")[0], encoding="utf-8").read()
    assert "440304199001010410" not in report  # personal data never in clear
    assert _count(fresh_settings, Resident) == before
    stats = json.loads(run(fresh_settings, "subjects", "stats", "--by", "street", "--json").output)
    assert stats[0]["code"] == "440304001"
    assert (
        stats[0]["residents"]
        + len(json.loads(run(fresh_settings, "subjects", "unassigned", "--kind", "residents", "--json").output))
        == before
    )
