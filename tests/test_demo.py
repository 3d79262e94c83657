"""Loading the demo city: counts, idempotence, all-or-nothing, responsibility lookups."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import main
from gridkit.counts import city_counts
from gridkit.demo import DEMO_DIR, DEMO_PASSWORD, load_demo
from gridkit.errors import ValidationError
from gridkit.grids.work import responsibility_at
from gridkit.models import AdminUnit, BaseCell, Building, Resident
from gridkit.users import authenticate

KEY = b"test-key"


def _rows(name):
    with (DEMO_DIR / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_demo_cli_loads_once_with_expected_counts(fresh_settings):
    result = CliRunner().invoke(main, ["demo", "--no-serve", "--json"], obj=fresh_settings, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert counts["residents"] == len(_rows("residents.csv")) == 6000
    assert counts["entities"] == len(_rows("entities.csv"))
    assert counts["work_cells"] == len(_rows("work_cells.csv"))
    assert 200 <= counts["base_cells"] <= 400
    assert counts["unassigned"] == 0
    again = CliRunner().invoke(main, ["demo", "--no-serve", "--json"], obj=fresh_settings, catch_exceptions=False)
    assert json.loads(again.output) == {"already": True}
    with Session(db.engine_for(fresh_settings)) as session:
        assert session.scalar(select(func.count()).select_from(BaseCell)) == counts["base_cells"]
        assert session.scalar(select(func.count()).select_from(AdminUnit).where(AdminUnit.level == "district")) >= 9
        # Residents are stored without clear ID numbers.
        stored = session.scalars(select(Resident.id_number_masked).limit(5)).all()
        assert all("**********" in s for s in stored)
        clear = _rows("residents.csv")[0]["id_number"]
        assert (
            session.scalar(
                select(func.count())
                .select_from(Resident)
                .where(text("id_number_hash = :c OR id_number_masked = :c"))
                .params(c=clear)
            )
            == 0
        )
        assert authenticate(session, "planner", DEMO_PASSWORD).role == "planner"


def test_every_demo_building_has_a_coordinator_in_every_department(session):
    load_demo(session, KEY)
    # The demo city has its English name (the pages' English title): Shenzhen.
    assert city_counts(session)["city"] == "深圳市" and city_counts(session)["city_en"] == "Shenzhen"
    building = session.scalar(select(Building).order_by(Building.code).limit(1))
    lon, lat = session.execute(
        select(func.ST_X(Building.geom), func.ST_Y(Building.geom)).where(Building.id == building.id)
    ).one()
    answer = responsibility_at(session, lon, lat)
    cell = session.get(BaseCell, building.base_cell_id)
    assert answer["base_cell"] == cell.code
    assert [d["dept"] for d in answer["departments"]] == ["100001", "200001", "300001"]
    for d in answer["departments"]:
        assert d["work_cell"].startswith(d["dept"]) and d["work_cell"][6:18] == cell.community_code
        assert d["coordinators"], d


def test_bad_row_loads_nothing(session, tmp_path):
    data = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, data)
    lines = (data / "residents.csv").read_text(encoding="utf-8").splitlines()
    fields = lines[40].split(",")
    fields[0] = fields[0][:-1] + ("0" if fields[0][-1] != "0" else "1")
    lines[40] = ",".join(fields)
    (data / "residents.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = session.scalar(select(func.count()).select_from(AdminUnit))
    savepoint = session.begin_nested()
    with pytest.raises(ValidationError, match=r"residents.csv line 41: Citizen ID check character is wrong"):
        load_demo(session, KEY, data_dir=data)
    savepoint.rollback()
    assert session.scalar(select(func.count()).select_from(AdminUnit)) == before


def test_responsibility_of_a_resident_comes_from_the_version_valid_then(fresh_settings):
    """A resident found by citizen ID: base cell, then each department's work cell and coordinators."""
    runner = CliRunner()
    assert runner.invoke(main, ["demo", "--no-serve", "--json"], obj=fresh_settings).exit_code == 0
    row = _rows("residents.csv")[7]
    # The ID on standard input ('-'): not on the command line, where ps and the shell's history show it.
    result = runner.invoke(
        main,
        ["subjects", "responsible", "--kind", "residents", "-", "--json"],
        input=row["id_number"] + "\n",
        obj=fresh_settings,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert row["id_number"] not in result.output and answer["identity"].startswith(row["id_number"][:4] + "*")
    assert answer["base_cell"] == row["building_code"][:15]
    assert [d["dept"] for d in answer["departments"]] == ["100001", "200001", "300001"]
    assert all(
        d["work_cell"] and d["coordinators"] and "****" in d["coordinators"][0]["phone"] for d in answer["departments"]
    )
    # Before the demo grids were published (2026-01-01), no department had a work cell there.
    before = json.loads(
        runner.invoke(
            main,
            [
                "subjects",
                "responsible",
                "--kind",
                "residents",
                row["id_number"],
                "--at",
                "2025-06-01T00:00+08:00",
                "--json",
            ],
            obj=fresh_settings,
        ).stdout
    )
    assert all(d["work_cell"] is None for d in before["departments"])
    # The text names the kind of subject in the reader's language (it said "resident" in Chinese too).
    text = runner.invoke(
        main, ["subjects", "responsible", "--kind", "residents", "-"], input=row["id_number"] + "\n", obj=fresh_settings
    )
    assert text.output.startswith(f"居民 {answer['identity']}：基础网格 {answer['base_cell']}"), text.output
    missing = runner.invoke(main, ["subjects", "responsible", "--kind", "buildings", "NOPE"], obj=fresh_settings)
    assert missing.exit_code == 1 and "没有编码为 'NOPE' 的建筑物" in missing.output
