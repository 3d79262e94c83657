"""Helpers shared by the nouns that call gridkit services: imports with reports, problem lists, responsibility."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import cli_language, output, say
from gridkit.config import Settings
from gridkit.errors import GridkitError, ValidationError
from gridkit.io.report import write_report
from gridkit.io.retention import prune_outputs
from gridkit.messages import Message


class ErrorText(Message):
    """An error's sentence as a message parameter, rendered in the reader's language."""

    __slots__ = ("error",)

    def __init__(self, error: GridkitError):
        super().__init__(error.key, **error.params)
        self.error = error

    def render(self, lang: str | None = None) -> str:
        return self.error.render(lang)


def refused_import(settings: Settings, name: str, exc: ValidationError) -> ValidationError:
    """Write the report of an import `exc` refused; return the error to raise: the reason and the report."""
    json_path, text_path = write_report(
        settings.home,
        name,
        exc.problems,
        getattr(exc, "notes", []),
        {"refused": True, "code": exc.code, "message": exc.render(cli_language())},
    )
    return ValidationError(
        "cli.import_refused",
        problems=exc.problems,
        reason=ErrorText(exc),
        report=str(text_path),
        report_json=str(json_path),
    )


def prune_old_reports(settings: Settings) -> None:
    """Remove the reports past GRIDKIT_REPORT_RETENTION_DAYS before an import writes another (a folder's listing)."""
    prune_outputs(settings.home, settings.report_retention_days)


def run_import(
    settings: Settings,
    name: str,
    work: Callable[[Session], object],
    describe: Callable[[object, str], list[str]] | None = None,
) -> output.Result:
    """Run an import in one transaction and write its report; a refusal names the report and changes nothing.

    `describe(result, csv_path)` returns the lines saying what was done (default: the summary's pairs), for an
    import whose listed rows (the report's CSV) are the answer to read.
    """
    prune_old_reports(settings)
    try:
        with db.transaction(settings) as session:
            result = work(session)
            summary = result.summary()
    except ValidationError as exc:
        raise refused_import(settings, name, exc) from None
    json_path, text_path = write_report(
        settings.home, name, [], result.notes, summary, rows=getattr(result, "unassigned_rows", None)
    )
    data = dict(summary, report=str(json_path), notes=len(result.notes))
    if describe is None:
        lines = [output.pairs(summary)]
    else:
        data["report_csv"] = str(json_path.with_suffix(".csv"))
        lines = describe(result, data["report_csv"])
    if result.notes:
        lines.append(say("cli.import_notes", count=len(result.notes), report=str(text_path)))
    return output.Result(data, lines=lines)


def problems_result(problems: list[dict]) -> output.Result:
    """Return validation problems as a Result: one line each, exit status 1 if there are any."""
    lines = []
    for p in problems:
        area = f" {p['area_m2']} m²" if p.get("area_m2") is not None else ""
        lines.append(f"{p['type']:20} {','.join(p['codes'])}{area}: {p['message']}")
    lines.append(say("cli.problems", count=len(problems)) if problems else say("cli.no_problems"))
    return output.Result(problems, lines=lines, exit_code=1 if problems else 0)


def responsibility_rows(result: dict) -> list[dict]:
    """Return the departments of a responsibility answer as table rows."""
    return [
        {
            "dept": d["dept"],
            "name": d["dept_name"],
            "version": d["version"],
            "work_cell": d["work_cell"],
            "coordinators": ", ".join(f"{c['name']} {c['phone'] or ''}".strip() for c in d["coordinators"]),
        }
        for d in result["departments"]
    ]


def coordinators_of(result: dict) -> list[dict]:
    """Return every coordinator dict in a responsibility answer (to mask or reveal their phones)."""
    return [c for d in result["departments"] for c in d["coordinators"]]
