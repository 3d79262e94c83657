"""A refused table import speaks the user's language: the CLI refusal and the written report (zh-CN and en)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import main
from gridkit.io.tables import TableReadError, read_table
from gridkit.models import Building


def _run(settings, lang: str, *args):
    return CliRunner(env={"GRIDKIT_LANG": lang}).invoke(main, list(args), obj=settings, catch_exceptions=False)


def _bad_buildings(path: Path) -> Path:
    """Buildings with a duplicate code (line 4 repeats line 2), bad floors (line 3) and an extra cell (line 5)."""
    path.write_text(
        "code,address,floors,lon,lat\n"
        "B001,园岭街道红荔路1号,6,114.0505,22.5305\n"
        "B002,园岭街道红荔路2号,十二,114.0515,22.5315\n"
        "B001,园岭街道红荔路9号,3,114.0525,22.5325\n"
        "B004,园岭街道红荔路4号,5,114.0535,22.5335,多余\n",
        encoding="utf-8",
    )
    return path


def _report(output: str, marker: str) -> tuple[str, dict, list[list[str]]]:
    """Return the text report, the JSON report and the CSV report's rows a refusal names."""
    text_path = Path(re.search(r"(/\S+?\.txt)", output.split(marker)[1]).group(1))
    text = text_path.read_text(encoding="utf-8-sig")
    document = json.loads(text_path.with_suffix(".json").read_text(encoding="utf-8"))
    with text_path.with_suffix(".csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    return text, document, rows


def test_refused_csv_import_is_reported_in_chinese_and_in_english(fresh_settings, tmp_path):
    path = _bad_buildings(tmp_path / "楼栋.csv")

    zh = _run(fresh_settings, "zh-CN", "import", "buildings", str(path))
    assert zh.exit_code == 1
    assert "未导入任何数据" in zh.output and "3 problems" not in zh.output
    text, document, rows = _report(zh.output, "报告：")
    assert "楼栋.csv 第 3 行：楼层数 '十二' 不是 1 到" in text
    assert "楼栋.csv 第 4 行：楼栋编码 B001 重复出现（首次出现在第 2 行）" in text
    assert "楼栋.csv 第 5 行：有 6 个单元格，但表头只有 5 列" in text
    listed = text.split("问题 problems (3):")[1]
    # The refusal itself is in the reader's language too (the JSON summary keeps the code).
    assert document["summary"]["refused"] is True and "未导入" in document["summary"]["message"]
    assert "appears again" not in listed and "is not a whole number" not in listed
    messages = {r[4]: r[5] for r in rows[1:] if r[0] == "problem"}
    assert messages["duplicate_code"].startswith("楼栋.csv 第 4 行：楼栋编码 B001 重复出现")
    # The JSON keeps the catalogue key and params, and the English sentence.
    duplicate = next(p for p in document["problems"] if p["kind"] == "duplicate_code")
    assert duplicate["key"] == "imports.at" and duplicate["index"] == 4
    assert "B001 appears again (first at line 2)" in duplicate["message"]

    en = _run(fresh_settings, "en", "import", "buildings", str(path))
    assert en.exit_code == 1
    assert "Nothing was imported" in en.output and "3 problems, nothing was imported" in en.output
    text, _, _ = _report(en.output, "Report: ")
    assert "楼栋.csv, line 3: floors '十二' is not a whole number from 1 to" in text
    assert (
        "楼栋.csv, line 4: building code B001 appears again (first at line 2). Each may appear once: "
        "delete or correct one of the rows." in text
    )
    assert "楼栋.csv, line 5: has 6 cells but the header has 5 columns; cell 6 ('多余') has no column." in text
    with Session(db.engine_for(fresh_settings)) as session:
        assert session.scalar(select(func.count()).select_from(Building)) == 0


def test_a_table_that_cannot_be_read_is_refused_in_the_users_language(fresh_settings, tmp_path):
    path = tmp_path / "旧表.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    try:
        read_table(path)
    except TableReadError as exc:
        assert exc.code == "imports.old_xls" and exc.problems[0]["kind"] == "unreadable"
        assert (
            exc.render("zh-CN") == "旧表.xls 是旧版 Excel 文件（.xls）：请在 Excel 或 WPS 中打开，另存为 .xlsx 或 CSV。"
        )
        assert exc.message.startswith("旧表.xls is an old-style Excel file (.xls)")
    else:
        raise AssertionError("an .xls file was read")
    zh = _run(fresh_settings, "zh-CN", "import", "buildings", str(path))
    assert zh.exit_code == 1 and "旧版 Excel 文件" in zh.output
    en = _run(fresh_settings, "en", "import", "buildings", str(path))
    assert en.exit_code == 1 and "old-style Excel file" in en.output
