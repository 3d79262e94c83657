"""Historic cases are read by the tabular reader every import uses (gridkit.io.tables): a UTF-16 file (Excel's
"Unicode text"), a workbook with typed dates, a GBK file and a quoted cell over two lines are read as for every
other table, against the real Baltimore 311 sample (../shared/data/baltimore-311)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select, text

from gridkit.errors import ValidationError
from gridkit.incidents.categories import seed_categories
from gridkit.incidents.importer import import_incidents, load_mapping
from gridkit.models import Incident
from tests.test_incidents_baltimore import DATA, EXTRA_CATEGORIES, MAPPING, make_baltimore_grid

ROWS = 200


@pytest.fixture
def cases(session):
    seed_categories(session)
    seed_categories(session, EXTRA_CATEGORIES)
    make_baltimore_grid(session)
    return pd.read_csv(DATA, dtype=str, keep_default_na=False).head(ROWS)


def _stored(session) -> list[tuple]:
    return session.execute(
        text(
            "SELECT code, category_code, status, reported_at, closed_at, ST_AsText(geom), base_cell_id, "
            "work_cell_id FROM incident ORDER BY code"
        )
    ).all()


def _imported_then_undone(session, path) -> tuple[dict, list]:
    savepoint = session.begin_nested()
    result = import_incidents(session, path, load_mapping(MAPPING))
    stored = _stored(session)
    savepoint.rollback()
    return result, stored


def test_a_utf16_unicode_text_file_is_read_like_its_utf8_csv(session, cases, tmp_path):
    plain = tmp_path / "cases.csv"
    cases.to_csv(plain, index=False)
    expected, stored = _imported_then_undone(session, plain)
    # Excel's "Unicode text": UTF-16 little-endian with its byte order mark, tab-separated, CRLF line ends.
    unicode_text = tmp_path / "cases.txt"
    body = cases.to_csv(index=False, sep="\t", lineterminator="\r\n")
    unicode_text.write_bytes(body.encode("utf-16"))
    assert unicode_text.read_bytes()[:2] == b"\xff\xfe"
    got, again = _imported_then_undone(session, unicode_text)
    assert got["imported"] == expected["imported"] == ROWS and again == stored
    assert [n["index"] for n in got["notes"]] == [n["index"] for n in expected["notes"]]


def test_a_gbk_case_file_says_it_was_read_as_gb18030_and_stores_the_same(session, cases, tmp_path):
    plain = tmp_path / "cases.csv"
    cases.to_csv(plain, index=False)
    _, stored = _imported_then_undone(session, plain)
    gbk = cases.copy()
    gbk["Agency"] = "城管局"
    path = tmp_path / "cases_gbk.csv"
    gbk.to_csv(path, index=False, encoding="gbk")
    got, again = _imported_then_undone(session, path)
    assert again == stored
    assert any(n["kind"] == "encoding" and "GB18030" in n["message"] for n in got["notes"])


def test_a_workbook_of_cases_with_typed_dates_is_read(session, cases, tmp_path):
    plain = tmp_path / "cases.csv"
    cases.to_csv(plain, index=False)
    expected, stored = _imported_then_undone(session, plain)
    book = Workbook()
    sheet = book.active
    sheet.append(list(cases.columns))
    form = load_mapping(MAPPING)["time_format"]
    for _, row in cases.iterrows():
        values = []
        for column, value in row.items():
            if column == "CreatedDate" and value:  # Excel holds it as a date, not as text
                values.append(datetime.strptime(value, form))
            else:
                values.append(value or None)
        sheet.append(values)
    path = tmp_path / "cases.xlsx"
    book.save(path)
    got, again = _imported_then_undone(session, path)
    assert again == stored and got["imported"] == expected["imported"]
    # Rows are Excel's rows: the header is row 1, as in the CSV's lines.
    assert got["notes"][0]["message"].startswith("cases.xlsx, row ")
    assert [n["index"] for n in got["notes"]] == [n["index"] for n in expected["notes"]]


def test_a_description_over_two_lines_keeps_the_lines_of_the_rows_after_it(session, cases, tmp_path):
    mapping = load_mapping(MAPPING)
    mapping["columns"] = dict(mapping["columns"], description="Agency")
    rows = cases.head(5).copy()
    rows.loc[1, "Agency"] = "first line\nsecond line"
    rows.loc[3, "CreatedDate"] = "not a time"
    path = tmp_path / "cases.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(ValidationError) as exc:
        import_incidents(session, path, mapping)
    # Row 4 of the file (index 3) starts on line 6: the header, rows 1-3 with one of them over two lines.
    [found] = exc.value.problems
    assert found["index"] == 6 and found["message"].startswith("cases.csv, line 6: CreatedDate 'not a time'")
    assert session.scalar(select(func.count()).select_from(Incident)) == 0


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_recognised_and_noted(session, cases, tmp_path, codec):
    """Exported so by SQL Server's bcp and some case systems: read as UTF-8, every other byte was a NUL and the
    header a column nobody had named."""
    plain = tmp_path / "cases.csv"
    cases.to_csv(plain, index=False)
    expected, stored = _imported_then_undone(session, plain)
    path = tmp_path / "cases_bcp.csv"
    path.write_bytes(cases.to_csv(index=False, lineterminator="\r\n").encode(codec))
    assert path.read_bytes()[:2] in (b"S\x00", b"\x00S")  # no byte order mark
    got, again = _imported_then_undone(session, path)
    assert again == stored and got["imported"] == expected["imported"]
    [note] = [n for n in got["notes"] if n["kind"] == "encoding"]
    assert f"{codec.upper()} without a byte order mark" in note["message"]
