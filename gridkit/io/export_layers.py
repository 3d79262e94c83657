"""The layers an analyst can export: one SQL query each, with its fields, geometry and filters.

Every query yields the layer's fields in a fixed order, then `_geom` (storage SRID, EPSG:4490)
and `_area` (the code an `--area` prefix is matched against). Personal fields (residents' and
coordinators' names and phones, incident reporters) are masked in SQL unless the export is
unmasked, so a masked value never leaves the database.

Work cells and coordinators are derived through the department's work grid version in force
at the time asked (`gridkit.rules.version_in_force`), never from copies on subject rows. A
version may be drawn on an older base grid edition: its base cells are matched by code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.grids.work.membership import work_cell_of_code_sql
from gridkit.models import BaseGridEdition, Department, WorkGridVersion
from gridkit.pii import (
    EXPORT_PSEUDONYM_KEY,
    export_pseudonym_key,
    export_pseudonym_sql,
    public_location_sql,
    public_text_sql,
)
from gridkit.rules import edition_in_force, small_count_sql, version_in_force

# Field kinds: how a writer types a column (shapefile DBF types, XLSX cells, GeoJSON values).
STR, INT, FLOAT, DATE, DATETIME, BOOL = "str", "int", "float", "date", "datetime", "bool"


@dataclass(frozen=True)
class Layer:
    """One exportable layer: its name, geometry type and the SQL that yields its rows."""

    name: str
    geometry_type: str  # Point, Polygon, MultiPolygon, or Geometry: mixed, one file or layer per type
    fields: tuple[tuple[str, str], ...]
    personal: tuple[str, ...] = ()
    subject: bool = False  # carries the work cell and coordinator of --dept
    needs_dept: bool = False
    sql: str = ""
    # The rows carry `_attrs`: the imported file's other fields (JSONB), exported back as fields.
    kept_attributes: bool = False
    # The point may locate a person (a citizen reported the case from home): masked, it is given only
    # to about 100 m (gridkit.pii.public_location_sql); exact in an unmasked (audited) export.
    place_is_personal: bool = False
    # Free text in which people write phone and citizen ID numbers: masked with the rest (gridkit.pii.public_text_sql).
    free_text: tuple[str, ...] = ()
    # Fields that pin a person's dwelling (a resident's building): left out of a masked export.
    pinpoints: tuple[str, ...] = ()
    # Fields that group people (a resident's household): a masked export gives a pseudonym of its own instead
    # (gridkit.pii.export_pseudonym_sql), the same for the rows of one group within that export only.
    pseudonymous: tuple[str, ...] = ()
    # A condition on a row `f` of the query that a bbox {box} over `_geom` implies and the table's own indexes
    # serve, when `_geom` is an expression no index holds (gridkit.io.export_features.items ANDs it in), and
    # the hidden columns of `sql` it reads (kept in the finished query; unread, they cost nothing).
    bbox_sql: str = ""
    bbox_columns: tuple[str, ...] = ()

    @property
    def unmasked_fields(self) -> list[str]:
        """Return what an unmasked export of the layer gives in clear and a masked one does not (its audit row's
        detail_fields): personal fields, free text, a birth date, pinpoints, pseudonymous fields, the "place"."""
        birth = [BIRTH_DATE[0]] if BIRTH_DATE in self.fields else []
        place = ["place"] if self.place_is_personal else []
        return [*self.personal, *self.free_text, *birth, *self.pinpoints, *self.pseudonymous, *place]

    @property
    def field_names(self) -> list[str]:
        """Return the names of the layer's fields, in order."""
        return [name for name, _ in self.fields]


@dataclass
class LayerQuery:
    """The finished query of one export: SQL, bound parameters and the resulting fields."""

    sql: str
    params: dict
    fields: list[tuple[str, str]]
    geometry_type: str
    notes: list = field(default_factory=list)
    personal: list[str] = field(default_factory=list)  # kept attributes masked as personal data


def mask_name(column: str) -> str:
    """Return SQL showing only the first character of a name: 张三丰 → 张**."""
    return (
        f"CASE WHEN {column} IS NULL OR {column} = '' THEN {column} "
        f"ELSE left({column}, 1) || repeat('*', greatest(length({column}) - 1, 1)) END"
    )


def mask_phone(column: str) -> str:
    """Return SQL keeping the first 3 and last 4 digits of a phone: 138****5678."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL WHEN length({column}) <= 7 THEN repeat('*', length({column})) "
        f"ELSE left({column}, 3) || repeat('*', length({column}) - 7) || right({column}, 4) END"
    )


# Text shaped like a citizen ID (17 digits and a check digit or X) or a phone (a mobile, with or
# without +86, or an area code and number): masked in a kept attribute whatever the field is called.
_CITIZEN_ID_SHAPE = "^[0-9]{17}[0-9Xx]$"
_PHONE_SHAPE = "^(\\+?86[ -]?)?1[3-9][0-9]{9}$|^0[0-9]{2,3}-?[0-9]{7,8}$"


def mask_kept(column: str, kind: str | None) -> str:
    """Return SQL masking a kept text attribute: by `kind` ("name", "phone", "id_number", from the
    field's name: gridkit.pii.personal_kind), else only values shaped like a citizen ID or phone."""
    if kind == "name":
        return mask_name(column)
    if kind in ("phone", "id_number"):
        return mask_phone(column)
    return (
        f"CASE WHEN {column} ~ '{_CITIZEN_ID_SHAPE}' THEN left({column}, 4) || repeat('*', 10) || right({column}, 4) "
        f"WHEN {column} ~ '{_PHONE_SHAPE}' THEN {mask_phone(column)} ELSE {column} END"
    )


_SUBJECT_TAIL = (("base_cell", STR), ("community", STR))
# A resident's birth date is exported whole only unmasked: with the masked ID's first 4 and last 4
# characters, the community's county code and the ID's check character, the date is the rest of the
# citizen ID (digits 7-14), so a masked export gives the year alone (age bands need no more).
BIRTH_DATE, BIRTH_YEAR = ("birth_date", DATE), ("birth_year", INT)
_DEPT_FIELDS = (("work_cell", STR), ("work_cell_name", STR), ("coordinator", STR))

LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "admin-units",
            "MultiPolygon",
            (("code", STR), ("name", STR), ("level", STR), ("parent_code", STR)),
            kept_attributes=True,
            sql="SELECT a.code, a.name, a.level, a.parent_code, a.geom AS _geom, a.code AS _area, "
            "a.attributes AS _attrs FROM admin_unit a",
        ),
        Layer(
            "base-cells",
            "Polygon",
            (
                ("code", STR),
                ("name", STR),
                ("community_code", STR),
                ("community_name", STR),
                ("edition", STR),
                ("area_m2", FLOAT),
            ),
            kept_attributes=True,
            sql="SELECT b.code, b.name, b.community_code, a.name AS community_name, e.name AS edition, "
            "round(ST_Area(b.geom::geography)::numeric, 1)::float8 AS area_m2, b.geom AS _geom, b.code AS _area, "
            "b.attributes AS _attrs "
            "FROM base_cell b JOIN base_grid_edition e ON e.id = b.edition_id "
            "LEFT JOIN admin_unit a ON a.code = b.community_code WHERE b.edition_id = :edition_id",
        ),
        Layer(
            "work-cells",
            "MultiPolygon",
            (
                ("dept", STR),
                ("dept_name", STR),
                ("version", INT),
                ("code", STR),
                ("name", STR),
                ("base_cells", INT),
                ("coordinator", STR),
                ("coordinator_phone", STR),
                ("valid_from", DATETIME),
            ),
            personal=("coordinator", "coordinator_phone"),
            sql="SELECT d.code AS dept, d.name AS dept_name, v.number AS version, w.code, w.name, "
            "(SELECT count(*) FROM work_cell_member m WHERE m.work_cell_id = w.id)::int AS base_cells, "
            "(SELECT string_agg({coord_name}, ',' ORDER BY c.id) FROM coordinator_assignment ca "
            " JOIN coordinator c ON c.id = ca.coordinator_id WHERE ca.work_cell_id = w.id AND c.active) "
            " AS coordinator, "
            "(SELECT string_agg({coord_phone}, ',' ORDER BY c.id) FROM coordinator_assignment ca "
            " JOIN coordinator c ON c.id = ca.coordinator_id WHERE ca.work_cell_id = w.id AND c.active) "
            " AS coordinator_phone, v.valid_from, w.geom AS _geom, substr(w.code, 7, 12) AS _area "
            "FROM work_cell w JOIN work_grid_version v ON v.id = w.version_id "
            "JOIN department d ON d.code = v.dept_code WHERE v.id = ANY(:version_ids)",
        ),
        Layer(
            "buildings",
            "Point",
            (("code", STR), ("address", STR), ("floors", INT)) + _SUBJECT_TAIL + (("created_at", DATETIME),),
            subject=True,
            sql="SELECT s.code, s.address, s.floors, b.code AS base_cell, b.community_code AS community, "
            "s.created_at, coalesce(s.geom, ST_PointOnSurface(s.footprint)) AS _geom, b.code AS _area, "
            "b.code AS _cell, s.geom AS _point, s.footprint AS _footprint "
            "FROM building s LEFT JOIN base_cell b ON b.id = s.base_cell_id",
            # A point on the footprint lies in it: a box holding `_geom` meets the point or else the footprint,
            # which the two partial GiST indexes of `building` serve (no index of the expression to keep up).
            bbox_sql="(f._point && {box} OR f._footprint && {box})",
            bbox_columns=("_point", "_footprint"),
        ),
        # The footprints of the buildings that have one (the buildings layer gives every building
        # as a point: its location, or a point on its footprint), so polygons imported come back.
        Layer(
            "building-footprints",
            "MultiPolygon",
            (("code", STR), ("address", STR), ("floors", INT)) + _SUBJECT_TAIL + (("created_at", DATETIME),),
            subject=True,
            sql="SELECT s.code, s.address, s.floors, b.code AS base_cell, b.community_code AS community, "
            "s.created_at, s.footprint AS _geom, b.code AS _area, b.code AS _cell "
            "FROM building s LEFT JOIN base_cell b ON b.id = s.base_cell_id WHERE s.footprint IS NOT NULL",
        ),
        Layer(
            "residents",
            "Point",
            (
                ("id_number", STR),
                ("name", STR),
                ("phone", STR),
                ("household", STR),
                ("population_type", STR),
                BIRTH_DATE,
                ("building", STR),
            )
            + _SUBJECT_TAIL
            + (("created_at", DATETIME),),
            personal=("name", "phone"),
            # Masked, a resident is given to about 100 m (the rule of a case's place), without the building
            # they live in, and with a household pseudonym of this export: with the birth year, an exact
            # dwelling and who lives with whom would name the people behind masked names.
            place_is_personal=True,
            pinpoints=("building",),
            pseudonymous=("household",),
            subject=True,
            sql="SELECT s.id_number_masked AS id_number, {res_name} AS name, {res_phone} AS phone, s.household, "
            "s.population_type, {birth}, bl.code AS building, b.code AS base_cell, "
            # A resident imported by building code has no point of its own: it is where its building is (the
            # buildings layer's point), as its base cell is its building's; else every such row had no place.
            "b.community_code AS community, s.created_at, "
            "coalesce(s.geom, bl.geom, ST_PointOnSurface(bl.footprint)) AS _geom, b.code AS _area, b.code AS _cell "
            "FROM resident s LEFT JOIN resident_cell rc ON rc.resident_id = s.id "
            "LEFT JOIN base_cell b ON b.id = rc.base_cell_id "
            "LEFT JOIN building bl ON bl.id = s.building_id",
        ),
        Layer(
            "entities",
            "Point",
            (("credit_code", STR), ("name", STR), ("address", STR)) + _SUBJECT_TAIL + (("created_at", DATETIME),),
            subject=True,
            sql="SELECT s.credit_code, s.name, s.address, b.code AS base_cell, b.community_code AS community, "
            "s.created_at, s.geom AS _geom, b.code AS _area, b.code AS _cell "
            "FROM legal_entity s LEFT JOIN base_cell b ON b.id = s.base_cell_id",
        ),
        # The component inventory (部件, CJ/T 214 codes): points (manholes) and lines (railings, pipes),
        # written as one shapefile or GeoPackage layer per geometry type (gridkit.io.export.KINDS).
        Layer(
            "components",
            "Geometry",
            (
                ("code", STR),
                ("category_code", STR),
                ("category", STR),
                ("major_class", STR),
                ("name", STR),
                ("open_cases", INT),
            )
            + _SUBJECT_TAIL
            + (("created_at", DATETIME),),
            subject=True,
            sql="SELECT s.code, s.category_code, k.name AS category, k.major_name AS major_class, s.name, "
            "(SELECT count(*) FROM incident i WHERE i.component_id = s.id "
            " AND i.status NOT IN ('closed', 'rejected', 'duplicate'))::int AS open_cases, "
            "b.code AS base_cell, b.community_code AS community, s.created_at, "
            "s.geom AS _geom, b.code AS _area, b.code AS _cell FROM component s "
            "LEFT JOIN incident_category k ON k.code = s.category_code "
            "LEFT JOIN base_cell b ON b.id = s.base_cell_id",
        ),
        Layer(
            "incidents",
            "Point",
            (
                ("code", STR),
                ("category_code", STR),
                ("category", STR),
                ("status", STR),
                ("severity", STR),
                ("description", STR),
                ("reporter", STR),
                ("reported_at", DATETIME),
                ("deadline", DATETIME),
                ("closed_at", DATETIME),
                ("overdue", BOOL),
                ("dept", STR),
                ("source", STR),
            )
            + _SUBJECT_TAIL,
            personal=("reporter",),
            place_is_personal=True,
            free_text=("description",),
            subject=True,
            sql="SELECT s.code, s.category_code, k.name AS category, s.status, s.severity, s.description, "
            "{reporter} AS reporter, s.reported_at, s.deadline, s.closed_at, "
            "(s.deadline IS NOT NULL AND coalesce(s.closed_at, now()) > s.deadline) AS overdue, "
            "s.dept_code AS dept, s.source, b.code AS base_cell, b.community_code AS community, s.geom AS _geom, "
            "b.code AS _area, b.code AS _cell FROM incident s "
            "LEFT JOIN incident_category k ON k.code = s.category_code "
            "LEFT JOIN base_cell b ON b.id = s.base_cell_id",
        ),
        Layer(
            "cell-stats",
            "Polygon",
            (
                ("code", STR),
                ("community_code", STR),
                ("residents", INT),
                ("registered", INT),
                ("floating", INT),
                ("households", INT),
                ("buildings", INT),
                ("entities", INT),
                ("incidents", INT),
                ("open_incidents", INT),
            ),
            # The counts of residents are under the small-count rule when masked (build_query, RESIDENT_COUNTS).
            sql="SELECT b.code, b.community_code, "
            "{residents} AS residents, {registered} AS registered, {floating} AS floating, "
            "{households} AS households, coalesce(bl.n, 0) AS buildings, coalesce(en.n, 0) AS entities, "
            "coalesce(i.n, 0) AS incidents, coalesce(i.open, 0) AS open_incidents, b.geom AS _geom, b.code AS _area "
            "FROM base_cell b "
            # The per-cell resident summary (gridkit.reports.resident_summary), made current by build_query.
            "LEFT JOIN (SELECT base_cell_id, residents AS n, registered AS reg, floating AS flo, households AS hh "
            "  FROM resident_cell_summary) r ON r.base_cell_id = b.id "
            "LEFT JOIN (SELECT base_cell_id, count(*)::int AS n FROM building GROUP BY base_cell_id) bl "
            "  ON bl.base_cell_id = b.id "
            "LEFT JOIN (SELECT base_cell_id, count(*)::int AS n FROM legal_entity GROUP BY base_cell_id) en "
            "  ON en.base_cell_id = b.id "
            "LEFT JOIN (SELECT base_cell_id, count(*)::int AS n, "
            "  count(*) FILTER (WHERE status NOT IN ('closed', 'rejected', 'duplicate'))::int AS open "
            "  FROM incident GROUP BY base_cell_id) i ON i.base_cell_id = b.id "
            "WHERE b.edition_id = :edition_id",
        ),
    )
}


def layer_named(name: str) -> Layer:
    """Return the layer called `name`, or raise ValidationError listing the layers."""
    if name not in LAYERS:
        raise ValidationError("export.unknown_layer", layer=name, layers=", ".join(LAYERS))
    return LAYERS[name]


def edition_at(session: Session, at: datetime | None) -> BaseGridEdition:
    """Return the base grid edition in force at `at` (None: now), or raise NotFound."""
    edition = session.scalar(
        select(BaseGridEdition)
        .where(edition_in_force(BaseGridEdition, at))
        .order_by(BaseGridEdition.published_at.desc())
        .limit(1)
    )
    if edition is None:
        raise NotFound("export.no_edition", at=at.isoformat() if at else "now")
    return edition


def versions_at(session: Session, dept: str | None, version: int | None, at: datetime | None) -> list[WorkGridVersion]:
    """Return the work grid versions asked for: `dept`'s number `version`, else those in force at `at`."""
    if dept is not None and session.get(Department, dept) is None:
        raise NotFound("export.unknown_dept", dept=dept)
    query = select(WorkGridVersion)
    if version is not None:
        if dept is None:
            raise ValidationError("export.version_needs_dept")
        found = session.scalar(query.where(WorkGridVersion.dept_code == dept, WorkGridVersion.number == version))
        if found is None or found.status == "draft":
            raise NotFound("export.unknown_version", dept=dept, version=version)
        return [found]
    query = query.where(version_in_force(WorkGridVersion, at))
    if dept is not None:
        query = query.where(WorkGridVersion.dept_code == dept)
    versions = list(session.scalars(query.order_by(WorkGridVersion.dept_code)))
    if dept is not None and not versions:
        raise NotFound("export.no_version", dept=dept, at=at.isoformat() if at else "now")
    return versions


# The department's work cell and coordinators of each subject, through one version (see module doc).
_RESPONSIBLE_SQL = (
    "SELECT q.*, w.code AS work_cell, w.name AS work_cell_name, "
    "(SELECT string_agg({coord_name}, ',' ORDER BY c.id) FROM coordinator_assignment ca "
    " JOIN coordinator c ON c.id = ca.coordinator_id WHERE ca.work_cell_id = w.id AND c.active) AS coordinator "
    "FROM ({inner}) q "
    + work_cell_of_code_sql(version=":v_id", version_edition=":v_edition", code="q._cell")
    + " LEFT JOIN work_cell w ON w.id = wm.work_cell_id"
)

# The cell-stats layer's counts of residents (from the per-cell summary), by field.
RESIDENT_COUNTS = {
    "residents": "coalesce(r.n, 0)",
    "registered": "coalesce(r.reg, 0)",
    "floating": "coalesce(r.flo, 0)",
    "households": "coalesce(r.hh, 0)",
}


def build_query(
    session: Session,
    layer: Layer,
    *,
    area: str | None = None,
    where: dict | None = None,
    dept: str | None = None,
    version: int | None = None,
    at: datetime | None = None,
    unmasked: bool = False,
    kept: bool = False,
) -> LayerQuery:
    """Return the SQL of one export of `layer` with its filters, masking and responsibility columns;
    with `kept`, also the kept attributes of the imported file (admin units, base cells) as fields."""
    params: dict = {}
    masked = not unmasked
    sql = layer.sql.format(
        coord_name=mask_name("c.name") if masked else "c.name",
        coord_phone=mask_phone("c.phone") if masked else "c.phone",
        res_name=mask_name("s.name") if masked else "s.name",
        res_phone=mask_phone("s.phone") if masked else "s.phone",
        reporter=mask_name("s.reporter") if masked else "s.reporter",
        birth="date_part('year', s.birth_date)::int AS birth_year" if masked else "s.birth_date AS birth_date",
        # A masked export is for readers who may not see residents: counts of 1–2 residents single one out.
        **{name: small_count_sql(sql) if masked else sql for name, sql in RESIDENT_COUNTS.items()},
    )
    fields = [
        BIRTH_YEAR if masked and f == BIRTH_DATE else f
        for f in layer.fields
        if not (masked and f[0] in layer.pinpoints)
    ]
    if "resident_cell_summary" in sql:
        from gridkit.reports import resident_summary  # reports import this module: imported when used

        resident_summary.ensure_current(session)
    if ":edition_id" in sql:
        params["edition_id"] = edition_at(session, at).id
    if layer.name == "work-cells":
        params["version_ids"] = [v.id for v in versions_at(session, dept, version, at)]
    elif layer.subject and dept is not None:
        chosen = versions_at(session, dept, version, at)[0]
        sql = _RESPONSIBLE_SQL.format(inner=sql, coord_name=mask_name("c.name") if masked else "c.name")
        params.update(v_edition=chosen.base_edition_id, v_id=chosen.id)
        fields += list(_DEPT_FIELDS)
    elif version is not None:
        raise ValidationError("export.version_needs_dept")
    personal: list[str] = []
    if kept and layer.kept_attributes:
        sql, attributes, personal = _with_kept_attributes(session, sql, params, [n for n, _ in fields], masked)
        fields += attributes
    clauses = []
    if area:
        clauses.append("q._area LIKE :area")
        params["area"] = area + "%"
    names = [name for name, _ in fields]
    pseudonymous = set(layer.pseudonymous) if masked else set()
    for i, (name, value) in enumerate((where or {}).items()):
        if name not in names:
            raise ValidationError("export.unknown_field", field=name, layer=layer.name, fields=", ".join(names))
        if name in pseudonymous:
            # A masked export's pseudonyms are new in each export: no value given beforehand could match one.
            raise ValidationError("export.pseudonym_filter", field=name, layer=layer.name)
        # The name was checked against the layer's own list, so quoting it is safe.
        clauses.append(f'q."{name}"::text = :w{i}')
        params[f"w{i}"] = value
    if pseudonymous:
        params[EXPORT_PSEUDONYM_KEY] = export_pseudonym_key()
    columns = ", ".join(_public_column(n, layer.free_text if masked else (), pseudonymous) for n in names)
    geom = public_location_sql("q._geom") if masked and layer.place_is_personal else "q._geom"
    hidden = "".join(f", q.{c}" for c in layer.bbox_columns)
    final = f"SELECT {columns}, {geom} AS _geom{hidden} FROM ({sql}) q"
    if clauses:
        final += " WHERE " + " AND ".join(clauses)
    return LayerQuery(sql=final, params=params, fields=fields, geometry_type=layer.geometry_type, personal=personal)


def _public_column(name: str, free_text, pseudonymous) -> str:
    """Return the SQL of field `name` of the finished query: free text masked, a pseudonym, or as it is."""
    column = f'q."{name}"'
    if name in free_text:
        return f'{public_text_sql(column)} AS "{name}"'
    if name in pseudonymous:
        return f'{export_pseudonym_sql(column)} AS "{name}"'
    return column


# Postgres identifiers hold at most 63 bytes (longer ones would be cut and no longer match).
_IDENTIFIER_BYTES = 63


def _with_kept_attributes(
    session: Session, sql: str, params: dict, taken: list[str], masked: bool
) -> tuple[str, list, list]:
    """Return `sql` with one column per kept attribute key (`_attrs`), those fields, and the ones
    holding personal data (masked unless `masked` is false: `mask_kept`).

    A key's kind follows its values: all integers (within int64) INT, all numbers FLOAT, all
    true/false BOOL, anything else text (JSON text for lists and objects); JSON null is NULL. A key
    named like a field of the layer, too long for a column name or holding '"' gets a name of its
    own (cut and numbered as shapefile names are); keys in alphabetical order."""
    from gridkit.io.export_writers import short_field_names

    kinds = session.execute(
        text(
            "SELECT e.key, count(*) FILTER (WHERE t <> 'null') AS n, count(*) FILTER (WHERE t = 'number') AS num, "
            "count(*) FILTER (WHERE CASE WHEN t = 'number' THEN e.value::numeric = trunc(e.value::numeric) "
            "  AND abs(e.value::numeric) < 1e18 END) AS int, count(*) FILTER (WHERE t = 'boolean') AS bool, "
            f"count(*) FILTER (WHERE e.value #>> '{{}}' ~ '{_CITIZEN_ID_SHAPE}' "
            f"  OR e.value #>> '{{}}' ~ '{_PHONE_SHAPE}') AS shaped "
            f"FROM ({sql}) q CROSS JOIN LATERAL jsonb_each(q._attrs) e CROSS JOIN LATERAL jsonb_typeof(e.value) t "
            "GROUP BY e.key ORDER BY e.key"
        ),
        params,
    ).all()
    names = short_field_names(taken + [key.replace('"', "_") for key, *_ in kinds], _IDENTIFIER_BYTES)
    used = {name.lower() for name in taken}
    from gridkit.pii import personal_kind

    columns, fields, personal = [], [], []
    for i, (key, n, num, int_, bool_, shaped) in enumerate(kinds):
        name = names.get(key.replace('"', "_"), "")
        k = 0
        while not name or name.lower() in used:
            k += 1
            name = key.replace('"', "_")[: _IDENTIFIER_BYTES // 4] + f"_{k}"
        used.add(name.lower())
        who = personal_kind(key)
        kind = INT if n and int_ == n else FLOAT if n and num == n else BOOL if n and bool_ == n else STR
        if who or shaped:
            kind = STR  # a phone or ID kept as a number is masked as text
        cast = {INT: "::numeric::bigint", FLOAT: "::float8", BOOL: "::boolean"}.get(kind, "")
        params[f"kept{i}"] = key
        value = f"(k._attrs ->> :kept{i}){cast}"
        if kind == STR:
            personal += [name] if who or shaped else []
            value = mask_kept(value, who) if masked else value
        columns.append(f'{value} AS "{name}"')
        fields.append((name, kind))
    if not columns:
        return sql, [], []
    return f"SELECT k.*, {', '.join(columns)} FROM ({sql}) k", fields, personal
