"""The CLI as a reader meets it: a closed pipe ends it quietly, and what it prints is in the reader's language."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_closed_pipe_is_no_unexpected_error(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GRIDKIT_HOME": str(tmp_path), "GRIDKIT_LANG": "en"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridkit.cli", "settings"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # as `head` does once it has its lines: the command's first write finds no reader
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, stderr
    assert stderr == "", stderr  # no traceback, no "unexpected error", no "Exception ignored" at exit


def test_generation_timings_are_said_in_the_readers_language():
    from gridkit.grids.generate.report import GenerationReport
    from gridkit.messages import Message

    target = Message("generate.target.area", min=1000, max=5000)
    report = GenerationReport("试点", 1, target, [], timings={"read": 0.19, "generate": 0.35, "total": 0.61})
    chinese, english = report.text("zh-CN").splitlines()[-1], report.text("en").splitlines()[-1]
    assert chinese == "用时：读取 0.19 秒，生成 0.35 秒，合计 0.61 秒", chinese
    assert english == "Timings: read 0.19 s, generate 0.35 s, total 0.61 s", english


def test_an_import_names_its_crs_and_rows_in_the_readers_words(fresh_settings, tmp_path):
    from click.testing import CliRunner

    from gridkit.cli import main

    plain, offset = tmp_path / "entities.csv", tmp_path / "offset.csv"
    plain.write_text("credit_code,name,lon,lat\n91440304MA5058NNX8,润泽文化,114.05,22.54\n", encoding="utf-8")
    offset.write_text("credit_code,name,lon,lat\n91440304MA5075X40D,新洲健康,114.06,22.54\n", encoding="utf-8")
    for path, extra, crs in ((plain, [], "EPSG:4490 (CGCS2000)"), (offset, ["--src-crs", "gcj02"], "GCJ-02")):
        result = CliRunner().invoke(
            main, ["import", "entities", str(path), *extra], obj=fresh_settings, env={"GRIDKIT_LANG": "zh-CN"}
        )
        assert result.exit_code == 0, result.output
        assert f"坐标系 {crs}，" in result.output, result.output
        # No edition yet: the row is kept unassigned, named by its line, not as Python's list "[2]".
        assert "未落格 1，未落格的行 2\n" in result.output and "[" not in result.output, result.output


def test_user_add_names_the_role_in_the_readers_language(fresh_settings):
    from click.testing import CliRunner

    from gridkit.cli import main

    for lang, name, said in (
        ("zh-CN", "ana", "用户 ana（数据分析员）已添加"),
        ("en", "bob", "user bob (analyst) added"),
    ):
        result = CliRunner().invoke(
            main, ["user", "add", name, "--role", "analyst"], obj=fresh_settings, env={"GRIDKIT_LANG": lang}
        )
        assert result.exit_code == 0 and result.output.strip() == said, result.output
