"""The analyst's choropleth sent as text written around PostGIS's outlines (scripts/bench_pages.py: 10,000
cells' outlines parsed and written again took 0.8 s): the same GeoJSON as the document choropleth() builds."""

from __future__ import annotations

import json

import pytest
from factories_exports import C1, make_city
from test_reports_web import PASSWORD, login

from gridkit import db
from gridkit.reports.choropleth import choropleth, choropleth_json
from gridkit.users import add_user
from web import create_app


@pytest.mark.parametrize(
    ("count", "by", "area"),
    [
        ("residents", "cell", None),
        ("incidents", "community", None),
        ("buildings", "cell", C1),
        ("open_incidents", "cell", "000000"),
    ],
)
def test_the_text_is_the_document(session, count, by, area):
    make_city(session)
    document = choropleth(session, count, by, area=area)
    text = choropleth_json(session, count, by, area=area)
    assert json.loads(text) == document
    # Members in the document's order (GeoJSON's "type" first), Chinese names as they are.
    assert list(json.loads(text)) == ["type", "count", "by", "min", "max", "features"]
    assert "\\u" not in text
    assert (len(document["features"]) > 0) == (area != "000000")
    # Under the small-count rule too (a reader who may not see residents), the text is the document.
    hidden = choropleth(session, count, by, area=area, hide_small_counts=True)
    assert json.loads(choropleth_json(session, count, by, area=area, hide_small_counts=True)) == hidden


def test_the_web_sends_the_document(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_city(session)
        add_user(session, "ana", "analyst", password=PASSWORD)
    app = create_app(fresh_settings)
    client = app.test_client()
    login(client, "ana")
    for query in ("count=residents&by=cell", "count=residents&by=community", f"count=incidents&by=cell&area={C1}"):
        answer = client.get(f"/analyst/choropleth.json?{query}")
        assert answer.status_code == 200 and answer.mimetype == "application/json"
        args = dict(part.split("=") for part in query.split("&"))
        with db.session_factory(db.engine_for(fresh_settings))() as session:
            # An analyst may not see residents: counts of 1–2 residents hidden (gridkit.rules.SMALL_COUNT_MAX).
            expected = choropleth(session, args["count"], args["by"], area=args.get("area"), hide_small_counts=True)
        assert answer.get_json() == expected and expected["features"]
