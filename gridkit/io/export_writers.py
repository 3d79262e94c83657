"""File writers of the export: Shapefile (zipped), GeoPackage, GeoJSON (RFC 7946), CSV and XLSX.

A writer gets chunks of rows and appends them, so memory stays flat with the number of features:
GDAL formats through `pyogrio.write_arrow(..., append=True)` per chunk, GeoJSON, CSV and XLSX as
streams. Each writer writes to the temporary path it is given; the caller renames it at the end.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import tempfile
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import shapely

from gridkit.errors import ValidationError
from gridkit.io.export_follow import Followed, Follower
from gridkit.io.export_layers import BOOL, DATE, DATETIME, FLOAT, INT
from gridkit.io.export_zip import write_zip
from gridkit.io.spreadsheet import NOT_IN_XLSX, csv_column, csv_row, xlsx_text
from gridkit.io.xlsx_stream import XlsxStream
from gridkit.rules import local_tz

# Shapefile DBF field names hold at most 10 bytes, text values at most 254.
DBF_NAME_BYTES = 10
DBF_TEXT_BYTES = 254
# The bytes GDAL gives each DBF field of a kind (text starts at 80 and grows to its longest value,
# at most 254); a record adds one deletion flag.
DBF_WIDTHS = {INT: 18, FLOAT: 24, DATE: 8, DATETIME: 8, BOOL: 1}
DBF_TEXT_WIDTH = 80
# The most bytes a .shp or .dbf may hold: older ArcGIS and many tools refuse larger files, and GDAL
# would write them with only a warning. An export that would pass it is refused, never written.
SHAPEFILE_MAX_BYTES = 2**31 - 1
# The byte ending a .dbf. GDAL writes it after every record and overwrites it with the next one,
# which breaks stdio buffering: a seek, a block read and a write per record (half the writing time
# was system time). It is left to us: appended once when GDAL has closed the file, the same bytes.
DBF_END = b"\x1a"
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
# GDAL's name of each text encoding (written into the .cpg) and Python's codec for checks.
ENCODINGS = {"utf-8": ("UTF-8", "utf-8"), "gbk": ("CP936", "gbk")}
# What each encoding's .cpg says: the forms ArcGIS (ArcMap too) and GDAL both read.
CPG = {"utf-8": "UTF-8", "gbk": "936"}
XLSX_MAX_ROWS = 1_048_575  # one row is the header
# The most characters an XLSX cell holds. openpyxl cuts a longer value there without a word, and a
# cut WKT is no geometry: text is cut here and counted (said), a longer geometry refused.
XLSX_CELL_CHARS = 32_767
# SQLite's page cache (MB, GDAL's OGR_SQLITE_CACHE) for a GeoPackage written by the child process.
# With SQLite's default of 2 MB the pages of a large layer are evicted and read back while its rows
# and R-tree go in: 1,000,000 points (a 234 MB file) cost 639,000 page writes and 581,000 reads,
# and 1.5–2.1 s of system time; with enough cache each page is written once (58,000) and hardly any
# is read back. What is enough grows with the rows, 11–21 MB per million points (1M: 8 MB too
# little, 16 enough; 3M: 32 too little, 64 enough), so this covers the default limit of 5,000,000
# features. Only the child gets it: its own memory (1M points: peak 185 → 325 MB), one per export.
GPKG_CACHE_MB = 128


def short_field_names(names: list[str], limit: int = DBF_NAME_BYTES) -> dict[str, str]:
    """Return {full name: DBF name}: names over `limit` bytes cut, clashes numbered (_1, _2 …).

    Deterministic: the same field list always gives the same short names, in field order.
    """
    result: dict[str, str] = {}
    taken = {name.lower() for name in names if len(name.encode()) <= limit}
    for name in names:
        if len(name.encode()) <= limit:
            result[name] = name
            continue
        candidate = _cut(name, limit)
        n = 0
        while candidate.lower() in taken:
            n += 1
            suffix = f"_{n}"
            candidate = _cut(name, limit - len(suffix)) + suffix
        taken.add(candidate.lower())
        result[name] = candidate
    return result


def _cut(name: str, limit: int) -> str:
    out = ""
    for ch in name:
        if len((out + ch).encode()) > limit:
            break
        out += ch
    return out


def _local(value: datetime | None) -> datetime | None:
    """Return `value` as naive Beijing time (DBF, XLSX and CSV readers know no time zones)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(local_tz()).replace(tzinfo=None)


class Chunk:
    """Rows of one read: `columns` {field: list of values}, `geometry` WKB bytes (or None) per row."""

    def __init__(self, columns: dict[str, list], geometry: list):
        self.columns = columns
        self.geometry = geometry

    def __len__(self) -> int:
        return len(self.geometry)


def check_encodable(columns, fields, codec: str, offset: int) -> None:
    """Raise ValidationError naming the feature and field whose text `codec` cannot hold.

    `columns` maps a field name to its values (a list or an Arrow array)."""
    if codec == "utf-8":
        return
    for name, kind in fields:
        if kind != "str":
            continue
        values = columns[name]
        for i, value in enumerate(values if isinstance(values, list) else values.to_pylist()):
            if value is None:
                continue
            try:
                value.encode(codec)
            except UnicodeEncodeError as exc:
                raise ValidationError(
                    "export.not_encodable",
                    feature=offset + i + 1,
                    field=name,
                    char=value[exc.start : exc.end],
                    encoding=codec,
                ) from None


class OgrWriter:
    """A GeoPackage (one or more layers) or a shapefile, written by GDAL from streams of Arrow
    record batches: per layer one dataset open, one transaction, batches pulled as GDAL asks."""

    def __init__(self, path: Path, driver: str, fields, crs: str, encoding: str = "utf-8"):
        self.path, self.driver, self.fields, self.crs, self.encoding = path, driver, fields, crs, encoding
        self.schema = pa.schema(
            [pa.field(name, arrow_type(kind, driver)) for name, kind in fields]
            + [pa.field("geometry", pa.binary(), metadata={"ARROW:extension:name": "ogc.wkb"})]
        )
        self.layers: list[str] = []
        self.process = None

    def write_layer(self, layer: str, geometry_type: str, batches) -> None:
        """Write layer `layer` of one geometry type from the record batches of `batches` (fields in
        order, then WKB geometry); a GeoPackage gets one more layer per call. With a `process`
        (`export_child.WriterProcess`) GDAL writes in that child process while batches are read here."""
        options = {}
        if self.driver == "ESRI Shapefile":
            options["encoding"] = ENCODINGS[self.encoding][0]
            # 2GB_LIMIT: GDAL fails rather than write past 2 GB should ShapefileFit's estimate be short.
            options["layer_options"] = {"DBF_EOF_CHAR": "NO", "2GB_LIMIT": "YES"}
        elif self.driver == "GPKG":
            options["layer_options"] = {"SPATIAL_INDEX": "YES"}
        if self.process is not None:
            header = {"path": str(self.path), "layer": layer, "driver": self.driver, "options": options}
            if self.driver == "GPKG":
                header["config"] = {"OGR_SQLITE_CACHE": str(GPKG_CACHE_MB)}
            self.process.write_layer(dict(header, geometry_type=geometry_type, crs=self.crs), self.schema, batches)
        else:
            self._write_here(layer, geometry_type, batches, options)
        if self.driver == "ESRI Shapefile":
            with open(self.path.with_suffix(".dbf"), "ab") as fh:
                fh.write(DBF_END)
        self.layers.append(layer)

    def _write_here(self, layer: str, geometry_type: str, batches, options: dict) -> None:
        import pyogrio

        reader = pa.RecordBatchReader.from_batches(
            self.schema, (pa.RecordBatch.from_arrays(b.columns, schema=self.schema) for b in batches)
        )
        pyogrio.write_arrow(
            reader,
            str(self.path),
            layer=layer,
            driver=self.driver,
            geometry_name="geometry",
            geometry_type=geometry_type,
            crs=self.crs,
            **options,
        )

    def finish(self) -> None:
        """Wait for the writing process, if any: GDAL closed the file after each layer."""
        if self.process is not None:
            self.process.finish()

    def discard(self) -> None:
        """Kill the writing process, if any (the caller removes the file)."""
        if self.process is not None:
            self.process.kill()


def arrow_type(kind: str, driver: str) -> pa.DataType:
    """Return the Arrow type a field of `kind` is written as by GDAL `driver`."""
    if kind == DATETIME and driver == "ESRI Shapefile":
        return pa.date32()  # DBF has dates, not times: the date stays a date (Beijing time)
    return {
        INT: pa.int64(),
        FLOAT: pa.float64(),
        DATE: pa.date32(),
        DATETIME: pa.timestamp("ms"),
        BOOL: pa.bool_(),
    }.get(kind, pa.string())


class ShapefileZipWriter:
    """Shapefiles (one per geometry type) written in a scratch folder, zipped with fields.csv."""

    def __init__(self, path: Path, fields, crs: str, encoding: str, prj: str | None = None):
        self.path, self.fields, self.crs, self.encoding = path, fields, crs, encoding
        self.prj = prj  # the .prj to write over GDAL's (an old datum's parameters: gridkit.io.export_crs)
        self.folder = Path(tempfile.mkdtemp(prefix="gridkit-shp-", dir=path.parent))
        self.short = short_field_names([name for name, _ in fields])
        self.short_fields = [(self.short[name], kind) for name, kind in fields]
        self.stems: list[str] = []
        self.ahead: dict[Path, Followed] = {}  # what was deflated while the child wrote
        self.process = None
        self.truncated: dict[str, int] = {}  # full field name → values cut to DBF_TEXT_BYTES
        self.fit: ShapefileFit | None = None

    @property
    def schema(self) -> pa.Schema:
        """Return the Arrow schema of the batches each shapefile takes (short field names)."""
        return OgrWriter(self.folder / "x.shp", "ESRI Shapefile", self.short_fields, self.crs).schema

    def write_layer(self, layer: str, geometry_type: str, batches) -> None:
        """Write one shapefile named after `layer` from the record batches of `batches`."""
        stem = re.sub(r"[^0-9A-Za-z_-]+", "_", layer)
        self.fit = ShapefileFit(stem, self.fields, self.encoding, self.truncated)
        inner = OgrWriter(self.folder / f"{stem}.shp", "ESRI Shapefile", self.short_fields, self.crs, self.encoding)
        inner.process = self.process
        follower = None
        if self.process is not None:
            # The child writes while this process reads: the records it has appended are deflated
            # meanwhile, with what CPU the two leave.
            base = self.folder / stem
            follower = Follower([(base.with_suffix(".shp"), "shp"), (base.with_suffix(".dbf"), "dbf")])
        try:
            inner.write_layer(stem, geometry_type, batches)
        finally:
            if follower is not None:
                self.ahead.update((f.path, f) for f in follower.stop())
        self.stems.append(stem)

    def finish(self) -> None:
        """Zip each shapefile's .shp .shx .dbf .prj .cpg and fields.csv, then remove the folder."""
        try:
            if self.process is not None:
                self.process.end()  # zipped while the child exits (a large process takes a while)
            for stem in self.stems:
                # GDAL writes the encoding's name ("CP936"); ArcGIS reads a code page number in the
                # .cpg ("936", as it writes one itself), and GDAL reads that as CP936 too.
                (self.folder / f"{stem}.cpg").write_text(CPG[self.encoding], encoding="ascii")
                if self.prj is not None:
                    (self.folder / f"{stem}.prj").write_text(self.prj, encoding="ascii")
            with open(self.folder / "fields.csv", "w", newline="", encoding="utf-8") as fh:
                out = csv.writer(fh)
                out.writerow(["field", "shapefile_field", "type", f"values_cut_to_{DBF_TEXT_BYTES}_bytes"])
                for name, kind in self.fields:
                    written = "date" if kind == DATETIME else kind  # DBF has no time of day
                    out.writerow([name, self.short[name], written, self.truncated.get(name, 0)])
            parts = [self.folder / f"{stem}{suffix}" for stem in self.stems for suffix in SHAPEFILE_PARTS]
            members = [(part, part.name, self.ahead.get(part)) for part in parts if part.exists()]
            write_zip(self.path, [*members, (self.folder / "fields.csv", "fields.csv")])
            if self.process is not None:
                self.process.wait()
        finally:
            self.discard()

    def discard(self) -> None:
        """Kill the writing process, if any, and remove the scratch folder."""
        if self.process is not None:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class ShapefileFit:
    """What one shapefile of an export can hold, checked batch by batch before GDAL writes it.

    Text longer than a DBF field holds (254 bytes in the file's encoding) is cut here, at a
    character boundary, and counted per field in `truncated` (GDAL would cut GBK text inside a
    character, with only a warning). The .dbf and .shp sizes are followed as rows arrive (text
    fields as wide as GDAL makes them); a batch that would take either past SHAPEFILE_MAX_BYTES is
    refused with a ValidationError before any of it is written.
    """

    def __init__(self, stem: str, fields, encoding: str, truncated: dict[str, int]):
        self.stem, self.fields, self.truncated = stem, fields, truncated
        self.codec = ENCODINGS[encoding][1]
        self.widths = {name: DBF_WIDTHS.get(kind, DBF_TEXT_WIDTH) for name, kind in fields}
        self.header = 32 + 32 * len(fields) + 1
        self.rows = 0
        self.shp = 100

    def __call__(self, batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
        """Return `batch` with over-long text cut; raise ValidationError when the files would grow
        past SHAPEFILE_MAX_BYTES. `offset` is the number of features before this batch."""
        import pyarrow.compute as pc

        columns = list(batch.columns)
        for i, (name, kind) in enumerate(self.fields):
            if kind in DBF_WIDTHS or batch.num_rows == 0:
                continue
            # UTF-8 bytes bound the bytes of any encoding gridkit writes: only longer values are encoded.
            lengths = pc.binary_length(columns[i])
            longest = pc.max(lengths).as_py() or 0
            if longest > self.widths[name]:
                columns[i], longest = self._cut(name, columns[i], lengths)
                self.widths[name] = max(self.widths[name], longest)
        self.rows += batch.num_rows
        # Each record's geometry takes at most its WKB's bytes plus a 48-byte header and bounding box.
        geometry = pc.sum(pc.binary_length(columns[-1])).as_py() or 0
        self.shp += geometry + 48 * batch.num_rows
        dbf = self.header + self.rows * (1 + sum(self.widths.values()))
        if max(dbf, self.shp) > SHAPEFILE_MAX_BYTES:
            raise ValidationError(
                "export.shapefile_too_large",
                file=f"{self.stem}{'.dbf' if dbf >= self.shp else '.shp'}",
                feature=offset + batch.num_rows,
                limit_gb=round(SHAPEFILE_MAX_BYTES / 2**30, 3),
            )
        return pa.RecordBatch.from_arrays(columns, schema=batch.schema)

    def _cut(self, name: str, column, lengths) -> tuple[pa.Array, int]:
        """Return `column` with values over DBF_TEXT_BYTES cut, and its longest value's bytes."""
        values = column.to_pylist()
        longest, cut = 0, 0
        for j, size in enumerate(lengths.to_pylist()):
            if size is None or size <= self.widths[name]:
                continue
            raw = values[j].encode(self.codec)
            if len(raw) > DBF_TEXT_BYTES:
                # A character cut in two is dropped whole.
                values[j] = raw[:DBF_TEXT_BYTES].decode(self.codec, errors="ignore")
                raw = values[j].encode(self.codec)
                cut += 1
            longest = max(longest, len(raw))
        if cut:
            self.truncated[name] = self.truncated.get(name, 0) + cut
        return pa.array(values, type=column.type), longest


class _Streamed:
    """A writer fed chunk by chunk: `write_all` writes each and finishes the file."""

    def write_all(self, chunks) -> None:
        """Write every chunk of the iterable `chunks`, then finish the file."""
        for chunk in chunks:
            self.write(chunk)
        self.finish()


class GeoJsonWriter(_Streamed):
    """An RFC 7946 FeatureCollection streamed feature by feature (geometry given as GeoJSON text)."""

    def __init__(self, path: Path, fields):
        self.fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open across write() calls
        self.fields = fields
        self.first = True
        self.fh.write('{"type": "FeatureCollection", "features": [\n')

    def write(self, chunk: Chunk) -> None:
        """Append the features of `chunk`."""
        names = [name for name, _ in self.fields]
        kinds = dict(self.fields)
        columns = [chunk.columns[n] for n in names]
        parts = []
        for i, geometry in enumerate(chunk.geometry):
            props = {n: _json_value(col[i], kinds[n]) for n, col in zip(names, columns)}
            parts.append(
                '{"type": "Feature", "geometry": '
                + (geometry or "null")
                + ', "properties": '
                + json.dumps(props, ensure_ascii=False)
                + "}"
            )
        if parts:
            self.fh.write(("" if self.first else ",\n") + ",\n".join(parts))
            self.first = False

    def finish(self) -> None:
        """Close the collection."""
        self.fh.write("\n]}\n")
        self.fh.close()

    def discard(self) -> None:
        """Close the file (the caller removes it)."""
        self.fh.close()


def _json_value(value, kind):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


class TableWriter(_Streamed):
    """CSV (in the chosen encoding) or XLSX (gridkit.io.xlsx_stream), streamed: fields, then the geometry as text."""

    def __init__(self, path: Path, fields, geometry_type: str, kind: str, encoding: str = "utf-8"):
        self.fields, self.kind = fields, kind
        self.points = geometry_type == "Point"
        header = [name for name, _ in fields] + (["x", "y"] if self.points else ["wkt"])
        if kind == "csv":
            # A BOM lets Excel recognise UTF-8; GBK files are read by Chinese Excel as they are.
            self.fh = open(
                path,
                "w",
                newline="",  # noqa: SIM115 - open across write() calls
                encoding="utf-8-sig" if encoding == "utf-8" else "gbk",
            )
            self.out = csv.writer(self.fh)
            self.out.writerow(csv_row(header))
        else:
            self.rows = 0  # features written, for the number of a refused one
            self.truncated: dict[str, int] = {}  # field → values cut to XLSX_CELL_CHARS
            self.cleaned: dict[str, int] = {}  # field → values whose control characters were removed
            self.sheet = XlsxStream(path, "data")
            self.sheet.append(header)

    def write(self, chunk: Chunk) -> None:
        """Append the rows of `chunk`, column by column (a million rows: no Python call per value but one)."""
        kinds = dict(self.fields)
        geoms = shapely.from_wkb(np.array(chunk.geometry, dtype=object))
        if self.points:
            # An empty point has no coordinates: an empty cell, not NaN.
            tails = [[None if v != v else v for v in shapely.get_x(geoms).tolist()],
                     [None if v != v else v for v in shapely.get_y(geoms).tolist()]]  # fmt: skip
        else:
            tails = [shapely.to_wkt(geoms, rounding_precision=-1).tolist()]
        # Times in Beijing time, naive (spreadsheets know no time zones).
        columns = [[_cell(v) for v in chunk.columns[n]] if kinds[n] == DATETIME else chunk.columns[n] for n in kinds]
        if self.kind == "csv":
            self.out.writerows(zip(*map(csv_column, columns + tails)))
            return
        columns = self._fit_cells(list(kinds), columns, tails)
        for row in zip(*columns, *tails):
            self.sheet.append(row)  # text is inline text, never a formula

    def _fit_cells(self, names: list[str], columns: list[list], tails: list[list]) -> list[list]:
        """Return `columns` with text over XLSX_CELL_CHARS cut (counted in `truncated`) and control
        characters removed (counted in `cleaned`); refuse a
        geometry whose WKT a cell cannot hold (ValidationError naming the feature)."""
        for i, wkt in enumerate(tails[0]):
            if isinstance(wkt, str) and len(wkt) > XLSX_CELL_CHARS:
                raise ValidationError(
                    "export.xlsx_geometry_too_long", feature=self.rows + i + 1, chars=len(wkt), limit=XLSX_CELL_CHARS
                )
        fitted = []
        for name, column in zip(names, columns):
            texts = [v for v in column if isinstance(v, str)]
            if texts and max(map(len, texts)) > XLSX_CELL_CHARS:
                self.truncated[name] = self.truncated.get(name, 0) + sum(len(v) > XLSX_CELL_CHARS for v in texts)
                column = [v[:XLSX_CELL_CHARS] if isinstance(v, str) else v for v in column]
            # One search over the column joined ("\n" is allowed): most columns hold none.
            if texts and NOT_IN_XLSX.search("\n".join(texts)):
                self.cleaned[name] = self.cleaned.get(name, 0) + sum(bool(NOT_IN_XLSX.search(v)) for v in texts)
                column = [xlsx_text(v) if isinstance(v, str) else v for v in column]
            fitted.append(column)
        self.rows += len(tails[0])
        return fitted

    def finish(self) -> None:
        """Close (CSV) or finish (XLSX) the file."""
        if self.kind == "csv":
            self.fh.close()
        else:
            self.sheet.close()

    def discard(self) -> None:
        """Close the file (the caller removes it)."""
        if self.kind == "csv":
            self.fh.close()
        else:
            self.sheet.discard()


def _cell(value):
    if isinstance(value, datetime):
        return _local(value)
    return value
