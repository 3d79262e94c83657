"""The reports of work cell imports started from a page: written under GRIDKIT_HOME/reports as every import's
(gridkit.io.report), named by the draft, and found again only as a report of that draft.

A report names work cells and base cells, what was wrong with the file's features and the file's name; never
who imported it (the draft's history says that), so reading it is not an access to personal data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from gridkit.errors import NotFound, ValidationError
from gridkit.grids.work.import_polygons import WorkCellImport
from gridkit.io.report import write_report

__all__ = ["REPORT_NAME", "report_imported", "report_refused", "draft_report"]

REPORT_NAME = "workgrid-import"
# The names write_report gives a report of REPORT_NAME (a second one of the same second gets "-2").
_REPORT_ID = re.compile(r"\d{8}-\d{6}-" + re.escape(REPORT_NAME) + r"(-\d+)?")


def report_imported(home, result: WorkCellImport, file_name: str, lang: str) -> str:
    """Write the report of an import done (notes, then the split and unassigned base cells) and return its id."""
    summary = dict(result.summary(), file=file_name)  # the name the planner knows, not the upload's scratch path
    json_path, _ = write_report(home, REPORT_NAME, [], result.notes, summary, rows=result.unassigned_rows, lang=lang)
    return json_path.stem


def report_refused(home, draft_id: int, exc: ValidationError, file_name: str, lang: str) -> str:
    """Write the report of an import refused (every problem found) and return its id."""
    summary = {"refused": True, "draft": draft_id, "file": file_name, "code": exc.code, "message": exc.render(lang)}
    json_path, _ = write_report(home, REPORT_NAME, exc.problems, getattr(exc, "notes", []), summary, lang=lang)
    return json_path.stem


def draft_report(home, draft_id: int, report_id: str, suffix: str = ".csv") -> Path:
    """Return the file of the import report `report_id` of draft `draft_id`; NotFound for any other name, a report
    of another draft (or of another kind of import), or one pruned since (GRIDKIT_REPORT_RETENTION_DAYS)."""
    if not _REPORT_ID.fullmatch(report_id) or suffix not in (".csv", ".txt", ".json"):
        raise NotFound("work.import.no_report", report=report_id[:80])
    base = Path(home) / "reports" / report_id
    try:
        document = json.loads(base.with_suffix(".json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        raise NotFound("work.import.no_report", report=report_id) from None
    path = base.with_suffix(suffix)
    ours = document.get("name") == REPORT_NAME and document.get("summary", {}).get("draft") == draft_id
    if not ours or not path.is_file():
        raise NotFound("work.import.no_report", report=report_id)
    return path
