"""Read Shapefile, GeoPackage and GeoJSON layers into EPSG:4490 GeoDataFrames, checking everything.

What `read_vector` does, in order, and why:

- Finds the layer: a folder holding one `.shp`, a `.shp`, a `.zip` holding one (unpacked into a
  temporary folder; members with absolute paths, `..` or symlinks are refused before anything is
  written), a GeoPackage layer (chosen with `layer` when there are several) or a GeoJSON file.
- Decodes attribute text itself, strictly. GDAL is asked for the raw bytes (decoded as Latin-1,
  which maps every byte to one character and back) and gridkit decodes them with the `.cpg`
  encoding, else UTF-8, else GB18030 (a superset of GBK and GB2312), or with the encoding forced
  by the caller. Text that does not decode is refused with its feature and field: importing
  mojibake would silently corrupt every name.
- Takes the CRS from the file (`.prj`, GeoPackage metadata; GeoJSON without a `crs` member is
  EPSG:4326 by RFC 7946), or from `src_crs`, which may also be `gcj02` for the offset lon/lat of
  Chinese web maps (converted with gridkit.coords). WGS 84 and CGCS2000 differ by centimetres,
  far below the accuracy of any map data, so WGS 84 input is taken as CGCS2000 (it still goes
  through `to_crs`, which does not shift it).
- Refuses coordinates outside China (lon 73–136, lat 3–54) and says so when the axes look swapped.
- Drops Z/M, repairs invalid geometries with `shapely.make_valid` (polygon layers keep only the
  polygonal part) and handles multipart polygons as asked: "keep" stores every polygon as a
  MultiPolygon (admin units), "single" wants one polygon per feature (base cells).

Every per-feature problem is collected before `VectorReadError` is raised, so one run lists them
all. Problems that make the rest meaningless (no such file, no CRS, unsafe zip) are raised at once.

Feature "index" everywhere is the feature id GDAL reports: 0-based for Shapefile and GeoJSON, the
`fid` column for GeoPackage. It is the number QGIS shows in the attribute table.
"""

from __future__ import annotations

import codecs
import math
import re
import shutil
import stat
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from shapely.geometry import MultiPolygon, Polygon

from gridkit.errors import ValidationError
from gridkit.grids.tolerance import DENSIFY_M, densify_projected
from gridkit.messages import Message
from gridkit.rules import SRID

__all__ = ["VectorRead", "VectorReadError", "read_vector", "problem", "problem_text", "refusal", "text_value",
           "MULTIPART_MODES"]

MULTIPART_MODES = ("keep", "single")

# The box gridkit accepts as "in China", in CGCS2000 lon/lat degrees.
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)

# Above this share of features outside China, one file-level problem replaces per-feature ones:
# the coordinate system is wrong, not the features.
_MOSTLY = 0.5
_LIST_AT_MOST = 20

# Unpacked size limit for a .zip (a guard against zip bombs).
MAX_ZIP_BYTES = 2 * 1024**3
# Default vertex limit per feature (GRIDKIT_MAX_VERTICES); a base cell has tens, a city boundary thousands.
MAX_VERTICES = 100_000

_GCJ02_NAMES = {"gcj02", "gcj-02", "gcj", "gcj_02"}
_VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json")

# Encodings a .cpg may name in ways Python does not know; GBK/GB2312 are read as GB18030, their superset.
_CPG_ALIASES = {
    "65001": "utf-8", "utf8": "utf-8", "utf-8": "utf-8",
    "936": "gb18030", "cp936": "gb18030", "gbk": "gb18030", "gb2312": "gb18030", "gb18030": "gb18030",
    "54936": "gb18030", "950": "big5", "88591": "latin-1", "8859-1": "latin-1", "iso-8859-1": "latin-1",
}

# Latin-1 is bijective: every byte ↔ one character, so the raw bytes can be recovered. For
# shapefiles pyogrio hands the name to GDAL (iconv), which knows "ISO-8859-1" but not "latin-1".
_RAW = "latin-1"
_RAW_GDAL = "ISO-8859-1"


class VectorReadError(ValidationError):
    """A vector file cannot be used; `problems` lists every problem found, `notes` what was done."""

    def __init__(self, code: str, /, *, problems: list | None = None, notes: list | None = None,
                 source: dict | None = None, **params):
        super().__init__(code, problems=problems, **params)
        self.notes = notes or []
        self.source = source or {}


@dataclass
class VectorRead:
    """A layer read by `read_vector`: features in the target CRS, notes on what was changed, and the source."""

    gdf: gpd.GeoDataFrame
    notes: list[dict] = field(default_factory=list)
    source: dict = field(default_factory=dict)

    @property
    def fields(self) -> list[str]:
        """Return the attribute field names (decoded), without the geometry column."""
        return [c for c in self.gdf.columns if c != self.gdf.geometry.name]


def problem(kind: str, message: str | Message, *, index=None, code=None, field: str | None = None) -> dict:
    """Return a problem or note dict: feature index, code, field, kind and a message for a coordinator.

    `message` is a catalogue Message (preferred: the dict then holds its "key" and "params", and
    "message" is the English sentence) or, from older callers, an English sentence.
    """
    entry = {"index": None if index is None else int(index), "code": code, "field": field, "kind": kind}
    if isinstance(message, Message):
        entry["message"] = message.render("en")
        entry["key"] = message.key
        entry["params"] = {k: _plain(v) for k, v in message.params.items()}
    else:
        entry["message"] = message
    return entry


def _plain(value):
    """Return a message parameter as JSON: a nested Message becomes {"key": …, "params": {…}}."""
    if isinstance(value, Message):
        return {"key": value.key, "params": {k: _plain(v) for k, v in value.params.items()}}
    return value


def _message(key: str, params: dict) -> Message:
    """Return the Message a problem dict's key and (plain) params stand for."""
    def back(value):
        if isinstance(value, dict) and set(value) == {"key", "params"}:
            return _message(value["key"], value["params"])
        return value

    return Message(key, **{k: back(v) for k, v in params.items()})


def problem_text(entry: dict, lang: str | None = None) -> str:
    """Return a problem or note dict's sentence in `lang` (its English message if it has no key)."""
    if entry.get("key"):
        return _message(entry["key"], entry.get("params", {})).render(lang)
    return entry.get("message", "")


def refusal(display: str, problems: list[dict], what: str) -> tuple[str, dict]:
    """Return (error code, params) of a refusal: how many problems, the first one, and that nothing was `what`.

    `what` is "read", "imported" or "unpacked".
    """
    first = problems[0]
    text = _message(first["key"], first["params"]) if first.get("key") else first["message"]
    params = {"file": display, "count": len(problems), "first": text, "what": Message(f"geometry.what.{what}")}
    return ("geometry.refused_one" if len(problems) == 1 else "geometry.refused"), params


def text_value(value) -> str | None:
    """Return an attribute value as stripped text (integral numbers without '.0'), or None when empty."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    text = str(value).strip()
    return text or None


def read_vector(path, *, layer: str | None = None, encoding: str | None = None, src_crs: str | None = None,
                target_srid: int = SRID, multipart: str | None = None,
                code_field: str | None = None, max_vertices: int | None = MAX_VERTICES) -> VectorRead:
    """Return the layer at `path` checked and reprojected to EPSG:`target_srid`, or raise VectorReadError.

    `multipart` ("keep" or "single") declares a polygon layer: every feature must then be a
    polygon, and is returned as a MultiPolygon ("keep") or a Polygon ("single"). `code_field`
    only labels notes and problems with the feature's code. A feature with more than
    `max_vertices` vertices (None: no limit) is a problem: such a feature is a digitising accident
    or a raster traced to vectors, and would take minutes to validate.
    """
    read, problems = read_vector_collecting(path, layer=layer, encoding=encoding, src_crs=src_crs,
                                            target_srid=target_srid, multipart=multipart,
                                            code_field=code_field, max_vertices=max_vertices)
    if problems:
        code, params = refusal(read.source.get("display", str(path)), problems, "read")
        raise VectorReadError(code, problems=problems, notes=read.notes, source=read.source, **params)
    return read


def summarise(display: str, problems: list[dict], what: str) -> str:
    """Return a one-paragraph error message: how many problems, the first one, and that nothing was done."""
    first = problems[0]["message"]
    if len(problems) == 1:
        return f"{first} Nothing was {what}."
    return (f"{display}: {len(problems)} problems, nothing was {what}. The first: {first} "
            "The report lists them all.")


def read_vector_collecting(path, *, layer=None, encoding=None, src_crs=None, target_srid=SRID,
                           multipart=None, code_field=None,
                           max_vertices: int | None = MAX_VERTICES) -> tuple[VectorRead, list[dict]]:
    """Like `read_vector`, but return per-feature problems instead of raising them (file-level ones still raise).

    Features with a geometry problem have geometry None in the returned frame; importers use this
    to check codes on every feature and report everything in one go.
    """
    if multipart is not None and multipart not in MULTIPART_MODES:
        raise ValueError(f"multipart must be one of {MULTIPART_MODES} or None, got {multipart!r}")
    path = Path(path)
    notes: list[dict] = []
    source: dict = {"path": str(path), "display": path.name or str(path)}
    with _located(path, layer, source) as (file_path, gdal_layer):
        info = _layer_info(file_path, gdal_layer, source)
        raw = _read_raw(file_path, gdal_layer, source, notes)
        cpg = _cpg_of(file_path) if source["driver"] == "ESRI Shapefile" else None
        geojson_default = source["driver"] == "GeoJSON" and not _has_crs_member(file_path)
    problems: list[dict] = []
    gdf = _decode_text(raw, encoding, cpg, source, notes, problems)
    codes = _codes(gdf, code_field)
    for found in problems:  # text problems were found before the codes could be read
        if found["index"] is not None and found["code"] is None:
            found["code"] = codes.get(found["index"])
    try:
        crs, gcj02 = _source_crs(info, src_crs, source, notes, geojson_default)
    except VectorReadError as exc:  # no CRS: the coordinates cannot be checked, but report the text too
        exc.problems, exc.notes, exc.source = problems + exc.problems, notes, source
        raise
    gdf = _geometries(gdf, crs, gcj02, target_srid, multipart, codes, source, notes, problems,
                      max_vertices=max_vertices)
    source["features"] = len(gdf)
    return VectorRead(gdf=gdf, notes=notes, source=source), problems


# -- finding the file ---------------------------------------------------------------------------------


def _fatal(source: dict, kind: str, sentence: str, /, **params) -> VectorReadError:
    """Return the error for a problem that makes the rest of the file meaningless (key error.geometry.<sentence>)."""
    message = Message(f"error.geometry.{sentence}", **params)
    return VectorReadError(f"geometry.{sentence}", problems=[problem(kind, message)], source=source, **params)


@contextmanager
def _located(path: Path, layer: str | None, source: dict) -> Iterator[tuple[Path, str | None]]:
    """Yield (file GDAL should open, layer name for GDAL); a .zip is unpacked for the duration."""
    if not path.exists():
        raise _fatal(source, "not_found", "not_found", path=str(path))
    if path.is_dir():
        shp = _pick_shapefile(_files_with_suffix(path, ".shp"), layer, f"folder {path}", source)
        source["file"] = str(shp.relative_to(path))
        yield shp, None
        return
    if path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="gridkit-zip-") as tmp:
            folder = _unzip_safely(path, Path(tmp), source)
            shapefiles = _files_with_suffix(folder, ".shp")
            if shapefiles:
                found = _pick_shapefile(shapefiles, layer, f"{path.name}", source)
                source["file"] = str(found.relative_to(folder))
                yield found, None
                return
            others = [p for s in _VECTOR_SUFFIXES for p in _files_with_suffix(folder, s)]
            if len(others) != 1:
                listed = ", ".join(str(p.relative_to(folder)) for p in others) or "none"
                raise _fatal(source, "no_layer_in_zip", "no_layer_in_zip", file=path.name, listed=listed)
            source["file"] = str(others[0].relative_to(folder))
            yield others[0], layer
            return
    if path.stat().st_size == 0:
        raise _fatal(source, "empty_file", "empty_file", file=path.name)
    yield path, layer


def _files_with_suffix(folder: Path, suffix: str) -> list[Path]:
    found = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == suffix
             and "__MACOSX" not in p.parts]
    return sorted(found)


def _pick_shapefile(shapefiles: list[Path], layer: str | None, where: str, source: dict) -> Path:
    if not shapefiles:
        raise _fatal(source, "no_shapefile", "no_shapefile", where=where)
    if layer is not None:
        chosen = [p for p in shapefiles if p.stem == layer or p.name == layer]
        if len(chosen) == 1:
            return chosen[0]
        names = ", ".join(p.stem for p in shapefiles)
        raise _fatal(source, "no_such_layer", "no_such_shapefile", where=where, layer=layer, names=names)
    if len(shapefiles) > 1:
        names = ", ".join(p.stem for p in shapefiles)
        raise _fatal(source, "several_layers", "several_shapefiles", where=where, count=len(shapefiles), names=names)
    return shapefiles[0]


def _unsafe_member_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute"
    if ".." in PurePosixPath(name).parts:
        return "parent"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symlink"
    if info.flag_bits & 0x1:
        return "encrypted"
    return None


def _unzip_safely(path: Path, dest: Path, source: dict) -> Path:
    """Unpack `path` into `dest` after checking every member; nothing is written if any is unsafe."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise _fatal(source, "bad_zip", "bad_zip", file=path.name)
    with archive:
        members = archive.infolist()
        bad = [(m.filename, reason) for m in members if (reason := _unsafe_member_reason(m))]
        if bad:
            problems = [problem("unsafe_zip", Message("geometry.vector.unsafe_zip_member", file=path.name,
                                                      member=name, reason=Message(f"geometry.zip.{reason}")),
                                field=name)
                        for name, reason in bad]
            code, params = refusal(path.name, problems, "unpacked")
            raise VectorReadError(code, problems=problems, source=source, **params)
        if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise _fatal(source, "zip_too_large", "zip_too_large", file=path.name, gb=MAX_ZIP_BYTES // 1024**3)
        root = dest.resolve()
        for member in members:
            target = (root / member.filename.replace("\\", "/")).resolve()
            if not target.is_relative_to(root):  # belt and braces after the checks above
                raise _fatal(source, "unsafe_zip", "zip_member_outside", file=path.name, member=member.filename)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                # A damaged member (bad CRC, truncated or corrupt deflate stream, unknown method).
                raise _fatal(source, "bad_zip_member", "bad_zip_member", file=path.name, member=member.filename,
                             reason=_first_line(exc))
    return root


# -- layer and raw read -------------------------------------------------------------------------------


def _layer_info(file_path: Path, layer: str | None, source: dict) -> dict:
    display = source["display"]
    try:
        layers = pyogrio.list_layers(file_path)
    except Exception as exc:  # pyogrio raises DataSourceError and friends with GDAL's message
        raise _fatal(source, "unreadable", "unopenable", file=display, reason=_first_line(exc))
    names = [str(row[0]) for row in layers]
    listed = ", ".join(f"{row[0]} ({row[1] or 'no geometry'})" for row in layers)
    if len(names) == 0:
        raise _fatal(source, "no_layers", "no_layers", file=display)
    if layer is not None and layer not in names:
        raise _fatal(source, "no_such_layer", "no_such_layer", file=display, layer=layer, listed=listed)
    if layer is None and len(names) > 1:
        raise _fatal(source, "several_layers", "several_layers", file=display, count=len(names), listed=listed)
    chosen = layer if layer is not None else names[0]
    info = pyogrio.read_info(file_path, layer=chosen, encoding=_RAW_GDAL)
    source.update(driver=info["driver"], layer=chosen)
    if info["geometry_type"] is None:
        raise _fatal(source, "no_geometry", "no_geometry", file=display, layer=chosen)
    if info["features"] == 0:
        raise _fatal(source, "no_features", "no_features_in_layer", file=display, layer=chosen)
    return info


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _read_raw(file_path: Path, layer: str | None, source: dict, notes: list) -> pd.DataFrame:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # Latin-1 hands back the raw bytes of every text value (see the module docstring).
            frame = pyogrio.read_dataframe(file_path, layer=layer, encoding=_RAW_GDAL, fid_as_index=True)
        except Exception as exc:
            raise _fatal(source, "unreadable", "unreadable", file=source["display"], reason=_first_line(exc))
    if any("Measured (M)" in str(w.message) for w in caught):
        notes.append(problem("m_dropped", Message("geometry.vector.m_dropped", file=source["display"])))
    if len(frame) == 0:
        raise _fatal(source, "no_features", "no_features", file=source["display"])
    return frame


def _cpg_of(shp: Path) -> str | None:
    for sibling in shp.parent.iterdir():
        if sibling.stem == shp.stem and sibling.suffix.lower() == ".cpg":
            return sibling.read_bytes().decode("ascii", "replace").strip()
    return None


# -- text ---------------------------------------------------------------------------------------------


def _codec(name: str) -> str | None:
    key = name.strip().lower()
    key = re.sub(r"^(ansi|oem)\s*", "", key)
    if key in _CPG_ALIASES:
        return _CPG_ALIASES[key]
    if key.isdigit():
        key = f"cp{key}"
    try:
        return codecs.lookup(key).name
    except LookupError:
        return None


def _failures(raw_frame: pd.DataFrame, columns: list, text_columns: list, codec: str) -> list[tuple]:
    """Return (index, field, bytes, position) for every name or value that does not decode with codec."""
    failed = []
    for name in columns:
        if not name.isascii():
            try:
                name.encode(_RAW).decode(codec)
            except UnicodeDecodeError as exc:
                failed.append((None, name, name.encode(_RAW), exc.start))
    for name in text_columns:
        for index, value in raw_frame[name].items():
            if isinstance(value, str) and not value.isascii():
                try:
                    value.encode(_RAW).decode(codec)
                except UnicodeDecodeError as exc:
                    failed.append((index, name, value.encode(_RAW), exc.start))
    return failed


def _decode_text(raw_frame: gpd.GeoDataFrame, forced: str | None, cpg: str | None, source: dict,
                 notes: list, problems: list) -> gpd.GeoDataFrame:
    display = source["display"]
    geometry = raw_frame.geometry.name
    columns = [c for c in raw_frame.columns if c != geometry]
    # pandas 3 reads text as the "str" dtype, older pandas as object.
    text_columns = [c for c in columns
                    if pd.api.types.is_object_dtype(raw_frame[c]) or pd.api.types.is_string_dtype(raw_frame[c])]
    if forced is not None:
        codec = _codec(forced)
        if codec is None:
            raise _fatal(source, "unknown_encoding", "unknown_encoding", encoding=forced)
        candidates, origin = [codec], "given"
    elif cpg and _codec(cpg):
        candidates, origin = [_codec(cpg)], f".cpg ({cpg})"
    else:
        if cpg:
            notes.append(problem("encoding", Message("geometry.vector.unknown_cpg", file=display, cpg=cpg)))
        candidates, origin = ["utf-8", "gb18030"], "detected"
    failures = {}
    for codec in candidates:
        failures[codec] = _failures(raw_frame, columns, text_columns, codec)
        if not failures[codec]:
            break
    else:
        problems.extend(_encoding_problems(display, candidates, failures, origin))
        source.update(encoding=None, encoding_source=origin)
        codec = None
    if codec is not None:
        source.update(encoding=codecs.lookup(codec).name.upper(), encoding_source=origin)
        if origin == "detected" and codec != "utf-8":
            notes.append(problem("encoding", Message("geometry.vector.decoded_gb18030", file=display)))
    # Undecodable text has been reported and the read will be refused; decode it as well as
    # possible meanwhile so that the remaining checks (fields, codes) still run.
    decode = (lambda s: s.encode(_RAW).decode(codec)) if codec else _printable
    frame = raw_frame.copy()
    for name in text_columns:
        frame[name] = [decode(v) if isinstance(v, str) and not v.isascii() else v for v in frame[name]]
    renamed = {c: decode(c) for c in columns if not c.isascii()}
    if renamed:
        frame = frame.rename(columns=renamed)
    source["fields"] = [renamed.get(c, c) for c in columns]
    return frame


def _encoding_problems(display: str, candidates: list[str], failures: dict, origin: str) -> list[dict]:
    def one(index, name, data, pos, said):
        shown = _printable(name)
        where = (Message("geometry.vector.where_value", index=index, field=shown) if index is not None
                 else Message("geometry.vector.where_name", field=shown))
        return problem("undecodable_text",
                       Message("geometry.vector.undecodable", file=display, where=where, said=said,
                               bytes=data[pos:pos + 4].hex(" "), pos=pos, advice=Message(f"geometry.vector.{advice}")),
                       index=index, field=shown)

    if origin == "given":
        advice = "advice_given"
        said = Message("geometry.vector.said_given", encoding=candidates[0])
        return [one(*f, said) for f in failures[candidates[0]]]
    if origin.startswith(".cpg"):
        advice = "advice_cpg"
        said = Message("geometry.vector.said_cpg", encoding=candidates[0], origin=origin)
        return [one(*f, said) for f in failures[candidates[0]]]
    advice = "advice_detected"
    utf8 = {(i, n): (i, n, d, p) for i, n, d, p in failures["utf-8"]}
    both = [f for f in failures["gb18030"] if (f[0], f[1]) in utf8]
    if both:
        return [one(*f, "UTF-8 or GB18030") for f in both]
    examples_utf8 = ", ".join(str(i) for i, *_ in failures["utf-8"][:_LIST_AT_MOST])
    examples_gb = ", ".join(str(i) for i, *_ in failures["gb18030"][:_LIST_AT_MOST])
    return [problem("mixed_encoding", Message("geometry.vector.mixed_encoding", file=display, utf8=examples_utf8,
                                              gb=examples_gb))]


def _printable(name: str) -> str:
    """Return a raw (Latin-1 decoded) field name as readable as possible, for messages only."""
    raw = name.encode(_RAW)
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            pass
    return raw.decode("utf-8", "replace")


def _codes(frame: pd.DataFrame, code_field: str | None) -> dict:
    if code_field is None or code_field not in frame.columns:
        return {}
    return {index: text_value(v) for index, v in frame[code_field].items()}


# -- CRS ----------------------------------------------------------------------------------------------


def parse_crs(value: str) -> tuple[pyproj.CRS | None, bool]:
    """Return (CRS, is_gcj02) for a --src-crs value: an EPSG code, PROJ string, WKT or 'gcj02'."""
    text = str(value).strip()
    if text.lower() in _GCJ02_NAMES:
        return None, True
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        return pyproj.CRS.from_user_input(text), False
    except pyproj.exceptions.CRSError as exc:
        raise _fatal({}, "bad_src_crs", "bad_src_crs", crs=str(value), reason=_first_line(exc)) from None


def _crs_label(crs: pyproj.CRS) -> str:
    epsg = crs.to_epsg(min_confidence=90)
    return f"EPSG:{epsg} ({crs.name})" if epsg else crs.name


def _coordinate_hint(bounds) -> Message | str:
    if bounds is None or not all(map(math.isfinite, bounds)):
        return ""
    x0, y0, x1, y1 = bounds
    where = f"x {x0:.6g}–{x1:.6g}, y {y0:.6g}–{y1:.6g}"
    if -180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90:
        return Message("geometry.hint.degrees", where=where)
    return Message("geometry.hint.metres", where=where)


def _is_wgs84(crs: pyproj.CRS) -> bool:
    datum = crs.datum.name if crs.datum is not None else ""
    return crs.to_epsg() == 4326 or "World Geodetic System 1984" in datum


def _has_crs_member(file_path: Path) -> bool:
    return re.search(rb'"crs"\s*:\s*\{', file_path.read_bytes()) is not None


def _source_crs(info: dict, src_crs, source: dict, notes: list, geojson_default: bool) -> tuple[pyproj.CRS, bool]:
    display = source["display"]
    file_crs = pyproj.CRS.from_user_input(info["crs"]) if info["crs"] else None
    if src_crs is not None and str(src_crs).strip():
        crs, gcj02 = parse_crs(src_crs)
        label = "GCJ-02 lon/lat (Chinese web maps)" if gcj02 else _crs_label(crs)
        source.update(crs=label, crs_source="given")
        if file_crs is not None and (gcj02 or not crs.equals(file_crs)):
            said = "EPSG:4326 by the GeoJSON default" if geojson_default else _crs_label(file_crs)
            notes.append(problem("crs_overridden", Message("geometry.vector.crs_overridden", file=display,
                                                           said=said, label=label)))
        if gcj02:
            notes.append(problem("gcj02", Message("geometry.vector.gcj02", file=display)))
        return (pyproj.CRS.from_epsg(SRID) if gcj02 else crs), gcj02
    if file_crs is None:
        sentence = "no_prj" if source["driver"] == "ESRI Shapefile" else "no_crs"
        raise _fatal(source, "no_crs", sentence, file=display, hint=_coordinate_hint(info.get("total_bounds")))
    source.update(crs=_crs_label(file_crs), crs_source="file")
    if geojson_default:
        source["crs_source"] = "GeoJSON default (RFC 7946)"
        notes.append(problem("crs_default", Message("geometry.vector.crs_default", file=display)))
    return file_crs, False


# -- geometry -----------------------------------------------------------------------------------------


def _polygonal_part(geom):
    """Return the polygonal part of a geometry as Polygon/MultiPolygon, or None if it has none."""
    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    polygons = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            polygons.append(part)
        elif isinstance(part, MultiPolygon):
            polygons.extend(part.geoms)
        elif part.geom_type == "GeometryCollection":
            sub = _polygonal_part(part)
            if sub is not None:
                polygons.extend(shapely.get_parts(sub))
    polygons = [p for p in polygons if not p.is_empty]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _part_count(geom) -> int:
    return len(geom.geoms) if isinstance(geom, MultiPolygon) else 1


def _geometries(frame: gpd.GeoDataFrame, crs: pyproj.CRS, gcj02: bool, target_srid: int,
                multipart: str | None, codes: dict, source: dict, notes: list, problems: list, *,
                max_vertices: int | None = MAX_VERTICES) -> gpd.GeoDataFrame:
    display = source["display"]
    geoms = np.array(frame.geometry.values, dtype=object)
    keep = np.ones(len(geoms), dtype=bool)

    def fail(i, kind, sentence=None, **params):
        index = frame.index[i]
        problems.append(problem(kind, _on_feature(display, index, codes.get(index), sentence or kind, **params),
                                index=index, code=codes.get(index), field="geometry"))
        keep[i] = False

    for i, geom in enumerate(geoms):
        if geom is None:
            fail(i, "null_geometry")
        elif geom.is_empty:
            fail(i, "empty_geometry")
    has_z = np.array([g is not None and keep[i] and shapely.has_z(g) for i, g in enumerate(geoms)])
    if has_z.any():
        geoms[has_z] = shapely.force_2d(geoms[has_z])
        notes.append(problem("z_dropped", Message("geometry.vector.z_dropped", file=display,
                                                  count=int(has_z.sum()))))
    geoms[~keep] = None
    if max_vertices is not None:
        counts = shapely.get_num_coordinates(geoms)
        for i in np.flatnonzero(keep & (counts > max_vertices)):
            fail(i, "too_many_vertices", count=int(counts[i]), limit=max_vertices)
            geoms[i] = None

    # A straight edge in a projected CRS bends when reprojected: densify first (gridkit.grids.tolerance).
    if not gcj02 and crs.is_projected:
        dense = densify_projected(geoms[keep], crs)
        added = int(shapely.get_num_coordinates(dense).sum() - shapely.get_num_coordinates(geoms[keep]).sum())
        geoms[keep] = dense
        if added:
            notes.append(problem("densified", Message("geometry.vector.densified", file=display, count=added,
                                                      step=DENSIFY_M)))

    # Reproject to CGCS2000 lon/lat first: the China check is in degrees.
    if gcj02:
        from gridkit.coords import transform_geometry_gcj02_to_cgcs2000

        geoms = np.asarray(transform_geometry_gcj02_to_cgcs2000(geoms), dtype=object)
        series = gpd.GeoSeries(geoms, index=frame.index, crs=SRID)
    else:
        series = gpd.GeoSeries(geoms, index=frame.index, crs=crs).to_crs(epsg=SRID)
        if _is_wgs84(crs):
            notes.append(problem("wgs84_as_cgcs2000", Message("geometry.vector.wgs84_as_cgcs2000", file=display)))
    _check_in_china(series, keep, fail, source, problems)
    if target_srid != SRID:
        series = series.to_crs(epsg=target_srid)
    geoms = np.array(series.values, dtype=object)

    polygon_layer = multipart is not None
    for i, geom in enumerate(geoms):
        if not keep[i]:
            geoms[i] = None
            continue
        index = frame.index[i]
        code = codes.get(index)
        if polygon_layer and not isinstance(geom, (Polygon, MultiPolygon)):
            part = _polygonal_part(geom) if geom.geom_type == "GeometryCollection" else None
            if part is None:
                fail(i, "not_polygon", type=geom.geom_type)
                geoms[i] = None
                continue
            notes.append(problem("parts_dropped", _on_feature(display, index, code, "parts_dropped"),
                                 index=index, code=code, field="geometry"))
            geom = part
        repaired = False
        if not shapely.is_valid(geom):
            reason = shapely.is_valid_reason(geom)
            fixed = shapely.make_valid(geom)
            if polygon_layer:
                fixed = _polygonal_part(fixed)
            if fixed is None or fixed.is_empty:
                fail(i, "invalid_geometry", reason=reason)
                geoms[i] = None
                continue
            repaired = True
            shape = (f"{fixed.geom_type} of {_part_count(fixed)} parts" if isinstance(fixed, MultiPolygon)
                     else fixed.geom_type)
            notes.append(problem("geometry_repaired",
                                 _on_feature(display, index, code, "geometry_repaired", reason=reason, shape=shape),
                                 index=index, code=code, field="geometry"))
            geom = fixed
        if multipart == "single" and isinstance(geom, MultiPolygon):
            if len(geom.geoms) == 1:
                geom = geom.geoms[0]
            else:
                fail(i, "multipart", "multipart_repaired" if repaired else "multipart", count=len(geom.geoms))
                geoms[i] = None
                continue
        elif multipart == "keep" and isinstance(geom, Polygon):
            geom = MultiPolygon([geom])
        geoms[i] = geom
    result = frame.drop(columns=frame.geometry.name)
    return gpd.GeoDataFrame(result, geometry=gpd.GeoSeries(geoms, index=frame.index), crs=target_srid)


def _on_feature(display: str, index, code, kind: str, **params) -> Message:
    """Return "<file>, feature <index> (code <code>): <what geometry.vector.<kind> says>" as a Message."""
    label = Message("geometry.vector.code_label", code=code) if code else ""
    return Message("geometry.vector.on_feature", file=display, index=index, code_label=label,
                   text=Message(f"geometry.vector.{kind}", **params))


def _check_in_china(series: gpd.GeoSeries, keep: np.ndarray, fail, source: dict, problems: list) -> None:
    bounds = np.array(shapely.bounds(np.array(series.values, dtype=object)), dtype=float).reshape(-1, 4)
    present = keep & np.isfinite(bounds).all(axis=1)
    x0, y0, x1, y1 = bounds.T
    with np.errstate(invalid="ignore"):
        inside = (x0 >= CHINA_LON[0]) & (x1 <= CHINA_LON[1]) & (y0 >= CHINA_LAT[0]) & (y1 <= CHINA_LAT[1])
        swapped = (y0 >= CHINA_LON[0]) & (y1 <= CHINA_LON[1]) & (x0 >= CHINA_LAT[0]) & (x1 <= CHINA_LAT[1])
    # Non-finite coordinates (a failed transformation) count as outside.
    outside = keep & ~(present & inside)
    checked = int(keep.sum())
    if not outside.any() or checked == 0:
        return
    display = source["display"]
    positions = np.flatnonzero(outside)
    indexes = [series.index[i] for i in positions]
    listed = ", ".join(str(i) for i in indexes[:_LIST_AT_MOST]) + (" …" if len(indexes) > _LIST_AT_MOST else "")
    if (outside & swapped).sum() > _MOSTLY * checked:
        first = positions[0]
        problems.append(problem("axes_swapped", Message(
            "geometry.vector.axes_swapped", file=display, count=int((outside & swapped).sum()), checked=checked,
            where=f"x {x0[first]:.6g}–{x1[first]:.6g}, y {y0[first]:.6g}–{y1[first]:.6g}", example=indexes[0]),
            field="geometry"))
        keep[outside] = False
        return
    if len(positions) > _MOSTLY * checked:
        problems.append(problem("outside_china", Message(
            "geometry.vector.mostly_outside_china", file=display, count=len(positions), checked=checked,
            listed=listed, crs=source.get("crs")), field="geometry"))
        keep[outside] = False
        return
    for i in positions:
        ok = np.isfinite(bounds[i]).all()
        if ok:
            fail(i, "outside_china", where=f"x {x0[i]:.6g}–{x1[i]:.6g}, y {y0[i]:.6g}–{y1[i]:.6g}")
        else:
            fail(i, "not_convertible")
