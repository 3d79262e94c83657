"""The /analyst page through Flask's test client: guard, downloads read back, previews, choropleth."""

from __future__ import annotations

import io
import re
import zipfile

import pyogrio
import pytest
from factories_exports import C1, C2, make_city
from openpyxl import load_workbook

from gridkit import db
from gridkit.users import add_user
from web import create_app

PASSWORD = "correct horse battery"


def fill(session):
    make_city(session)
    add_user(session, "ana", "analyst", password=PASSWORD)
    add_user(session, "coord", "coordinator", password=PASSWORD)


@pytest.fixture
def client(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        fill(session)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app.test_client()


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, name: str) -> str:
    """Sign `name` in; return the session's CSRF token."""
    token = _token(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token}).status_code == 302
    return _token(client.get("/").get_data(as_text=True))  # the session is new: so is its token


def test_guard(client):
    assert client.get("/analyst/").status_code == 302
    login(client, "coord")
    assert client.get("/analyst/").status_code == 403


def test_page_downloads_preview_and_choropleth(client, tmp_path):
    token = login(client, "ana")
    page = client.get("/analyst/?lang=zh-CN").get_data(as_text=True)
    assert "数据分析与导出" in page and 'value="cell-stats"' in page and "gcj02" in page
    assert 'name="unmasked"' not in page  # analysts may not unmask
    export = {"csrf_token": token, "layer": "residents", "format": "csv"}
    shp = client.post("/analyst/export", data=dict(export, format="shp", area=C1, encoding="gbk"))
    assert shp.status_code == 200 and shp.headers["Content-Disposition"].startswith("attachment")
    (tmp_path / "r.zip").write_bytes(shp.data)
    frame = pyogrio.read_dataframe(f"/vsizip/{tmp_path / 'r.zip'}/residents.shp")
    assert len(frame) == 18 and frame["name"].str.endswith("*").all()
    assert zipfile.ZipFile(io.BytesIO(shp.data)).read("residents.cpg").decode().strip() in ("936", "CP936")
    denied = client.post("/analyst/export", data=dict(export, unmasked="1"))
    assert denied.status_code == 403
    bad = client.post("/analyst/export?lang=en", data=dict(export, where="colour=red"))
    assert bad.status_code == 400 and "colour" in bad.get_data(as_text=True)
    preview = client.get("/analyst/report.json?name=population&by=community&lang=en").get_json()
    assert preview["title"] == "Population" and "<svg" in preview["sections"][0]["chart"]
    assert C1 in preview["sections"][0]["table"]
    xlsx = client.get("/analyst/report?name=incidents&by=community&format=xlsx")
    book = load_workbook(io.BytesIO(xlsx.data))
    assert len(book.worksheets) == 3
    colours = client.get("/analyst/choropleth.json?count=residents&by=community").get_json()
    assert {f["id"]: f["properties"]["value"] for f in colours["features"]} == {C1: 18, C2: 18}
    cells = client.get(f"/analyst/choropleth.json?count=incidents&by=cell&area={C1}").get_json()
    assert len(cells["features"]) == 9 and cells["max"] == 1
    wrong = client.get("/analyst/choropleth.json?count=cats")
    assert wrong.status_code == 400 and wrong.get_json()["code"] == "report.unknown_count"
