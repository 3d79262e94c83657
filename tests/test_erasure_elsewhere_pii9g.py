"""What an erasure leaves elsewhere (pii9g): `subjects erase` says that backups and import reports written before
may still hold the resident, for how long reports are kept; and those reports quote no ID number, name or phone
of the rows they refused in full (masked as everywhere: gridkit.pii)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from click.testing import CliRunner

from gridkit.cli import main
from gridkit.io.report import write_report
from gridkit.io.subjects import import_coordinators, import_residents
from tests.data.make_subject_files import RESIDENTS, citizen_id, phone
from tests.factories_import_subjects import DATA, KEY, buildings, grid, refused, work_grids, write_csv  # noqa: F401
from tests.test_cli_personal_pii9a import erase, residents_settings  # noqa: F401 - a fixture used by name


def _written(tmp_path, error) -> str:
    """Every file of the report a refused import writes (as gridkit.cli.common.refused_import does), as text."""
    paths = write_report(tmp_path / "home", "import", error.problems, error.notes, {"refused": True}, lang="zh-CN")
    folder = paths[0].parent
    return "\n".join(p.read_text(encoding="utf-8-sig") for p in sorted(folder.iterdir()))


# Residents whose every row is refused for one reason, with names found nowhere in the catalogue.
HEADER = ["id_number", "name", "phone", "household", "population_type", "building_code", "lon", "lat"]


def _bad_residents(path):
    good, other = citizen_id(301), citizen_id(302)
    wrong_check = other[:17] + ("0" if other[17] != "0" else "1")
    rows = [
        [good, "欧阳靖雯", phone(301), "H301", "registered", "B001", "", ""],
        [wrong_check, "司马浩然", phone(302), "H302", "registered", "B001", "", ""],  # check character
        [good, "上官婉清", phone(303), "H303", "registered", "B001", "", ""],  # the same ID again
        [citizen_id(304), "诸葛明远", "1380000", "H304", "registered", "B001", "", ""],  # a phone too short
        [citizen_id(305), "慕容子衿", phone(305), "H305", "registered", "B999", "", ""],  # no such building
        [citizen_id(306), "东方若曦", phone(306), "H306", "常住", "B001", "", ""],  # ambiguous population type
        [citizen_id(307), "皇甫嘉树", phone(307), "H307", "registered", "", "", ""],  # nowhere
        [citizen_id(308), "夏侯雨桐" * 30, phone(308), "H308", "registered", "B001", "", ""],  # name too long
    ]
    write_csv(path, HEADER, rows)
    return {value for row in rows for value in row[:3] if len(value) >= 7} | {row[1] for row in rows}


def test_a_refused_residents_import_report_quotes_no_person(session, grid, tmp_path):
    buildings(session)
    personal = _bad_residents(tmp_path / "residents.csv")
    error = refused(session, import_residents, tmp_path / "residents.csv", pii_key=KEY)
    assert len({p["index"] for p in error.problems}) == 7  # every row but the first
    text = _written(tmp_path, error)
    for value in personal:
        assert value not in text, value
        assert value[:4] not in text or value[0].isdigit(), value  # not even a name's first four characters
    assert re.search(r"4403\*{10}\d{3}[\dX]", text)  # the rows are still named, masked


def test_a_refused_coordinators_import_report_quotes_no_phone(session, work_grids, tmp_path):
    error = refused(session, import_coordinators, DATA / "coordinators_bad.csv")
    text = _written(tmp_path, error)
    phones = [line.split(",")[1] for line in (DATA / "coordinators_bad.csv").read_text().splitlines()[1:]]
    assert len(phones) >= 4 and "12345" in phones
    for value in phones:
        assert value not in text, value


@pytest.mark.parametrize(
    "lang,words",
    [
        ("en", ("backups made earlier", "gridkit db backup", "import reports", "GRIDKIT_REPORT_RETENTION_DAYS")),
        ("zh-CN", ("此前的备份", "gridkit db backup", "导入报告", "GRIDKIT_REPORT_RETENTION_DAYS")),
    ],
)
def test_an_erasure_says_what_backups_and_reports_may_still_hold(residents_settings, lang, words):
    settings = replace(residents_settings, report_retention_days=30)
    number = RESIDENTS[0][0]
    erased = CliRunner().invoke(
        main,
        ["subjects", "erase", "--kind", "residents", "-", "--as", "city.admin", "--yes"],
        obj=settings,
        input=number + "\n",
        env={"GRIDKIT_LANG": lang},
        catch_exceptions=False,
    )
    assert erased.exit_code == 0, erased.output
    for word in words:
        assert word in erased.stdout, word
    assert "30" in erased.stdout.splitlines()[-1] and str(settings.home / "reports") in erased.stdout
    assert number not in erased.output


def test_an_erasure_in_json_names_where_the_resident_may_still_be(residents_settings):
    erased = erase(residents_settings, "-", "--as", "city.admin", "--yes", "--json", input=RESIDENTS[0][0] + "\n")
    done = json.loads(erased.stdout)
    assert done["held_elsewhere"] == {"backups": True, "reports": str(residents_settings.home / "reports")}
    assert done["report_retention_days"] == residents_settings.report_retention_days == 90
