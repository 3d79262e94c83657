"""Reading a subject file in chunks and checking its rows: columns, values, locations, problems."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon
from sqlalchemy.orm import Session

from gridkit.admin import city_extent
from gridkit.io.crs import cgcs2000_via, check_datum, crs_label, parse_crs
from gridkit.io.csvdialect import decimal_points, reads_decimal_commas
from gridkit.io.problems import ProblemList, VectorReadError, listed_names, problem, refusal
from gridkit.io.subjects.common import (
    _AREA_MARGIN,
    _SCIENTIFIC,
    FIELDS,
    Field,
    SubjectImportRefused,
    _coordinate,
    _inside,
    area_message,
    outside_message,
    shown_values,
    unread_coordinate,
)
from gridkit.io.tables import Table, TableReadError, at, open_table, place
from gridkit.messages import Message
from gridkit.rules import CHINA_LAT, CHINA_LON

__all__ = ["Job"]


class Job:
    """One import: the file opened as a stream, the columns resolved, the chunk being checked, the problems
    and notes collected so far (over every chunk).

    Per-row methods (`value`, `text`, `report`, `points` …) work on the current chunk (`table`),
    whose positions start at 0; `report_row` records a problem found later by row number (in SQL).
    `progress(done, total)` is called after each chunk with bytes (CSV) or rows read.
    """

    def __init__(
        self,
        session: Session,
        kind: str,
        path,
        *,
        mapping,
        encoding,
        src_crs,
        layer,
        sheet,
        personal_location: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ):
        self.session, self.kind, self.src_crs = session, kind, src_crs
        self.personal_location = personal_location
        self.progress = progress
        # position → the row's code (building code, masked ID, credit code) to label its problems.
        self.row_code: dict[int, str] = {}
        # The same for a whole chunk at once (a pyarrow string array; row_code first), set by a kind's check.
        self.row_labels = None
        try:
            self.city = city_extent(session)  # the advice to coordinates in metres names the city's zones
            self.stream = open_table(
                path,
                encoding=encoding,
                sheet=sheet,
                layer=layer,
                src_crs=src_crs,
                city=self.city,
                personal=personal_location,
            )
        except TableReadError as exc:
            raise SubjectImportRefused(
                exc.code, problems=exc.problems, notes=exc.notes, source=exc.source, **exc.params
            ) from None
        self.table: Table = self.stream.header
        self.rows = 0
        self.source = self.table.source
        self.notes = self.table.notes  # the header's: a vector file's batches add notes (repairs …) to it as read
        # A file-level geometry problem (e.g. most features outside China) has no index: it covers every row.
        self.geometry_problem_all = any(
            p.get("field") == "geometry" and p["index"] is None and p["kind"] not in ("null_geometry", "empty_geometry")
            for p in self.table.problems
        )
        self.geometry_problem: set = set()
        self.problems = ProblemList(
            p for p in self.table.problems if p["kind"] not in ("null_geometry", "empty_geometry")
        )
        self.cols = self._resolve(mapping or {})
        if self.problems and any(
            p["kind"] in ("unknown_field", "missing_field", "duplicate_column") for p in self.problems
        ):
            self.refuse()
        self._transform_cache = None

    def chunks(self) -> Iterator[Table]:
        """Yield the file's chunks, each made current first; refuse a file with no rows at the end."""
        for chunk in self.stream:
            self.load(chunk)
            yield chunk
            if self.progress is not None:
                self.progress(self.stream.done, self.stream.size)
        if not self.rows:
            if not self.problems:  # else they say why no row was read (a quote left open on line 2 …)
                self.problems.append(problem("no_rows", at(self.display, Message("imports.no_rows"))))
            self.refuse()

    def load_all(self) -> None:
        """Read the whole file as the current table: for small files checked across rows (rosters)."""
        header = self.stream.header
        rows, numbers, lossy, problems = [], [], set(), []
        geometries = [] if header.spatial else None
        for chunk in self.stream:
            offset = len(rows)
            rows.extend(chunk.rows)
            numbers.extend(chunk.numbers)
            lossy.update((p + offset, c) for p, c in chunk.lossy)
            problems.extend(chunk.problems)
            if geometries is not None:
                geometries.extend(chunk.geometries)
        self.load(
            Table(
                columns=header.columns,
                rows=rows,
                numbers=numbers,
                unit=header.unit,
                geometries=geometries,
                lossy=lossy,
                problems=problems,
                source=header.source,
            )
        )
        if not rows:
            self.problems.append(problem("no_rows", at(self.display, Message("imports.no_rows"))))

    def load(self, chunk: Table) -> None:
        """Make `chunk` the table the per-row methods read."""
        self.table = chunk
        self.rows += len(chunk.rows)
        self.row_code = {}
        self.row_labels = None
        # Rows without a geometry are judged by each kind (a resident may have a building instead).
        geometry_problems = [
            p
            for p in chunk.problems
            if p.get("field") == "geometry" and p["kind"] not in ("null_geometry", "empty_geometry")
        ]
        self.geometry_problem = {p["index"] for p in geometry_problems}
        # A file-level geometry problem found in a batch of a vector file (e.g. most features outside China).
        if None in self.geometry_problem:
            self.geometry_problem_all = True
        self.problems.extend(p for p in chunk.problems if p["kind"] not in ("null_geometry", "empty_geometry"))

    def report_row(self, number: int, kind: str, name: str | None, message: Message, code=None) -> None:
        """Record a problem of the row numbered `number` (found after its chunk, e.g. in SQL)."""
        if self.problems.counted(kind):
            return
        self.problems.append(
            problem(
                kind,
                at(place(self.display, self.table.unit, number), message),
                index=number,
                code=code,
                field=None if name is None else self.column(name),
            )
        )

    @property
    def display(self) -> str:
        return self.source.get("display", self.source.get("path", "the file"))

    def _resolve(self, mapping: dict) -> dict[str, str | None]:
        """Return {field: column or None}: the `--map` given, else the field's name or an alias, any case."""
        fields = {f.name: f for f in FIELDS[self.kind]}
        columns = self.table.columns
        listed = listed_names(columns) if columns else Message("imports.no_columns")
        unknown = [name for name in mapping if name not in fields]
        for name in unknown:
            self.problems.append(
                problem(
                    "unknown_field",
                    Message(
                        "imports.unknown_field",
                        name=name,
                        kind=Message(f"imports.kind.{self.kind}"),
                        fields=", ".join(fields),
                    ),
                    field=name,
                )
            )
        folded = {}
        for c in columns:
            folded.setdefault(c.strip().casefold(), c)
        resolved: dict[str, str | None] = {}
        for name, f in fields.items():
            if name in mapping:
                resolved[name] = self._mapped_column(name, mapping[name], folded, listed)
            else:
                resolved[name] = self._found_column(f, folded, listed)
        self._check_location_columns(resolved, mapping, listed)
        return resolved

    def _mapped_column(self, name: str, wanted: str, folded: dict, listed: str) -> str | None:
        """Return the column given with `--map name=wanted` (any case), recording a problem if none."""
        columns = self.table.columns
        column = wanted if wanted in columns else folded.get(wanted.strip().casefold())
        if column is None:
            self.problems.append(
                problem(
                    "missing_field",
                    Message("imports.no_mapped_column", file=self.display, wanted=wanted, name=name, listed=listed),
                    field=wanted,
                )
            )
        elif column != wanted:
            self.notes.append(
                problem(
                    "field_case",
                    Message("imports.field_case", file=self.display, wanted=wanted, column=column),
                    field=column,
                )
            )
        return column

    def _found_column(self, f: Field, folded: dict, listed: str) -> str | None:
        """Return the column named like field `f` or one of its aliases, recording a problem if it is required."""
        name, columns = f.name, self.table.columns
        column = None
        candidates = [name, *f.aliases]
        if self.source.get("driver") == "ESRI Shapefile" and len(name) > 10:
            candidates.append(name[:10])  # DBF field names are cut to 10 characters: credit_cod
        for candidate in candidates:
            column = candidate if candidate in columns else folded.get(candidate.casefold())
            if column is not None:
                break
        if column is not None and column != name:
            self.notes.append(
                problem(
                    "field_alias",
                    Message("imports.field_alias", file=self.display, column=column, name=name),
                    field=column,
                )
            )
        if column is None and f.required:
            self.problems.append(
                problem(
                    "missing_field",
                    Message("imports.no_field_column", file=self.display, name=name, listed=listed),
                    field=name,
                )
            )
        return column

    def _check_location_columns(self, resolved: dict, mapping: dict, listed: str) -> None:
        """Drop lon/lat for a map layer (noting a `--map` ignored); else record missing lon/lat columns."""
        if self.table.spatial:
            for name in ("lon", "lat"):
                if name in resolved and resolved[name] is not None and name in mapping:
                    self.notes.append(
                        problem(
                            "lonlat_ignored",
                            Message("imports.lonlat_ignored", file=self.display, column=resolved[name]),
                            field=resolved[name],
                        )
                    )
            resolved.pop("lon", None)
            resolved.pop("lat", None)
        elif "lon" in resolved and (resolved["lon"] is None) != (resolved["lat"] is None):
            have, lack = ("lon", "lat") if resolved["lon"] else ("lat", "lon")
            self.problems.append(
                problem(
                    "missing_field",
                    Message(
                        "imports.half_lonlat",
                        file=self.display,
                        have=have,
                        column=resolved[have],
                        lack=lack,
                        listed=listed,
                    ),
                    field=lack,
                )
            )
        elif "lon" in resolved and resolved["lon"] is None:
            if self.kind != "residents":
                self.problems.append(
                    problem(
                        "missing_field",
                        Message(
                            "imports.no_lonlat",
                            file=self.display,
                            kind=Message(f"imports.kind.{self.kind}"),
                            listed=listed,
                        ),
                        field="lon",
                    )
                )
            elif resolved["building_code"] is None and resolved["building_address"] is None:
                self.problems.append(
                    problem(
                        "missing_field",
                        Message("imports.no_resident_location", file=self.display, listed=listed),
                        field="building_code",
                    )
                )

    def column(self, name: str) -> str:
        return self.cols.get(name) or name

    def value(self, position: int, name: str) -> str | None:
        column = self.cols.get(name)
        return None if column is None else self.table.cell(position, column)

    def values(self, name: str):
        """Return the chunk's values of field `name` as a pyarrow string array (all null without a column)."""
        column = self.cols.get(name)
        if column is None:
            return pa.nulls(len(self.table.rows), pa.string())
        return self.table.values(column)

    def label(self, position: int):
        """Return the code that labels the row at `position` in problems (row_code, else row_labels)."""
        code = self.row_code.get(position)
        if code is None and self.row_labels is not None:
            code = self.row_labels[position].as_py()
        return code

    def report(self, position: int, kind: str, name: str | None, message: Message, code=None) -> None:
        """Record a problem of the row at `position` in column of field `name`."""
        if self.problems.counted(kind):  # the list full (gridkit.io.problems.ProblemList): no message made per row
            return
        self.problems.append(
            problem(
                kind,
                at(self.table.place(position), message),
                index=self.table.numbers[position],
                code=code if code is not None else self.label(position),
                field=None if name is None else ("geometry" if name == "geometry" else self.column(name)),
            )
        )

    def refuse(self) -> None:
        # File-level problems first, then by row as the user fixes them (stable: same row, order found).
        self.problems.sort(key=lambda p: (p["index"] is not None, p["index"] or 0))
        code, params = refusal(self.display, self.problems, "imported")
        raise SubjectImportRefused(
            code,
            **params,
            problems=self.problems,
            notes=self.notes,
            source=self.source,
        )

    def text(self, position: int, name: str, *, required: bool, limit: int | None, code=None) -> str | None:
        """Return the row's value of field `name` after checking presence and length (recorded if wrong)."""
        value = self.value(position, name)
        if value is None:
            if required:
                self.report(
                    position,
                    "missing_value",
                    name,
                    Message("imports.missing_value", name=name, column=self.column(name)),
                    code,
                )
            return None
        if limit is not None and len(value) > limit:
            self.report(
                position,
                "too_long",
                name,
                Message("imports.too_long", name=name, length=len(value), limit=limit),
                code,
            )
            return None
        return value

    def lossy(self, position: int, name: str, valid: Callable[[str], bool] | None = None) -> bool:
        """True when the cell held a long number Excel cannot keep exactly, or its scientific notation (4.4E+17)
        unless `valid` accepts it as it is (a credit code may read so: 91440300E900000000)."""
        column = self.cols.get(name)
        value = self.value(position, name)
        if column is not None and (position, column) in self.table.lossy:
            return True
        return bool(value and _SCIENTIFIC.match(value)) and not (valid is not None and valid(value))

    # -- locations ---------------------------------------------------------------------------------

    def points(self, need: list[bool]) -> tuple[np.ndarray, np.ndarray]:
        """Return each row's lon, lat from the lon/lat columns in EPSG:4490 (NaN where absent or wrong).

        A row where `need` is true must have coordinates; others may. Problems are recorded.
        """
        n = len(self.table.rows)
        lon_out, lat_out = np.full(n, np.nan), np.full(n, np.nan)
        result = (lon_out, lat_out)
        has_columns = self.cols.get("lon") is not None and self.cols.get("lat") is not None
        if not has_columns:
            for position in np.flatnonzero(np.asarray(need, dtype=bool)).tolist():
                self._missing_location(position, False)
            return result
        x_values, y_values = self.values("lon"), self.values("lat")
        if reads_decimal_commas(self.source.get("delimiter")):
            x_values, y_values = decimal_points(x_values), decimal_points(y_values)
        # Most chunks hold a number in every cell: parse them all at once, else row by row to say what is wrong.
        parsed = _parsed(x_values, y_values)
        if parsed is not None:
            xs, ys = parsed
            positions = list(range(n))
            texts = _Texts(x_values, y_values)
        else:
            pairs = list(zip(x_values.to_pylist(), y_values.to_pylist()))
            xs, ys, positions, texts = self._checked_pairs(pairs, need, has_columns)
        if not positions:
            return result
        if self._transform_cache is None:
            self._transform_cache = self._transform()
        forward, label, bounds = self._transform_cache
        self.source.setdefault("crs", label)
        x, y = np.array(xs), np.array(ys)
        lon, lat = forward(x, y)
        inside = _inside(lon, lat, bounds)
        # Out of bounds: is it inside with its two values exchanged? Then the axes are swapped.
        swapped = _inside(*forward(y, x), bounds) if not inside.all() else inside
        area = area_message(label, bounds)
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        where = np.asarray(positions)
        lon_out[where[inside]], lat_out[where[inside]] = lon[inside], lat[inside]
        for i in np.flatnonzero(~inside):
            position = positions[i]
            shown = shown_values(self.personal_location, *texts[i])
            if swapped[i]:
                self.report(
                    position,
                    "axes_swapped",
                    "lon",
                    Message("imports.axes_swapped", shown=shown, lat=self.column("lat"), lon=self.column("lon")),
                )
            else:  # metres read as degrees (no --src-crs) are told so, with the CRS their range suggests
                given, city, personal = bool(self.src_crs), self.city, self.personal_location
                said = outside_message(x[i], y[i], texts[i], area, crs_given=given, city=city, personal=personal)
                self.report(position, "outside_china", "lon", said)
        return result

    def _checked_pairs(self, pairs: list[tuple], need: list[bool], has_columns: bool) -> tuple[list, list, list, list]:
        """Return (xs, ys, positions, texts) of the rows whose lon and lat are numbers; record the others' problems."""
        xs: list = []
        ys: list = []
        positions: list = []
        texts: list = []
        for position, (x_text, y_text) in enumerate(pairs):
            if x_text is None and y_text is None:
                if need[position]:
                    self._missing_location(position, has_columns)
                continue
            if x_text is None or y_text is None:
                lack = "lon" if x_text is None else "lat"
                self.report(
                    position,
                    "missing_coordinates",
                    lack,
                    Message("imports.half_coordinates", have="lat" if lack == "lon" else "lon", lack=lack),
                )
                continue
            x, y = _coordinate(x_text), _coordinate(y_text)
            if x is None or y is None:
                bad, bad_text = ("lon", x_text) if x is None else ("lat", y_text)
                shown = shown_values(self.personal_location, bad_text)
                self.report(position, "bad_coordinate", bad, unread_coordinate(bad, bad_text, shown))
                continue
            xs.append(x)
            ys.append(y)
            texts.append((x_text, y_text))
            positions.append(position)
        return xs, ys, positions, texts

    def _missing_location(self, position: int, has_columns: bool) -> None:
        if self.kind == "residents":
            name, message = ("lon" if has_columns else "building_code"), Message("imports.missing_location")
            self.report(position, "missing_location", name, message)
        elif has_columns:
            self.report(position, "missing_coordinates", "lon", Message("imports.missing_coordinates"))
        else:
            message = Message("imports.no_coordinate_columns", file=self.display)
            self.report(position, "missing_coordinates", "lon", message)

    def _transform(self) -> tuple[Callable, str, tuple]:
        """Return (x, y → CGCS2000 lon, lat), the CRS label and the lon/lat bounds a point must lie in."""
        china = (CHINA_LON[0], CHINA_LAT[0], CHINA_LON[1], CHINA_LAT[1])
        if self.src_crs is None or not str(self.src_crs).strip():
            return (lambda x, y: (x, y)), "EPSG:4490 (CGCS2000)", china
        try:
            crs, gcj02 = parse_crs(self.src_crs)
            if not gcj02:  # Beijing 1954, Xi'an 1980: PROJ would keep lon/lat as they are (gridkit.io.crs)
                check_datum(crs, {"display": self.display})
        except VectorReadError as exc:
            self.problems.extend(exc.problems)
            self.refuse()
        if gcj02:
            from gridkit.coords import gcj02_to_wgs84

            self.notes.append(problem("gcj02", at(self.display, Message("imports.gcj02_converted"))))
            return (lambda x, y: gcj02_to_wgs84(x, y)), "GCJ-02", china
        label = crs_label(crs)
        transformer = pyproj.Transformer.from_crs(crs, pyproj.CRS.from_epsg(cgcs2000_via(crs)), always_xy=True)
        bounds = china
        area = crs.area_of_use
        if crs.is_projected and area is not None:
            # A projection maps almost any pair of numbers somewhere: swapped x/y of a Gauss-Kruger zone
            # land "in China" too. Require the zone's own area (with a margin), which catches them.
            bounds = (
                max(china[0], area.west - _AREA_MARGIN),
                max(china[1], area.south - _AREA_MARGIN),
                min(china[2], area.east + _AREA_MARGIN),
                min(china[3], area.north + _AREA_MARGIN),
            )
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
                        self.report(
                            position,
                            "missing_coordinates",
                            "geometry",
                            Message("imports.no_geometry"),
                        )
                continue
            if isinstance(geom, MultiPoint) and len(geom.geoms) == 1:
                geom = geom.geoms[0]
            if isinstance(geom, Point):
                points[position] = geom
            elif polygons and isinstance(geom, (Polygon, MultiPolygon)):
                footprints[position] = geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])
                points[position] = geom.representative_point()
            else:
                self.report(
                    position,
                    "bad_geometry",
                    "geometry",
                    Message(
                        "imports.bad_geometry_polygons" if polygons else "imports.bad_geometry", type=geom.geom_type
                    ),
                )
        return points, footprints

    def locations(self, need: list[bool], *, polygons: bool = False) -> tuple[np.ndarray, np.ndarray, list]:
        """Return (lon, lat, footprints) per row of the chunk from the geometry (vector files) or the lon/lat
        columns: lon/lat NaN where a row has no point, footprints (shapely MultiPolygons) only where allowed."""
        if self.table.spatial:
            points, footprints = self.geometries(need, polygons=polygons)
            lon = np.array([np.nan if p is None else p.x for p in points], dtype=float)
            lat = np.array([np.nan if p is None else p.y for p in points], dtype=float)
            return lon, lat, footprints
        lon, lat = self.points(need)
        return lon, lat, [None] * len(self.table.rows)


def _parsed(x_values, y_values) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (x, y) as float arrays when every row holds two finite numbers, else None (pyarrow string arrays)."""
    if not len(x_values) or x_values.null_count or y_values.null_count:
        return None
    try:
        x = pc.cast(x_values, pa.float64()).to_numpy()
        y = pc.cast(y_values, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # pyarrow reads fewer spellings than Python's float(): the rows are then read one by one
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None
    return x, y


class _Texts:
    """The (lon, lat) texts of a row, looked up only for the few rows a problem quotes."""

    def __init__(self, x_values, y_values):
        self.x, self.y = x_values, y_values

    def __getitem__(self, position: int) -> tuple:
        return self.x[position].as_py(), self.y[position].as_py()
