"""Report files: CSV (the main table), XLSX (a header block, one sheet per table), HTML (tables and
an inline SVG chart that works offline). Labels come from the message catalogue in `lang`.
"""

from __future__ import annotations

import csv
import html
import os
from pathlib import Path

from gridkit import messages
from gridkit.errors import Conflict, ValidationError
from gridkit.io.spreadsheet import csv_row, xlsx_row
from gridkit.reports.units import ReportResult, Section
from gridkit.rules import local_tz

REPORT_FORMATS = ("csv", "xlsx", "html")
CHART_BARS = 40  # the chart shows the largest units; the table shows all


def label(column: str, lang: str) -> str:
    """Return the column's heading in `lang` (the key itself when none is catalogued)."""
    key = f"report.col.{column}"
    text = messages.render(key, lang)
    return column if text == key else text


def cell(row: dict, column: str, lang: str):
    """Return the row's value of `column` as tables and files show it: a flag as yes or no in `lang`."""
    value = row.get(column)
    if isinstance(value, bool):
        return messages.render("report.yes" if value else "report.no", lang)
    return value


def table_rows(section: Section, lang: str) -> list[dict]:
    """Return the section's rows, then its total row (named in `lang`, code empty) when it has one."""
    if section.total is None:
        return section.rows
    total = dict(section.total, code=None)
    named = next((c for c in ("name", "category", "coordinator") if c in section.columns), section.columns[0])
    total[named] = messages.render(section.total_label, lang)
    return [*section.rows, total]


def header_block(result: ReportResult, lang: str) -> list[tuple[str, str]]:
    """Return the (label, value) lines above a report: title, area, grouping, period, date, source."""
    p = result.params
    r = lambda key, **kw: messages.render(key, lang, **kw)
    area = f"{p['area_name']} ({p['area']})" if p.get("area") else r("report.head.whole_city")
    period = f"{p.get('from', '…')} — {p.get('to', '…')}" if p.get("from") or p.get("to") else r("report.head.all_time")
    lines = [
        (r("report.head.title"), r(f"report.{result.name}.title")),
        (r("report.head.area"), area),
        (r("report.head.by"), r(f"report.by.{p['by']}") + (f" · {p['dept']} v{p['version']}" if p.get("dept") else "")),
        (r("report.head.period"), period),
        (r("report.head.date"), result.generated_at.astimezone(local_tz()).strftime("%Y-%m-%d %H:%M")),
        # The edition and work grid version counted are those in force at --at (default: now).
        (r("report.head.as_of"), p.get("at") or r("report.head.now")),
        (r("report.head.source"), r("report.head.source_value", edition=p.get("edition", "-"))),
    ]
    if p.get("small_counts"):  # gridkit.reports.small_counts: say why some counts read "<3"
        lines.append((r("report.head.note"), r("report.small_counts_note", shown=p["small_counts"])))
    return lines


def _check_output(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise Conflict("export.exists", path=str(path))
    parent = path.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError("export.not_writable", path=str(path), folder=str(parent))


def write_report_file(
    result: ReportResult,
    path: Path | str,
    fmt: str,
    *,
    lang: str = "zh-CN",
    force: bool = False,
    encoding: str = "utf-8",
) -> Path:
    """Write `result` to `path` as csv, xlsx or html (via a temporary name renamed at the end)."""
    if fmt not in REPORT_FORMATS:
        raise ValidationError("export.unknown_format", format=fmt, formats=", ".join(REPORT_FORMATS))
    path = Path(path)
    _check_output(path, force)
    tmp = path.with_name(f".{path.stem}.part{os.getpid()}{path.suffix}")
    try:
        if fmt == "csv":
            _write_csv(result, tmp, lang, encoding)
        elif fmt == "xlsx":
            _write_xlsx(result, tmp, lang)
        else:
            tmp.write_text(report_html(result, lang), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_csv(result: ReportResult, path: Path, lang: str, encoding: str) -> None:
    """The main table under the header block the XLSX sheets have (title, area, period, dates,
    edition), a blank line between, columns headed in `lang` from the catalogue."""
    section = result.main
    with open(path, "w", newline="", encoding="utf-8-sig" if encoding == "utf-8" else encoding) as fh:
        out = csv.writer(fh)
        for name, value in header_block(result, lang):
            out.writerow(csv_row([name, value]))
        out.writerow([])
        out.writerow([label(c, lang) for c in section.columns])
        for row in table_rows(section, lang):
            out.writerow(csv_row(cell(row, c, lang) for c in section.columns))


def _write_xlsx(result: ReportResult, path: Path, lang: str) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for i, section in enumerate(result.sections):
        sheet = book.create_sheet(messages.render(section.title, lang)[:31].replace("/", "-") or f"sheet{i + 1}")
        for name, value in header_block(result, lang):
            sheet.append(xlsx_row(sheet, [name, value]))
            sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
        sheet["B1"] = messages.render(section.title, lang)
        sheet["B1"].font = Font(bold=True, size=14)
        sheet.append([])
        sheet.append([label(c, lang) for c in section.columns])
        head = sheet.max_row
        for heading in sheet[head]:
            heading.font = Font(bold=True)
        for row in table_rows(section, lang):
            sheet.append(xlsx_row(sheet, [cell(row, c, lang) for c in section.columns]))
        if section.total is not None:
            for written in sheet[sheet.max_row]:
                written.font = Font(bold=True)
        sheet.freeze_panes = sheet.cell(row=head + 1, column=1)
        for col, name in enumerate(section.columns, start=1):
            width = max([len(str(label(name, lang))) * 2] + [len(str(r.get(name) or "")) for r in section.rows[:200]])
            sheet.column_dimensions[sheet.cell(row=head, column=col).column_letter].width = min(max(width, 8), 40)
    book.save(path)


def chart_svg(section: Section, lang: str, *, width: int = 760) -> str:
    """Return an inline SVG bar chart of the section's chart column per row (largest first)."""
    if not section.chart or not section.rows:
        return ""
    key = section.columns[0]
    name_key = next((c for c in ("name", "category", "coordinator") if c in section.columns), None)
    data = [
        (str(r.get(key)), str(r.get(name_key) or "") if name_key else "", _bar_value(r.get(section.chart)))
        for r in section.rows
    ]
    data = sorted(data, key=lambda d: -d[2])[:CHART_BARS]
    top = max((abs(v) for _, _, v in data), default=0) or 1
    bar, gap, left = 18, 4, 260
    height = len(data) * (bar + gap) + 30
    title = html.escape(label(section.chart, lang))
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="report-chart" role="img" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{title}">'
        ),
        f'<text x="{left}" y="14" font-size="12" font-weight="bold">{title}</text>',
    ]
    for i, (code, name, value) in enumerate(data):
        y = 22 + i * (bar + gap)
        w = max(1, int((width - left - 70) * abs(value) / top)) if value else 0
        text = html.escape(f"{name} {code}".strip()[:36])
        shown = f"{value:g}"
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" font-size="11" text-anchor="end">{text}</text>'
            f'<rect x="{left}" y="{y}" width="{w}" height="{bar}" fill="#2b6cb0">'
            f"<title>{text}: {shown}</title></rect>"
            f'<text x="{left + w + 4}" y="{y + 13}" font-size="11">{shown}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bar_value(value) -> float:
    """Return a row's value as its bar draws it: a count hidden by the small-count rule ("<3") as none."""
    return float(value) if isinstance(value, int | float) else 0.0


def section_table_html(section: Section, lang: str, limit: int | None = None) -> str:
    """Return an HTML table of a section (the first `limit` rows, all if None)."""
    rows = section.rows if limit is None else section.rows[:limit]
    if section.total is not None:
        rows = [*rows, table_rows(section, lang)[-1]]
    head = "".join(f"<th>{html.escape(label(c, lang))}</th>" for c in section.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{'' if r.get(c) is None else html.escape(str(cell(r, c, lang)))}</td>" for c in section.columns)
        + "</tr>"
        for r in rows
    )
    return f'<table class="report"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def report_html(result: ReportResult, lang: str) -> str:
    """Return a standalone HTML page of the report (no external files: it works offline)."""
    title = html.escape(messages.render(f"report.{result.name}.title", lang))
    head = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in header_block(result, lang)
    )
    body = []
    for section in result.sections:
        body.append(f"<h2>{html.escape(messages.render(section.title, lang))}</h2>")
        body.append(chart_svg(section, lang))
        body.append(section_table_html(section, lang))
    style = (
        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}table.report td{text-align:right}"
        "table.head th{text-align:left;background:#f3f3f3}"
    )
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
        f'<style>{style}</style></head><body><h1>{title}</h1><table class="head">{head}</table>'
        + "".join(body)
        + "</body></html>"
    )
