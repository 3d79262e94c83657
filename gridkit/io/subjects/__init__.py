"""Import buildings, residents, legal entities and coordinators from CSV, XLSX, Shapefile, GeoPackage, GeoJSON.

Every import is all or nothing, and streams: the file is read in chunks (`gridkit.io.tables.open_table`:
CSV and XLSX as a stream, memory flat in the number of rows), each chunk's rows are checked (clean
rows in bulk, the others one by one to say what is wrong) and COPYed into a temporary staging table
with the base cell of each point; duplicates, keys already stored and buildings are then resolved in
SQL on the staging table (`gridkit.io.subjects.staging`), and only when no problem was found is
anything written: one INSERT … SELECT inside a savepoint, subjects already carrying their base cell,
in the caller's transaction. Otherwise `SubjectImportRefused` (a ValidationError) lists every problem
(`problems`: index, code, field, kind, message) and nothing is written; an interrupted import
(Ctrl+C, kill) leaves nothing either. With no published base grid edition subjects are imported
unassigned, and publishing an edition assigns them in the publish's transaction. Services never
commit: the caller owns the transaction.

Modules: `common` (fields, words, result), `job` (reading and per-row checks), `staging` (the
streaming path, reusable by other importers through a `KindSpec`), one module per kind.

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

Personal data. Citizen ID numbers are stored only as an HMAC-SHA256 keyed hash (`gridkit.pii`), a
masked form (4403**********1234) and the birth date they hold (digits 7-14, for age bands); they
appear nowhere in clear, problem messages included (masked
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

from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.io.subjects.buildings import import_buildings
from gridkit.io.subjects.common import (
    FIELDS,
    KINDS,
    POPULATION_TYPE_WORDS,
    SUBJECT_ADVICE,
    Field,
    SubjectImportRefused,
    SubjectImportResult,
    parse_mapping,
)
from gridkit.io.subjects.coordinators import import_coordinators
from gridkit.io.subjects.entities import import_entities
from gridkit.io.subjects.residents import import_residents
from gridkit.io.subjects.staging import KindSpec, finish, report_duplicates, report_existing, stage_file

__all__ = [
    "KINDS",
    "FIELDS",
    "Field",
    "POPULATION_TYPE_WORDS",
    "SUBJECT_ADVICE",
    "SubjectImportResult",
    "SubjectImportRefused",
    "import_buildings",
    "import_residents",
    "import_entities",
    "import_coordinators",
    "import_subjects",
    "parse_mapping",
    "KindSpec",
    "stage_file",
    "report_duplicates",
    "report_existing",
    "finish",
]

IMPORTERS = {
    "buildings": import_buildings,
    "residents": import_residents,
    "entities": import_entities,
    "coordinators": import_coordinators,
}


def import_subjects(
    session: Session, kind: str, path, *, pii_key: bytes | None = None, **options
) -> SubjectImportResult:
    """Import subjects of `kind` (buildings, residents, entities, coordinators) from `path`; see the module docs.

    `options` are those of the kind's function (mapping, encoding, src_crs, layer, sheet, replace,
    progress); `pii_key` is needed for residents only. Never commits.
    """
    if kind not in IMPORTERS:
        raise ValidationError("imports.unknown_kind", kind=kind, kinds=", ".join(KINDS))
    if kind == "residents":
        return import_residents(session, path, pii_key=pii_key, **options)
    if kind == "coordinators":
        if options.pop("replace", False):
            raise ValidationError("imports.coordinators_no_replace")
        options.pop("progress", None)
    return IMPORTERS[kind](session, path, **options)
