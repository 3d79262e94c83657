"""Export a layer to Shapefile (zip), GeoPackage, GeoJSON, CSV or XLSX: streamed, reprojected, masked.

    result = export_layer(session, ExportOptions("buildings", "shp", Path("b.zip"), crs="EPSG:4547"),
                          user=user, actor="cli:anna")

- Rows are read from PostGIS in chunks through a server-side cursor and appended to the file
  chunk by chunk, so memory stays flat with the number of features.
- Geometry leaves storage (EPSG:4490) reprojected by PostGIS (ST_Transform) to any EPSG code it
  knows, offset to GCJ-02 (`gridkit.coords`) for Chinese web maps, or moved by PROJ into a CRS given as a
  PROJ string or WKT, such as an old datum with its seven parameters (gridkit.io.export_crs). GeoJSON is RFC 7946:
  WGS84 lon/lat, counter-clockwise outer rings, no "crs" member.
- The file is written under a temporary name next to the output and renamed at the end: a
  failure or Ctrl+C leaves no half-written file behind.
- Personal fields are masked unless `unmasked` is asked by a user whose role and area allow it;
  such exports are written to the audit log in the caller's transaction.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import pyarrow as pa
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import audit
from gridkit.errors import Conflict, NotFound, PermissionDenied, ValidationError
from gridkit.io.export_arrow import arrow_batches, copy_sql
from gridkit.io.export_child import WriterProcess
from gridkit.io.export_crs import TargetCrs, moved_geometries, target_crs
from gridkit.io.export_layers import DATETIME, LAYERS, RESIDENT_COUNTS, build_query, layer_named
from gridkit.io.export_writers import (
    ENCODINGS,
    XLSX_MAX_ROWS,
    Chunk,
    GeoJsonWriter,
    OgrWriter,
    ShapefileZipWriter,
    TableWriter,
    check_encodable,
)
from gridkit.messages import Message
from gridkit.models import SRID, AdminUnit
from gridkit.rules import parse_time
from gridkit.users import area_in_scope, may_see_personal_data

__all__ = [
    "FORMATS",
    "LAYERS",
    "ExportOptions",
    "TargetCrs",
    "export_layer",
    "format_for_path",
    "parse_where",
    "small_counts_note",
    "target_crs",
]

FORMATS = ("shp", "gpkg", "geojson", "csv", "xlsx")
SUFFIXES = {".zip": "shp", ".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".xlsx": "xlsx"}
DEFAULT_CHUNK = 50_000
DEFAULT_MAX_FEATURES = 5_000_000
# From about this many rows (the planner's estimate) GDAL writes in a child process while this one
# reads (export_child): two cores at once pay for the child's start (a few tenths of a second).
PROCESS_ROWS = 20_000


@dataclass
class ExportOptions:
    """What to export, how and where (see `gridkit export --help` for each option)."""

    layer: str
    format: str
    path: Path
    crs: str = f"EPSG:{SRID}"
    encoding: str = "utf-8"
    area: str | None = None
    where: dict = field(default_factory=dict)
    dept: str | None = None
    version: int | None = None
    at: datetime | str | None = None
    unmasked: bool = False
    force: bool = False
    chunk_size: int = DEFAULT_CHUNK
    max_features: int = DEFAULT_MAX_FEATURES


def parse_where(items) -> dict:
    """Return {field: value} from FIELD=VALUE strings; refuse anything without '='."""
    result = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise ValidationError("export.bad_where", item=item)
        result[name.strip()] = value
    return result


def format_for_path(path: Path | str) -> str:
    """Return the format a file name's suffix implies, or raise ValidationError."""
    fmt = SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValidationError(
            "export.unknown_format", format=Path(path).suffix or str(path), formats=", ".join(FORMATS)
        )
    return fmt


def _check_options(session: Session, options: ExportOptions, user) -> TargetCrs:
    layer_named(options.layer)
    if options.format not in FORMATS:
        raise ValidationError("export.unknown_format", format=options.format, formats=", ".join(FORMATS))
    if options.encoding not in ENCODINGS:
        raise ValidationError("export.unknown_encoding", encoding=options.encoding, encodings=", ".join(ENCODINGS))
    if options.encoding != "utf-8" and options.format not in ("shp", "csv"):
        raise ValidationError("export.encoding_fixed", format=options.format)
    crs = target_crs(session, options.crs)
    if options.format == "geojson" and (crs.moves or crs.srid not in (4326, SRID)):
        raise ValidationError("export.geojson_lonlat", crs=crs.label)
    if options.area and session.get(AdminUnit, options.area) is None:
        raise NotFound("export.unknown_area", area=options.area)
    if options.unmasked and not may_see_personal_data(user, options.area):
        raise PermissionDenied(
            "export.unmasked_denied", role=getattr(user, "role", None) or "-", area=options.area or "-"
        )
    _check_output(Path(options.path), options.force)
    return crs


def _check_output(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise Conflict("export.exists", path=str(path))
    if path.is_dir():
        raise ValidationError("export.is_folder", path=str(path))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError("export.not_writable", path=str(path), folder=str(parent))


def _geometry_sql(options: ExportOptions, crs: TargetCrs, geometry_type: str, alias: str = "q") -> str:
    geom = f"{alias}._geom"
    if geometry_type.startswith("Multi"):
        geom = f"ST_Multi({geom})"
    if crs.srid != SRID:
        geom = f"ST_Transform({geom}, {int(crs.srid)})"
    if options.format == "geojson":
        # RFC 7946: outer rings counter-clockwise; 7 decimals is about 1 cm; options 0: no "crs"
        # member (PostGIS adds one to every geometry not in EPSG:4326 by default, e.g. 4490).
        return f"ST_AsGeoJSON(ST_ForcePolygonCCW({geom}), 7, 0)"
    return f"ST_AsBinary({geom})"


def _writer(options: ExportOptions, tmp: Path, fields, geometry_type: str, crs: TargetCrs):
    fmt = options.format
    if fmt == "shp":
        return ShapefileZipWriter(tmp, fields, crs.file_crs, options.encoding, prj=crs.prj)
    if fmt == "gpkg":
        return OgrWriter(tmp, "GPKG", fields, crs.file_crs)
    if fmt == "geojson":
        return GeoJsonWriter(tmp, fields)
    return TableWriter(tmp, fields, geometry_type, fmt, options.encoding)


# A layer of mixed geometries (components: points such as manholes, lines such as railings) is
# written as one shapefile or GeoPackage layer per kind present, since each holds one geometry
# type: (ST_Dimension, name suffix, geometry type).
KINDS = ((0, "point", "Point"), (1, "line", "MultiLineString"), (2, "polygon", "MultiPolygon"))


@dataclass(frozen=True)
class _Part:
    """One layer (GeoPackage) or file (shapefile) of an export: its name, geometry type and the
    dimension its rows are chosen by (None: every row)."""

    name: str
    geometry_type: str
    dimension: int | None = None


def _parts(session: Session, options: ExportOptions, query) -> list[_Part]:
    base = options.layer.replace("-", "_") if options.format == "gpkg" else options.layer
    if query.geometry_type != "Geometry":
        return [_Part(base, query.geometry_type)]
    present = set(
        session.execute(text(f"SELECT DISTINCT ST_Dimension(q._geom) FROM ({query.sql}) q"), query.params).scalars()
    )
    return [_Part(f"{base}_{word}", gtype, dim) for dim, word, gtype in KINDS if dim in present or dim < 2]


def _temporary_path(path: Path, private: bool) -> Path:
    # Same folder (rename stays atomic), same suffix (GDAL picks drivers by it), hidden name. A `private`
    # (unmasked) export is written inside an owner-only folder there: no other user of the machine reads
    # it while it is written, whatever the umask, and it becomes `path` owner-only (_move_into_place).
    if private:
        return Path(tempfile.mkdtemp(prefix=f".{path.stem}.part", dir=path.parent)) / path.name
    return path.with_name(f".{path.stem}.part{os.getpid()}{path.suffix}")


def _open_writer(options: ExportOptions, path: Path, query, crs: TargetCrs):
    """Return the temporary file an export writes (_temporary_path) and its writer; refuse an unwritable folder."""
    tmp = None
    try:
        tmp = _temporary_path(path, options.unmasked)
        return tmp, _writer(options, tmp, query.fields, query.geometry_type, crs)
    except OSError as exc:
        if tmp is not None:
            _drop_temporary(tmp, options.unmasked)
        raise ValidationError("export.not_writable", path=str(path), folder=str(path.parent)) from exc


def _move_into_place(tmp: Path, path: Path, private: bool) -> None:
    """Rename the written `tmp` to `path` (0600 when `private`: personal data in clear) and drop its folder."""
    if private:
        tmp.chmod(0o600)
    os.replace(tmp, path)
    _drop_temporary(tmp, private)


def _drop_temporary(tmp: Path, private: bool) -> None:
    """Remove an export's temporary file, and its private folder if it has one."""
    if private:
        shutil.rmtree(tmp.parent, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


class _TooLarge(Exception):
    """The stream read more rows than the export may write (counted afterwards for the message)."""


class _Stream:
    """The rows of one export as chunks, counted as they go; stops past the feature limit.

    GDAL pulls these chunks through Arrow's C stream, which turns any exception into its own
    error: the original is kept in `failure` to be raised unchanged.
    """

    def __init__(self, session: Session, options: ExportOptions, crs: TargetCrs, fields, limit: int, progress):
        self.session, self.options, self.crs, self.fields = session, options, crs, fields
        self.limit, self.progress = limit, progress
        self.codec = ENCODINGS[options.encoding][1]
        self.estimate = 0
        self.done = 0
        self.failure: BaseException | None = None
        self.shapefile: ShapefileZipWriter | None = None  # its fit checks each batch of the file in writing

    def run(self, chunks):
        """Yield `chunks` (Arrow batches or Chunks), checked, offset to GCJ-02 when asked, counted.

        The source is closed before this returns or raises, so the connection is free again for
        whatever comes next (a COPY left open would block it)."""
        try:
            for chunk in chunks:
                n = len(chunk)
                if self.done + n > self.limit:
                    # The query reads limit + 1 rows: the rest is less than a chunk. Reading it ends
                    # the COPY normally instead of cancelling it.
                    for _ in chunks:
                        pass
                    raise _TooLarge
                chunk = self._checked(chunk)
                yield chunk
                self.done += n
                if self.progress:
                    self.progress(self.done, max(self.estimate, self.done))
        except BaseException as exc:
            self.failure = exc
            raise
        finally:
            if hasattr(chunks, "close"):
                chunks.close()

    def _checked(self, chunk):
        names = [name for name, _ in self.fields]
        if isinstance(chunk, Chunk):
            check_encodable(chunk.columns, self.fields, self.codec, self.done)
            if self.crs.moves:
                chunk.geometry = list(moved_geometries(self.crs, chunk.geometry))
            return chunk
        check_encodable(dict(zip(names, chunk.columns)), self.fields, self.codec, self.done)
        if self.crs.moves:
            moved = pa.array(moved_geometries(self.crs, chunk.column(len(names))), type=pa.binary())
            chunk = pa.RecordBatch.from_arrays(chunk.columns[:-1] + [moved], names=chunk.schema.names)
        if self.shapefile is not None:
            chunk = self.shapefile.fit(chunk, self.done)
        return chunk

    def python_chunks(self, sql: str, params: dict):
        """Yield Chunks of Python values read through a server-side cursor (GeoJSON, CSV, XLSX)."""
        names = [name for name, _ in self.fields]
        size = self.options.chunk_size
        result = self.session.execute(
            text(sql), params, execution_options={"stream_results": True, "max_row_buffer": size}
        )
        for rows in result.partitions(size):
            columns = list(zip(*rows))  # the last column is the geometry
            yield Chunk(
                {name: list(columns[i]) for i, name in enumerate(names)},
                [bytes(g) if isinstance(g, memoryview) else g for g in columns[-1]],
            )


def _estimate(session: Session, sql: str, params: dict) -> int:
    """Return the planner's estimate of the rows `sql` yields (for progress bars; no rows are read)."""
    plan = session.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"), params).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def _arrow_source(session: Session, options: ExportOptions, crs: TargetCrs, query, writer, part, stream):
    """Return the Arrow batches of one part of a GDAL format's export (rows past the limit included)."""
    geometry = _geometry_sql(options, crs, part.geometry_type, alias="x")
    types = [f.type for f in writer.schema][:-1]
    where = None if part.dimension is None else f"ST_Dimension(x._geom) = {int(part.dimension)}"
    sql = copy_sql(query.sql, query.fields, types, geometry, stream.limit - stream.done + 1, where=where)
    names = [name for name, _ in query.fields]
    return arrow_batches(session, sql, query.params, names, types, rows=options.chunk_size)


def _python_source(options: ExportOptions, crs: TargetCrs, query, stream):
    """Return the chunks of Python values of a GeoJSON, CSV or XLSX export."""
    geometry = _geometry_sql(options, crs, query.geometry_type, alias="x")
    columns = ", ".join(f'x."{name}"' for name, _ in query.fields)
    sql = f"SELECT {columns}, {geometry} FROM ({query.sql}) x LIMIT {int(stream.limit) + 1}"
    return stream.python_chunks(sql, query.params)


def _write(session: Session, options: ExportOptions, crs: TargetCrs, query, writer, stream) -> dict:
    """Write every part of the export; return {layer or file name: features} of the GDAL formats."""
    if not isinstance(writer, (OgrWriter, ShapefileZipWriter)):
        writer.write_all(stream.run(_python_source(options, crs, query, stream)))
        return {}
    counts = {}
    for part in _parts(session, options, query):
        before = stream.done
        source = _arrow_source(session, options, crs, query, writer, part, stream)
        writer.write_layer(part.name, part.geometry_type, stream.run(source))
        counts[part.name] = stream.done - before
    writer.finish()
    return counts


def export_layer(
    session: Session,
    options: ExportOptions,
    *,
    user=None,
    actor: str = "system",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write one layer to `options.path` and return a summary (features, fields, CRS, seconds).

    Refuses unknown layers, formats, encodings and CRSs, filters on fields the layer lacks, more
    features than `options.max_features`, an existing output without `force` and an unwritable
    folder, and an area outside the scope of a scoped `user` (without an area, the scope is the
    area). `progress(done, total)` is called after each chunk. An unmasked export adds an audit
    row to the caller's transaction.
    """
    started = time.perf_counter()
    # A scoped user exports inside the scope only: no area means the whole scope.
    options = replace(options, area=area_in_scope(session, user, options.area))
    crs = _check_options(session, options, user)
    layer = LAYERS[options.layer]
    query = build_query(
        session,
        layer,
        area=options.area,
        where=options.where,
        dept=options.dept,
        version=options.version,
        at=parse_time(options.at, field="at"),
        unmasked=options.unmasked,
        kept=True,
    )
    limit = min(options.max_features, XLSX_MAX_ROWS) if options.format == "xlsx" else options.max_features
    path = Path(options.path)
    private = options.unmasked
    tmp, writer = _open_writer(options, path, query, crs)
    # No count before writing: rows are counted as they are written, and only an export over the
    # limit pays for a count (to say how many there are).
    stream = _Stream(session, options, crs, query.fields, limit, progress)
    if isinstance(writer, ShapefileZipWriter):
        stream.shapefile = writer
    if progress or isinstance(writer, (OgrWriter, ShapefileZipWriter)):
        stream.estimate = _estimate(session, query.sql, query.params)
    try:
        if isinstance(writer, (OgrWriter, ShapefileZipWriter)) and stream.estimate >= PROCESS_ROWS:
            writer.process = WriterProcess(path, cleanup=[getattr(writer, "folder", tmp), tmp, *[tmp.parent] * private])
        parts = _write(session, options, crs, query, writer, stream)
        _move_into_place(tmp, path, private)
    except BaseException as exc:
        # Ctrl+C included: no half-written file under either name.
        writer.discard()
        _drop_temporary(tmp, private)
        if isinstance(stream.failure, _TooLarge):
            total = session.execute(text(f"SELECT count(*) FROM ({query.sql}) c"), query.params).scalar_one()
            if options.format == "xlsx" and limit == XLSX_MAX_ROWS:
                # A sheet's rows, not the setting, are the limit: raising the setting would not help.
                raise ValidationError("export.xlsx_too_large", features=total, limit=limit) from None
            raise ValidationError("export.too_large", features=total, limit=limit, format=options.format) from None
        if stream.failure is not None:
            raise stream.failure from None
        if isinstance(exc, OSError):
            raise ValidationError("export.write_failed", path=str(path), reason=exc.strerror or str(exc)) from exc
        raise
    if progress:
        progress(stream.done, stream.done)
    if options.unmasked:
        personal = [*layer.personal, *query.personal]
        _audit_unmasked(session, options, actor, personal, [*layer.unmasked_fields, *query.personal], stream.done, path)
    return _summary(options, crs, query, writer, parts, stream.done, path, started)


def _summary(options, crs, query, writer, parts, features: int, path: Path, started: float) -> dict:
    """Return what an export wrote: layer, format, path, features, CRS, fields, size and time."""
    summary = {
        "layer": options.layer,
        "format": options.format,
        "path": str(path),
        "features": features,
        "crs": crs.label,
        # The text encoding of a format that has one to choose (GeoJSON is UTF-8 by its standard; an XLSX
        # workbook or a GeoPackage has none to choose).
        "encoding": options.encoding
        if options.format in ("shp", "csv")
        else "utf-8"
        if options.format == "geojson"
        else None,
        "fields": [name for name, _ in query.fields],
        "masked": not options.unmasked,
        "bytes": path.stat().st_size,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if len(parts) > 1:
        summary["layers"] = parts
    hidden = [name for name, _ in query.fields if name in RESIDENT_COUNTS] if not options.unmasked else []
    if hidden:  # counts of 1–2 residents left null (the small-count rule, gridkit.rules.small_count_sql): said
        summary["small_counts_hidden"] = hidden
    if options.format == "shp":
        summary["shapefile_fields"] = {k: v for k, v in writer.short.items() if k != v}
        # Text over 254 bytes was cut (a DBF field holds no more): said here and in fields.csv.
        summary["truncated"] = dict(writer.truncated)
        # A DBF has dates, not times: the time of day of these fields is not in the file (said, not silent).
        summary["dates_only"] = [name for name, kind in query.fields if kind == DATETIME]
    if options.format == "xlsx":
        # Text over an XLSX cell's 32,767 characters was cut: said, never silent.
        summary["truncated"] = dict(writer.truncated)
        summary["cleaned"] = dict(writer.cleaned)
    return summary


def small_counts_note(summary: dict) -> Message | None:
    """Return what an export's reader must be told when counts of 1–2 residents were left empty in it (its
    summary's "small_counts_hidden", gridkit.rules.SMALL_COUNT_MAX), else None: said by the CLI and the web."""
    hidden = summary.get("small_counts_hidden")
    return Message("export.small_counts_note", fields=", ".join(hidden)) if hidden else None


def _audit_unmasked(
    session: Session, options, actor: str, personal: list, fields: list, features: int, path: Path
) -> None:
    """Record an unmasked export: the same audit action as every clear read of personal data, naming the
    `fields` it gave in clear (Layer.unmasked_fields and personal kept attributes).

    A filter on a personal field is recorded with its value masked, and so is a phone or citizen ID
    number in any other filter (a description's text): the log says which field was filtered,
    without holding the person's name or number once more."""
    from gridkit.pii import mask_person_name, mask_personal_text

    where = {
        k: mask_person_name(str(v)) if k in personal else mask_personal_text(str(v)) for k, v in options.where.items()
    }
    audit.record(
        session,
        actor,
        audit.PERSONAL_DATA_READ,
        object_type="export",
        object_id=options.layer,
        detail_fields=fields,
        count=features,
        path=str(path),
        area=options.area,
        where=where,
        format=options.format,
    )
