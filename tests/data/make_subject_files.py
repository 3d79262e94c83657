"""Write the subject-import fixtures under tests/data/subjects/: small files of synthetic people and places.

Run `python tests/data/make_subject_files.py` to regenerate; the output is deterministic and committed.
Every person is made up: citizen IDs are built from a region code, a birth date and a sequence
number with the GB 11643 check character; credit codes get valid GB 11714/GB 32100 check
characters; phones are 138000000xx.

Places fit tests/factories.make_base_grid(session, rows=3, cols=3, communities=2): 6×3 base cells
of 0.001° from 114.050E 22.530N (communities 440304001001 and …002 side by side). `centre(col,
row)` is the middle of the cell at column col (0-5, west→east) and row row (0-2, south→north).
OUTSIDE is a point in Shenzhen but outside the grid: subjects there are imported unassigned.

| file | what it holds |
|---|---|
| buildings.csv | UTF-8, 5 buildings in the grid + B006 outside it (unassigned) |
| buildings_gbk.csv | GBK without BOM, Chinese addresses |
| buildings_bom.csv | UTF-8 with BOM (Excel "CSV UTF-8"), Chinese column names 编码, 地址, 层数, 经度, 纬度 |
| buildings_custom.csv | columns 楼号, 门牌地址, X坐标, Y坐标: needs --map |
| buildings_gcj02.csv | lon/lat in GCJ-02 (Amap) of two cell centres |
| buildings_points.geojson | points, EPSG:4490 crs member |
| buildings_footprints.geojson | polygons, no crs member (RFC 7946: WGS 84); F002 straddles two cells |
| buildings_shp/buildings.shp | footprint polygons as a shapefile (UTF-8 .cpg) |
| residents.csv | residents of B001-B003 and two with own coordinates; population types in English and Chinese |
| residents.xlsx | the same kind of rows as an Excel workbook, household ids as numbers |
| residents_bad.csv | one problem per line 3-12 (see BAD_RESIDENT_LINES) |
| residents_undecodable.csv | line 3 holds bytes FF FE: neither UTF-8 nor GB18030 |
| entities.csv, entities.xlsx | legal entities with points |
| entities_bad.csv | bad credit code, duplicate, swapped, missing and non-numeric coordinates |
| coordinators.csv | 张三 covers work cells of two departments (多员合一), 李四 one |
| coordinators_bad.csv | unknown department, unknown work cell, bad phone, one phone with two names |
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pyogrio
from shapely.geometry import Point, box, mapping

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from gridkit.coords import wgs84_to_gcj02  # noqa: E402
from gridkit.standard.ids import citizen_id_check_char, credit_code_check_char, organization_code_check_char  # noqa: E402

OUT = Path(__file__).resolve().parent / "subjects"
X0, Y0, D = 114.05, 22.53, 0.001
OUTSIDE = (114.10, 22.60)
COMMUNITIES = ("440304001001", "440304001002")
DEPARTMENTS = (("100001", "综治"), ("200001", "城管"))
FIXED_TIME = datetime(2026, 1, 1)


def centre(col: int, row: int = 0) -> tuple[float, float]:
    """Return (lon, lat) of the middle of base cell (col, row), rounded to 7 decimals."""
    return round(X0 + (col + 0.5) * D, 7), round(Y0 + (row + 0.5) * D, 7)


def citizen_id(seq: int, *, region: str = "440304", birth: str = "19900101") -> str:
    """Return a valid made-up citizen ID number: region + birth date + 3-digit sequence + check character."""
    first17 = f"{region}{birth}{seq:03d}"
    return first17 + citizen_id_check_char(first17)


def credit_code(seq: int, *, region: str = "440304") -> str:
    """Return a valid made-up unified social credit code (enterprise, registered in `region`)."""
    body = f"MA5{seq:05d}"
    org = body + organization_code_check_char(body)
    first17 = "91" + region + org
    return first17 + credit_code_check_char(first17)


def phone(seq: int) -> str:
    """Return a made-up mobile number 138000000xx."""
    return f"138{seq:08d}"


def many_residents_csv(path: Path, n: int, *, start: int = 0, bad_last: bool = False) -> Path:
    """Write n residents with valid IDs (1000 per birth day from 1950) and lon/lat inside the test grid's
    first community; with `bad_last`, the last row's check character is wrong. Written a block at a time."""
    with path.open("w", encoding="utf-8") as f:
        f.write("id_number,name,phone,population_type,lon,lat\n")
        for i in range(start, start + n):
            day = datetime(1950, 1, 1).toordinal() + i // 1000
            first17 = f"440304{datetime.fromordinal(day):%Y%m%d}{i % 1000:03d}"
            check = citizen_id_check_char(first17)
            if bad_last and i == start + n - 1:
                check = "0" if check != "0" else "1"
            lon, lat = centre(i % 3, (i // 3) % 3)
            f.write(f"{first17}{check},居民{i},139{i % 10**8:08d},registered,{lon},{lat}\n")
    return path


def work_cell(dept: str, community: int) -> str:
    """Return the code of the department's work cell covering community 1 or 2 (one work cell per community)."""
    return f"{dept}{COMMUNITIES[community - 1]}01"


BUILDINGS = [  # code, address, floors, (lon, lat)
    ("B001", "园岭街道红荔路1号", 6, centre(0, 0)),
    ("B002", "园岭街道红荔路2号", 12, centre(1, 1)),
    ("B003", "园岭街道红荔路3号", None, centre(2, 2)),
    ("B004", "园岭街道八卦路4号", 3, centre(3, 0)),
    ("B005", "园岭街道八卦路5号", 30, centre(5, 2)),
    ("B006", "福田区城外路6号", 2, OUTSIDE),
]

RESIDENTS = [  # id, name, phone, household, population_type, building_code, (lon, lat) or None
    (citizen_id(1), "王小明", phone(11), "H0001", "registered", "B001", None),
    (citizen_id(2), "王小红", phone(12), "H0001", "户籍", "B001", None),
    (citizen_id(3, birth="19851231"), "李大力", "", "H0002", "floating", "B002", None),
    (citizen_id(4, region="110105", birth="20000229"), "赵敏", phone(14), "H0003", "流动", "B003", None),
    (citizen_id(5, birth="19700615"), "钱多多", phone(15), "H0004", "floating", "", centre(4, 1)),
    (citizen_id(6, birth="19991111"), "孙悟", "0755-83001234", "", "registered", "", OUTSIDE),
]

# residents_bad.csv: line → (problem kind, what is wrong). Line 2 is a good row.
BAD_RESIDENT_LINES = {
    3: ("bad_id_number", "check character changed"),
    4: ("duplicate_id", "same ID number as line 2"),
    5: ("unknown_building", "building B999 does not exist"),
    6: ("bad_population_type", "常住 is ambiguous"),
    7: ("bad_phone", "phone 12345"),
    8: ("missing_location", "no building, no coordinates"),
    9: ("axes_swapped", "lat, lon"),
    10: ("outside_china", "Paris"),
    11: ("bad_coordinate", "lon is text"),
    12: ("bad_id_number", "birth date 1990-13-32 with a correct check character"),
}


def _bad_birth_id() -> str:
    first17 = "440304" + "19901332" + "777"
    return first17 + citizen_id_check_char(first17)


def _wrong_check(number: str) -> str:
    last = "0" if number[-1] != "0" else "1"
    return number[:-1] + last


ENTITIES = [  # credit code, name, address, (lon, lat)
    (credit_code(1), "深圳市园岭科技有限公司", "红荔路101号", centre(0, 1)),
    (credit_code(2), "深圳市八卦岭餐饮有限公司", "八卦路202号", centre(4, 0)),
    (credit_code(3), "深圳市城外物流有限公司", "", OUTSIDE),
]

COORDINATORS = [  # name, phone, dept, work cells
    ("张三", phone(21), "100001", f"{work_cell('100001', 1)};{work_cell('100001', 2)}"),
    ("张三", phone(21), "200001", work_cell("200001", 1)),
    ("李四", phone(22), "200001", work_cell("200001", 2)),
]


def _csv_text(header: list[str], rows: list[list]) -> str:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def _building_rows(buildings):
    return [[code, address, floors, lon, lat] for code, address, floors, (lon, lat) in buildings]


def _resident_rows(residents):
    rows = []
    for number, name, tel, household, kind, building, point in residents:
        lon, lat = point if point else ("", "")
        rows.append([number, name, tel, household, kind, building, lon, lat])
    return rows


RESIDENT_HEADER = ["id_number", "name", "phone", "household", "population_type", "building_code", "lon", "lat"]
ENTITY_HEADER = ["credit_code", "name", "address", "lon", "lat"]


def write_geojson(path: Path, features: list[tuple[dict, object]], *, crs_4490: bool = True) -> None:
    """Write a small FeatureCollection of (properties, shapely geometry)."""
    document = {"type": "FeatureCollection"}
    if crs_4490:
        document["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
    document["features"] = [{"type": "Feature", "properties": props, "geometry": mapping(geom)}
                            for props, geom in features]
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_xlsx(path: Path, header: list[str], rows: list[list]) -> None:
    """Write a one-sheet workbook with fixed timestamps (inside the document and the zip)."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "名单"
    sheet.append(header)
    for row in rows:
        sheet.append([None if v == "" else v for v in row])
    workbook.properties.created = workbook.properties.modified = FIXED_TIME
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            data = src.read(info)
            if info.filename == "docProps/core.xml":  # openpyxl stamps "modified" with the current time
                import re

                data = re.sub(rb"<dcterms:modified([^>]*)>[^<]*<", rb"<dcterms:modified\1>2026-01-01T00:00:00Z<",
                              data)
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, data)


def footprint(col: int, row: int, *, fraction: float = 0.6, shift: float = 0.0):
    """Return a square footprint in cell (col, row): `fraction` of the cell wide, moved east by `shift` cells."""
    lon, lat = centre(col, row)
    half = fraction * D / 2
    return box(lon - half + shift * D, lat - half, lon + half + shift * D, lat + half)


def make(out: Path = OUT) -> list[Path]:
    """Write every fixture into `out` (emptied first) and return the paths written."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _write_buildings(out)
    _write_residents(out)
    _write_entities(out)
    _write_coordinators(out)
    return sorted(p for p in out.rglob("*") if p.is_file())


def _write_buildings(out: Path) -> None:
    """Buildings in every format: CSV (UTF-8, GBK, BOM, own column names, GCJ-02), GeoJSON, Shapefile."""
    header = ["code", "address", "floors", "lon", "lat"]
    (out / "buildings.csv").write_text(_csv_text(header, _building_rows(BUILDINGS)), encoding="utf-8")
    gbk = [("G001", "园岭街道百花二路8号", 7, centre(0, 2)), ("G002", "园岭街道百花三路9号", None, centre(1, 0)),
           ("G003", "园岭街道鹏益花园10栋", 18, centre(4, 2))]
    (out / "buildings_gbk.csv").write_bytes(_csv_text(header, _building_rows(gbk)).encode("gbk"))
    bom = [("U001", "园岭街道华林花园1栋", 9, centre(2, 0)), ("U002", "园岭街道华林花园2栋", 9, centre(2, 1))]
    (out / "buildings_bom.csv").write_bytes(
        _csv_text(["编码", "地址", "层数", "经度", "纬度"], _building_rows(bom)).encode("utf-8-sig"))
    custom = [("C001", "红岭中路1001号", 5, centre(3, 1)), ("C002", "红岭中路1002号", 5, centre(3, 2))]
    (out / "buildings_custom.csv").write_text(
        _csv_text(["楼号", "门牌地址", "楼层", "X坐标", "Y坐标"], _building_rows(custom)), encoding="utf-8")
    gcj = []
    for code, (col, row) in (("J001", (1, 2)), ("J002", (5, 0))):
        lon, lat = wgs84_to_gcj02(*centre(col, row))
        gcj.append([code, f"高德取点{code}", "", round(lon, 7), round(lat, 7)])
    (out / "buildings_gcj02.csv").write_text(_csv_text(header, gcj), encoding="utf-8")

    write_geojson(out / "buildings_points.geojson", [
        ({"code": "P001", "address": "园岭街道点位1号", "floors": 4}, Point(centre(0, 0))),
        ({"code": "P002", "address": "园岭街道点位2号", "floors": None}, Point(centre(5, 1))),
        ({"code": "P003", "address": "城外点位", "floors": 1}, Point(OUTSIDE))])
    write_geojson(out / "buildings_footprints.geojson", [
        ({"code": "F001", "address": "园岭街道面1号"}, footprint(0, 0)),
        # 0.6 cell wide, moved 0.25 cell east: 0.55 of its width in cell (2, 1), 0.05 in (3, 1) next door.
        ({"code": "F002", "address": "园岭街道面2号"}, footprint(2, 1, shift=0.25)),
        ({"code": "F003", "address": "园岭街道面3号"}, footprint(4, 2))], crs_4490=False)
    shp_dir = out / "buildings_shp"
    shp_dir.mkdir()
    frame = gpd.GeoDataFrame({"code": ["S001", "S002"], "address": ["园岭街道形1号", "园岭街道形2号"],
                              "floors": [8, 11]}, geometry=[footprint(1, 1), footprint(5, 2)], crs=4490)
    pyogrio.write_dataframe(frame, shp_dir / "buildings.shp", encoding="UTF-8",
                            layer_options={"DBF_DATE_LAST_UPDATE": "2026-01-01"})


def _write_residents(out: Path) -> None:
    """Residents: CSV, XLSX, a CSV with one bad row per kind of error, a CSV with an undecodable line."""
    (out / "residents.csv").write_text(_csv_text(RESIDENT_HEADER, _resident_rows(RESIDENTS)), encoding="utf-8")
    xlsx_residents = [
        (citizen_id(31, birth="19880808"), "周芷若", phone(31), 1001, "registered", "B004", None),
        (citizen_id(32, birth="19880809"), "张无忌", phone(32), 1001, "流动人口", "B004", None),
        (citizen_id(33, birth="19600101"), "谢逊", "", 1002, "floating", "", centre(1, 2)),
    ]
    write_xlsx(out / "residents.xlsx", RESIDENT_HEADER, _resident_rows(xlsx_residents))

    good = RESIDENTS[0]
    bad_rows = [
        list(_resident_rows([good])[0]),
        [_wrong_check(citizen_id(41)), "错校验", phone(41), "H0041", "registered", "B001", "", ""],
        [good[0], "重复人", phone(42), "H0042", "registered", "B001", "", ""],
        [citizen_id(43), "无此楼", phone(43), "H0043", "registered", "B999", "", ""],
        [citizen_id(44), "常住人", phone(44), "H0044", "常住", "B001", "", ""],
        [citizen_id(45), "坏电话", "12345", "H0045", "floating", "B001", "", ""],
        [citizen_id(46), "无位置", phone(46), "H0046", "floating", "", "", ""],
        [citizen_id(47), "颠倒", phone(47), "H0047", "floating", "", centre(0)[1], centre(0)[0]],
        [citizen_id(48), "巴黎", phone(48), "H0048", "floating", "", 2.3522, 48.8566],
        [citizen_id(49), "文字", phone(49), "H0049", "floating", "", "东经114度", 22.53],
        [_bad_birth_id(), "坏生日", phone(50), "H0050", "registered", "B001", "", ""],
    ]
    (out / "residents_bad.csv").write_text(_csv_text(RESIDENT_HEADER, bad_rows), encoding="utf-8")
    undecodable = _csv_text(RESIDENT_HEADER, _resident_rows(RESIDENTS[:3])).encode("utf-8").split(b"\n")
    undecodable[2] = undecodable[2].replace(RESIDENTS[1][1].encode("utf-8"), b"\xff\xfe")  # line 3
    (out / "residents_undecodable.csv").write_bytes(b"\n".join(undecodable))


def _write_entities(out: Path) -> None:
    """Legal entities: CSV, XLSX and a CSV with one bad row per kind of error."""
    entity_rows = [[c, n, a, lon, lat] for c, n, a, (lon, lat) in ENTITIES]
    (out / "entities.csv").write_text(_csv_text(ENTITY_HEADER, entity_rows), encoding="utf-8")
    xlsx_entities = [[credit_code(11), "深圳市华林贸易有限公司", "华林路11号", *centre(1, 0)],
                     [credit_code(12), "深圳市鹏益家政服务部", None, *centre(5, 1)]]
    write_xlsx(out / "entities.xlsx", ENTITY_HEADER, xlsx_entities)
    bad_entities = [
        entity_rows[0],
        [credit_code(21)[:-1] + ("0" if credit_code(21)[-1] != "0" else "1"), "坏代码", "", *centre(1)],
        [ENTITIES[0][0], "重复", "", *centre(2)],
        [credit_code(23), "颠倒", "", centre(3)[1], centre(3)[0]],
        [credit_code(24), "无坐标", "", "", ""],
        [credit_code(25), "文字坐标", "", "114.05E", "22.53N"],
    ]
    (out / "entities_bad.csv").write_text(_csv_text(ENTITY_HEADER, bad_entities), encoding="utf-8")


def _write_coordinators(out: Path) -> None:
    """Coordinators: CSV and a CSV with one bad row per kind of error."""
    coordinator_header = ["name", "phone", "dept", "work_cells"]
    (out / "coordinators.csv").write_text(_csv_text(coordinator_header, [list(r) for r in COORDINATORS]),
                                          encoding="utf-8")
    bad_coordinators = [
        list(COORDINATORS[0]),
        ["王五", phone(23), "999999", work_cell("100001", 1)],
        ["赵六", phone(24), "100001", f"{work_cell('100001', 1)};10000144030400100199"],
        ["钱七", "12345", "200001", work_cell("200001", 1)],
        ["张三丰", phone(21), "200001", work_cell("200001", 2)],
    ]
    (out / "coordinators_bad.csv").write_text(_csv_text(coordinator_header, bad_coordinators), encoding="utf-8")


if __name__ == "__main__":
    written = make(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    for path in written:
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"{path.stat().st_size:7d}  {shown}")
