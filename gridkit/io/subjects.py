"""Import buildings, residents, legal entities and coordinators from CSV, XLSX, Shapefile, GeoPackage, GeoJSON.

Every import is all or nothing. The file is read (`gridkit.io.tables.read_table`), every row is
checked, the database is read for duplicates and references, and only when no problem was found is
anything written: in bulk (COPY; 10^5 rows take seconds), inside a savepoint, followed by the
assignment of the new subjects to base cells (`gridkit.assign.assign_subjects`) in the same
transaction. Otherwise `SubjectImportRefused` (a ValidationError) lists every problem (`problems`:
index, code, field, kind, message) and nothing is written. Services never commit: the caller owns
the transaction.

Row numbers ("index" in problems) are what the user sees: the CSV line, the Excel row, the feature
id of a vector file. Messages say what is wrong and what to do.

Columns. Each kind has fields with a default column name (`FIELDS`); a column whose name is the
field name or one of its aliases (e.g. 身份证号 for id_number, 经度/纬度 for lon/lat) is used, case and
surrounding spaces ignored; in a shapefile, also the name cut to the 10 characters DBF allows
(credit_cod). `mapping={"field": "column"}` (the CLI's `--map FIELD=COLUMN`) names another column.
An unknown field or a missing column refuses the file at once, listing the file's columns.

Locations. Tables (CSV, XLSX) give points as `lon`, `lat` columns, in CGCS2000 (EPSG:4490) or WGS 84
degrees, which differ by centimetres, unless `src_crs` names another CRS: an EPSG code (e.g.
EPSG:4547, then the columns hold x/y metres) or `gcj02` for the offset lon/lat of Chinese web maps.
Each row is checked: non-numeric, missing, outside China (lon 73–136, lat 3–54 after conversion; for
a projected CRS also within 1° of the area it is made for) or with latitude and longitude swapped
(the row is inside once its two values are exchanged). Vector files give locations by their geometry
(their own CRS, or `src_crs`); their lon/lat columns are not used. A building's geometry may be a
point (its location) or a polygon (its footprint; its location is then the footprint's
representative point). Residents and legal entities need points.

Identity and duplicates. Buildings are identified by code, residents by citizen ID number (GB 11643,
checksum validated; matched through its keyed hash), legal entities by unified social credit code
(GB 32100, checksum validated). A key twice in the file is refused; a key already in the database is
refused too, unless `replace=True`, which updates the existing row with the file's values (empty
optional cells clear them) and assigns it again.

Personal data. Citizen ID numbers are stored only as an HMAC-SHA256 keyed hash (`gridkit.pii`) and a
masked form (4403**********1234); they appear nowhere in clear, problem messages included (masked
there, and checksum messages never quote digits). Phones in problem messages are masked the same
way; names and residents' coordinates are never quoted. Names and phones are stored as given
(phones normalised).

Residents. `population_type` is `registered` (also 户籍, 户籍人口, 本地) or `floating` (also 流动, 流动人口, 暂住,
暂住人口, 外来人口); 常住 (usual residents) is refused because it covers both. A resident is attached to a
building by `building_code` or, failing that, by `building_address` (exactly one building must have
that address), and inherits the building's base cell; otherwise it needs its own `lon`, `lat`. A
resident with both keeps its point too.

Coordinators. One row per person per department: `name, phone, dept, work_cells` (work cell codes of
the department's current published version separated by `;`, also `；`, `,`, `、` or spaces; `dept` is
the department code or name). The phone identifies the person (多员合一): rows with the same phone are
one coordinator covering work cells of several departments, and a coordinator already in the
database with that phone (and the same name) is reused and given the new work cells; existing
assignments are kept. The same phone with two names, or the same person twice for one department, is
refused.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyproj
import shapely
from geoalchemy2 import Geometry
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon
from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from gridkit.assign import assign_subjects
from gridkit.errors import ValidationError
from gridkit.grids.base import current_edition
from gridkit.grids.importer import ImportRefused
from gridkit.io.tables import Table, TableReadError, read_table
from gridkit.io.vector import CHINA_LAT, CHINA_LON, VectorReadError, parse_crs, problem, summarise
from gridkit.models import (SRID, Building, Coordinator, CoordinatorAssignment, Department, LegalEntity,
                            Resident, WorkCell, WorkGridVersion)
from gridkit.pii import hash_citizen_id
from gridkit.standard.ids import birth_date_of, validate_citizen_id, validate_credit_code, validate_phone

__all__ = ["KINDS", "FIELDS", "POPULATION_TYPE_WORDS", "SUBJECT_ADVICE", "SubjectImportResult",
           "SubjectImportRefused", "import_buildings", "import_residents", "import_entities",
           "import_coordinators", "import_subjects", "parse_mapping"]

KINDS = ("buildings", "residents", "entities", "coordinators")


@dataclass(frozen=True)
class Field:
    """A field an import reads: its name (the default column), other accepted column names, whether required."""

    name: str
    required: bool = False
    aliases: tuple[str, ...] = ()


_LON = Field("lon", aliases=("lng", "longitude", "经度", "x"))
_LAT = Field("lat", aliases=("latitude", "纬度", "y"))
_PHONE_ALIASES = ("电话", "手机", "手机号", "手机号码", "联系电话")

# lon/lat are required where a row has no other location (checked per row, not per file).
FIELDS: dict[str, tuple[Field, ...]] = {
    "buildings": (Field("code", True, ("building_code", "编码", "建筑编码", "楼栋编码")),
                  Field("address", False, ("地址", "建筑地址")), Field("floors", False, ("层数",)), _LON, _LAT),
    "residents": (Field("id_number", True, ("身份证号", "身份证号码", "公民身份号码")),
                  Field("name", True, ("姓名",)), Field("phone", False, _PHONE_ALIASES),
                  Field("household", False, ("户号", "household_id")),
                  Field("population_type", True, ("人口类型",)),
                  Field("building_code", False, ("建筑编码", "楼栋编码")), Field("building_address", False, ()),
                  _LON, _LAT),
    "entities": (Field("credit_code", True, ("统一社会信用代码", "信用代码")),
                 Field("name", True, ("名称", "单位名称", "企业名称")), Field("address", False, ("地址",)),
                 _LON, _LAT),
    "coordinators": (Field("name", True, ("姓名",)), Field("phone", True, _PHONE_ALIASES),
                     Field("dept", True, ("dept_code", "部门", "部门编码")),
                     Field("work_cells", True, ("工作网格", "网格编码"))),
}

POPULATION_TYPE_WORDS = {
    "registered": "registered", "户籍": "registered", "户籍人口": "registered", "本地": "registered",
    "floating": "floating", "流动": "floating", "流动人口": "floating", "暂住": "floating",
    "暂住人口": "floating", "外来人口": "floating",
}
_AMBIGUOUS_POPULATION = {"常住", "常住人口"}

_WORK_CELL_SEPARATORS = re.compile(r"[;；,，、\s]+")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")
_LENGTHS = {"code": 40, "address": 200, "name": 50, "entity_name": 200, "household": 40}
_MAX_FLOORS = 300
_PAIRS_PER_STATEMENT = 10_000
_AREA_MARGIN = 1.0  # degrees beyond a projected CRS's area of use still accepted

# What to do, per problem kind, in the coordinator's language: the kinds gridkit.io.report.ADVICE lacks
# (merge them into it; kinds shared with vector imports, such as axes_swapped, keep their advice there).
SUBJECT_ADVICE = {
    "unknown_field": "用 --map 字段=列名 指定，字段名见原因中的列表。",
    "duplicate_column": "表头中的列名须唯一：重命名其中一列。",
    "no_header": "第一行须为列名。",
    "no_rows": "文件只有表头，没有数据：确认导出了正确的表。",
    "bad_row": "检查该行的引号、逗号或多余的单元格。",
    "bad_option": "去掉不适用的选项。",
    "no_such_sheet": "用 --sheet 指定列出的工作表之一。",
    "no_edition": "先发布基础网格版本，再导入对象。",
    "missing_value": "填写该必填项。",
    "too_long": "缩短该值。",
    "bad_number": "填写整数。",
    "bad_id_number": "核对身份证号码（18 位，末位校验码）。",
    "number_precision": "Excel 将长数字存为数值并丢失末几位：把该列设为文本后重新录入。",
    "duplicate_id": "同一证件号码只能出现一次：删除或改正重复行。",
    "bad_credit_code": "核对统一社会信用代码（18 位，末位校验码）。",
    "bad_phone": "填写 11 位手机号或带区号的固定电话。",
    "bad_population_type": "人口类型填 registered/户籍 或 floating/流动。",
    "unknown_building": "先导入该建筑，或改正建筑编码/地址。",
    "ambiguous_building": "该地址对应多个建筑：改用 building_code。",
    "missing_location": "填写 building_code 或经纬度。",
    "missing_coordinates": "填写经度和纬度（CGCS2000 度）。",
    "bad_coordinate": "经纬度须为数字（度），如 114.0579。",
    "bad_geometry": "建筑须为点或面，人口与法人须为点。",
    "unknown_department": "核对部门编码（gridkit dept list）。",
    "no_published_version": "先发布该部门的工作网格。",
    "unknown_work_cell": "核对工作网格编码（须属于该部门当前发布的版本）。",
    "duplicate_row": "同一人同一部门只写一行：合并工作网格。",
    "phone_conflict": "同一电话须为同一人：核对姓名或电话。",
    # notes
    "field_alias": "已按同义列名读取，请核对。",
    "lonlat_ignored": "地图图层的位置取自其图形。",
    "sheet": "如需其他工作表，用 --sheet 指定。",
    "reactivated": "已重新启用。",
}


class SubjectImportRefused(ImportRefused):
    """A subject import found problems and wrote nothing; `problems`, `notes` and `source` say what and where."""


@dataclass
class SubjectImportResult:
    """What a subject import wrote: counts, assignment, rows left unassigned, notes and the source read."""

    kind: str
    created: int
    updated: int = 0
    assigned: int = 0
    unassigned: int = 0
    # One dict per imported subject outside every base cell: row (as the user sees it), id, code.
    unassigned_rows: list[dict] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)
    source: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Return the counts and source as a flat dict, for reports and CLI output."""
        out = {"kind": self.kind, "file": self.source.get("path"), "driver": self.source.get("driver"),
               "encoding": self.source.get("encoding"), "crs": self.source.get("crs"),
               "rows": self.source.get("rows", self.source.get("features")),
               "created": self.created, "updated": self.updated}
        for key in ("layer", "sheet"):
            if self.source.get(key):
                out[key] = self.source[key]
        if self.kind != "coordinators":
            out.update(assigned=self.assigned, unassigned=self.unassigned,
                       unassigned_rows=[r["row"] for r in self.unassigned_rows])
        out.update(self.extra)
        return out


def parse_mapping(items) -> dict[str, str]:
    """Return {field: column} from the CLI's `--map FIELD=COLUMN` values, or raise ValidationError."""
    mapping: dict[str, str] = {}
    for item in items or ():
        name, sep, column = str(item).partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            raise ValidationError(f"--map {item!r} must be FIELD=COLUMN, e.g. --map code=楼栋编码.")
        if name in mapping and mapping[name] != column:
            raise ValidationError(f"--map gives field {name!r} twice ({mapping[name]!r} and {column!r}).")
        mapping[name] = column
    return mapping


def _mask(value: str) -> str:
    """Hide the middle of a personal value: 18-character IDs as 4 + 10 '*' + 4, phones as 3 + 4 '*' + 4."""
    s = str(value).strip()
    if len(s) >= 12:
        return s[:4] + "*" * (len(s) - 8) + s[-4:]
    if len(s) >= 8:
        return s[:3] + "*" * (len(s) - 7) + s[-4:]
    return "*" * len(s)


def _id_reason(message: str) -> str:
    """Return validate_citizen_id's reason without any digits of the number (birth date, region, check)."""
    if "must be 18 characters" in message or "positions 1-17" in message or "must end in" in message:
        return message.replace("Citizen ID number", "It")
    if "region code" in message:
        return "Its region code (digits 1-6) does not start with a province code."
    if "birth date" in message:
        for said in ("is not a real date", "is before 1900", "is in the future"):
            if said in message:
                return f"Its birth date (digits 7-14) {said}."
    if "check character" in message:
        return "Its check character (the 18th) does not match the first 17 digits: one of them is mistyped."
    return "It is not a valid citizen ID number (GB 11643)."


def _phone_reason(message: str, raw: str) -> str:
    masked = _mask(raw)
    return message.replace(raw, masked).replace(raw.strip(), masked)


# -- reading and checking, shared by every kind ------------------------------------------------------------


class _Job:
    """One import: the table read, the columns resolved, the problems and notes collected so far."""

    def __init__(self, session: Session, kind: str, path, *, mapping, encoding, src_crs, layer, sheet,
                 personal_location: bool = False):
        self.session, self.kind, self.src_crs = session, kind, src_crs
        self.personal_location = personal_location
        # position → the row's code (building code, masked ID, credit code) to label its problems.
        self.row_code: dict[int, str] = {}
        try:
            self.table: Table = read_table(path, encoding=encoding, sheet=sheet, layer=layer, src_crs=src_crs)
        except TableReadError as exc:
            raise SubjectImportRefused(exc.message, problems=exc.problems, notes=exc.notes,
                                       source=exc.source) from None
        table = self.table
        self.source = table.source
        self.notes = list(table.notes)
        # Rows without a geometry are judged by each kind (a resident may have a building instead).
        geometry_problems = [p for p in table.problems if p.get("field") == "geometry"
                             and p["kind"] not in ("null_geometry", "empty_geometry")]
        self.geometry_problem = {p["index"] for p in geometry_problems}
        # A file-level geometry problem (e.g. most features outside China) has no index: it covers every row.
        self.geometry_problem_all = any(p["index"] is None for p in geometry_problems)
        self.problems = [p for p in table.problems if p["kind"] not in ("null_geometry", "empty_geometry")]
        self.cols = self._resolve(mapping or {})
        if self.problems and any(p["kind"] in ("unknown_field", "missing_field", "duplicate_column")
                                 for p in self.problems):
            self.refuse()
        if not table.rows:
            self.problems.append(problem("no_rows", f"{self.display}: there are no rows below the header; "
                                         "nothing to import. Check that the right table was exported."))
            self.refuse()

    @property
    def display(self) -> str:
        return self.source.get("display", self.source.get("path", "the file"))

    def _resolve(self, mapping: dict) -> dict[str, str | None]:
        fields = {f.name: f for f in FIELDS[self.kind]}
        columns = self.table.columns
        listed = ", ".join(columns) if columns else "none"
        unknown = [name for name in mapping if name not in fields]
        for name in unknown:
            self.problems.append(problem("unknown_field", f"--map {name}=…: {self.kind} have no field {name!r}. "
                                         f"Their fields are: {', '.join(fields)}.", field=name))
        folded = {}
        for c in columns:
            folded.setdefault(c.strip().casefold(), c)
        resolved: dict[str, str | None] = {}
        for name, f in fields.items():
            if name in mapping:
                wanted = mapping[name]
                column = wanted if wanted in columns else folded.get(wanted.strip().casefold())
                if column is None:
                    self.problems.append(problem(
                        "missing_field", f"{self.display} has no column {wanted!r} (given with --map "
                        f"{name}={wanted}). Its columns are: {listed}.", field=wanted))
                elif column != wanted:
                    self.notes.append(problem("field_case", f"{self.display}: column {wanted!r} was not found; "
                                              f"{column!r} was used.", field=column))
                resolved[name] = column
                continue
            column = None
            candidates = [name, *f.aliases]
            if self.source.get("driver") == "ESRI Shapefile" and len(name) > 10:
                candidates.append(name[:10])   # DBF field names are cut to 10 characters: credit_cod
            for candidate in candidates:
                column = candidate if candidate in columns else folded.get(candidate.casefold())
                if column is not None:
                    break
            if column is not None and column != name:
                self.notes.append(problem("field_alias", f"{self.display}: column {column!r} was read as field "
                                          f"{name!r}.", field=column))
            if column is None and f.required:
                self.problems.append(problem(
                    "missing_field", f"{self.display} has no column for field {name!r}. Its columns are: "
                    f"{listed}. Name the column with --map {name}=COLUMN.", field=name))
            resolved[name] = column
        if self.table.spatial:
            for name in ("lon", "lat"):
                if name in resolved and resolved[name] is not None and name in mapping:
                    self.notes.append(problem("lonlat_ignored", f"{self.display} is a map layer: locations come "
                                              f"from its geometry; column {resolved[name]!r} was not used.",
                                              field=resolved[name]))
            resolved.pop("lon", None)
            resolved.pop("lat", None)
        elif "lon" in resolved and (resolved["lon"] is None) != (resolved["lat"] is None):
            have, lack = ("lon", "lat") if resolved["lon"] else ("lat", "lon")
            self.problems.append(problem("missing_field", f"{self.display} has a column for {have} "
                                         f"({resolved[have]!r}) but none for {lack}. Its columns are: {listed}. "
                                         f"Name it with --map {lack}=COLUMN.", field=lack))
        elif "lon" in resolved and resolved["lon"] is None:
            if self.kind != "residents":
                self.problems.append(problem("missing_field", f"{self.display} has no lon and lat columns, so "
                                             f"its {self.kind} have no location. Its columns are: {listed}. Name "
                                             "them with --map lon=COLUMN --map lat=COLUMN.", field="lon"))
            elif resolved["building_code"] is None and resolved["building_address"] is None:
                self.problems.append(problem("missing_field", f"{self.display} has neither a building_code (or "
                                             "building_address) column nor lon and lat columns, so its residents "
                                             f"have no location. Its columns are: {listed}. Name them with --map.",
                                             field="building_code"))
        return resolved

    def column(self, name: str) -> str:
        return self.cols.get(name) or name

    def value(self, position: int, name: str) -> str | None:
        column = self.cols.get(name)
        return None if column is None else self.table.rows[position].get(column)

    def report(self, position: int, kind: str, name: str | None, message: str, code=None) -> None:
        """Record a problem of the row at `position` in column of field `name`."""
        self.problems.append(problem(kind, f"{self.table.where(position)}: {message}",
                                     index=self.table.numbers[position],
                                     code=code if code is not None else self.row_code.get(position),
                                     field=None if name is None else (
                                         "geometry" if name == "geometry" else self.column(name))))

    def refuse(self) -> None:
        # File-level problems first, then by row as the user fixes them (stable: same row, order found).
        self.problems.sort(key=lambda p: (p["index"] is not None, p["index"] or 0))
        raise SubjectImportRefused(summarise(self.display, self.problems, "imported"), problems=self.problems,
                                   notes=self.notes, source=self.source)

    def text(self, position: int, name: str, *, required: bool, limit: int | None, code=None) -> str | None:
        """Return the row's value of field `name` after checking presence and length (recorded if wrong)."""
        value = self.value(position, name)
        if value is None:
            if required:
                self.report(position, "missing_value", name, f"{name} is empty (column {self.column(name)!r}). "
                            "Fill it in.", code)
            return None
        if limit is not None and len(value) > limit:
            self.report(position, "too_long", name, f"{name} has {len(value)} characters; at most {limit} fit. "
                        "Shorten it.", code)
            return None
        return value

    def lossy(self, position: int, name: str) -> bool:
        """True when the cell held a long number Excel cannot keep exactly, or its scientific notation."""
        column = self.cols.get(name)
        value = self.value(position, name)
        return (column is not None and (position, column) in self.table.lossy) or bool(
            value and _SCIENTIFIC.match(value))

    # -- locations ---------------------------------------------------------------------------------

    def points(self, need: list[bool]) -> list[Point | None]:
        """Return each row's point from lon/lat columns in EPSG:4490 (None where absent or wrong).

        A row where `need` is true must have coordinates; others may. Problems are recorded.
        """
        n = len(self.table.rows)
        result: list[Point | None] = [None] * n
        has_columns = self.cols.get("lon") is not None and self.cols.get("lat") is not None
        xs, ys, positions, texts = [], [], [], []
        for position in range(n):
            x_text = self.value(position, "lon") if has_columns else None
            y_text = self.value(position, "lat") if has_columns else None
            if x_text is None and y_text is None:
                if need[position]:
                    self._missing_location(position, has_columns)
                continue
            if x_text is None or y_text is None:
                lack = "lon" if x_text is None else "lat"
                self.report(position, "missing_coordinates", lack, f"has {'lat' if lack == 'lon' else 'lon'} but "
                            f"no {lack}. Fill in both.")
                continue
            x, y = _number(x_text), _number(y_text)
            if x is None or y is None:
                bad = "lon" if x is None else "lat"
                shown = "" if self.personal_location else f" ({(x_text if x is None else y_text)!r})"
                self.report(position, "bad_coordinate", bad, f"{bad}{shown} is not a number. Give decimal "
                            "degrees such as 114.0579 (or metres in the --src-crs projection).")
                continue
            xs.append(x)
            ys.append(y)
            texts.append((x_text, y_text))
            positions.append(position)
        if not positions:
            return result
        forward, label, bounds = self._transform()
        self.source.setdefault("crs", label)
        x, y = np.array(xs), np.array(ys)
        lon, lat = forward(x, y)
        inside = _inside(lon, lat, bounds)
        # Out of bounds: is it inside with its two values exchanged? Then the axes are swapped.
        swapped = _inside(*forward(y, x), bounds) if not inside.all() else inside
        china = bounds == (CHINA_LON[0], CHINA_LAT[0], CHINA_LON[1], CHINA_LAT[1])
        area = ("China (longitude 73–136, latitude 3–54 in CGCS2000)" if china else
                f"the area {label} is made for (longitude {bounds[0]:g}–{bounds[2]:g}, latitude "
                f"{bounds[1]:g}–{bounds[3]:g}, in China)")
        made = shapely.points(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        for i, position in enumerate(positions):
            if inside[i]:
                result[position] = made[i]
                continue
            shown = "" if self.personal_location else f" ({texts[i][0]}, {texts[i][1]})"
            if swapped[i]:
                self.report(position, "axes_swapped", "lon", f"lon, lat{shown} look swapped: they are latitude, "
                            "longitude (or northing, easting). Exchange the two values; if the whole file is like "
                            f"this, give --map lon={self.column('lat')} --map lat={self.column('lon')}.")
            else:
                self.report(position, "outside_china", "lon", f"lon, lat{shown} lie outside {area}. Correct "
                            "them, or give the right coordinate system with --src-crs (e.g. gcj02, EPSG:4547).")
        return result

    def _missing_location(self, position: int, has_columns: bool) -> None:
        if self.kind == "residents":
            self.report(position, "missing_location", "lon" if has_columns else "building_code",
                        "has neither a building (building_code) nor coordinates (lon, lat). Give one of them.")
        elif has_columns:
            self.report(position, "missing_coordinates", "lon", "has no coordinates. Fill in lon and lat "
                        "(CGCS2000 degrees).")
        else:
            self.report(position, "missing_coordinates", "lon", f"has no coordinates: {self.display} has no lon "
                        "and lat columns. Add them, or name them with --map lon=COLUMN --map lat=COLUMN.")

    def _transform(self) -> tuple[Callable, str, tuple]:
        """Return (x, y → CGCS2000 lon, lat), the CRS label and the lon/lat bounds a point must lie in."""
        china = (CHINA_LON[0], CHINA_LAT[0], CHINA_LON[1], CHINA_LAT[1])
        if self.src_crs is None or not str(self.src_crs).strip():
            return (lambda x, y: (x, y)), "EPSG:4490 (lon/lat columns, CGCS2000 or WGS 84)", china
        try:
            crs, gcj02 = parse_crs(self.src_crs)
        except VectorReadError as exc:
            self.problems.extend(exc.problems)
            self.refuse()
        if gcj02:
            from gridkit.coords import gcj02_to_wgs84

            self.notes.append(problem("gcj02", f"{self.display}: GCJ-02 coordinates were converted to CGCS2000 "
                                      "(the ~500 m offset of Chinese web maps removed)."))
            return (lambda x, y: gcj02_to_wgs84(x, y)), "GCJ-02 lon/lat (Chinese web maps)", china
        transformer = pyproj.Transformer.from_crs(crs, pyproj.CRS.from_epsg(SRID), always_xy=True)
        epsg = crs.to_epsg(min_confidence=90)
        label = f"EPSG:{epsg} ({crs.name})" if epsg else crs.name
        bounds = china
        area = crs.area_of_use
        if crs.is_projected and area is not None:
            # A projection maps almost any pair of numbers somewhere: swapped x/y of a Gauss-Kruger zone
            # land "in China" too. Require the zone's own area (with a margin), which catches them.
            bounds = (max(china[0], area.west - _AREA_MARGIN), max(china[1], area.south - _AREA_MARGIN),
                      min(china[2], area.east + _AREA_MARGIN), min(china[3], area.north + _AREA_MARGIN))
            if bounds[0] >= bounds[2] or bounds[1] >= bounds[3]:
                bounds = china
        return (lambda x, y: transformer.transform(x, y, errcheck=False)), label, bounds

    def geometries(self, need: list[bool], *, polygons: bool) -> tuple[list, list]:
        """Return (points, footprints) of a vector file's rows: footprints only when `polygons` is allowed."""
        n = len(self.table.rows)
        points: list = [None] * n
        footprints: list = [None] * n
        for position, geom in enumerate(self.table.geometries):
            number = self.table.numbers[position]
            if geom is None or geom.is_empty:
                if need[position] and number not in self.geometry_problem and not self.geometry_problem_all:
                    if self.kind == "residents":
                        self._missing_location(position, False)
                    else:
                        self.report(position, "missing_coordinates", "geometry", "has no geometry. Draw it, or "
                                    "delete the feature.")
                continue
            if isinstance(geom, MultiPoint) and len(geom.geoms) == 1:
                geom = geom.geoms[0]
            if isinstance(geom, Point):
                points[position] = geom
            elif polygons and isinstance(geom, (Polygon, MultiPolygon)):
                footprints[position] = geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])
                points[position] = geom.representative_point()
            else:
                wanted = "a point or a polygon (footprint)" if polygons else "a point"
                self.report(position, "bad_geometry", "geometry", f"is a {geom.geom_type}; here each feature "
                            f"must be {wanted}. Export the layer as {'points or polygons' if polygons else 'points'}.")
        return points, footprints

    def locations(self, need: list[bool], *, polygons: bool = False) -> tuple[list, list]:
        """Return (points, footprints) per row from the geometry (vector files) or the lon/lat columns."""
        if self.table.spatial:
            return self.geometries(need, polygons=polygons)
        return self.points(need), [None] * len(self.table.rows)

    def check_edition(self) -> None:
        if current_edition(self.session) is None:
            self.problems.append(problem("no_edition", "no base grid edition is published, so the subjects "
                                         "cannot be assigned to base cells: publish one (gridkit basegrid "
                                         "publish) before importing subjects."))

    def existing(self, sql: str, keys: list) -> dict:
        """Return {key: id} for keys already in the database (`sql` selects key, id WHERE key = ANY(:keys))."""
        if not keys:
            return {}
        return dict(self.session.execute(text(sql), {"keys": list(keys)}).all())


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _inside(lon, lat, bounds: tuple) -> np.ndarray:
    """Return where (lon, lat) is finite and within bounds (west, south, east, north)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    west, south, east, north = bounds
    with np.errstate(invalid="ignore"):
        return (np.isfinite(lon) & np.isfinite(lat) & (lon >= west) & (lon <= east)
                & (lat >= south) & (lat <= north))


def _first_seen(job: _Job, seen: dict, key, position: int, kind: str, name: str, what: str, code) -> bool:
    """Record `key` at `position`; if seen before, record a duplicate problem and return False."""
    if key in seen:
        job.report(position, kind, name, f"{what} appears again (first at {job.table.unit} "
                   f"{job.table.numbers[seen[key]]}). Each may appear once: delete or correct one of the rows.", code)
        return False
    seen[key] = position
    return True


def _write(session: Session, model, key: str, new_rows: list[dict],
           updated_rows: list[dict]) -> tuple[list[int], list[int]]:
    """Insert `new_rows` (COPY) and update `updated_rows` (by id); return (new ids, updated ids) in row order.

    Rows hold shapely geometries (EPSG:4490) or None; `key` is a unique column that finds the new ids.
    """
    new_ids: list[int] = []
    if new_rows:
        _copy(session, model.__table__, new_rows)
        keys = [r[key] for r in new_rows]
        found = dict(session.execute(text(f"SELECT {key}, id FROM {model.__tablename__} WHERE {key} = ANY(:k)"),
                                     {"k": keys}).all())
        new_ids = [found[k] for k in keys]
    if updated_rows:
        for row in updated_rows:
            for name, value in row.items():
                if isinstance(value, shapely.Geometry):
                    row[name] = from_shape(value, srid=SRID)
        session.execute(update(model), updated_rows)
    return new_ids, [r["id"] for r in updated_rows]


def _copy(session: Session, table, rows: list[dict]) -> None:
    """Append rows to `table` with COPY: 10^5 rows in a second or two, where INSERT takes ten times longer."""
    columns = list(rows[0])
    values = []
    for name in columns:
        column = [r[name] for r in rows]
        if isinstance(table.c[name].type, Geometry):
            geoms = shapely.set_srid(np.array(column, dtype=object), SRID)
            column = shapely.to_wkb(geoms, hex=True, include_srid=True).tolist()   # hex EWKB, None stays None
        values.append(column)
    session.flush()
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in zip(*values):
            copy.write_row(row)


def _assign(job: _Job, kind: str, table_name: str, ident_sql: str, ids: list[int], numbers: dict[int, int],
            extra_where: dict | None = None) -> tuple[int, int, list[dict]]:
    """Assign the imported subjects to base cells; return (assigned, unassigned, unassigned rows)."""
    if not ids:
        return 0, 0, []
    where_ids = {kind: ids, **(extra_where or {})}
    assign_subjects(job.session, list(where_ids), where_ids=where_ids)
    rows = job.session.execute(text(
        f"SELECT id, {ident_sql} AS ident FROM {table_name} WHERE id = ANY(:ids) AND base_cell_id IS NULL "
        "ORDER BY id"), {"ids": ids}).all()
    listed = sorted(({"row": numbers[r.id], "id": r.id, "code": r.ident} for r in rows), key=lambda r: r["row"])
    return len(ids) - len(rows), len(rows), listed


# -- buildings -------------------------------------------------------------------------------------------


def import_buildings(session: Session, path, *, mapping: dict | None = None, encoding: str | None = None,
                     src_crs: str | None = None, layer: str | None = None, sheet: str | None = None,
                     replace: bool = False) -> SubjectImportResult:
    """Import buildings (code, address, floors; a point or a footprint) all or nothing, and assign them.

    Codes must be unique in the file and new to the database (or `replace`). Never commits.
    """
    job = _Job(session, "buildings", path, mapping=mapping, encoding=encoding, src_crs=src_crs, layer=layer,
               sheet=sheet)
    n = len(job.table.rows)
    codes: list[str | None] = [None] * n
    seen: dict = {}
    addresses, floors = [None] * n, [None] * n
    for position in range(n):
        code = job.text(position, "code", required=True, limit=_LENGTHS["code"])
        if code is not None:
            job.row_code[position] = code
        if code is not None and _first_seen(job, seen, code, position, "duplicate_code", "code",
                                            f"building code {code}", code):
            codes[position] = code
        addresses[position] = job.text(position, "address", required=False, limit=_LENGTHS["address"], code=code)
        floors[position] = _floors(job, position, code)
    points, footprints = job.locations([True] * n, polygons=True)
    existing = job.existing("SELECT code, id FROM building WHERE code = ANY(:keys)", [c for c in codes if c])
    _refuse_existing(job, codes, existing, replace, "code", "a building with code {key}")
    job.check_edition()
    if job.problems:
        job.refuse()

    rows = [{"code": codes[p], "address": addresses[p], "floors": floors[p], "geom": points[p],
             "footprint": footprints[p]} for p in range(n)]
    with session.begin_nested():
        new_ids, updated_ids, numbers = _write_keyed(session, job, Building, "code", codes, rows, existing)
        ids = new_ids + updated_ids
        residents = []
        if updated_ids:   # residents inherit their building's cell
            residents = list(session.scalars(text("SELECT id FROM resident WHERE building_id = ANY(:ids)"),
                                             {"ids": updated_ids}))
        assigned, unassigned, listed = _assign(job, "buildings", "building", "code", ids, numbers,
                                               {"residents": residents} if residents else None)
    return SubjectImportResult("buildings", created=len(new_ids), updated=len(updated_ids), assigned=assigned,
                               unassigned=unassigned, unassigned_rows=listed, notes=job.notes, source=job.source,
                               extra={"footprints": sum(f is not None for f in footprints)})


def _floors(job: _Job, position: int, code) -> int | None:
    value = job.value(position, "floors")
    if value is None:
        return None
    number = _number(value)
    if number is None or not number.is_integer() or not 1 <= number <= _MAX_FLOORS:
        job.report(position, "bad_number", "floors", f"floors {value!r} is not a whole number from 1 to "
                   f"{_MAX_FLOORS}. Correct it or leave it empty.", code)
        return None
    return int(number)


def _refuse_existing(job: _Job, keys: list, existing: dict, replace: bool, name: str, what: str,
                     codes: list | None = None) -> None:
    if replace:
        return
    for position, key in enumerate(keys):
        if key is not None and key in existing:
            code = codes[position] if codes else key   # residents: the masked ID, never the hash
            job.report(position, "exists", name, f"{what.format(key=code)} is already in the database (id "
                       f"{existing[key]}). Remove the row, or import with --replace to update it.", code)


def _numbers(job: _Job, ids: list[int], positions: list[int]) -> dict[int, int]:
    return {i: job.table.numbers[p] for i, p in zip(ids, positions)}


def _write_keyed(session: Session, job: _Job, model, key: str, keys: list, rows: list[dict],
                 existing: dict) -> tuple[list[int], list[int], dict[int, int]]:
    """Insert the rows whose key is new, update those whose key exists (replace); return
    (new ids, updated ids, the user's row number by id)."""
    new_rows, updated_rows, order_new, order_updated = [], [], [], []
    for position, (k, row) in enumerate(zip(keys, rows)):
        if k in existing:
            updated_rows.append({"id": existing[k], **row})
            order_updated.append(position)
        else:
            new_rows.append(row)
            order_new.append(position)
    new_ids, updated_ids = _write(session, model, key, new_rows, updated_rows)
    return new_ids, updated_ids, _numbers(job, new_ids + updated_ids, order_new + order_updated)


# -- residents -------------------------------------------------------------------------------------------


def import_residents(session: Session, path, *, pii_key: bytes, mapping: dict | None = None,
                     encoding: str | None = None, src_crs: str | None = None, layer: str | None = None,
                     sheet: str | None = None, replace: bool = False) -> SubjectImportResult:
    """Import residents all or nothing, storing citizen IDs only as keyed hash + mask, and assign them.

    `pii_key` is the key of the hash (gridkit.pii.pii_key(settings)). A resident is attached to a
    building (building_code, else building_address) or has its own lon/lat. Never commits.
    """
    if not pii_key:
        raise ValueError("import_residents needs the personal-data key: pass pii_key=gridkit.pii.pii_key(settings).")
    job = _Job(session, "residents", path, mapping=mapping, encoding=encoding, src_crs=src_crs, layer=layer,
               sheet=sheet, personal_location=True)
    n = len(job.table.rows)
    hashes: list[str | None] = [None] * n
    masks: list[str | None] = [None] * n
    values: list[dict] = [{} for _ in range(n)]
    building_codes: list[str | None] = [None] * n
    building_addresses: list[str | None] = [None] * n
    seen: dict = {}
    job.birth_dates = [None] * n
    for position in range(n):
        mask = _resident_id(job, position, pii_key, seen, hashes)
        masks[position] = mask
        row = values[position]
        row["name"] = job.text(position, "name", required=True, limit=_LENGTHS["name"], code=mask)
        row["phone"] = _phone(job, position, required=False, code=mask)
        row["household"] = job.text(position, "household", required=False, limit=_LENGTHS["household"], code=mask)
        row["population_type"] = _population_type(job, position, mask)
        building_codes[position] = job.value(position, "building_code")
        if building_codes[position] is None:
            building_addresses[position] = job.value(position, "building_address")
    has_building = [c is not None or a is not None for c, a in zip(building_codes, building_addresses)]
    points, _ = job.locations([not b for b in has_building])
    building_ids = _resident_buildings(job, building_codes, building_addresses, masks)
    existing = job.existing("SELECT id_number_hash, id FROM resident WHERE id_number_hash = ANY(:keys)",
                            [h for h in hashes if h])
    _refuse_existing(job, hashes, existing, replace, "id_number", "a resident with ID number {key}", codes=masks)
    job.check_edition()
    if job.problems:
        job.refuse()

    rows = [{"id_number_hash": hashes[p], "id_number_masked": masks[p], "birth_date": job.birth_dates[p], **values[p],
             "building_id": building_ids[p], "geom": points[p]} for p in range(n)]
    with session.begin_nested():
        new_ids, updated_ids, numbers = _write_keyed(session, job, Resident, "id_number_hash", hashes, rows, existing)
        assigned, unassigned, listed = _assign(job, "residents", "resident", "id_number_masked",
                                               new_ids + updated_ids, numbers)
    populations = {t: sum(v["population_type"] == t for v in values) for t in ("registered", "floating")}
    return SubjectImportResult("residents", created=len(new_ids), updated=len(updated_ids), assigned=assigned,
                               unassigned=unassigned, unassigned_rows=listed, notes=job.notes, source=job.source,
                               extra={**populations, "in_buildings": sum(b is not None for b in building_ids)})


def _resident_id(job: _Job, position: int, key: bytes, seen: dict, hashes: list) -> str | None:
    """Check the row's citizen ID; record its hash; return its masked form (None if absent or malformed)."""
    raw = job.value(position, "id_number")
    if raw is None:
        job.report(position, "missing_value", "id_number", f"id_number is empty (column "
                   f"{job.column('id_number')!r}). Fill it in.")
        return None
    shown = _mask(raw)
    job.row_code[position] = shown
    if job.lossy(position, "id_number"):
        job.report(position, "number_precision", "id_number", f"the ID number ({shown}) was stored as a number, "
                   "which keeps only 15 digits, so its last digits are lost. Format the column as text (in Excel: "
                   "Format Cells › Text) and enter the numbers again.", shown)
        return None
    try:
        number = validate_citizen_id(raw)
    except ValueError as exc:
        job.report(position, "bad_id_number", "id_number", f"the ID number {shown} is not valid. "
                   f"{_id_reason(str(exc))} Correct it.", shown)
        return None
    masked = job.row_code[position] = _mask(number)
    job.birth_dates[position] = birth_date_of(number)
    digest = hash_citizen_id(key, number)
    if _first_seen(job, seen, digest, position, "duplicate_id", "id_number", f"ID number {masked}", masked):
        hashes[position] = digest
    return masked


def _phone(job: _Job, position: int, *, required: bool, code) -> str | None:
    raw = job.value(position, "phone")
    if raw is None:
        if required:
            job.report(position, "missing_value", "phone", f"phone is empty (column {job.column('phone')!r}). "
                       "Fill it in.", code)
        return None
    try:
        return validate_phone(raw)
    except ValueError as exc:
        job.report(position, "bad_phone", "phone", f"{_phone_reason(str(exc), raw)} Correct the phone number.",
                   code)
        return None


def _population_type(job: _Job, position: int, code) -> str | None:
    raw = job.value(position, "population_type")
    if raw is None:
        job.report(position, "missing_value", "population_type", "population_type is empty. Fill in registered "
                   "(户籍) or floating (流动).", code)
        return None
    word = raw.strip()
    found = POPULATION_TYPE_WORDS.get(word) or POPULATION_TYPE_WORDS.get(word.casefold())
    if found is not None:
        return found
    if word in _AMBIGUOUS_POPULATION:
        reason = (f"{word!r} (usual residents) covers both registered and floating residents; say which one: "
                  "registered (户籍) or floating (流动).")
    else:
        reason = (f"population type {word!r} is unknown: use registered (户籍) or floating (流动).")
    job.report(position, "bad_population_type", "population_type", reason, code)
    return None


def _resident_buildings(job: _Job, codes: list, addresses: list, masks: list) -> list[int | None]:
    """Return each row's building id; record unknown codes and unknown or ambiguous addresses."""
    by_code = job.existing("SELECT code, id FROM building WHERE code = ANY(:keys)", sorted({c for c in codes if c}))
    wanted = sorted({a for a in addresses if a})
    by_address: dict[str, list[int]] = {}
    if wanted:
        for address, ids in job.session.execute(text(
                "SELECT btrim(address), array_agg(id ORDER BY id) FROM building WHERE btrim(address) = ANY(:a) "
                "GROUP BY btrim(address)"), {"a": wanted}):
            by_address[address] = list(ids)
    result: list[int | None] = [None] * len(codes)
    for position, (code, address) in enumerate(zip(codes, addresses)):
        if code is not None:
            if code in by_code:
                result[position] = by_code[code]
            else:
                job.report(position, "unknown_building", "building_code", f"building {code} is not in the "
                           "database. Import the building first, or correct the code.", masks[position])
        elif address is not None:
            found = by_address.get(address, [])
            if len(found) == 1:
                result[position] = found[0]
            elif not found:
                job.report(position, "unknown_building", "building_address", "no building has this address "
                           f"({address!r}). Import the building first, correct the address, or give "
                           "building_code.", masks[position])
            else:
                job.report(position, "ambiguous_building", "building_address", f"{len(found)} buildings have this "
                           f"address ({address!r}). Give building_code instead.", masks[position])
    return result


# -- legal entities --------------------------------------------------------------------------------------


def import_entities(session: Session, path, *, mapping: dict | None = None, encoding: str | None = None,
                    src_crs: str | None = None, layer: str | None = None, sheet: str | None = None,
                    replace: bool = False) -> SubjectImportResult:
    """Import legal entities (credit code, name, address, point) all or nothing, and assign them.

    Credit codes are checked (GB 32100), unique in the file and new to the database (or `replace`).
    Never commits.
    """
    job = _Job(session, "entities", path, mapping=mapping, encoding=encoding, src_crs=src_crs, layer=layer,
               sheet=sheet)
    n = len(job.table.rows)
    codes: list[str | None] = [None] * n
    names, addresses = [None] * n, [None] * n
    seen: dict = {}
    for position in range(n):
        code = _credit_code(job, position)
        if code is not None:
            job.row_code[position] = code
        if code is not None and _first_seen(job, seen, code, position, "duplicate_code", "credit_code",
                                            f"credit code {code}", code):
            codes[position] = code
        names[position] = job.text(position, "name", required=True, limit=_LENGTHS["entity_name"], code=code)
        addresses[position] = job.text(position, "address", required=False, limit=_LENGTHS["address"], code=code)
    points, _ = job.locations([True] * n)
    existing = job.existing("SELECT credit_code, id FROM legal_entity WHERE credit_code = ANY(:keys)",
                            [c for c in codes if c])
    _refuse_existing(job, codes, existing, replace, "credit_code", "a legal entity with credit code {key}")
    job.check_edition()
    if job.problems:
        job.refuse()

    rows = [{"credit_code": codes[p], "name": names[p], "address": addresses[p], "geom": points[p]}
            for p in range(n)]
    with session.begin_nested():
        new_ids, updated_ids, numbers = _write_keyed(session, job, LegalEntity, "credit_code", codes, rows, existing)
        assigned, unassigned, listed = _assign(job, "entities", "legal_entity", "credit_code",
                                               new_ids + updated_ids, numbers)
    return SubjectImportResult("entities", created=len(new_ids), updated=len(updated_ids), assigned=assigned,
                               unassigned=unassigned, unassigned_rows=listed, notes=job.notes, source=job.source)


def _credit_code(job: _Job, position: int) -> str | None:
    raw = job.value(position, "credit_code")
    if raw is None:
        job.report(position, "missing_value", "credit_code", f"credit_code is empty (column "
                   f"{job.column('credit_code')!r}). Fill it in.")
        return None
    if job.lossy(position, "credit_code"):
        job.report(position, "number_precision", "credit_code", f"the credit code ({raw}) was stored as a number, "
                   "which keeps only 15 digits. Format the column as text and enter the codes again.", raw)
        return None
    try:
        return validate_credit_code(raw)
    except ValueError as exc:
        job.report(position, "bad_credit_code", "credit_code", f"credit code {raw!r} is not valid. {exc} "
                   "Correct it.", raw)
        return None


# -- coordinators ----------------------------------------------------------------------------------------


def import_coordinators(session: Session, path, *, mapping: dict | None = None, encoding: str | None = None,
                        layer: str | None = None, sheet: str | None = None,
                        src_crs: str | None = None) -> SubjectImportResult:
    """Import a coordinator roster (name, phone, dept, work_cells) all or nothing.

    One row per person per department; the phone identifies the person across rows and against
    the database (多员合一). Work cells are codes of the department's current published version.
    `src_crs` is accepted for a uniform signature and not used. Never commits.
    """
    job = _Job(session, "coordinators", path, mapping=mapping, encoding=encoding, src_crs=src_crs, layer=layer,
               sheet=sheet)
    n = len(job.table.rows)
    departments = _departments(session)
    people: dict[str, dict] = {}                 # phone → {"name", "position", "cells": set of work cell ids}
    seen_dept: dict = {}
    for position in range(n):
        phone = _phone(job, position, required=True, code=None)
        if phone is not None:
            job.row_code[position] = _mask(phone)
        name = job.text(position, "name", required=True, limit=_LENGTHS["name"])
        dept = _department(job, position, departments)
        cells = _work_cells(job, position, dept)
        if phone is None or name is None:
            continue
        code = _mask(phone)
        person = people.get(phone)
        if person is None:
            person = people[phone] = {"name": name, "position": position, "cells": set(), "depts": set()}
        elif person["name"] != name:
            job.report(position, "phone_conflict", "name", f"phone {code} is on {job.table.unit} "
                       f"{job.table.numbers[person['position']]} with another name. One phone is one person: "
                       "correct the name or the phone.", code)
            continue
        if dept is not None:
            if (phone, dept["code"]) in seen_dept:
                job.report(position, "duplicate_row", "dept", f"the coordinator with phone {code} appears again for "
                           f"department {dept['code']} (first at {job.table.unit} "
                           f"{job.table.numbers[seen_dept[phone, dept['code']]]}). Put all their work cells of "
                           "one department in one row.", code)
                continue
            seen_dept[phone, dept["code"]] = position
            person["depts"].add(dept["code"])
        person["cells"].update(cells)
    in_db: dict[str, list] = defaultdict(list)
    if people:
        for row in session.execute(text("SELECT id, name, phone, active FROM coordinator WHERE phone = ANY(:p) "
                                        "ORDER BY id"), {"p": list(people)}):
            in_db[row.phone].append(row)
    for phone, person in people.items():
        found = in_db.get(phone, [])
        code = _mask(phone)
        if len(found) > 1:
            job.report(person["position"], "phone_conflict", "phone", f"{len(found)} coordinators in the database "
                       f"have phone {code} (ids {', '.join(str(r.id) for r in found)}). Merge them first.", code)
        elif found and found[0].name != person["name"]:
            job.report(person["position"], "phone_conflict", "name", f"phone {code} belongs to another coordinator "
                       f"in the database (id {found[0].id}) with a different name. One phone is one person: "
                       "correct the name or the phone.", code)
    if job.problems:
        job.refuse()

    new_people = [p for p in people if p not in in_db]
    with session.begin_nested():
        ids = {}
        if new_people:
            new_ids = session.scalars(insert(Coordinator).returning(Coordinator.id, sort_by_parameter_order=True),
                                      [{"name": people[p]["name"], "phone": p, "active": True} for p in new_people])
            ids.update(zip(new_people, new_ids))
        reactivated = []
        for phone, rows in in_db.items():
            ids[phone] = rows[0].id
            if not rows[0].active:
                reactivated.append(rows[0].id)
        if reactivated:
            session.execute(update(Coordinator).where(Coordinator.id.in_(reactivated)).values(active=True))
            job.notes.append(problem("reactivated", f"{len(reactivated)} coordinators were inactive and are active "
                                     f"again (ids {', '.join(map(str, reactivated))})."))
        pairs = [{"coordinator_id": ids[p], "work_cell_id": c} for p in people for c in sorted(people[p]["cells"])]
        added = 0
        for start in range(0, len(pairs), _PAIRS_PER_STATEMENT):   # bind parameters are limited to 65535
            chunk = pairs[start:start + _PAIRS_PER_STATEMENT]
            added += len(session.execute(pg_insert(CoordinatorAssignment).values(chunk).on_conflict_do_nothing()
                                         .returning(CoordinatorAssignment.work_cell_id)).all())
        session.flush()
    return SubjectImportResult("coordinators", created=len(new_people), updated=len(people) - len(new_people),
                               notes=job.notes, source=job.source,
                               extra={"assignments": added, "departments": len({d for p in people.values()
                                                                               for d in p["depts"]})})


def _departments(session: Session) -> dict:
    """Return {code or name: {"code", "version": current version id or None, "cells": {code: id}}}."""
    versions = dict(session.execute(select(WorkGridVersion.dept_code, WorkGridVersion.id).where(
        WorkGridVersion.status == "published", WorkGridVersion.valid_to.is_(None))).all())
    cells: dict[int, dict[str, int]] = defaultdict(dict)
    if versions:
        for version_id, code, cell_id in session.execute(select(WorkCell.version_id, WorkCell.code, WorkCell.id)
                                                         .where(WorkCell.version_id.in_(list(versions.values())))):
            cells[version_id][code] = cell_id
    result = {}
    for code, name in session.execute(select(Department.code, Department.name)):
        version = versions.get(code)
        entry = {"code": code, "name": name, "version": version, "cells": cells.get(version, {})}
        result[code] = entry
        result.setdefault(name, entry)
    return result


def _department(job: _Job, position: int, departments: dict) -> dict | None:
    value = job.value(position, "dept")
    if value is None:
        job.report(position, "missing_value", "dept", "dept is empty. Fill in the department code (or name).")
        return None
    dept = departments.get(value)
    if dept is None:
        known = ", ".join(sorted(k for k, v in departments.items() if k == v["code"])) or "none yet"
        job.report(position, "unknown_department", "dept", f"department {value!r} is unknown. Known department "
                   f"codes: {known} (gridkit dept list).")
        return None
    if dept["version"] is None:
        job.report(position, "no_published_version", "dept", f"department {dept['code']} has no published work "
                   "grid, so its work cells cannot be assigned yet. Publish its work grid first.")
        return None
    return dept


def _work_cells(job: _Job, position: int, dept: dict | None) -> set[int]:
    value = job.value(position, "work_cells")
    if value is None:
        job.report(position, "missing_value", "work_cells", "work_cells is empty. List the work cell codes this "
                   "person covers, separated by ';'.")
        return set()
    codes = [c for c in _WORK_CELL_SEPARATORS.split(value) if c]
    if dept is None:
        return set()
    unknown = [c for c in codes if c not in dept["cells"]]
    if unknown:
        job.report(position, "unknown_work_cell", "work_cells", f"work cells {', '.join(unknown)} are not in the "
                   f"current published work grid of department {dept['code']}. Correct the codes, or publish the "
                   "work grid version that has them first.")
    return {dept["cells"][c] for c in codes if c in dept["cells"]}


# -- one entry point for the CLI -------------------------------------------------------------------------

IMPORTERS = {"buildings": import_buildings, "residents": import_residents, "entities": import_entities,
             "coordinators": import_coordinators}


def import_subjects(session: Session, kind: str, path, *, pii_key: bytes | None = None,
                    **options) -> SubjectImportResult:
    """Import subjects of `kind` (buildings, residents, entities, coordinators) from `path`; see the module docs.

    `options` are those of the kind's function (mapping, encoding, src_crs, layer, sheet, replace);
    `pii_key` is needed for residents only. Never commits.
    """
    if kind not in IMPORTERS:
        raise ValidationError(f"unknown subject kind {kind!r}: use one of {', '.join(KINDS)}.")
    if kind == "residents":
        return import_residents(session, path, pii_key=pii_key, **options)
    if kind == "coordinators" and options.pop("replace", False):
        raise ValidationError("coordinators are matched by phone and never replaced: leave out --replace.")
    return IMPORTERS[kind](session, path, **options)
