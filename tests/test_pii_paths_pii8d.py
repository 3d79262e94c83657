"""Personal data on the paths earlier audits missed: what a masked export lets be rebuilt, free text in
case views and lists, IDs on the command line, and the files left on disk (exports, photos)."""

from __future__ import annotations

import csv
from datetime import date, timedelta

from gridkit.io.export import ExportOptions, export_layer
from gridkit.io.subjects import import_residents
from gridkit.standard.ids import citizen_id_check_char
from gridkit.users import add_user
from tests.data.make_subject_files import RESIDENTS
from tests.factories_import_subjects import DATA, KEY, buildings, grid  # noqa: F401 - fixtures used by name

# -- a masked residents export must not give the citizen ID back ------------------------------------------


def _ids_consistent_with(row: dict) -> int:
    """Return how many valid citizen IDs agree with what one exported row shows: the masked ID's first 4
    and last 4 characters and the birth date (or year) exported; digits 5-6 (the county) left free."""
    masked = row["id_number"]
    if row.get("birth_date"):
        days = [date.fromisoformat(row["birth_date"][:10])]
    else:
        year = int(row["birth_year"])
        days = [date(year, 1, 1) + timedelta(n) for n in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)]
    found = 0
    for county in range(100):
        for day in days:
            first17 = f"{masked[:4]}{county:02d}{day:%Y%m%d}{masked[-4:-1]}"
            found += citizen_id_check_char(first17) == masked[-1]
    return found


def test_a_masked_residents_export_does_not_give_the_citizen_id_back(session, grid, tmp_path):
    buildings(session)
    import_residents(session, DATA / "residents.csv", pii_key=KEY)
    path = tmp_path / "residents.csv"
    summary = export_layer(session, ExportOptions("residents", "csv", path), actor="test")
    assert summary["masked"]
    with path.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(RESIDENTS)
    for row in rows:
        # With the whole birth date, about 9 IDs in 100 county digits pass the check character, and the
        # community's county code picks one: the ID. The year alone leaves thousands.
        assert _ids_consistent_with(row) > 1000, row
    assert "birth_date" not in rows[0] and {int(r["birth_year"]) for r in rows} == {
        int(number[6:10]) for number, *_ in RESIDENTS
    }
    # Unmasked (audited), the date is whole.
    unmasked = tmp_path / "unmasked.csv"
    admin = add_user(session, "city-admin", "admin")
    export_layer(session, ExportOptions("residents", "csv", unmasked, unmasked=True), user=admin, actor="test")
    with unmasked.open(encoding="utf-8-sig") as f:
        dates = {r["birth_date"][:10] for r in csv.DictReader(f)}
    assert dates == {f"{n[6:10]}-{n[10:12]}-{n[12:14]}" for n, *_ in RESIDENTS}
