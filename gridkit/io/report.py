"""Import reports: every problem and note of an import, as JSON and as readable text, under GRIDKIT_HOME/reports."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from gridkit.io.problems import problem_count, problem_text, unlisted_problems
from gridkit.io.spreadsheet import csv_row
from gridkit.messages import DEFAULT_LANGUAGE, Message, normalise
from gridkit.pii import private_folder
from gridkit.rules import local_now

__all__ = ["write_report", "ADVICE"]

# What to do, per problem kind, in the coordinator's language; the English message says what is wrong.
ADVICE = {
    "not_found": "检查文件路径。",
    "empty_file": "重新导出该图层。",
    "unreadable": "确认文件是 Shapefile、GeoPackage 或 GeoJSON，并重新导出。",
    "no_shapefile": "给出 .shp、GeoPackage 或 GeoJSON 文件的路径。",
    "no_layer_in_zip": "压缩包内只放一个图层（.shp 及其 .shx/.dbf/.prj）。",
    "bad_zip": "重新压缩该图层。",
    "unsafe_zip": "压缩包含有绝对路径、'..' 或符号链接，已拒绝：直接压缩图层文件本身。",
    "zip_too_large": "解压后导入。",
    "no_layers": "重新导出该图层。",
    "no_such_layer": "用 --layer 指定列出的图层之一。",
    "several_layers": "用 --layer 指定要导入的图层。",
    "no_geometry": "这是普通表格，不是地图图层：导出带面要素的 Shapefile/GeoPackage/GeoJSON。",
    "no_features": "文件没有要素：确认导出了正确的图层。",
    "unknown_encoding": "使用 UTF-8、GB18030、GBK 或 BIG5 等编码名。",
    "undecodable_text": "用 --encoding 指定文件真实编码，或在源数据中改正该文字。",
    "mixed_encoding": "将文件统一另存为一种编码（推荐 UTF-8）。",
    "cpg_mismatch": "用 --encoding 指定文字的真实编码，或改正 .cpg 文件。",
    "no_crs": "用 --src-crs 指定坐标系（如 EPSG:4490、EPSG:4547 或 gcj02）。",
    "bad_src_crs": "用 EPSG 代码、PROJ 字符串、WKT 或 gcj02 指定坐标系。",
    "axes_swapped": "经纬度顺序颠倒：以经度为 X、纬度为 Y 重新导出。",
    "outside_china": "坐标在中国范围以外：检查坐标系（.prj 或 --src-crs）或删除该要素。",
    "null_geometry": "补画该要素的图形，或删除该要素。",
    "empty_geometry": "补画该要素的图形，或删除该要素。",
    "not_polygon": "此处只能导入面图层。",
    "invalid_geometry": "图形无效且无法修复：重新绘制。",
    "degenerate_polygon": "面积为零的面：重新绘制为有面积的面，或删除该要素。",
    "multipart": "拆分为各自编码的单个面，或合并各部分。",
    "missing_field": "用正确的字段名（见原因中列出的字段）重新指定。",
    "missing_code": "填写编码。",
    "bad_code": "按编码规则改正编码。",
    "wrong_level": "按该级别分别导入，或从文件中删除该要素。",
    "duplicate_code": "每个编码只能出现一次：改正或删除重复要素。",
    "duplicate_geometry": "同一网格画了两次：删除其中一个。",
    "exists": "编码已在数据库中：如需更新，使用替换（--replace）。",
    "level_mismatch": "数据库中该编码属于另一级别：核对编码。",
    "missing_parent": "先导入上级行政区划，或在同一文件中包含它。",
    "bad_parent": "改正上级编码。",
    "code_prefix": "编码须以上级（社区）编码开头：改正编码或上级字段。",
    "missing_name": "填写名称。",
    "name_too_long": "名称不超过 100 个字符。",
    "missing_community": "先导入该社区（gridkit admin import --level community）。",
    "not_a_community": "该编码不是社区：核对编码。",
    "edition_exists": "换一个版本名称（--edition）。",
    "no_base_cell": "沿基础网格重新绘制该工作网格，或调低 --share。",
    "outside_jurisdiction": "核对该面的位置和坐标系，或从文件中删除。",
    # notes
    "geometry_repaired": "已自动修复，请在地图上核对。",
    "ring_closed": "已自动闭合，请在地图上核对。",
    "parts_dropped": "已删除非面部分，请核对。",
    "z_dropped": "已去除 Z 值。",
    "m_dropped": "已去除 M 值。",
    "encoding": "请抽查几个名称是否正确。",
    "crs_default": "如数据来自高德/腾讯地图（GCJ-02），请用 --src-crs gcj02 重新导入。",
    "crs_overridden": "已按指定坐标系处理。",
    "gcj02": "已由 GCJ-02 转换为 CGCS2000。",
    "wgs84_as_cgcs2000": "WGS 84 与 CGCS2000 相差仅厘米级，按相同处理。",
    "field_case": "已按大小写不同的同名字段读取。",
    "partly_outside": "请在地图上核对该工作网格的边界。",
    "work_cell_removed": "如需保留，在文件中加入该工作网格后重新导入。",
    "below_share": "将其放入某个工作网格（gridkit workgrid assign），或说明原因后排除（gridkit workgrid exclude）。",
    "in_no_polygon": "将其放入某个工作网格（gridkit workgrid assign），或说明原因后排除（gridkit workgrid exclude）。",
}


def write_report(
    home,
    name: str,
    problems: list[dict],
    notes: list[dict],
    summary: dict,
    rows: list[dict] | None = None,
    lang: str | None = None,
) -> tuple[Path, Path]:
    """Write GRIDKIT_HOME/reports/<timestamp>-<name>.json, .txt and .csv and return the JSON and text paths.

    Problems and notes with a catalogue key are written in `lang` (default GRIDKIT_LANG, else zh-CN) in
    the text and CSV; the JSON keeps each one's key, params and English message.

    The CSV has one line per problem and note (then per row of `rows`, e.g. the unassigned rows of
    an import: row, id, code; a row may say what it is with "what" and "kind" and carry a message as a
    problem does, e.g. the split base cells of a work cell import), to sort and filter in Excel. Text and
    CSV are UTF-8 with a byte order mark, so that Windows Notepad and Excel show the Chinese right.
    """
    folder = Path(home) / "reports"
    private_folder(folder)  # the rows an import refused, with what was wrong in them
    now = local_now()
    safe = re.sub(r"[^\w.-]+", "_", str(name)).strip("._") or "report"
    stem = f"{now:%Y%m%d-%H%M%S}-{safe}"
    base, n = folder / stem, 1
    while base.with_suffix(".json").exists() or base.with_suffix(".txt").exists():
        n += 1
        base = folder / f"{stem}-{n}"
    json_path, text_path = base.with_suffix(".json"), base.with_suffix(".txt")
    document = {
        "name": name,
        "created_at": now.isoformat(timespec="seconds"),
        "result": "refused" if problems else "ok",
        "summary": summary,
        "problems": problems,
        "problems_found": problem_count(problems),
        "problems_unlisted": unlisted_problems(problems),
        "notes": notes,
    }
    lang = normalise(lang or os.environ.get("GRIDKIT_LANG")) or DEFAULT_LANGUAGE
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n"
    _write_all(
        [
            (json_path, lambda tmp: tmp.write_text(body, encoding="utf-8")),
            (text_path, lambda tmp: tmp.write_text(_text(document, lang), encoding="utf-8-sig")),
            (base.with_suffix(".csv"), lambda tmp: _write_csv(tmp, document, rows or [], lang)),
        ]
    )
    return json_path, text_path


def _write_all(files: list) -> None:
    """Write each (path, write(tmp)) under a hidden temporary name, then rename them all; on any failure
    (a full disk) neither a part written nor the report's other files stay (its names were new)."""
    temps = [path.with_name(f".{path.name}.part{os.getpid()}") for path, _ in files]
    try:
        for (_, write), tmp in zip(files, temps, strict=True):
            write(tmp)
        for (path, _), tmp in zip(files, temps, strict=True):
            os.replace(tmp, path)
    except BaseException:
        for (path, _), tmp in zip(files, temps, strict=True):
            tmp.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        raise


def _write_csv(path: Path, document: dict, rows: list[dict], lang: str) -> None:
    """One line per problem, note and listed row: what, row (index), code, field, kind, message, advice; then
    one line per kind of the problems found but not listed one by one (their count in the message column)."""
    problems, notes = document["problems"], document["notes"]
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f)
        out.writerow(["what", "row", "code", "field", "kind", "message", "advice"])
        for what, items in (("problem", problems), ("note", notes)):
            for item in items:
                kind = item.get("kind")
                advice = ADVICE.get(kind) or _subject_advice().get(kind) or ""
                out.writerow(
                    csv_row(
                        [
                            what,
                            item.get("index"),
                            item.get("code"),
                            item.get("field"),
                            kind,
                            _one_line(problem_text(item, lang)),
                            advice,
                        ]
                    )
                )
        for kind, count in document["problems_unlisted"].items():
            out.writerow(csv_row(["problem", None, None, None, kind, _unlisted_text(kind, count, lang), None]))
        for row in rows:  # a subject import's unassigned rows (row, code), or listed rows that say what they are
            what, kind = row.get("what", "unassigned"), row.get("kind", "unassigned")
            message = _one_line(problem_text(row, lang)) if row.get("key") or row.get("message") else None
            index = row.get("row", row.get("index"))
            out.writerow(csv_row([what, index, row.get("code"), row.get("field"), kind, message, ADVICE.get(kind)]))


def _one_line(value) -> str:
    return " ".join(str(value).split())


def _line(item: dict, lang: str) -> str:
    index = item.get("index")
    parts = [
        f"要素 feature {index if index is not None else '-'}",
        f"编码 code {item.get('code') or '-'}",
        f"字段 field {item.get('field') or '-'}",
        f"原因 reason [{item.get('kind', '')}] {_one_line(problem_text(item, lang))}",
    ]
    advice = ADVICE.get(item.get("kind")) or _subject_advice().get(item.get("kind"))
    if advice:
        parts.append(f"处理 to do: {advice}")
    return " | ".join(parts)


def _text(document: dict, lang: str) -> str:
    problems, notes = document["problems"], document["notes"]
    result = (
        f"已拒绝，未写入任何数据 refused, nothing was written: {document['problems_found']} 个问题 problems"
        if problems
        else "成功 ok"
    )
    lines = [
        f"gridkit 报告 report: {document['name']}",
        f"时间 time: {document['created_at']}",
        f"结果 result: {result}; {len(notes)} 条说明 notes",
    ]
    for key, value in document["summary"].items():
        lines.append(f"{key}: {_one_line(value)}")
    lines.append("")
    lines.append(f"问题 problems ({document['problems_found']}):")
    lines.extend(_line(p, lang) for p in problems)
    lines.extend(_unlisted_text(kind, count, lang) for kind, count in document["problems_unlisted"].items())
    if not problems:
        lines.append("无 none")
    lines.append("")
    lines.append(f"说明 notes ({len(notes)}):")
    lines.extend(_line(n, lang) for n in notes)
    if not notes:
        lines.append("无 none")
    return "\n".join(lines) + "\n"


def _unlisted_text(kind: str, count: int, lang: str) -> str:
    """Return the line saying how many problems of `kind` were found beyond those listed one by one."""
    return Message("imports.problems_unlisted", count=count, kind=kind).render(lang)


def _subject_advice() -> dict:
    """Return the advice for problem kinds that only subject imports raise."""
    from gridkit.io.subjects import SUBJECT_ADVICE

    return SUBJECT_ADVICE
