"""Import legal entities: unified social credit code, name, address, point. See gridkit.io.subjects."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.grids.base import current_edition
from gridkit.io.subjects.common import _LENGTHS, SubjectImportResult
from gridkit.io.subjects.job import Job
from gridkit.io.subjects.staging import (
    KindSpec,
    Staged,
    absent_fields,
    codes_valid_as_written,
    finish,
    kept_or_staged,
    lock_for_writing,
    report_duplicates,
    report_existing,
    stage_file,
)
from gridkit.io.tables import Table
from gridkit.messages import Message
from gridkit.rules import SRID
from gridkit.spatial.bulk import rebuilt_indexes
from gridkit.standard.ids import credit_codes_valid, validate_credit_code

__all__ = ["import_entities", "ENTITIES"]


def import_entities(
    session: Session,
    path,
    *,
    mapping: dict | None = None,
    encoding: str | None = None,
    src_crs: str | None = None,
    layer: str | None = None,
    sheet: str | None = None,
    replace: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SubjectImportResult:
    """Import legal entities (credit code, name, address, point) all or nothing, and assign them.

    Credit codes are checked (GB 32100), unique in the file and new to the database (or `replace`).
    Streams the file; with no published edition they stay unassigned until one is published. Never commits.
    """
    job = Job(
        session,
        "entities",
        path,
        mapping=mapping,
        encoding=encoding,
        src_crs=src_crs,
        layer=layer,
        sheet=sheet,
        progress=progress,
    )
    with session.begin_nested():
        staged = stage_file(session, job, ENTITIES, edition=current_edition(session))
        lock_for_writing(session, "legal_entity")
        report_duplicates(job, staged, kind="duplicate_code", name="credit_code", what="imports.what.credit_code")
        if not replace:
            report_existing(
                job,
                staged,
                table="legal_entity",
                column="credit_code",
                name="credit_code",
                what="imports.what.entity_with_code",
            )
        if job.problems:
            job.refuse()
        created, updated = _write_entities(session, staged, replace=replace, absent=absent_fields(job, ("address",)))
        counts = finish(
            job,
            staged,
            table="legal_entity",
            column="credit_code",
            label="credit_code",
            set_by_insert="TRUE" if staged.cells_computed else "FALSE",
        )
        session.execute(text("DROP TABLE gk_stage_entity"))
    return SubjectImportResult(
        "entities",
        created=created,
        updated=updated,
        assigned=counts["assigned"],
        unassigned=counts["unassigned"],
        unassigned_rows=counts["unassigned_rows"],
        notes=job.notes,
        source=job.source,
    )


def _write_entities(
    session: Session, staged: Staged, *, replace: bool, absent: frozenset = frozenset()
) -> tuple[int, int]:
    """Insert the staged entities that are new (and with `replace` update the others, an address the file has
    no column for kept); return (created, updated)."""
    values = (
        "s.name, {address}, CASE WHEN s.lon IS NULL THEN NULL "
        "ELSE ST_SetSRID(ST_MakePoint(s.lon, s.lat), :srid) END, s.cell"
    )
    with rebuilt_indexes(session, "legal_entity", staged.rows):
        updated = 0
        if replace:
            updated = session.execute(
                text(
                    "UPDATE legal_entity t SET (name, address, geom, base_cell_id) = "
                    f"({values.format(**kept_or_staged(('address',), absent))}) "
                    "FROM gk_stage_entity s WHERE t.credit_code = s.credit_code"
                ),
                {"srid": SRID},
            ).rowcount
        created = session.execute(
            text(
                f"INSERT INTO legal_entity (credit_code, name, address, geom, base_cell_id) SELECT s.credit_code, "
                f"{values.format(address='s.address')} FROM gk_stage_entity s WHERE NOT EXISTS "
                "(SELECT 1 FROM legal_entity e WHERE e.credit_code = s.credit_code) ORDER BY s.row_no"
            ),
            {"srid": SRID},
        ).rowcount
    return created, updated


def _check(job: Job, chunk: Table) -> dict:
    """Return the staged values of the chunk's rows (pyarrow arrays, null where absent or wrong): credit code,
    name, address, point. Clean rows are checked in bulk, the others one by one with reasons."""
    n = len(chunk.rows)
    get = {name: job.values(name) for name in ("credit_code", "name", "address")}
    keep = pa.array(_fast_rows(chunk, get))
    out = {name: pc.if_else(keep, values, _NULL) for name, values in get.items()}
    slow = np.flatnonzero(~keep.to_numpy(zero_copy_only=False)).tolist()
    if slow:
        lists = {name: values.to_pylist() for name, values in out.items()}
        for position in slow:
            code = _credit_code(job, position)
            if code is not None:
                job.row_code[position] = code
            lists["credit_code"][position] = code
            lists["name"][position] = job.text(
                position, "name", required=True, limit=_LENGTHS["entity_name"], code=code
            )
            lists["address"][position] = job.text(
                position, "address", required=False, limit=_LENGTHS["address"], code=code
            )
        out = {name: pa.array(values, type=pa.string()) for name, values in lists.items()}
    job.row_labels = out["credit_code"]
    out["lon"], out["lat"], _ = job.locations([True] * n)
    return out


_NULL = pa.scalar(None, pa.string())


def _fast_rows(chunk: Table, get: dict) -> np.ndarray:
    """Return where a row is certainly clean (a valid credit code as written, a name, lengths within the
    limits), checked in bulk; every other row goes through the per-row checks, which say what is wrong."""
    fast = codes_valid_as_written(chunk, get["credit_code"], 18, credit_codes_valid)
    names, addresses = get["name"], get["address"]
    checks = (
        pc.less_equal(pc.utf8_length(names), _LENGTHS["entity_name"]),  # null (no name) is not clean
        pc.or_kleene(addresses.is_null(), pc.less_equal(pc.utf8_length(addresses), _LENGTHS["address"])),
    )
    for ok in checks:
        fast &= pc.fill_null(ok, False).to_numpy(zero_copy_only=False)
    return fast


ENTITIES = KindSpec(
    "entities",
    "gk_stage_entity",
    (("credit_code", "text"), ("name", "text"), ("address", "text")),
    _check,
    "credit_code",
    "credit_code",
)


def _credit_code(job: Job, position: int) -> str | None:
    raw = job.value(position, "credit_code")
    if raw is None:
        job.report(
            position,
            "missing_value",
            "credit_code",
            Message("imports.missing_value", name="credit_code", column=job.column("credit_code")),
        )
        return None
    if job.lossy(position, "credit_code", valid=_is_credit_code):
        job.report(
            position,
            "number_precision",
            "credit_code",
            Message("imports.credit_code_as_number", raw=raw),
            raw,
        )
        return None
    try:
        return validate_credit_code(raw)
    except ValueError as exc:
        reason = Message(f"error.{exc.code}", **exc.params) if hasattr(exc, "code") else str(exc)
        job.report(
            position, "bad_credit_code", "credit_code", Message("imports.bad_credit_code", raw=raw, reason=reason), raw
        )
        return None


def _is_credit_code(value: str) -> bool:
    try:
        validate_credit_code(value)
    except ValueError:
        return False
    return True
