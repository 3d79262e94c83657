"""Where a citizen reported a case from can be their home (priv7b): the public reads a case's place
to about 100 m (Open311's GET, the OGC incidents collection, masked exports); staff who may read
personal data there and trusted Open311 keys read it exactly."""

from __future__ import annotations

import json

import pytest
from factories_exports import C2, make_city
from factories_web import commit, sign_in
from sqlalchemy import text
from test_open311 import open311  # noqa: F401 (the fixture)

from gridkit.incidents import workflow as wf
from gridkit.io.export import ExportOptions, export_layer
from gridkit.pii import ADDRESS_TAG, public_text, public_text_sql
from gridkit.users import add_user
from web import create_app

# A doorstep in community 1 of the test grid, to the tenth of a metre; public: the 0.001° grid point.
HOME = (114.0512345, 22.5318765)
NEAR = (114.051, 22.532)
DESCRIPTION = "楼下垃圾没人收，联系我 13800138000"


def _report(settings) -> str:
    def fill(session):
        add_user(session, "sup_all", "supervisor", password="correct-horse-7")
        add_user(session, "sup_c2", "supervisor", scope=C2, password="correct-horse-7")
        add_user(session, "ana", "analyst", password="correct-horse-7")
        case = wf.report_incident(
            session, lon=HOME[0], lat=HOME[1], description=DESCRIPTION, category="E0101", actor="hotline"
        )
        return case.incident.code

    return commit(settings, fill)


def _place(response) -> tuple[float, float]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()[0]
    return body["long"], body["lat"]


def test_open311_gives_the_public_a_place_to_100_m_and_staff_the_exact_one(open311):  # noqa: F811
    client, settings = open311
    code = _report(settings)
    one = f"/open311/v2/requests/{code}.json"
    assert _place(client.get(one)) == pytest.approx(NEAR, abs=1e-9)
    listed = client.get(f"/open311/v2/requests.json?service_request_id={code}").get_data(as_text=True)
    assert "114.0512345" not in listed and "22.5318765" not in listed and "114.051" in listed
    # A trusted source's key reads the exact point; a wrong key is refused, not answered publicly.
    assert _place(client.get(f"{one}?api_key=s3cret")) == pytest.approx(HOME, abs=1e-9)
    assert client.get(f"{one}?api_key=guess").status_code == 403
    app = create_app(settings)
    app.config["TESTING"] = True
    for name, exact in (("sup_all", True), ("sup_c2", False), ("ana", False)):
        staff = app.test_client()
        sign_in(staff, name)
        assert _place(staff.get(one)) == pytest.approx(HOME if exact else NEAR, abs=1e-9), name


def test_the_ogc_incidents_collection_serves_no_doorstep_and_no_phone(open311):  # noqa: F811
    client, settings = open311
    code = _report(settings)
    feature = client.get(f"/ogc/collections/incidents/items/{code}").get_json()
    assert feature["geometry"]["coordinates"] == pytest.approx(list(NEAR), abs=1e-9)
    assert feature["properties"]["description"] == "楼下垃圾没人收，联系我 138****8000"
    page = client.get("/ogc/collections/incidents/items?limit=100").get_data(as_text=True)
    assert "114.0512345" not in page and "13800138000" not in page
    # An exact-match filter on the description would confirm a guessed phone number.
    guessed = client.get(f"/ogc/collections/incidents/items?description={DESCRIPTION}")
    assert guessed.status_code == 400


def test_a_masked_export_of_incidents_gives_places_to_100_m_an_unmasked_one_exact(session, tmp_path):
    make_city(session)
    admin = add_user(session, "adm", "admin", password="correct-horse-7")
    analyst = add_user(session, "ana", "analyst", password="correct-horse-7")
    said = DESCRIPTION + ADDRESS_TAG.format("B0004")
    code = wf.report_incident(session, lon=HOME[0], lat=HOME[1], description=said, actor="hotline").incident.code

    def place(path, **kw):
        export_layer(session, ExportOptions("incidents", "geojson", path, **kw), user=admin if kw else analyst)
        features = json.loads(path.read_text())["features"]
        found = next(f for f in features if f["properties"]["code"] == code)
        return found["geometry"]["coordinates"], found["properties"]["description"]

    assert place(tmp_path / "masked.geojson") == (
        pytest.approx(list(NEAR), abs=1e-9),
        "楼下垃圾没人收，联系我 138****8000",
    )
    assert place(tmp_path / "clear.geojson", unmasked=True) == (pytest.approx(list(HOME), abs=1e-9), said)


# Free text as people write it: numbers of every kind, spaced or not, and codes that are no phone.
TEXTS = [
    "楼道堆物，联系人王小明 13800138000，身份证 440304199001011234，座机 0755-83211234",
    "+86 138 0013 8000 and 86-13800138000, 010 1234567, 44030419900101123X",
    "井盖没了 [address_id=B0004]",
    "case INC13800138000 cell 440304001001001 x13800138000 0755-1234567x",
    "13800138000",
    "",
    None,
]


def test_the_public_text_rule_reads_the_same_in_python_and_in_sql(session):
    for said in TEXTS:
        in_sql = session.execute(text(f"SELECT {public_text_sql('CAST(:t AS text)')}"), {"t": said}).scalar_one()
        assert in_sql == public_text(said), said


def test_the_building_an_open311_post_named_is_not_public(open311):  # noqa: F811
    client, settings = open311
    posted = client.post(
        "/open311/v2/requests.json", data={"service_code": "0101", "address_id": "B0004", "description": "井盖没了"}
    )
    assert posted.status_code == 201, posted.get_data(as_text=True)
    code = posted.get_json()[0]["service_request_id"]
    public = client.get(f"/open311/v2/requests/{code}.json").get_json()[0]
    assert public["description"] == "井盖没了" and "B0004" not in client.get("/open311/v2/requests.json").get_data(
        as_text=True
    )
    assert "B0004" not in client.get("/ogc/collections/incidents/items?limit=100").get_data(as_text=True)
    trusted = client.get(f"/open311/v2/requests/{code}.json?api_key=s3cret").get_json()[0]
    assert trusted["description"] == "井盖没了 [address_id=B0004]"
