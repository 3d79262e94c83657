"""CSV read block by block with pyarrow gives exactly what Python's csv reader gives (rows, line numbers,
problems), whatever the file holds; the vectorised resident checks give what the per-row ones give."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from gridkit.io.csvtable import _legacy_stream
from gridkit.io.subjects import SubjectImportRefused, import_residents
from gridkit.io.subjects.residents import _birth_dates, _fixed_strings, _hmac_hex
from gridkit.io.tables import open_table
from gridkit.models import Resident
from gridkit.pii import hash_citizen_id
from gridkit.standard.ids import birth_date_of
from tests.data.make_subject_files import citizen_id
from tests.factories import make_base_grid

KEY = b"test-personal-data-key"

HEADER = "id,name,note\n"
FILES = {
    "plain": HEADER + "".join(f"{i},name {i},n{i}\n" for i in range(1, 12)),
    "no final newline": HEADER + "1,a,b\n2,c,d",
    "crlf": (HEADER + "1,a,b\n2,c,d\n3,e,f\n").replace("\n", "\r\n"),
    "blank lines and empty rows": HEADER + "1,a,b\n\n2,c,d\n,,\n  \n3,e,f\n\n4,g,h\n",
    "spaces and full-width spaces": HEADER + " 1 ,\u3000王\u3000, \n2,  ,x\n3,c,\t\n",
    "quotes on one line": HEADER + '1,"a, b","say ""hi"""\n2,x"y,z\n3,"",""\n',
    "a cell over lines": HEADER + '1,a,b\n2,"two\nlines",c\n3,d,e\n4,f,g\n5,h,i\n',
    "a cell over lines later": HEADER + "".join(f"{i},a,b\n" for i in range(1, 8)) + '8,"x\ny",z\n9,c,d\n',
    "carriage return alone": HEADER + "1,a,b\r2,c,d\r3,e,f\r",
    "ragged rows": HEADER + "1,a,b\n2,c\n3,d,e,f\n4,g,h,\n5,i,j\n",
    "NUL byte": HEADER + "1,a,b\n2,c\x00d,e\n3,f,g\n",
    "unbalanced quote at the end": HEADER + '1,a,b\n2,"c,d\n',
}


def _same(streamed, reference) -> None:
    rows, numbers, problems = streamed
    assert numbers == reference[1]
    assert rows == reference[0]
    assert sorted((p["index"], p["kind"], str(p["message"])) for p in problems) == sorted(
        (p["index"], p["kind"], str(p["message"])) for p in reference[2]
    )


def _per_row(path, codec: str, chunk_rows: int):
    """What the per-row streaming reader (Python's csv module, before pyarrow) reads."""
    source = {"path": str(path), "display": path.name}
    delimiter = ","
    stream = _legacy_stream(path, path.open("rb"), codec, delimiter, [], source, chunk_rows)
    rows, numbers, problems = [], [], list(stream.header.problems)
    for chunk in stream:
        rows.extend(chunk.rows)
        numbers.extend(chunk.numbers)
        problems.extend(chunk.problems)
    return rows, numbers, problems


def _streamed(path, chunk_rows: int):
    stream = open_table(path, chunk_rows=chunk_rows)
    rows, numbers, problems = [], [], list(stream.header.problems)
    for chunk in stream:
        rows.extend(chunk.rows)
        numbers.extend(chunk.numbers)
        problems.extend(chunk.problems)
        for position, number in enumerate(chunk.numbers):
            assert {c: chunk.cell(position, c) for c in chunk.columns} == {
                c: chunk.rows[position].get(c) for c in chunk.columns
            }, number
    return rows, numbers, problems


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 50_000])
def test_blocks_read_like_the_per_row_reader(tmp_path, name, chunk_rows):
    path = tmp_path / "t.csv"
    path.write_bytes(FILES[name].encode("utf-8"))
    _same(_streamed(path, chunk_rows), _per_row(path, "utf-8", chunk_rows))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030", "utf-16"])
def test_blocks_of_a_bom_or_gbk_file_read_like_the_per_row_reader(tmp_path, encoding):
    path = tmp_path / "t.csv"
    path.write_bytes((HEADER + '1,王小明,流动\n\n2,李大力,户籍\n3,"赵,敏",x\n').encode(encoding))
    streamed = _streamed(path, 2)
    _same(streamed, _per_row(path, "utf-16" if encoding == "utf-16" else encoding, 2))
    assert [r["name"] for r in streamed[0]] == ["王小明", "李大力", "赵,敏"]
    assert streamed[1] == [2, 4, 5]


def test_fast_hash_mask_and_birth_date_are_those_of_the_per_row_functions():
    ids = [citizen_id(i) for i in range(50)] + ["11010120000229123X"]
    rows = np.frombuffer("".join(ids).encode(), dtype=np.uint8).reshape(-1, 18)
    for key in (KEY, b"k", b"x" * 100):
        assert _fixed_strings(_hmac_hex(key, rows), 64).to_pylist() == [hash_citizen_id(key, i) for i in ids]
    assert [d.item() for d in _birth_dates(rows)] == [birth_date_of(i) for i in ids]


def test_clean_and_checked_rows_mixed_in_one_chunk_import_the_same_values(session, tmp_path):
    make_base_grid(session)
    good, lower_x = citizen_id(1), citizen_id(2)
    path = tmp_path / "r.csv"
    path.write_text(
        "id_number,name,phone,household,population_type,lon,lat\n"
        f"{good},王小明,13912345678,H1,户籍,114.0505,22.5305\n"
        # Slow path (normalised one by one): a phone with spaces, a population type in other case.
        f"{citizen_id(3)},李大力,139 1234 5679,,Floating,114.0515,22.5305\n",
        encoding="utf-8",
    )
    result = import_residents(session, path, pii_key=KEY)
    assert result.created == 2
    stored = {r.id_number_hash: r for r in session.scalars(select(Resident))}
    first = stored[hash_citizen_id(KEY, good)]
    assert (first.id_number_masked, first.birth_date, first.phone, first.population_type) == (
        good[:4] + "*" * 10 + good[-4:],
        birth_date_of(good),
        "13912345678",
        "registered",
    )
    second = stored[hash_citizen_id(KEY, citizen_id(3))]
    assert (second.phone, second.population_type, second.household) == ("13912345679", "floating", None)
    assert lower_x not in stored


def test_a_bad_row_among_clean_ones_is_named_and_nothing_is_imported(session, tmp_path):
    make_base_grid(session)
    bad = citizen_id(5)[:17] + ("0" if citizen_id(5)[17] != "0" else "1")
    path = tmp_path / "r.csv"
    path.write_text(
        "id_number,name,population_type,lon,lat\n"
        f"{citizen_id(4)},王小明,户籍,114.0505,22.5305\n"
        f"{bad},李大力,户籍,114.0515,22.5305\n"
        f"{citizen_id(6)},赵敏,常住,114.0515,22.5305\n"
        f"{citizen_id(7)},钱多多,流动,200,22.5\n",
        encoding="utf-8",
    )
    with pytest.raises(SubjectImportRefused) as info:
        import_residents(session, path, pii_key=KEY)
    assert [(p["index"], p["kind"]) for p in info.value.problems] == [
        (3, "bad_id_number"),
        (4, "bad_population_type"),
        (5, "outside_china"),
    ]
    # The row's label is its masked ID, whether it was checked in bulk or one by one.
    assert info.value.problems[2]["code"] == citizen_id(7)[:4] + "*" * 10 + citizen_id(7)[-4:]
    assert session.scalar(select(Resident.id).limit(1)) is None
