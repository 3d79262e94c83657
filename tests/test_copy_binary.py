"""Binary COPY rows decoded with numpy (gridkit.io.copy_binary) against PostgreSQL's own text output."""

from __future__ import annotations

import psycopg
import pyarrow as pa
import pytest
from factories_exports import DEPT, make_city
from sqlalchemy import text

from gridkit.io.copy_binary import CopyFormatError, binary_column, decode_rows
from gridkit.io.export_arrow import arrow_batches
from gridkit.io.export_layers import LAYERS, STR, build_query

# Each row: a text (lengths around Arrow's 12 inline bytes, Chinese, empty, NULL, line breaks),
# an integer, a float, a flag, a date, a time (before 1970 and 2000 too, infinities) and a geometry.
ROWS = """(VALUES
    (1, 'a', 0::bigint, 0.5::float8, true, date '2000-01-01', timestamp '2000-01-01 00:00:00',
     'SRID=4490;POINT(114.0571234 22.5431234)'),
    (2, '张三丰', -9223372036854775808, -1.5e300, false, date '1969-12-31', timestamp '1960-01-01 00:00:00.9999',
     'SRID=4490;POINT(-179.9999999 -89.9999999)'),
    (3, '', 9223372036854775807, 'NaN', NULL, date 'infinity', timestamp 'infinity',
     'SRID=4490;POINT(123456789.125 -98765432.0625)'),
    (4, NULL, NULL, NULL, true, NULL, NULL, NULL),
    (5, '12345678901', 42, 1e-310, true, date '-infinity', timestamp '-infinity',
     'SRID=4490;POLYGON((114 22,114.1 22,114.1 22.1,114 22))'),
    (6, '123456789012', 7, 3.0, false, date '2026-12-04', timestamp '2026-12-04 23:59:59.999',
     'SRID=4490;MULTIPOINT((1 2),(3 4))'),
    (7, '1234567890123', -1, -0.0, true, date '1900-02-28', timestamp '1900-02-28 12:34:56.789',
     'SRID=4490;POINT(0 0)'),
    (8, E'二楼\\n302室 "say, hi"\\r', 1, 1.0, false, date '2100-06-30', timestamp '1999-12-31 23:59:59.999999',
     'SRID=4490;LINESTRING(114 22,114.2 22.3)')
) AS v(n, s, i, f, b, d, t, g)"""
TYPES = [pa.int64(), pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.date32(), pa.timestamp("ms"), pa.binary()]
NAMES = ["n", "s", "i", "f", "b", "d", "t", "_wkb"]


def _decoded(session, **kwargs) -> dict:
    columns = [binary_column(f"v.{name}", t) for name, t in zip(NAMES[:-1], TYPES[:-1])]
    columns.append("ST_AsBinary(v.g::geometry)")
    sql = f"SELECT {', '.join(columns)} FROM {ROWS} ORDER BY v.n"
    batches = list(arrow_batches(session, sql, {}, NAMES[:-1], TYPES[:-1], **kwargs))
    assert all(b.schema.types == TYPES for b in batches)
    table = pa.Table.from_batches(batches)
    return {name: table.column(name).to_pylist() for name in NAMES}


@pytest.mark.parametrize("rows", [100, 3])
def test_values_are_what_postgresql_prints(session, rows):
    got = _decoded(session, rows=rows)
    expected = session.execute(
        text(
            "SELECT v.n, v.s, v.i::text, v.f::text, v.b, v.d::text, "
            "to_char(v.t, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'), ST_AsText(v.g::geometry) "
            f"FROM {ROWS} ORDER BY v.n"
        )
    ).all()
    assert got["n"] == [row[0] for row in expected] == list(range(1, 9))
    assert got["s"] == [row[1] for row in expected]
    assert got["i"] == [None if row[2] is None else int(row[2]) for row in expected]
    assert [None if v is None else repr(v) for v in got["f"]] == [
        None if row[3] is None else repr(float(row[3])) for row in expected
    ]
    assert got["b"] == [row[4] for row in expected]
    # Infinite dates and times become NULL, as the text path's to_char made them.
    assert [None if v is None else v.isoformat() for v in got["d"]] == [
        None if row[5] is None or "infinity" in row[5] else row[5] for row in expected
    ]
    assert [None if v is None else v.isoformat(timespec="milliseconds") for v in got["t"]] == [
        row[6] for row in expected
    ]
    # The WKB, read back by PostGIS, is the geometry PostGIS printed.
    back = [
        None if wkb is None else session.execute(text("SELECT ST_AsText(ST_GeomFromWKB(:w))"), {"w": wkb}).scalar()
        for wkb in got["_wkb"]
    ]
    assert back == [row[7] for row in expected]
    assert back[2] == "POINT(123456789.125 -98765432.0625)" and back[3] is None


def test_no_rows_give_no_batch(session):
    columns = ", ".join(binary_column(f"v.{name}", t) for name, t in zip(NAMES[:-1], TYPES[:-1]))
    sql = f"SELECT {columns}, ST_AsBinary(v.g::geometry) FROM {ROWS} WHERE v.n < 0"
    assert list(arrow_batches(session, sql, {}, NAMES[:-1], TYPES[:-1], rows=10)) == []


def test_rows_that_are_not_what_the_select_promised_are_refused():
    row = (1).to_bytes(2, "big") + (3).to_bytes(4, "big") + b"abc"
    batch = decode_rows(row + row, [len(row), 2 * len(row)], [pa.string()], ["s"])
    assert batch.column(0).to_pylist() == ["abc", "abc"]
    with pytest.raises(CopyFormatError):
        decode_rows(row + row, [len(row), 2 * len(row)], [pa.string(), pa.string()], ["s", "t"])
    with pytest.raises(CopyFormatError):
        decode_rows(row + row, [len(row) - 1, 2 * len(row)], [pa.string()], ["s"])
    with pytest.raises(CopyFormatError):
        decode_rows(row, [len(row)], [pa.int64()], ["i"])  # 3 bytes for an int8


@pytest.mark.parametrize("failing_row", [1, 700, 30_000])
def test_an_error_of_the_server_while_copying_is_raised_and_the_session_stays_usable(session, failing_row):
    # The error may reach libpq while rows are still waiting to be taken, or after: either way it
    # is PostgreSQL's own error, and the caller's transaction goes on.
    session.execute(text("CREATE TEMPORARY TABLE kept (n int)"))
    session.execute(text("INSERT INTO kept VALUES (1)"))
    sql = f"SELECT (100 / ({failing_row} - g))::text || repeat('x', 100), NULL::bytea FROM generate_series(0, 40000) g"
    with pytest.raises(psycopg.errors.DivisionByZero):
        list(arrow_batches(session, sql, {}, ["s"], [pa.string()], rows=1000))
    assert session.execute(text("SELECT n FROM kept")).scalar_one() == 1


def test_every_layer_sends_its_text_fields_as_postgresql_prints_them(session):
    # `::text` is a field's printed text unless its type casts to text another way (char(n) drops
    # trailing blanks, bool says true instead of t, inet adds /32): no layer may export one as text.
    make_city(session)
    recast = {psycopg.postgres.types[name].oid for name in ("bpchar", "bool", "inet", "cidr", '"char"')}
    for name, layer in LAYERS.items():
        query = build_query(session, layer, dept=DEPT if layer.subject else None)
        cur = session.connection().connection.driver_connection.cursor()
        compiled = text(f"SELECT * FROM ({query.sql}) q LIMIT 0").bindparams(**query.params)
        compiled = compiled.compile(dialect=session.get_bind().dialect)
        cur.execute(compiled.string, compiled.construct_params() or None)
        types = {c.name: c.type_code for c in cur.description}
        strings = [field for field, kind in query.fields if kind == STR]
        assert strings and not {types[field] for field in strings} & recast, name
