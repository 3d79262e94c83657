"""`gridkit incident …` and `gridkit import components|incidents` through CliRunner on a fresh database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from factories_incidents import IN_C1, IN_C2, OUTSIDE, PNG, W1, make_incident_world
from sqlalchemy import func, select

from gridkit import db
from gridkit.cli import main
from gridkit.models import AuditLog, Component, Incident, IncidentHistory


def run(settings, *args, user=None, lang="en"):
    env = {"GRIDKIT_LANG": lang}
    if user:
        env["GRIDKIT_USER"] = user
    return CliRunner().invoke(main, [str(a) for a in args], obj=settings, env=env, catch_exceptions=False)


def ok(settings, *args, user="super1"):
    result = run(settings, *args, "--json", user=user)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def read(settings, query):
    with db.session_factory(db.engine_for(settings))() as session:
        return query(session)


@pytest.fixture
def cli(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_incident_world(session)
    return fresh_settings


def test_categories_list(cli):
    rows = ok(cli, "incident", "categories", "list")
    first = next(r for r in rows if r["code"] == "0101")
    assert first["department"] == "200001" and first["time_limit_hours"] == 8
    assert set(first) >= {"code", "kind", "name", "major_code", "department", "time_limit_hours"}
    assert first["step_hours"] == {"accept": 2, "classify": 2, "dispatch": 4, "handle": 8, "verify": 8}


def test_the_workflow_through_the_cli(cli, tmp_path):
    made = ok(
        cli,
        "incident",
        "report",
        "--lon",
        IN_C1[0],
        "--lat",
        IN_C1[1],
        "--description",
        "井盖缺失",
        "--category",
        "0101",
        "--key",
        "k-1",
        user="coord1",
    )
    again = ok(
        cli,
        "incident",
        "report",
        "--lon",
        IN_C1[0],
        "--lat",
        IN_C1[1],
        "--description",
        "井盖缺失",
        "--category",
        "0101",
        "--key",
        "k-1",
        user="coord1",
    )
    assert again["id"] == made["id"] and again["created"] is False
    case = str(made["id"])
    ok(cli, "incident", "accept", case)
    shown = ok(cli, "incident", "classify", case, "--category", "0101", "--severity", "high")
    assert set(shown["deadlines"]) == {"accept", "classify", "dispatch", "handle", "verify"}
    shown = ok(cli, "incident", "dispatch", case)
    assert shown["work_cell"] == W1 and shown["department"] == "200001"
    photo = tmp_path / "done.png"
    photo.write_bytes(PNG)
    ok(cli, "incident", "feedback", case, "--note", "已补装", "--attach", photo, user="coord1")
    ok(cli, "incident", "close", made["code"])
    shown = ok(cli, "incident", "show", case)
    assert shown["state"] == "closed" and shown["coordinator"]["name"] == "张三"
    assert [h["to"] for h in shown["history"]] == [
        "reported",
        "accepted",
        "classified",
        "dispatched",
        "fed_back",
        "closed",
    ]
    assert {"state", "category", "base_cell", "work_cell", "coordinator", "deadlines", "overdue", "history"} <= set(
        shown
    )
    assert shown["history"][-1]["actor"] == "super1"
    assert len(shown["attachments"]) == 1
    assert (cli.home / "attachments" / case).is_dir()
    # Every output carrying the coordinator's name and phone or the reporter in clear is one audit row.
    reads = read(
        cli,
        lambda s: [
            (a.actor, a.object_type, a.detail["incident"], a.detail["detail_fields"])
            for a in s.scalars(select(AuditLog).where(AuditLog.action == "personal_data.read").order_by(AuditLog.id))
        ],
    )
    assert reads[-1] == ("super1", "incident", made["code"], ["name", "phone", "reporter"])
    assert {r[0] for r in reads} == {"super1", "coord1"} and len(
        reads
    ) == 6  # accept, classify (the reporter), dispatch, feedback, close, show
    listed = ok(cli, "incident", "list", "--state", "closed")
    assert listed["total"] == 1 and listed["items"][0]["code"] == made["code"]


def test_illegal_transition_exits_non_zero_and_changes_nothing(cli):
    made = ok(cli, "incident", "report", "--lon", IN_C1[0], "--lat", IN_C1[1], "--description", "x")
    result = run(cli, "incident", "close", made["id"], user="super1")
    assert result.exit_code == 1
    assert "is reported" in result.output and "accept" in result.output
    zh = run(cli, "incident", "close", made["id"], user="super1", lang="zh-CN")
    assert "已上报" in zh.output and "不能核查结案" in zh.output
    assert read(cli, lambda s: s.scalar(select(func.count()).select_from(IncidentHistory))) == 1


def test_actor_is_required_and_checked(cli):
    made = ok(cli, "incident", "report", "--lon", IN_C1[0], "--lat", IN_C1[1], "--description", "x")
    result = run(cli, "incident", "accept", made["id"])
    assert result.exit_code == 1 and "--as" in result.output
    result = run(cli, "incident", "accept", made["id"], "--as", "coord1")
    assert result.exit_code == 1 and "may not accept" in result.output
    result = run(cli, "incident", "accept", made["id"], "--as", "street_super")
    assert result.exit_code == 1 and "outside" in result.output
    assert read(cli, lambda s: s.get(Incident, made["id"]).status) == "reported"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--category", "9999"], "Category 9999 does not exist"),
        (["--reported-at", "2999-01-01"], "lies in the future"),
    ],
)
def test_bad_reports(cli, args, message):
    result = run(
        cli, "incident", "report", "--lon", IN_C1[0], "--lat", IN_C1[1], "--description", "x", *args, user="super1"
    )
    assert result.exit_code == 1 and message in result.output
    assert read(cli, lambda s: s.scalar(select(func.count()).select_from(Incident))) == 0


def test_unassigned_overdue_and_evaluate(cli):
    ok(cli, "incident", "report", "--lon", OUTSIDE[0], "--lat", OUTSIDE[1], "--description", "界外")
    ok(
        cli,
        "incident",
        "report",
        "--lon",
        IN_C2[0],
        "--lat",
        IN_C2[1],
        "--description",
        "旧事",
        "--reported-at",
        "2026-01-01T08:00",
    )
    assert ok(cli, "incident", "list", "--unassigned")["total"] == 1
    overdue = ok(cli, "incident", "overdue")
    assert overdue["per_step"] == {"accept": 1} and len(overdue["escalation"]) == 1
    result = ok(cli, "incident", "evaluate", "--by", "community", "--from", "2025-01-01")
    assert result["total"]["cases"] == 2 and result["total"]["backlog"] == 2
    text = run(cli, "incident", "evaluate", "--by", "community", user="super1")
    assert text.exit_code == 0 and "On-time rate" in text.output


def test_import_components_and_report_at_one(cli, tmp_path):
    path = tmp_path / "components.csv"
    path.write_text(
        "code,name,lon,lat\n"
        f"4403040101000001,上水井盖,{IN_C1[0]},{IN_C1[1]}\n"
        f"4403040108000001,路灯,{IN_C2[0]},{IN_C2[1]}\n",
        encoding="utf-8",
    )
    result = ok(cli, "import", "components", path)
    assert result["imported"] == 2 and result["assigned"] == 2
    made = ok(cli, "incident", "report", "--component", "4403040101000001", "--description", "井盖响")
    shown = ok(cli, "incident", "show", made["id"])
    assert shown["category"]["code"] == "0101" and abs(shown["lon"] - IN_C1[0]) < 1e-9
    bad = run(cli, "incident", "report", "--component", "4403040101999999", "--description", "x", user="super1")
    assert bad.exit_code == 1 and "does not exist" in bad.output


def test_import_components_refuses_bad_rows(cli, tmp_path):
    path = tmp_path / "components.csv"
    path.write_text(
        "code,lon,lat\n"
        f"4403040101000001,{IN_C1[0]},{IN_C1[1]}\n"
        f"4403040199000001,{IN_C1[0]},{IN_C1[1]}\n"  # category 0199 unknown
        f"44030401010001,{IN_C1[0]},{IN_C1[1]}\n"  # 14 digits
        f"4403040101000001,{IN_C1[0]},{IN_C1[1]}\n",
        encoding="utf-8",
    )  # twice
    result = run(cli, "import", "components", path, user="super1")
    assert result.exit_code == 1 and "3 problems" in result.output
    report = next((cli.home / "reports").glob("*components-import.txt")).read_text(encoding="utf-8-sig")
    assert "line 3" in report and "line 4" in report and "line 5" in report
    assert read(cli, lambda s: s.scalar(select(func.count()).select_from(Component))) == 0


def test_import_historic_incidents(cli, tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps(
            {
                "source": "hotline",
                "code_prefix": "HL",
                "columns": {
                    "external_id": "编号",
                    "category": "类型",
                    "reported_at": "上报时间",
                    "closed_at": "结案时间",
                    "lon": "经度",
                    "lat": "纬度",
                    "description": "内容",
                },
                "timezone": "Asia/Shanghai",
                "categories": {"垃圾": "E0101", "井盖": "0101"},
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    rows = [
        "编号,类型,上报时间,结案时间,经度,纬度,内容",
        f"A1,垃圾,2026-10-01 08:00,2026-10-01 12:00,{IN_C1[0]},{IN_C1[1]},路边垃圾",
        f"A2,井盖,2026-10-02 09:30,,{IN_C2[0]},{IN_C2[1]},井盖松动",
        "A3,垃圾,2026-10-03 10:00,2026-10-03 11:00,,,无位置",
    ]
    path = tmp_path / "cases.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = ok(cli, "import", "incidents", path, "--map", mapping)
    assert (result["imported"], result["assigned"], result["without_location"], result["notes"]) == (3, 2, 1, 1)
    listed = ok(cli, "incident", "list", "--state", "closed")
    assert {i["code"] for i in listed["items"]} == {"HL-A1", "HL-A3"}
    assert ok(cli, "incident", "show", "HL-A1")["reported_at"] == "2026-10-01T08:00:00+08:00"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\n".join(
            rows[:1]
            + [
                rows[1].replace("A1", "B1").replace("2026-10-01 08:00", "tomorrow"),
                rows[2].replace("A2", "B2").replace("井盖", "路灯"),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    refused = run(cli, "import", "incidents", bad, "--map", mapping, user="super1")
    assert refused.exit_code == 1 and "2 problems" in refused.output and "Report:" in refused.output
    report = Path(refused.output.split("Report: ")[1].split(" (JSON")[0].strip())
    assert report.is_file() and "{report}" not in report.read_text(encoding="utf-8")
    assert "line 2" in report.read_text(encoding="utf-8")
    assert read(cli, lambda s: s.scalar(select(func.count()).select_from(Incident))) == 3
