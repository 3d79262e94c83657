"""What every subject import shares: the fields of each kind, the words, the result and refusal, masking."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from gridkit.coords import dms_degrees, dms_fault
from gridkit.errors import ValidationError
from gridkit.io.crs import coordinate_hint, looks_projected
from gridkit.io.csvdialect import has_decimal_comma
from gridkit.io.problems import ImportRefused
from gridkit.messages import Message
from gridkit.pii import masked_phone_reason as _phone_reason
from gridkit.pii import typed_coordinate, typed_location
from gridkit.rules import CHINA_LAT, CHINA_LON
from gridkit.standard.ids import validate_phone

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
    "buildings": (
        Field("code", True, ("building_code", "编码", "建筑编码", "楼栋编码")),
        Field("address", False, ("地址", "建筑地址")),
        Field("floors", False, ("层数",)),
        _LON,
        _LAT,
    ),
    "residents": (
        Field("id_number", True, ("身份证号", "身份证号码", "公民身份号码")),
        Field("name", True, ("姓名",)),
        Field("phone", False, _PHONE_ALIASES),
        Field("household", False, ("户号", "household_id")),
        Field("population_type", True, ("人口类型",)),
        Field("building_code", False, ("建筑编码", "楼栋编码")),
        Field("building_address", False, ()),
        _LON,
        _LAT,
    ),
    "entities": (
        Field("credit_code", True, ("统一社会信用代码", "信用代码")),
        Field("name", True, ("名称", "单位名称", "企业名称")),
        Field("address", False, ("地址",)),
        _LON,
        _LAT,
    ),
    "coordinators": (
        Field("name", True, ("姓名",)),
        Field("phone", True, _PHONE_ALIASES),
        Field("dept", True, ("dept_code", "部门", "部门编码")),
        Field("work_cells", True, ("工作网格", "网格编码")),
    ),
    # The component inventory (gridkit.incidents.components): not a subject, read the same way.
    "components": (
        Field("code", True, ("component_code", "编码", "部件编码")),
        Field("name", False, ("名称", "部件名称")),
        _LON,
        _LAT,
    ),
}

POPULATION_TYPE_WORDS = {
    "registered": "registered",
    "户籍": "registered",
    "户籍人口": "registered",
    "本地": "registered",
    "floating": "floating",
    "流动": "floating",
    "流动人口": "floating",
    "暂住": "floating",
    "暂住人口": "floating",
    "外来人口": "floating",
}
_AMBIGUOUS_POPULATION = {"常住", "常住人口"}

_WORK_CELL_SEPARATORS = re.compile(r"[;；,，、\s]+")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")
_LENGTHS = {"code": 40, "address": 200, "name": 50, "entity_name": 200, "household": 40}
_MAX_FLOORS = 300
_PAIRS_PER_STATEMENT = 10_000
_AREA_MARGIN = 1.0  # degrees beyond a projected CRS's area of use still accepted
# Unassigned rows named in a summary (the report names them all) and kept in a result.
SUMMARY_ROWS = 20
LISTED_ROWS = 100_000

# What to do, per problem kind, in the coordinator's language: the kinds gridkit.io.report.ADVICE lacks
# (merge them into it; kinds shared with vector imports, such as axes_swapped, keep their advice there).
SUBJECT_ADVICE = {
    "unknown_field": "用 --map 字段=列名 指定，字段名见原因中的列表。",
    "duplicate_column": "表头中的列名须唯一：重命名其中一列。",
    "no_header": "第一行须为列名。",
    "csv_separator": "各列须用英文逗号分隔：另存为 CSV UTF-8。",
    "no_rows": "文件只有表头，没有数据：确认导出了正确的表。",
    "bad_row": "检查该行的引号、逗号或多余的单元格。",
    "nul_byte": "删除该单元格中的 NUL 字符（\\x00），或将表格重新另存为“CSV UTF-8”。",
    "formula_without_value": "在 Excel/WPS 中打开、重新计算后保存，或把公式替换为其数值。",
    "bad_option": "去掉不适用的选项。",
    "no_such_sheet": "用 --sheet 指定列出的工作表之一。",
    "no_edition": "先发布基础网格版本，再导入对象。",
    "missing_value": "填写该必填项。",
    "too_long": "缩短该值。",
    "bad_number": "填写整数。",
    "bad_id_number": "核对身份证号码（18 位，末位校验码）。",
    "number_precision": "Excel 将长数字存为数值并丢失末几位：把该列设为文本后重新录入。",
    "code_as_date": "Excel 将编码存成了日期：把该列设为文本后重新录入。",
    "duplicate_id": "同一证件号码只能出现一次：删除或改正重复行。",
    "bad_credit_code": "核对统一社会信用代码（18 位，末位校验码）。",
    "bad_component_code": "核对部件编码（16 位：区县 6 位 + 大类 01-06 + 小类 + 流水号 6 位，CJ/T 214）。",
    "unknown_category": (
        "类别须在类别表中（gridkit incident categories list）："
        "改正部件编码第 7-10 位或映射文件中的类别，或用 gridkit import categories 添加。"
    ),
    "component_exists": "该部件已在部件清单中：删除该行。",
    "not_point_or_line": "部件须为点或线：将图层导出为点或线。",
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
        out = {
            "kind": self.kind,
            "file": self.source.get("path"),
            "driver": self.source.get("driver"),
            "encoding": self.source.get("encoding"),
            "crs": self.source.get("crs"),
            "rows": self.source.get("rows", self.source.get("features")),
            "created": self.created,
            "updated": self.updated,
        }
        for key in ("layer", "sheet"):
            if self.source.get(key):
                out[key] = self.source[key]
        if self.kind != "coordinators":
            # A count, and the first rows only: the report lists every unassigned row.
            out.update(
                assigned=self.assigned,
                unassigned=self.unassigned,
                unassigned_rows=[r["row"] for r in self.unassigned_rows[:SUMMARY_ROWS]],
            )
            if self.unassigned > SUMMARY_ROWS:
                out["unassigned_rows_more"] = self.unassigned - SUMMARY_ROWS
        out.update(self.extra)
        return out


def parse_mapping(items) -> dict[str, str]:
    """Return {field: column} from the CLI's `--map FIELD=COLUMN` values, or raise ValidationError."""
    mapping: dict[str, str] = {}
    for item in items or ():
        name, sep, column = str(item).partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            raise ValidationError("imports.bad_map", item=str(item))
        if name in mapping and mapping[name] != column:
            raise ValidationError("imports.map_twice", field=name, first=mapping[name], second=column)
        mapping[name] = column
    return mapping


# validate_citizen_id's codes whose reason may be shown (no digits of the number, or only its length).
_ID_REASONS = {
    "id.citizen_length": ("length",),
    "id.citizen_length_15": ("length",),
    "id.citizen_not_digit": ("position", "char"),
    "id.citizen_last_char": ("char",),
    "id.citizen_region": (),
    "id.citizen_birth_not_date": (),
    "id.citizen_birth_before_1900": (),
    "id.citizen_birth_future": (),
    "id.citizen_check": (),
}


def _id_reason(exc: Exception) -> Message:
    """Return validate_citizen_id's reason without any digits of the number (birth date, region, check)."""
    code = getattr(exc, "code", None)
    if code not in _ID_REASONS:
        return Message("imports.id_reason.other")
    params = getattr(exc, "params", {})
    return Message(f"imports.id_reason.{code.removeprefix('id.')}", **{k: params.get(k) for k in _ID_REASONS[code]})


def _number(value: str) -> float | None:
    if not value.isascii():  # typed with a Chinese input method: full-width digits, point and minus (１１４．０５)
        value = unicodedata.normalize("NFKC", value)
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def area_message(label: str, bounds: tuple) -> Message:
    """Return the area points must lie in: China, or the area of use of the projected CRS `label` (in degrees)."""
    if bounds == (CHINA_LON[0], CHINA_LAT[0], CHINA_LON[1], CHINA_LAT[1]):
        return Message("imports.area.china")
    west, south, east, north = (f"{b:g}" for b in bounds)
    return Message("imports.area.crs", label=label, west=west, east=east, south=south, north=north)


def shown_values(personal: bool, x_text, y_text=None) -> Message | str:
    """Return a row's coordinates (or the one `x_text`) as its messages show them: as typed, but in a person's row
    (a resident's home) rounded or described as gridkit.pii says (typed_location, typed_coordinate)."""
    if y_text is None:
        return Message("pii.shown", location=typed_coordinate(x_text)) if personal else f" ({x_text!r})"
    return Message("pii.shown", location=typed_location(x_text, y_text)) if personal else f" ({x_text}, {y_text})"


def outside_message(x, y, texts: tuple, area: Message, *, crs_given: bool, city=None, personal=False) -> Message:
    """Return why a row's point (`texts` as typed, read as `x`, `y`) lies outside `area`; projected metres read as
    degrees are told so, with the --src-crs their range (and the `city`'s zones: gridkit.io.crs.coordinate_hint)
    suggests. A person's row (`personal`) names its values as shown_values does."""
    x, y, shown = float(x), float(y), shown_values(personal, *texts)
    if not crs_given and looks_projected((x, y, x, y)):
        where = typed_location(*texts) if personal else None
        return Message("imports.looks_projected", shown=shown, hint=coordinate_hint((x, y, x, y), city, where=where))
    return Message("imports.outside_area", shown=shown, area=area)


def unread_coordinate(name: str, text: str, shown: str) -> Message:
    """Return why the lon or lat cell `text` (field `name`, shown as `shown`) is not read as a coordinate: written
    with a decimal comma, degrees-minutes-seconds past 60 (113°58′61″), or no number at all."""
    fault = dms_fault(text)
    if fault is not None:
        return Message("imports.bad_dms", name=name, shown=shown, fault=fault)
    key = "imports.decimal_comma" if has_decimal_comma(text) else "imports.bad_coordinate"
    return Message(key, name=name, shown=shown)


def _coordinate(value: str) -> float | None:
    """Return a lon or lat cell as a number: decimal (full-width too) or degrees-minutes-seconds (113°58′4.13″E)."""
    number = _number(value)
    return number if number is not None else dms_degrees(value)


def _inside(lon, lat, bounds: tuple) -> np.ndarray:
    """Return where (lon, lat) is finite and within bounds (west, south, east, north)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    west, south, east, north = bounds
    with np.errstate(invalid="ignore"):
        return np.isfinite(lon) & np.isfinite(lat) & (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)


def _phone(job, position: int, *, required: bool, code) -> str | None:
    raw = job.value(position, "phone")
    if raw is None:
        if required:
            job.report(
                position,
                "missing_value",
                "phone",
                Message("imports.missing_value", name="phone", column=job.column("phone")),
                code,
            )
        return None
    try:
        return validate_phone(raw)
    except ValueError as exc:
        job.report(position, "bad_phone", "phone", Message("imports.bad_phone", reason=_phone_reason(exc, raw)), code)
        return None
