"""The Open311 rate limit: one count per address shared by every thread of the server process,
kept in the store GRIDKIT_OPEN311_RATE_STORAGE names."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from factories_exports import make_city

from gridkit import db
from gridkit.config import Settings
from gridkit.errors import SetupError
from gridkit.models import Incident
from web import create_app

POST = {"service_code": "E0101", "lat": "22.531", "long": "114.0505"}


@pytest.fixture
def app(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_city(session)
    settings = dataclasses.replace(fresh_settings, open311_rate=3)
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


def _incidents(settings) -> int:
    with db.session_factory(db.engine_for(settings))() as session:
        return session.query(Incident).count()


def test_the_limit_holds_across_threads(app):
    settings = app.config["GRIDKIT_SETTINGS"]
    assert settings.open311_rate_storage == "memory://"
    before = _incidents(settings)
    start = threading.Barrier(8)
    statuses: list[int] = []

    def post(address: str, n: int) -> None:
        client = app.test_client()  # one client per thread, as waitress serves each request on a thread
        start.wait()
        # Eight different reports (the same post again would be the same case).
        data = {**POST, "description": f"{POST.get('description', '')}{n}"}
        response = client.post("/open311/v2/requests.json", data=data, environ_base={"REMOTE_ADDR": address})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=("10.0.0.50", n)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] * 3 + [429] * 5
    assert _incidents(settings) == before + 3
    # Another address has its own count, in the same process.
    other = app.test_client().post("/open311/v2/requests.json", data=POST, environ_base={"REMOTE_ADDR": "10.0.0.51"})
    assert other.status_code == 201


def test_rate_storage_is_a_setting_and_a_bad_one_stops_the_app(fresh_settings):
    assert Settings().open311_rate_storage == "memory://"
    env = {"GRIDKIT_OPEN311_RATE_STORAGE": "memory://"}
    assert Settings.from_env(env).open311_rate_storage == "memory://"
    with pytest.raises(SetupError) as err:
        create_app(dataclasses.replace(fresh_settings, open311_rate_storage="nosuch://host"))
    assert "nosuch://host" in err.value.message and "GRIDKIT_OPEN311_RATE_STORAGE" in err.value.message
