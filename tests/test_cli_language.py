"""The CLI speaks the reader's language everywhere: every command's --help and every table heading."""

from __future__ import annotations

import json
import re

import click
import pytest
from click.testing import CliRunner
from factories_incidents import IN_C1, OUTSIDE, make_incident_world

from gridkit import db
from gridkit.cli import main
from gridkit.cli.language import CatalogueHelp, command_help_key, option_help_key, option_name
from gridkit.messages import catalogue

CJK = re.compile(r"[\u4e00-\u9fff]")
# Four English words in a row: a sentence of help left untranslated (option metavars are single words).
ENGLISH_SENTENCE = re.compile(r"\b[A-Za-z]+ [a-z]+ [a-z]+ [a-z]+\b")


def every_command():
    """Return (path, command) for every command and group of the click tree, the root first."""
    ctx = click.Context(main)
    found = []

    def walk(command, path):
        found.append((path, command))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))

    walk(main, ())
    return found


COMMANDS = every_command()


def invoke(args, lang, settings=None):
    result = CliRunner().invoke(main, list(args), obj=settings, env={"GRIDKIT_LANG": lang}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_tree_is_walked_whole():
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "dept list", "incident categories list", "import incidents", "report population"} <= paths
    assert len(COMMANDS) > 80


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "gridkit" for p, _ in COMMANDS])
def test_every_help_is_a_catalogue_message_in_both_languages(path, command):
    assert isinstance(command, CatalogueHelp), f"{path} is a plain click command: its help would stay English"
    zh, en = catalogue("zh-CN"), catalogue("en")
    if command.help_message is None:
        key = command_help_key(path)
        assert key in zh and key in en, key
    ctx = click.Context(command, info_name=path[-1] if path else "gridkit")
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            key = option_help_key(path, option_name(param, ctx))
            assert key is not None and key in zh and key in en, (path, param.opts)


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "gridkit" for p, _ in COMMANDS])
def test_help_in_chinese_has_no_english_sentence(path, command):
    chinese = invoke([*path, "--help"], "zh-CN")
    assert chinese.startswith("用法：") and "Options" not in chinese and "Show this message" not in chinese
    usage, _, rest = chinese.partition("\n")  # the usage line names the command: `gridkit incident categories list`
    assert not ENGLISH_SENTENCE.findall(rest), chinese
    english = invoke([*path, "--help"], "en")
    assert english.startswith("Usage: ") and "Show this message and exit." in english
    assert "--lang" in invoke(["--help"], "zh-CN")


def test_lang_option_overrides_the_environment():
    assert invoke(["--lang", "en", "dept", "--help"], "zh-CN").startswith("Usage: ")
    assert invoke(["--lang", "zh", "dept", "--help"], "en").startswith("用法：")
    refused = CliRunner().invoke(main, ["--lang", "fr", "dept", "--help"])
    assert refused.exit_code == 2 and "fr" in refused.output


def table_headings(output: str) -> list[list[str]]:
    """Return the headings of each table in `output` (the line above each dashed rule)."""
    lines = output.splitlines()
    return [
        re.split(r" {2,}", lines[i - 1].strip())
        for i, line in enumerate(lines)
        if i and line.startswith("--") and set(line) <= {"-", " "}
    ]


@pytest.fixture
def world(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_incident_world(session)
    for lon, lat in (IN_C1, OUTSIDE):
        report = ["incident", "report", "--lon", lon, "--lat", lat, "--description", "井盖缺失", "--as", "super1"]
        # Reported long ago: past its accept deadline, so `incident overdue` has a row.
        invoke([str(a) for a in report] + ["--reported-at", "2026-01-01T08:00"], "zh-CN", fresh_settings)
    return fresh_settings


LISTINGS = [
    ["settings"],
    ["admin", "list"],
    ["basegrid", "editions"],
    ["basegrid", "cells"],
    ["dept", "list"],
    ["workgrid", "history", "--dept", "200001"],
    ["coordinator", "list"],
    ["user", "list"],
    ["subjects", "stats"],
    ["subjects", "unassigned"],
    ["incident", "categories", "list"],
    ["incident", "list", "--as", "super1"],
    ["incident", "show", "1", "--as", "super1"],
    ["incident", "overdue", "--as", "super1"],
    ["incident", "evaluate", "--by", "community", "--as", "super1"],
    ["report", "list"],
    ["report", "population"],
    ["assign"],
]


def test_table_headings_are_chinese_and_json_keeps_its_keys(world):
    for args in LISTINGS:
        output = invoke(args, "zh-CN", world)
        tables = table_headings(output)
        assert len(tables) == 1, (args, output)
        assert all(CJK.search(h) for h in tables[0]), (args, tables[0])
    english = invoke(["dept", "list"], "en", world)
    assert table_headings(english) == [["Code", "Name", "Jurisdiction", "Current version", "Work cells"]]
    assert table_headings(invoke(["dept", "list"], "zh-CN", world)) == [
        ["代码", "名称", "辖区", "当前版本", "工作网格"]
    ]
    # Codes with a name in the catalogue (states, roles, kinds, yes/no) are named too; JSON keeps the codes.
    editions = invoke(["basegrid", "editions"], "zh-CN", world)
    assert "已发布" in editions and "published" not in editions
    users = invoke(["user", "list"], "zh-CN", world)
    assert "监督员" in users and "supervisor " not in users and "True" not in users
    cases = invoke(["incident", "list", "--as", "super1"], "zh-CN", world)
    assert "已上报" in cases and "reported" not in cases
    assert json.loads(invoke(["basegrid", "editions", "--json"], "zh-CN", world))[0]["status"] == "published"
    rows = json.loads(invoke(["dept", "list", "--json"], "zh-CN", world))
    assert set(rows[0]) == {"code", "name", "jurisdiction", "current_version", "work_cells"}


def test_totals_and_unset_defaults_are_said_in_the_readers_language(world):
    """The evaluation's total row and an unset setting are named by the catalogue, never in a fixed
    mix of languages nor as Python's None; JSON keeps null and switches as one would set them."""
    evaluation = ["incident", "evaluate", "--by", "community", "--as", "super1"]
    chinese, english = invoke(evaluation, "zh-CN", world), invoke(evaluation, "en", world)
    assert re.search(r"^\*\s+合计\s", chinese.splitlines()[-1]) and "total" not in chinese.lower()
    assert re.search(r"^\*\s+Total\s", english.splitlines()[-1]) and "合计" not in english
    for lang, unset in (("zh-CN", "未设置"), ("en", "unset")):
        listing = invoke(["settings"], lang)
        assert "None" not in listing and "False" not in listing
        assert re.search(rf"^GRIDKIT_DATABASE_URL\s+{unset}\s", listing, re.M), listing
    defaults = {row["variable"]: row["default"] for row in json.loads(invoke(["settings", "--json"], "zh-CN"))}
    assert defaults["GRIDKIT_DATABASE_URL"] is None and defaults["GRIDKIT_SECURE_COOKIES"] == "0"


def test_an_empty_table_says_none_in_the_readers_language(fresh_settings):
    assert invoke(["dept", "list"], "zh-CN", fresh_settings).strip() == "（无）"
    assert invoke(["dept", "list"], "en", fresh_settings).strip() == "(none)"


def test_every_setting_is_explained_in_both_languages():
    """`gridkit settings` explains each setting in the reader's language; the English is config.py's own help."""
    from gridkit.config import describe_settings

    zh, en = catalogue("zh-CN"), catalogue("en")
    for variable, _, help_ in describe_settings():
        assert en[f"cli.setting.{variable}"] == help_, variable
        assert CJK.search(zh[f"cli.setting.{variable}"]), variable
    lines = invoke(["settings"], "zh-CN").splitlines()[2:]
    assert lines and all(CJK.search(line) for line in lines)


@pytest.mark.parametrize(
    "args,chinese,english",
    [
        (["dept", "add"], "错误：缺少参数 'CODE'。", "Error: Missing argument 'CODE'."),
        (["coordinator", "add", "张伟", "--phone", "-"], "错误：缺少选项 '--dept'。", "Missing option '--dept'."),
        (["admin", "list", "--lev"], "错误：没有选项 --lev。（是否想用 --level？）", "(Did you mean --level?)"),
        (["dept", "nope"], "错误：没有命令“nope”。", "Error: No such command 'nope'."),
        (["dept", "add", "1", "2", "3"], "错误：多余的参数（3）。", "Error: Got unexpected extra arguments (3)."),
    ],
)
def test_usage_errors_in_the_readers_language(args, chinese, english):
    zh = CliRunner().invoke(main, args, env={"GRIDKIT_LANG": "zh-CN"})
    assert zh.exit_code == 2 and chinese in zh.output and zh.output.startswith("用法：")
    assert "Error" not in zh.output and "Try " not in zh.output, zh.output
    en = CliRunner().invoke(main, ["--lang", "en", *args], env={"GRIDKIT_LANG": "zh-CN"})
    assert en.exit_code == 2 and english in en.output and en.output.startswith("Usage: "), en.output


def test_a_refusal_says_error_in_the_readers_language(fresh_settings):
    args = ["dept", "add", "12", "综治中心"]
    zh = CliRunner().invoke(main, args, obj=fresh_settings, env={"GRIDKIT_LANG": "zh-CN"})
    assert zh.exit_code == 1 and zh.output.startswith("错误：") and "Error" not in zh.output, zh.output
    en = CliRunner().invoke(main, args, obj=fresh_settings, env={"GRIDKIT_LANG": "en"})
    assert en.exit_code == 1 and en.output.startswith("Error: ") and "must be 6 digits" in en.output


def test_validation_lines_name_their_severity_in_the_readers_language(world):
    draft = json.loads(invoke(["workgrid", "draft", "--dept", "100001", "--json"], "zh-CN", world))
    args = ["workgrid", "validate", "--draft", str(draft["id"])]
    zh = CliRunner().invoke(main, args, obj=world, env={"GRIDKIT_LANG": "zh-CN"})
    assert zh.exit_code == 1 and zh.output.startswith("错误  unassigned_base_cells: "), zh.output
    en = CliRunner().invoke(main, args, obj=world, env={"GRIDKIT_LANG": "en"})
    assert en.exit_code == 1 and en.output.startswith("error  unassigned_base_cells: "), en.output


def test_version_in_the_readers_language():
    from importlib.metadata import version

    number = version("gridkit")
    assert CliRunner().invoke(main, ["--version"], env={"GRIDKIT_LANG": "zh-CN"}).output == f"gridkit 版本 {number}\n"
    english = CliRunner().invoke(main, ["--lang", "en", "--version"], env={"GRIDKIT_LANG": "zh-CN"})
    assert english.exit_code == 0 and english.output == f"gridkit, version {number}\n"


def test_counts_by_state_are_named_in_the_readers_language():
    # The demo's summary line: its cases per state were a Python dict of English codes in zh-CN.
    from gridkit.cli import output

    counts = {"incidents": 150, "incident_states": {"reported": 15, "closed": 60}}
    # Punctuated as the catalogue says: full-width in Chinese (it was ", " "(" "; " in both languages).
    assert output.pairs(counts) == "事件 150，事件状态 （已上报 15；已结案 60）"
    english = CliRunner().invoke(
        click.Command("pairs", callback=lambda: click.echo(output.pairs(counts))), env={"GRIDKIT_LANG": "en"}
    )
    assert english.output == "Incidents 150, Incident states (reported 15; closed 60)\n", english.output


@pytest.mark.parametrize(
    "args,chinese,english",
    [
        (
            ["incident", "list", "--state", "bogus"],
            "'--state' 的值无效：'bogus' 不是可选值之一：'reported', ",
            "'bogus' is not one of 'reported', ",
        ),
        (["incident", "list", "--limit", "ten"], "'--limit' 的值无效：'ten' 不是有效的整数。", "not a valid integer."),
        (["whois", "东经", "22.5"], "'LON' 的值无效：'东经' 不是有效的数字。", "'东经' is not a valid float."),
        (
            ["import", "incidents", "/nowhere/x.csv"],
            "没有文件或文件夹 '/nowhere/x.csv'：请检查路径和文件名。",
            "'/nowhere/x.csv' does not exist.",
        ),
        (["db", "backup", "/"], "'/' 是目录，不是文件。", "File '/' is a directory."),
    ],
)
def test_invalid_values_are_explained_in_the_readers_language(args, chinese, english):
    # click's own reasons (its types': choice, integer, float, path) were English in zh-CN.
    zh = CliRunner().invoke(main, args, env={"GRIDKIT_LANG": "zh-CN"})
    assert zh.exit_code == 2 and chinese in zh.output, zh.output
    assert not ENGLISH_SENTENCE.findall(zh.output.splitlines()[-1]) and " is " not in zh.output, zh.output
    en = CliRunner().invoke(main, ["--lang", "en", *args], env={"GRIDKIT_LANG": "zh-CN"})
    assert en.exit_code == 2 and english in en.output, en.output


def test_a_bad_time_is_refused_in_the_readers_language(world):
    args = ["report", "population", "--at", "去年春天"]
    zh = CliRunner().invoke(main, args, obj=world, env={"GRIDKIT_LANG": "zh-CN"})
    assert zh.exit_code == 1 and zh.output.startswith("错误：") and "去年春天" in zh.output, zh.output
    assert not re.search(r"[A-Za-z]{4,}", zh.output.replace("ISO-8601", "")), zh.output
    en = CliRunner().invoke(main, ["--lang", "en", *args], obj=world, env={"GRIDKIT_LANG": "zh-CN"})
    assert en.exit_code == 1 and en.output.startswith("Error: ") and "去年春天" in en.output, en.output


def test_help_headings_are_punctuated_as_the_catalogue_says():
    # click writes "选项:" with an ASCII colon; Chinese text takes the full-width one.
    chinese = invoke(["dept", "--help"], "zh-CN")
    assert "\n选项：\n" in chinese and "\n命令：\n" in chinese, chinese
    assert not re.search(r"[\u4e00-\u9fff]:$", chinese, re.M), chinese
    english = invoke(["dept", "--help"], "en")
    assert "\nOptions:\n" in english and "\nCommands:\n" in english, english


def test_db_status_names_its_values_in_the_readers_language(fresh_settings):
    # Each value is named by its column, as tables and `pairs` do: the mode was the code "external" in zh-CN.
    zh = invoke(["db", "status"], "zh-CN", fresh_settings)
    assert re.search(r"^模式 +外部$", zh, re.M) and re.search(r"^可连接 +是$", zh, re.M), zh
    assert re.search(r"^当前结构版本 +\d{8}_\w+$", zh, re.M) and "external" not in zh, zh
    en = invoke(["db", "status"], "en", fresh_settings)
    assert re.search(r"^Mode +external$", en, re.M) and re.search(r"^Reachable +yes$", en, re.M), en
    assert json.loads(invoke(["db", "status", "--json"], "zh-CN", fresh_settings))["mode"] == "external"


def test_a_confirmation_asks_and_gives_up_in_the_readers_language(fresh_settings, tmp_path):
    # click.confirm answered a wrong answer with "Error: invalid input" and a no with "Aborted!", in English.
    backup = tmp_path / "old.dump"
    backup.write_bytes(b"not read: the answer is no")
    args = ["db", "restore", str(backup)]
    zh = CliRunner().invoke(main, args, obj=fresh_settings, input="也许\nn\n", env={"GRIDKIT_LANG": "zh-CN"})
    assert zh.exit_code == 1, zh.output
    assert "继续？（y 继续，N 取消）：" in zh.output and "请回答 y（继续）或 n（取消）。" in zh.output, zh.output
    assert zh.output.rstrip().endswith("已取消。") and not re.search(r"Error|Abort|\[y/N\]", zh.output), zh.output
    closed = CliRunner().invoke(main, args, obj=fresh_settings, input="", env={"GRIDKIT_LANG": "zh-CN"})
    assert closed.exit_code == 1 and closed.output.rstrip().endswith("已取消。"), closed.output  # end of input
    en = CliRunner().invoke(main, ["--lang", "en", *args], obj=fresh_settings, input="maybe\nn\n")
    assert en.exit_code == 1 and "[y/N]: " in en.output and "Error: invalid input" in en.output, en.output
    assert en.output.rstrip().endswith("Aborted!"), en.output


@pytest.mark.parametrize(
    "args,chinese,english",
    [
        (
            ["incident", "list", "--state"],
            "错误：选项 '--state' 需要一个值。",
            "Error: Option '--state' requires an argument.",
        ),
        (
            ["dept", "list", "--json=yes"],
            "错误：选项 '--json' 不接受值。",
            "Error: Option '--json' does not take a value.",
        ),
    ],
)
def test_option_misuse_in_the_readers_language(args, chinese, english):
    # click's parser says these in English whatever the language (and without a usage line).
    zh = CliRunner().invoke(main, args, env={"GRIDKIT_LANG": "zh-CN"})
    assert zh.exit_code == 2 and zh.output.strip() == chinese, zh.output
    en = CliRunner().invoke(main, ["--lang", "en", *args], env={"GRIDKIT_LANG": "zh-CN"})
    assert en.exit_code == 2 and en.output.strip() == english, en.output
