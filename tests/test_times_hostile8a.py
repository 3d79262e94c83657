"""A time at either end of the calendar is refused by the one time rule with a sentence, not overflowed
later by date arithmetic (a 500 from the heatmap and from Open311's list of requests)."""

from __future__ import annotations

import pytest
from factories_web import commit
from test_incidents_web import make_cases

from gridkit.errors import ValidationError
from gridkit.rules import parse_time, period_bounds
from web import create_app


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59", "0001-01-01", "1899-12-31T23:00:00+08:00", "3000-01-01"])
def test_times_outside_the_years_gridkit_keeps_are_refused(text):
    with pytest.raises(ValidationError) as info:
        parse_time(text, field="from")
    assert info.value.render("en") == f"from {text!r} is not a time gridkit keeps: give one in the years 1900–2999."
    assert "1900–2999" in info.value.render("zh-CN")


def test_times_inside_them_are_read():
    first, last = period_bounds("1900-01-01", "2999-12-30")
    assert (str(first.date()), str(last.date())) == ("1900-01-01", "2999-12-31")  # Beijing days


def test_heatmap_and_open311_refuse_them_in_the_users_language(fresh_settings):
    commit(fresh_settings, make_cases)
    app = create_app(fresh_settings)
    client = app.test_client()
    response = client.get("/open311/v2/requests.json", query_string={"end_date": "0001-01-01", "lang": "en"})
    assert response.status_code == 400
    assert "give one in the years 1900–2999" in response.get_json()[0]["description"]
