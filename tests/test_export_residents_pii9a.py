"""A masked residents export gives no dwelling: each resident to about 100 m (the public rule of a case's place),
no building, and households as pseudonyms of that export alone; an unmasked (audited) export stays exact.
Every format, read back by GDAL (pyogrio), the csv module or openpyxl."""

from __future__ import annotations

import csv

import pyogrio
import pytest
from factories_exports import make_city
from openpyxl import load_workbook
from sqlalchemy import select, text
from test_reports_web import client, login  # noqa: F401 (the fixture)

from gridkit import db
from gridkit.audit import PERSONAL_DATA_READ
from gridkit.errors import ValidationError
from gridkit.io.export import ExportOptions, export_layer
from gridkit.models import AuditLog, User
from gridkit.pii import public_location_sql

FORMATS = ("shp", "gpkg", "geojson", "csv", "xlsx")


@pytest.fixture
def city(session):
    return make_city(session)


def _export(session, tmp_path, fmt, name="residents", **kw):
    user = kw.pop("user", None)
    path = tmp_path / f"{name}.{ {'shp': 'zip'}.get(fmt, fmt) }"
    summary = export_layer(session, ExportOptions("residents", fmt, path, **kw), user=user, actor="test")
    return path, summary


def _rows(path, fmt) -> list[dict]:
    """Each feature's fields and its point (x, y rounded to 1e-7), as the file holds them."""
    if fmt == "csv":
        rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    elif fmt == "xlsx":
        sheet = load_workbook(path, read_only=True).active
        head, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
        rows = [dict(zip(head, r)) for r in body]
    else:
        source = f"/vsizip/{path}/residents.shp" if fmt == "shp" else str(path)
        frame = pyogrio.read_dataframe(source)  # "household" and "building" fit a DBF field's 10 characters
        rows = [
            {**{k: v for k, v in r.items() if k != "geometry"}, "x": r["geometry"].x, "y": r["geometry"].y}
            for r in frame.to_dict("records")
        ]
    return [{**r, "x": round(float(r["x"]), 7), "y": round(float(r["y"]), 7)} for r in rows]


def _stored(session, snapped: bool) -> set[tuple]:
    geom = public_location_sql("geom") if snapped else "geom"
    sql = f"SELECT round(ST_X({geom})::numeric, 7)::float8, round(ST_Y({geom})::numeric, 7)::float8 FROM resident"
    return set(session.execute(text(sql)).all())


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_masked_residents_export_gives_no_dwelling_and_no_household_that_links(session, city, tmp_path, fmt):
    path, summary = _export(session, tmp_path, fmt)
    assert summary["masked"] and "building" not in summary["fields"] and "household" in summary["fields"]
    rows = _rows(path, fmt)
    assert len(rows) == city["residents"] and not any("building" in r for r in rows)
    # The place: snapped as a case's public place is (gridkit.pii.public_location_sql), never the exact point.
    points = {(r["x"], r["y"]) for r in rows}
    assert points == _stored(session, snapped=True) and not points & _stored(session, snapped=False)
    # Households: the two residents of each building share a pseudonym, which names no stored household.
    households = {r["household"] for r in rows}
    stored = {h for (h,) in session.execute(text("SELECT DISTINCT household FROM resident"))}
    assert len(households) == len(stored) and not households & stored
    # Another export gives other pseudonyms: two exports cannot be matched household by household.
    again, _ = _export(session, tmp_path, fmt, name="again")
    assert not households & {r["household"] for r in _rows(again, fmt)}


@pytest.mark.parametrize("fmt", ("gpkg", "csv"))
def test_an_unmasked_residents_export_stays_exact(session, city, tmp_path, fmt):
    admin = User(name="root", role="admin")
    session.add(admin)
    session.flush()
    path, summary = _export(session, tmp_path, fmt, unmasked=True, user=admin)
    rows = _rows(path, fmt)
    assert {(r["x"], r["y"]) for r in rows} == _stored(session, snapped=False)
    assert {r["household"] for r in rows} == {h for (h,) in session.execute(text("SELECT household FROM resident"))}
    assert {r["building"] for r in rows} == {f"B{i:04d}" for i in range(city["buildings"])}
    # Its audit row names what it gave in clear beyond a masked export: the place, building and household too.
    (audit,) = session.scalars(select(AuditLog).where(AuditLog.action == PERSONAL_DATA_READ)).all()
    assert {"place", "building", "household", "birth_date"} <= set(audit.detail["detail_fields"])


def test_a_masked_export_refuses_a_filter_on_a_pseudonym_or_the_building(session, city, tmp_path):
    with pytest.raises(ValidationError) as refused:
        _export(session, tmp_path, "csv", where={"household": "H0001"})
    assert refused.value.key == "error.export.pseudonym_filter" and "pseudonym" in refused.value.render("en")
    with pytest.raises(ValidationError) as unknown:
        _export(session, tmp_path, "csv", where={"building": "B0001"})
    assert unknown.value.key == "error.export.unknown_field"


def test_the_analysts_web_download_of_residents_follows_the_same_rule(client, fresh_settings, tmp_path):  # noqa: F811
    token = login(client, "ana")
    download = client.post("/analyst/export", data={"csrf_token": token, "layer": "residents", "format": "geojson"})
    assert download.status_code == 200
    (tmp_path / "r.geojson").write_bytes(download.data)
    rows = _rows(tmp_path / "r.geojson", "geojson")
    with db.session_factory(db.engine_for(fresh_settings))() as session:
        assert {(r["x"], r["y"]) for r in rows} == _stored(session, snapped=True)
        stored = {h for (h,) in session.execute(text("SELECT household FROM resident"))}
    assert rows and not any("building" in r for r in rows) and not {r["household"] for r in rows} & stored
