"""OGC API – Features under /ogc: the spec's documents and parameters, then GDAL's OAPIF driver
(`ogrinfo`) against the app served by waitress on loopback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import pytest
from factories_exports import C1, DEPT, WC1, make_city
from waitress import create_server

from gridkit import db
from web import create_app

GEOJSON = "application/geo+json"


@pytest.fixture(scope="module")
def ogc_settings(pg_server, tmp_path_factory):
    from gridkit.config import Settings

    url = pg_server.create_database("gridkit_ogc_tests", template="gridkit_test_template")
    settings = Settings(home=tmp_path_factory.mktemp("home"), database_url=url, secret_key="test")
    with db.session_factory(db.engine_for(settings))() as session, session.begin():
        make_city(session)
    yield settings
    eng = db._engines.pop(db.database_url(settings), None)
    if eng is not None:
        eng.dispose()
    pg_server.drop_database("gridkit_ogc_tests")


@pytest.fixture(scope="module")
def client(ogc_settings):
    app = create_app(ogc_settings)
    app.config["TESTING"] = True
    return app.test_client()


def test_landing_conformance_collections(client):
    landing = client.get("/ogc/").get_json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conf = client.get("/ogc/conformance").get_json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conf
    body = client.get("/ogc/collections").get_json()
    ids = [c["id"] for c in body["collections"]]
    assert ids == ["admin-units", "base-cells", f"work-cells-{DEPT}", "buildings", "incidents"]
    cells = next(c for c in body["collections"] if c["id"] == "base-cells")
    assert cells["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
    assert "http://www.opengis.net/def/crs/OGC/1.3/CRS84" in cells["crs"]
    minx, _, _, maxy = cells["extent"]["spatial"]["bbox"][0]
    assert minx == pytest.approx(114.05) and maxy == pytest.approx(22.533)
    assert client.get("/ogc/collections/rivers").status_code == 404
    assert client.get("/ogc/collections/rivers").get_json()["code"] == "ogc.unknown_collection"


def test_items_paging_filters_and_no_personal_fields(client):
    page = client.get("/ogc/collections/base-cells/items?limit=5")
    assert page.mimetype == GEOJSON and page.headers["Content-Crs"].endswith("CRS84>")
    body = page.get_json()
    assert body["numberMatched"] == 18 and body["numberReturned"] == 5
    nxt = next(link["href"] for link in body["links"] if link["rel"] == "next")
    assert "offset=5" in nxt and "limit=5" in nxt
    last = client.get("/ogc/collections/base-cells/items?limit=5&offset=15").get_json()
    assert last["numberReturned"] == 3 and "next" not in {link["rel"] for link in last["links"]}
    # bbox: the west half of community 1 only.
    box = client.get("/ogc/collections/base-cells/items?bbox=114.0501,22.5301,114.0509,22.5329").get_json()
    assert box["numberMatched"] == 3
    filtered = client.get(f"/ogc/collections/buildings/items?community={C1}&limit=100").get_json()
    assert filtered["numberMatched"] == 9
    incidents = client.get("/ogc/collections/incidents/items?limit=100").get_json()
    assert incidents["numberMatched"] == 6 and "reporter" not in incidents["features"][0]["properties"]
    cells = client.get(f"/ogc/collections/work-cells-{DEPT}/items").get_json()
    props = cells["features"][0]["properties"]
    assert "coordinator" not in props and "coordinator_phone" not in props
    assert {f["id"] for f in cells["features"]} >= {WC1}
    when = client.get("/ogc/collections/incidents/items?datetime=2026-03-10T00:00:00Z/2026-03-11T23:59:59Z").get_json()
    assert when["numberMatched"] == 2
    open_end = client.get("/ogc/collections/incidents/items?datetime=2026-03-13T00:00:00Z/..").get_json()
    assert open_end["numberMatched"] == 3
    bad = client.get("/ogc/collections/buildings/items?colour=red")
    assert bad.status_code == 400 and "colour" in bad.get_json()["description"]
    assert client.get("/ogc/collections/buildings/items?limit=0").status_code == 400
    assert client.get("/ogc/collections/buildings/items?bbox=1,2,3").status_code == 400


def test_crs_by_reference_and_axis_order(client):
    one = client.get("/ogc/collections/buildings/items/B0000").get_json()
    lon, lat = one["geometry"]["coordinates"]
    assert 114 < lon < 115 and 22 < lat < 23
    latlon = client.get("/ogc/collections/buildings/items/B0000?crs=http://www.opengis.net/def/crs/EPSG/0/4490")
    assert latlon.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4490>"
    assert latlon.get_json()["geometry"]["coordinates"] == pytest.approx([lat, lon])
    # The CRS is the header's: no "crs" member in the geometry (PostGIS adds one outside EPSG:4326).
    assert set(latlon.get_json()["geometry"]) == {"type", "coordinates"}
    gk = client.get("/ogc/collections/buildings/items/B0000?crs=http://www.opengis.net/def/crs/EPSG/0/4547").get_json()
    north, east = gk["geometry"]["coordinates"]
    assert 2_400_000 < north < 2_600_000 and 400_000 < east < 600_000
    # bbox given in EPSG:4490 (latitude first).
    box = client.get(
        "/ogc/collections/base-cells/items?bbox=22.5301,114.0501,22.5329,114.0509"
        "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4490"
    ).get_json()
    assert box["numberMatched"] == 3
    assert client.get("/ogc/collections/buildings/items?crs=EPSG:9999").status_code == 400
    assert client.get("/ogc/collections/buildings/items/NOPE").status_code == 404


@pytest.fixture(scope="module")
def served(ogc_settings):
    server = create_server(create_app(ogc_settings), host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}/ogc"
    server.close()


def _ogrinfo(*args) -> str:
    done = subprocess.run(
        ["ogrinfo", "-ro", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"GDAL_HTTP_TIMEOUT": "30", "CPL_CURL_VERBOSE": "NO", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_gdal_oapif_reads_the_api(served):
    listing = _ogrinfo(f"OAPIF:{served}")
    names = re.findall(r"^\d+: ([\w-]+)", listing, flags=re.MULTILINE)
    assert names == ["admin-units", "base-cells", f"work-cells-{DEPT}", "buildings", "incidents"]
    summary = _ogrinfo("-so", f"OAPIF:{served}", "buildings")
    assert "Feature Count: 18" in summary
    cells = _ogrinfo("-al", "-q", f"OAPIF:{served}", "base-cells")
    assert cells.count("OGRFeature(base-cells)") == 18 and "测试1社区" in cells
    # GDAL 3.6's OAPIF asks for CRS84 and reads it as WGS 84 with longitude first.
    assert 'ID["EPSG",4326]]' in summary and "Data axis to CRS axis mapping: 2,1" in summary
    assert "Extent: (114.050500, 22.530500) - (114.055500, 22.532500)" in summary


def test_gdal_oapif_asks_for_another_crs(served):
    """Part 2 through GDAL (pyogrio's newer GDAL has the OAPIF CRS open option): Gauss-Kruger metres."""
    # In another process: GDAL holds the GIL while reading, and the server runs in this one.
    script = (
        "import json, sys, pyogrio; f = pyogrio.read_dataframe(sys.argv[1], layer='buildings', "
        "CRS='EPSG:4547'); print(json.dumps([len(f), f.crs.to_epsg(), f.geometry.x.min(), f.geometry.y.min()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, f"OAPIF:{served}"], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    count, epsg, x, y = json.loads(done.stdout)
    assert count == 18 and epsg == 4547
    assert 400_000 < x < 600_000 and 2_400_000 < y < 2_600_000
