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

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from shapely.geometry import MultiPolygon, Polygon

from gridkit.grids.tolerance import DENSIFY_M, densify_projected

# Finding the file, decoding its text and the problem helpers live in sibling modules; the names
# callers import from here (`problem`, `VectorReadError`, `_codec`, …) are re-exported.
from gridkit.io.archive import MAX_ZIP_BYTES as MAX_ZIP_BYTES
from gridkit.io.archive import _located
from gridkit.io.crs import cgcs2000_via, check_datum, coordinate_hint, crs_label, is_gcj02, looks_projected
from gridkit.io.crs import parse_crs as parse_crs
from gridkit.io.problems import VectorReadError, _fatal, _first_line, problem, refusal
from gridkit.io.problems import problem_text as problem_text
from gridkit.io.tables import cell_text
from gridkit.io.textcodec import _RAW_GDAL, _cpg_of, _decode_text
from gridkit.io.textcodec import _codec as _codec
from gridkit.io.vector_place import check_in_china, fail_non_finite
from gridkit.messages import Message
from gridkit.rules import SRID

__all__ = [
    "VectorRead",
    "VectorReadError",
    "read_vector",
    "layer_fields",
    "problem",
    "problem_text",
    "refusal",
    "text_value",
    "MULTIPART_MODES",
]

MULTIPART_MODES = ("keep", "single")

# Default vertex limit per feature (GRIDKIT_MAX_VERTICES); a base cell has tens, a city boundary thousands.
MAX_VERTICES = 100_000


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
    text = cell_text(str(value))
    return text or None


def read_vector(
    path,
    *,
    layer: str | None = None,
    encoding: str | None = None,
    src_crs: str | None = None,
    target_srid: int = SRID,
    multipart: str | None = None,
    code_field: str | None = None,
    max_vertices: int | None = MAX_VERTICES,
    city: tuple | None = None,
) -> VectorRead:
    """Return the layer at `path` checked and reprojected to EPSG:`target_srid`, or raise VectorReadError.

    `multipart` ("keep" or "single") declares a polygon layer: every feature must then be a
    polygon, and is returned as a MultiPolygon ("keep") or a Polygon ("single"). `code_field`
    only labels notes and problems with the feature's code. A feature with more than
    `max_vertices` vertices (None: no limit) is a problem: such a feature is a digitising accident
    or a raster traced to vectors, and would take minutes to validate. `city`: the extent of the city's admin
    units (gridkit.admin.city_extent), for the advice to a file without a CRS (gridkit.io.crs.coordinate_hint).
    """
    read, problems = read_vector_collecting(
        path,
        layer=layer,
        encoding=encoding,
        src_crs=src_crs,
        target_srid=target_srid,
        multipart=multipart,
        code_field=code_field,
        max_vertices=max_vertices,
        city=city,
    )
    if problems:
        code, params = refusal(read.source.get("display", str(path)), problems, "read")
        raise VectorReadError(code, problems=problems, notes=read.notes, source=read.source, **params)
    return read


def summarise(display: str, problems: list[dict], what: str) -> str:
    """Return a one-paragraph error message: how many problems, the first one, and that nothing was done."""
    first = problems[0]["message"]
    if len(problems) == 1:
        return f"{first} Nothing was {what}."
    return f"{display}: {len(problems)} problems, nothing was {what}. The first: {first} The report lists them all."


def read_vector_collecting(
    path,
    *,
    layer=None,
    encoding=None,
    src_crs=None,
    target_srid=SRID,
    multipart=None,
    code_field=None,
    max_vertices: int | None = MAX_VERTICES,
    city: tuple | None = None,
) -> tuple[VectorRead, list[dict]]:
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
        crs, gcj02 = _source_crs(info, src_crs, source, notes, geojson_default, city)
    except VectorReadError as exc:  # no CRS: the coordinates cannot be checked, but report the text too
        exc.problems, exc.notes, exc.source = problems + exc.problems, notes, source
        raise
    gdf = _geometries(
        gdf, crs, gcj02, target_srid, multipart, codes, source, notes, problems, max_vertices=max_vertices, city=city
    )
    source["features"] = len(gdf)
    return VectorRead(gdf=gdf, notes=notes, source=source), problems


# Features whose text decides the encoding of the field names `layer_fields` returns (a name is decoded as its layer's
# values are): enough to tell UTF-8 from GBK, few enough to answer at once for a layer of thousands.
FIELDS_SAMPLE = 200


def layer_fields(path, *, layer: str | None = None, encoding: str | None = None) -> dict:
    """Return {"file", "layer", "features", "fields"} of the layer at `path`: its attribute field names (decoded as
    `read_vector` decodes them), to choose the code and name fields from before an import; raise VectorReadError
    for a file no import could read (no such file, not a layer, an unsafe zip)."""
    path = Path(path)
    source: dict = {"path": str(path), "display": path.name or str(path)}
    notes: list[dict] = []
    with _located(path, layer, source) as (file_path, gdal_layer):
        info = _layer_info(file_path, gdal_layer, source)
        raw = _read_raw(file_path, gdal_layer, source, notes, limit=FIELDS_SAMPLE)
        cpg = _cpg_of(file_path) if source["driver"] == "ESRI Shapefile" else None
    # Text that does not decode is the import's to report, feature by feature; the names decode or keep their bytes.
    frame = _decode_text(raw, encoding, cpg, source, notes, [])
    fields = [str(c) for c in frame.columns if c != frame.geometry.name]
    return {"file": source["display"], "layer": source.get("layer"), "features": info["features"], "fields": fields}


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


def _read_raw(
    file_path: Path, layer: str | None, source: dict, notes: list, *, skip: int = 0, limit: int | None = None
) -> pd.DataFrame:
    """Return the layer's features (all, or `limit` of them after the first `skip`), text as raw bytes."""

    def read(on_invalid: str):  # Latin-1 hands back the raw bytes of every text value (see the module docstring).
        options = {"fid_as_index": True, "skip_features": skip, "max_features": limit, "on_invalid": on_invalid}
        return pyogrio.read_dataframe(file_path, layer=layer, encoding=_RAW_GDAL, **options)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                frame = read("raise")
            except shapely.errors.GEOSException:
                # A feature's WKB GEOS refuses (a ring whose last point is not its first) made the whole
                # layer unreadable without naming it: read it again with such rings closed, and say which.
                frame = read("fix")
                closed = frame.geometry.notna() & read("ignore").geometry.isna()
                for index in frame.index[closed.to_numpy()]:
                    said = _on_feature(source["display"], index, None, "ring_closed")
                    notes.append(problem("ring_closed", said, index=index, field="geometry"))
        except Exception as exc:
            raise _fatal(source, "unreadable", "unreadable", file=source["display"], reason=_first_line(exc))
    if any("Measured (M)" in str(w.message) for w in caught):
        notes.append(problem("m_dropped", Message("geometry.vector.m_dropped", file=source["display"])))
    if len(frame) == 0:
        raise _fatal(source, "no_features", "no_features", file=source["display"])
    return frame


def _codes(frame: pd.DataFrame, code_field: str | None) -> dict:
    if code_field is None or code_field not in frame.columns:
        return {}
    return {index: text_value(v) for index, v in frame[code_field].items()}


# -- CRS ----------------------------------------------------------------------------------------------


def _is_wgs84(crs: pyproj.CRS) -> bool:
    datum = crs.datum.name if crs.datum is not None else ""
    return crs.to_epsg() == 4326 or "World Geodetic System 1984" in datum


def _has_crs_member(file_path: Path) -> bool:
    return re.search(rb'"crs"\s*:\s*\{', file_path.read_bytes()) is not None


def _hint(bounds, city, source: dict):
    """Return coordinate_hint's advice, naming no point exactly in a layer of people's homes (source "personal")."""
    return coordinate_hint(bounds, city, personal=bool(source.get("personal")))


def _source_crs(
    info: dict, src_crs, source: dict, notes: list, geojson_default: bool, city: tuple | None = None
) -> tuple[pyproj.CRS, bool]:
    display = source["display"]
    file_crs = pyproj.CRS.from_user_input(info["crs"]) if info["crs"] else None
    if src_crs is not None and str(src_crs).strip():
        crs, gcj02 = parse_crs(src_crs)
        label = "GCJ-02" if gcj02 else crs_label(crs)
        source.update(crs=label, crs_source="given")
        if file_crs is not None and (gcj02 or not crs.equals(file_crs)):
            said = "EPSG:4326 by the GeoJSON default" if geojson_default else crs_label(file_crs)
            notes.append(
                problem(
                    "crs_overridden", Message("geometry.vector.crs_overridden", file=display, said=said, label=label)
                )
            )
        if gcj02:
            notes.append(problem("gcj02", Message("geometry.vector.gcj02", file=display)))
            return pyproj.CRS.from_epsg(SRID), True
        check_datum(crs, source)
        return crs, False
    if file_crs is None:
        sentence = "no_prj" if source["driver"] == "ESRI Shapefile" else "no_crs"
        raise _fatal(source, "no_crs", sentence, file=display, hint=_hint(info.get("total_bounds"), city, source))
    if geojson_default and looks_projected(info.get("total_bounds")):  # metres, not the RFC 7946 degrees
        raise _fatal(source, "no_crs", "no_crs", file=display, hint=_hint(info.get("total_bounds"), city, source))
    source.update(crs=crs_label(file_crs), crs_source="file")
    if geojson_default:
        source["crs_source"] = "GeoJSON default (RFC 7946)"
        notes.append(problem("crs_default", Message("geometry.vector.crs_default", file=display)))
    if is_gcj02(file_crs):  # a GCJ-02 export of gridkit's, or a GIS plug-in's GCJ-02: not WGS 84
        source["crs"] = "GCJ-02"
        notes.append(problem("gcj02", Message("geometry.vector.gcj02", file=display)))
        return pyproj.CRS.from_epsg(SRID), True
    check_datum(file_crs, source)
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


def _geometries(
    frame: gpd.GeoDataFrame,
    crs: pyproj.CRS,
    gcj02: bool,
    target_srid: int,
    multipart: str | None,
    codes: dict,
    source: dict,
    notes: list,
    problems: list,
    *,
    max_vertices: int | None = MAX_VERTICES,
    city: tuple | None = None,
) -> gpd.GeoDataFrame:
    """Return `frame` with its geometries checked and in EPSG:`target_srid`; a feature with a problem gets None."""
    display = source["display"]
    keep = np.ones(len(frame), dtype=bool)

    def fail(i, kind, sentence=None, **params):
        index = frame.index[i]
        problems.append(
            problem(
                kind,
                _on_feature(display, index, codes.get(index), sentence or kind, **params),
                index=index,
                code=codes.get(index),
                field="geometry",
            )
        )
        keep[i] = False

    geoms = _placed(frame, crs, gcj02, target_srid, keep, fail, source, notes, problems, max_vertices, city)
    _shaped(geoms, frame.index, multipart, keep, fail, codes, display, notes)
    result = frame.drop(columns=frame.geometry.name)
    return gpd.GeoDataFrame(result, geometry=gpd.GeoSeries(geoms, index=frame.index), crs=target_srid)


def _placed(
    frame: gpd.GeoDataFrame,
    crs: pyproj.CRS,
    gcj02: bool,
    target_srid: int,
    keep: np.ndarray,
    fail,
    source: dict,
    notes: list,
    problems: list,
    max_vertices: int | None,
    city: tuple | None = None,
) -> np.ndarray:
    """Return the geometries 2D, densified, in EPSG:`target_srid` and checked to lie in China.

    Null, empty, too detailed and misplaced features are `fail`ed (which clears their `keep`).
    """
    display = source["display"]
    geoms = np.array(frame.geometry.values, dtype=object)
    for i, geom in enumerate(geoms):
        if geom is None:
            fail(i, "null_geometry")
        elif geom.is_empty:
            fail(i, "empty_geometry")
    fail_non_finite(geoms, keep, fail)
    has_z = np.array([g is not None and keep[i] and shapely.has_z(g) for i, g in enumerate(geoms)])
    if has_z.any():
        geoms[has_z] = shapely.force_2d(geoms[has_z])
        notes.append(problem("z_dropped", Message("geometry.vector.z_dropped", file=display, count=int(has_z.sum()))))
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
            notes.append(
                problem("densified", Message("geometry.vector.densified", file=display, count=added, step=DENSIFY_M))
            )

    # What the coordinates look like, for a refusal that blames the CRS: metres under a lon/lat .prj, degrees or
    # zone-prefixed eastings under a projected one.
    raw = shapely.total_bounds(geoms[keep]) if keep.any() else None
    hint = _hint(raw, city, source) if not gcj02 and (crs.is_projected or looks_projected(raw)) else ""
    # Reproject to CGCS2000 lon/lat first: the China check is in degrees.
    if gcj02:
        from gridkit.coords import transform_geometry_gcj02_to_cgcs2000

        geoms = np.asarray(transform_geometry_gcj02_to_cgcs2000(geoms), dtype=object)
        series = gpd.GeoSeries(geoms, index=frame.index, crs=SRID)
    else:
        # A CRS with its own datum parameters (+towgs84) goes through WGS 84: see gridkit.io.crs.cgcs2000_via.
        series = gpd.GeoSeries(geoms, index=frame.index, crs=crs).to_crs(epsg=cgcs2000_via(crs))
        series = series.set_crs(SRID, allow_override=True)
        if _is_wgs84(crs):
            notes.append(problem("wgs84_as_cgcs2000", Message("geometry.vector.wgs84_as_cgcs2000", file=display)))
    check_in_china(series, keep, fail, source, problems, hint)
    if target_srid != SRID:
        series = series.to_crs(epsg=target_srid)
    return np.array(series.values, dtype=object)


def _shaped(
    geoms: np.ndarray,
    index_of: pd.Index,
    multipart: str | None,
    keep: np.ndarray,
    fail,
    codes: dict,
    display: str,
    notes: list,
) -> None:
    """Make every kept geometry valid and of the shape `multipart` asks for, in place; None where that fails."""
    polygon_layer = multipart is not None
    for i, geom in enumerate(geoms):
        if not keep[i]:
            geoms[i] = None
            continue
        index = index_of[i]
        code = codes.get(index)
        if polygon_layer and not isinstance(geom, (Polygon, MultiPolygon)):
            part = _polygonal_part(geom) if geom.geom_type == "GeometryCollection" else None
            if part is None:
                fail(i, "not_polygon", type=geom.geom_type)
                geoms[i] = None
                continue
            notes.append(
                problem(
                    "parts_dropped",
                    _on_feature(display, index, code, "parts_dropped"),
                    index=index,
                    code=code,
                    field="geometry",
                )
            )
            geom = part
        repaired = False
        if not shapely.is_valid(geom):
            reason = shapely.is_valid_reason(geom)
            polygonal = polygon_layer or isinstance(geom, (Polygon, MultiPolygon))
            # A polygon keeps only its polygonal part: repaired, one drawn with no area (every vertex on one line,
            # or repeated) became lines, told as "is a MultiLineString" instead of what is wrong with it.
            fixed = _polygonal_part(shapely.make_valid(geom)) if polygonal else shapely.make_valid(geom)
            if fixed is None or fixed.is_empty:
                if isinstance(geom, (Polygon, MultiPolygon)):
                    fail(i, "degenerate_polygon", type=geom.geom_type)
                else:
                    fail(i, "invalid_geometry", reason=reason)
                geoms[i] = None
                continue
            repaired = True
            shape = (
                f"{fixed.geom_type} of {_part_count(fixed)} parts"
                if isinstance(fixed, MultiPolygon)
                else fixed.geom_type
            )
            notes.append(
                problem(
                    "geometry_repaired",
                    _on_feature(display, index, code, "geometry_repaired", reason=reason, shape=shape),
                    index=index,
                    code=code,
                    field="geometry",
                )
            )
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


def _on_feature(display: str, index, code, kind: str, **params) -> Message:
    """Return "<file>, feature <index> (code <code>): <what geometry.vector.<kind> says>" as a Message."""
    label = Message("geometry.vector.code_label", code=code) if code else ""
    return Message(
        "geometry.vector.on_feature",
        file=display,
        index=index,
        code_label=label,
        text=Message(f"geometry.vector.{kind}", **params),
    )
