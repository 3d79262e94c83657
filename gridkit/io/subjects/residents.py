"""Import residents: citizen ID (kept only as keyed hash, masked form and birth date), name, phone, household,
population type, and a building (code or address) or their own lon/lat. See gridkit.io.subjects."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.grids.base import current_edition
from gridkit.io.subjects.building_codes import BuildingCodes
from gridkit.io.subjects.common import (
    _AMBIGUOUS_POPULATION,
    _LENGTHS,
    POPULATION_TYPE_WORDS,
    SubjectImportResult,
    _id_reason,
    _phone,
)
from gridkit.io.subjects.job import Job
from gridkit.io.subjects.resident_load import first_load
from gridkit.io.subjects.resident_rows import (
    DUPLICATE_IDS,
    STAGED_CELL,
    counts_of_inserted,
    residents_changed_cells,
    write_staged_residents,
)
from gridkit.io.subjects.staging import (
    KindSpec,
    bulk_work_mem,
    finish,
    lock_for_writing,
    report_duplicates,
    report_existing,
    stage_file,
)
from gridkit.io.tables import Table
from gridkit.messages import Message
from gridkit.pii import hash_citizen_id
from gridkit.pii import mask_typed as _mask
from gridkit.reports.resident_summary_rows import write_summary_rows
from gridkit.standard.ids import MOBILE_PATTERN, birth_date_of, citizen_ids_valid, validate_citizen_id

__all__ = ["import_residents", "residents_spec"]

# Keys compared with the resident table's byte-order ("C") columns are byte-order too (migration 20261204_imp9d).
_COLUMNS = (
    ("id_number_hash", 'text COLLATE "C"'),
    ("id_number_masked", "text"),
    ("birth_date", "date"),
    ("name", "text"),
    ("phone", "text"),
    ("household", 'text COLLATE "C"'),
    ("population_type", "text"),
    ("building_code", "text"),
    ("building_address", "text"),
    # The building the code names (found on the client: gridkit.io.subjects.building_codes), and its cell.
    ("building_id", "int"),
    ("building_cell", "int"),
)


def import_residents(
    session: Session,
    path,
    *,
    pii_key: bytes,
    mapping: dict | None = None,
    encoding: str | None = None,
    src_crs: str | None = None,
    layer: str | None = None,
    sheet: str | None = None,
    replace: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SubjectImportResult:
    """Import residents all or nothing, storing citizen IDs only as keyed hash + mask (+ birth date), and assign them.

    `pii_key` is the key of the hash (gridkit.pii.pii_key(settings)). A resident is attached to a
    building (building_code, else building_address) or has its own lon/lat. Streams the file (memory
    flat in rows); with no published base grid edition the residents stay unassigned until one is
    published. `progress(done, total)` is called per chunk. Never commits.
    """
    if not pii_key:
        raise ValueError("import_residents needs the personal-data key: pass pii_key=gridkit.pii.pii_key(settings).")
    options = {"mapping": mapping, "encoding": encoding, "src_crs": src_crs, "layer": layer, "sheet": sheet}
    options.update(personal_location=True, progress=progress)
    job = Job(session, "residents", path, **options)
    named = _Named()
    spec = residents_spec(pii_key, named)
    edition = current_edition(session)
    with session.begin_nested(), bulk_work_mem(session):
        loaded = None if replace else first_load(session, job, spec.check, named, edition)
        if loaded is not None:
            return _first_loaded(job, loaded)
        if job.rows:  # read by a first load that found a problem: read again, reporting every one
            job = Job(session, "residents", path, **options)
            named = _Named(named.buildings)  # the buildings as the first load read them: not read twice
            spec = residents_spec(pii_key, named)
        staged = stage_file(session, job, spec, edition=edition)
        lock_for_writing(session, "resident")
        if replace:
            # An UPDATE from a repeated ID would not fail: repeated IDs are looked for first.
            report_duplicates(job, staged, **DUPLICATE_IDS)
        if named.addresses:
            _resolve_addresses(job)
        if not replace:
            report_existing(
                job,
                staged,
                table="resident",
                column="id_number_hash",
                name="id_number",
                what="imports.what.resident_with_id",
            )
        elif job.problems:
            job.refuse()
        created, updated, before, offset = write_staged_residents(session, job, staged, replace)
        staged_counts = _staged_counts(session)
        counts = _counts(job, staged, offset, staged_counts)
        extra = {name: getattr(staged_counts, name) for name in ("registered", "floating", "in_buildings")}
        residents_changed_cells(session, before)
        session.execute(text(f"DROP TABLE {spec.stage}"))
    return SubjectImportResult(
        "residents",
        created=created,
        updated=updated,
        assigned=counts["assigned"],
        unassigned=counts["unassigned"],
        unassigned_rows=counts["unassigned_rows"],
        notes=job.notes,
        source=job.source,
        extra=extra,
    )


def _counts(job: Job, staged, offset: int | None, staged_counts) -> dict:
    """Return the import's counts ("assigned", "unassigned", "unassigned_rows") once the rows are written."""
    if offset is not None and (staged.edition is None or staged.cells_computed or not staged_counts.to_place):
        # Every row inserted with a known id and its cell (if any) in the same step: counted from the staged rows.
        return counts_of_inserted(job.session, staged, offset, staged_counts.unassigned)
    return finish(
        job,
        staged,
        table="resident",
        column="id_number_hash",
        label="id_number_masked",
        set_by_insert="TRUE" if staged.cells_computed else "t.building_id IS NOT NULL",
    )


def _first_loaded(job: Job, loaded: dict) -> SubjectImportResult:
    """Return the import's result once a first load (gridkit.io.subjects.resident_load) wrote the file, the
    resident summary rebuilt whole (every cell with residents is new): from the rows the load grouped, if it
    could, else in SQL."""
    if loaded["summary"] is not None:
        write_summary_rows(job.session, loaded["summary"])
    else:
        residents_changed_cells(job.session, None)
    return SubjectImportResult(
        "residents",
        created=loaded["created"],
        updated=0,
        assigned=loaded["assigned"],
        unassigned=loaded["unassigned"],
        unassigned_rows=loaded["unassigned_rows"],
        notes=job.notes,
        source=job.source,
        extra={name: loaded[name] for name in ("registered", "floating", "in_buildings")},
    )


class _Named:
    """What a residents file names: its buildings' lookup, read at the first chunk when the file has a building
    code column, and how many rows name an address only (found in SQL after staging)."""

    def __init__(self, buildings: BuildingCodes | None = None) -> None:
        self.buildings = buildings or BuildingCodes()
        self.addresses = 0


def residents_spec(key: bytes, named: _Named | None = None) -> KindSpec:
    """Return the residents' KindSpec, hashing citizen IDs with `key` (the key is never stored)."""
    named = named or _Named()
    return KindSpec(
        "residents",
        "gk_stage_resident",
        _COLUMNS,
        lambda job, chunk: _check(job, chunk, key, named),
        "id_number_hash",
        "id_number_masked",
        joined=("building_code", "building_address"),
    )


def _check(job: Job, chunk: Table, key: bytes, named: _Named) -> dict:
    """Return the staged values of the chunk's rows (pyarrow arrays, null where absent or wrong): clean rows
    in bulk, the others one by one with reasons."""
    n = len(chunk.rows)
    get = {
        name: job.values(name)
        for name in ("id_number", "name", "phone", "household", "population_type", "building_code", "building_address")
    }
    fast, digits = _fast_rows(chunk, get)
    clean = np.flatnonzero(fast)
    rows = digits[clean]
    masked = rows.copy()
    masked[:, 4:14] = ord("*")
    keep = pa.array(fast)
    out = {
        "id_number_hash": _spread(_fixed_strings(_hmac_hex(key, rows), 64), clean, n),
        "id_number_masked": _spread(_fixed_strings(masked, 18), clean, n),
        "birth_date": _spread(pa.array(_birth_dates(rows)), clean, n),
        "name": pc.if_else(keep, get["name"], _NULL),
        "phone": pc.if_else(keep, get["phone"], _NULL),
        "household": pc.if_else(keep, get["household"], _NULL),
        "population_type": pc.if_else(
            keep, pc.take(_POPULATION_VALUES, pc.index_in(get["population_type"], value_set=_POPULATION_KEYS)), _NULL
        ),
    }
    job.row_labels = out["id_number_masked"]
    slow = np.flatnonzero(~fast).tolist()
    if slow:
        out = _check_rows(job, slow, out, key)
    codes, addresses = get["building_code"], get["building_address"]
    out["building_code"] = codes
    out["building_address"] = pc.if_else(codes.is_null(), addresses, _NULL)
    out["building_id"], out["building_cell"] = _buildings(job, named, codes, out["id_number_masked"])
    named.addresses += pc.sum(pc.and_(codes.is_null(), addresses.is_valid())).as_py() or 0
    has_building = pc.or_(codes.is_valid(), addresses.is_valid()).to_numpy(zero_copy_only=False)
    out["lon"], out["lat"], _ = job.locations(~has_building)
    return out


def _check_rows(job: Job, positions: list[int], out: dict, key: bytes) -> dict:
    """Check the rows at `positions` one by one (recording what is wrong); return `out` with their values."""
    types = {name: values.type for name, values in out.items()}
    lists = {name: values.to_pylist() for name, values in out.items()}
    for position in positions:
        mask = _resident_id(job, position, key, lists)
        lists["id_number_masked"][position] = mask
        lists["name"][position] = job.text(position, "name", required=True, limit=_LENGTHS["name"], code=mask)
        lists["phone"][position] = _phone(job, position, required=False, code=mask)
        lists["household"][position] = job.text(
            position, "household", required=False, limit=_LENGTHS["household"], code=mask
        )
        lists["population_type"][position] = _population_type(job, position, mask)
    out = {name: pa.array(values, type=types[name]) for name, values in lists.items()}
    job.row_labels = out["id_number_masked"]
    return out


_NULL = pa.scalar(None, pa.string())
_POPULATION_KEYS = pa.array(list(POPULATION_TYPE_WORDS))
_POPULATION_VALUES = pa.array(list(POPULATION_TYPE_WORDS.values()))


def _fixed_strings(chars: np.ndarray, width: int) -> pa.Array:
    """Return the rows of an (n, width) uint8 array of ASCII characters as a pyarrow string array."""
    n = len(chars)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars).tobytes())]
    )


def _spread(values: pa.Array, positions: np.ndarray, n: int) -> pa.Array:
    """Return `values` (one per position) placed at `positions` of an array of n rows, null elsewhere."""
    if len(positions) == n:
        return values
    index = np.full(n, -1, dtype=np.int64)
    index[positions] = np.arange(len(positions))
    return values.take(pa.array(index, mask=index < 0))


def _hmac_hex(key: bytes, rows: np.ndarray) -> np.ndarray:
    """Return the hex HMAC-SHA256 under `key` of each row of an (n, 18) array of ID characters, as (n, 64) uint8.

    The same value as gridkit.pii.hash_citizen_id; the key's inner and outer states are computed once
    (two SHA-256 blocks per ID instead of four).
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner_copy = hashlib.sha256(bytes(b ^ 0x36 for b in key)).copy
    outer_copy = hashlib.sha256(bytes(b ^ 0x5C for b in key)).copy
    blob = rows.tobytes()
    digests = []
    append = digests.append
    for start in range(0, len(blob), 18):
        inner = inner_copy()
        inner.update(blob[start : start + 18])
        outer = outer_copy()
        outer.update(inner.digest())
        append(outer.digest())
    return np.frombuffer(b"".join(digests).hex().encode("ascii"), dtype=np.uint8).reshape(-1, 64)


def _birth_dates(rows: np.ndarray) -> np.ndarray:
    """Return the birth dates (datetime64[D]) in digits 7-14 of checked 18-character ID rows."""
    d = rows[:, 6:14].astype(np.int64) - 48
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    months = (year - 1970) * 12 + month - 1
    return months.astype("datetime64[M]").astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")


def _fast_rows(chunk: Table, get: dict) -> tuple[np.ndarray, np.ndarray]:
    """Return where a row is certainly clean (valid ID, name, phone, household, population type), checked
    in bulk, and the (n, 18) ID characters of the rows shaped like an ID; every other row goes through
    the per-row checks, which say what is wrong."""
    n = len(chunk.rows)
    ids = get["id_number"]
    shaped = pc.fill_null(pc.match_substring_regex(ids, r"^[0-9]{17}[0-9X]$"), False).to_numpy(zero_copy_only=False)
    if chunk.lossy:
        for position, _column in chunk.lossy:
            shaped[position] = False
    digits = np.zeros((n, 18), dtype=np.uint8)
    if shaped.any():
        fixed = ids.filter(pa.array(shaped)).cast(pa.binary(18))
        data = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)
        digits[shaped] = data[fixed.offset * 18 : (fixed.offset + len(fixed)) * 18].reshape(-1, 18)
    fast = shaped & citizen_ids_valid(digits)
    names, phones, households, kinds = get["name"], get["phone"], get["household"], get["population_type"]
    checks = (
        pc.less_equal(pc.utf8_length(names), _LENGTHS["name"]),  # null (no name) is not clean
        pc.or_kleene(phones.is_null(), pc.match_substring_regex(phones, f"^{MOBILE_PATTERN}$")),
        pc.or_kleene(households.is_null(), pc.less_equal(pc.utf8_length(households), _LENGTHS["household"])),
        pc.is_in(kinds, value_set=_POPULATION_KEYS),
    )
    for ok in checks:
        fast &= pc.fill_null(ok, False).to_numpy(zero_copy_only=False)
    return fast, digits


def _buildings(job: Job, named: _Named, codes: pa.Array, labels: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Return the id and base cell of the building each row's code names (null where none); record the codes
    no building has. A file without a building code column never reads the building table."""
    n = len(codes)
    if job.cols.get("building_code") is None:
        return pa.nulls(n, pa.int32()), pa.nulls(n, pa.int32())
    named.buildings.load(job.session)  # at the first chunk: before the staging COPY holds the connection
    ids, cells = named.buildings.find(codes)
    unknown = np.flatnonzero(codes.is_valid().to_numpy(zero_copy_only=False) & (ids == 0)).tolist()
    for position in unknown:
        job.report(
            position,
            "unknown_building",
            "building_code",
            Message("imports.unknown_building", code=codes[position].as_py()),
            labels[position].as_py(),
        )
    return pa.array(ids, mask=ids == 0), pa.array(cells, mask=cells == 0)


def _resolve_addresses(job: Job) -> None:
    """Find the building of each row naming an address only (exactly one building must have it); record the rest.

    A building found by its address has its code, id and cell written into the row, as a code's are."""
    session = job.session
    session.execute(
        text(
            "UPDATE gk_stage_resident s SET building_code = a.code, building_id = a.id, building_cell = a.cell FROM ("
            "  SELECT btrim(address) AS address, min(code) AS code, min(id) AS id, min(base_cell_id) AS cell "
            "  FROM building "
            "  WHERE btrim(address) IN (SELECT building_address FROM gk_stage_resident "
            "                           WHERE building_code IS NULL AND building_address IS NOT NULL) "
            "  GROUP BY btrim(address) HAVING count(*) = 1) a "
            "WHERE s.building_code IS NULL AND s.building_address = a.address"
        )
    )
    for row in session.execute(
        text(
            "SELECT s.row_no, s.id_number_masked, s.building_address, "
            "  (SELECT count(*) FROM building b WHERE btrim(b.address) = s.building_address) AS found "
            "FROM gk_stage_resident s WHERE s.building_code IS NULL AND s.building_address IS NOT NULL "
            "ORDER BY s.row_no"
        )
    ):
        if row.found == 0:
            job.report_row(
                row.row_no,
                "unknown_building",
                "building_address",
                Message("imports.unknown_address", address=row.building_address),
                row.id_number_masked,
            )
        else:
            job.report_row(
                row.row_no,
                "ambiguous_building",
                "building_address",
                Message("imports.ambiguous_address", count=row.found, address=row.building_address),
                row.id_number_masked,
            )


def _staged_counts(session: Session):
    """Return the staged rows' counts (one scan): registered, floating, in_buildings (the result's extras),
    to_place (rows with a point and no building), unassigned (rows the write gave no cell)."""
    return session.execute(
        text(
            "SELECT count(*) FILTER (WHERE population_type = 'registered') AS registered, "
            "count(*) FILTER (WHERE population_type = 'floating') AS floating, "
            "count(building_code) AS in_buildings, "
            "count(*) FILTER (WHERE building_id IS NULL AND lon IS NOT NULL) AS to_place, "
            f"count(*) FILTER (WHERE {STAGED_CELL} IS NULL) AS unassigned FROM gk_stage_resident s"
        )
    ).one()


def _resident_id(job: Job, position: int, key: bytes, out: dict) -> str | None:
    """Check the row's citizen ID; record its hash and birth date in `out`; return its masked form."""
    raw = job.value(position, "id_number")
    if raw is None:
        job.report(
            position,
            "missing_value",
            "id_number",
            Message("imports.missing_value", name="id_number", column=job.column("id_number")),
        )
        return None
    shown = _mask(raw)
    job.row_code[position] = shown
    if job.lossy(position, "id_number"):
        job.report(
            position,
            "number_precision",
            "id_number",
            Message("imports.id_as_number", shown=shown),
            shown,
        )
        return None
    try:
        number = validate_citizen_id(raw)
    except ValueError as exc:
        job.report(
            position,
            "bad_id_number",
            "id_number",
            Message("imports.bad_id_number", shown=shown, reason=_id_reason(exc)),
            shown,
        )
        return None
    masked = job.row_code[position] = _mask(number)
    out["birth_date"][position] = birth_date_of(number)
    out["id_number_hash"][position] = hash_citizen_id(key, number)
    return masked


def _population_type(job: Job, position: int, code) -> str | None:
    raw = job.value(position, "population_type")
    if raw is None:
        job.report(
            position,
            "missing_value",
            "population_type",
            Message("imports.missing_population_type"),
            code,
        )
        return None
    word = raw.strip()
    found = POPULATION_TYPE_WORDS.get(word) or POPULATION_TYPE_WORDS.get(word.casefold())
    if found is not None:
        return found
    if word in _AMBIGUOUS_POPULATION:
        reason = Message("imports.ambiguous_population_type", word=word)
    else:
        reason = Message("imports.unknown_population_type", word=word)
    job.report(position, "bad_population_type", "population_type", reason, code)
    return None
