"""The web app through Flask's test client: pages, the JSON API, errors, sign-in, translations."""

from __future__ import annotations

import os
import re
import stat
from html.parser import HTMLParser
from pathlib import Path

import folium
import pytest
from factories import STREET, X0, Y0, D, make_base_grid
from factories_web import commit
from flask import Blueprint
from sqlalchemy import select

from gridkit import db
from gridkit.admin import ENGLISH_NAME
from gridkit.config import Settings
from gridkit.messages import catalogue
from gridkit.models import EDITION_STATUSES, ROLES, AdminUnit
from gridkit.users import add_user
from gridkit.vendor import LEAFLET_DIR
from tests.factories import STREET, X0, Y0, D, make_base_grid
from web import create_app
from web.auth import login_required
from web.mapview import JS_STRINGS, OSM_TILES

WEB = Path(__file__).resolve().parent.parent / "web"
COMMUNITY = f"{STREET}001"
PASSWORD = "correct-horse-7"


@pytest.fixture
def app(fresh_settings):
    """The app on a database of its own with a 3×3 base grid and a planner."""

    def fill(session):
        make_base_grid(session)
        add_user(session, "planner1", "planner", password=PASSWORD)
        add_user(session, "admin1", "admin", password=PASSWORD)

    commit(fresh_settings, fill)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def _inner_bbox(col0, row0, col1, row1):
    eps = D / 10
    return ",".join(
        str(v) for v in (X0 + col0 * D + eps, Y0 + row0 * D + eps, X0 + (col1 + 1) * D - eps, Y0 + (row1 + 1) * D - eps)
    )


def _count(html: str, key: str) -> str:
    match = re.search(rf'data-count="{key}">([^<]*)<', html)
    assert match, f"no count {key} on the page"
    return match.group(1)


# Pages ---------------------------------------------------------------------------------------


def test_home_page_in_chinese_by_default(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "gridkit · 深圳市统一空间基础网格" in html
    assert _count(html, "base_cells") == "9"
    assert _count(html, "communities") == "1"
    assert _count(html, "districts") == "1"
    assert _count(html, "incidents") == "0 / 0"
    assert "基础网格版本：2026（已发布）" in html
    assert 'class="folium-map"' in html
    assert "gridkit-map.js" in html
    # Base cells are fetched by the page, never inlined.
    assert COMMUNITY + "001" not in html


def test_home_page_in_english_and_the_choice_is_remembered(client):
    html = client.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html
    # The city has no English name here: the English title leaves the Chinese one out rather than mix languages.
    assert "<title>gridkit · Unified Spatial Base Grid</title>" in html and "深圳市 Unified" not in html
    assert "Base grid edition: 2026 (published)" in html
    assert _count(html, "base_cells") == "9"
    # The cookie keeps English even against the browser's preference.
    again = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in again
    assert '<html lang="zh-CN">' in client.get("/?lang=zh-CN").get_data(as_text=True)


def test_title_names_the_city_in_the_pages_language(app, fresh_settings):
    """The city's English name (admin unit data, gridkit.admin.ENGLISH_NAME) in English, its name in Chinese."""

    def name_city(session):
        city = session.scalar(select(AdminUnit).where(AdminUnit.level == "city"))
        city.attributes = {**(city.attributes or {}), ENGLISH_NAME: "Shenzhen"}

    commit(fresh_settings, name_city)
    client = app.test_client()
    english = client.get("/?lang=en").get_data(as_text=True)
    assert "<title>gridkit · Shenzhen Unified Spatial Base Grid</title>" in english and "深圳" not in english
    assert "gridkit · Shenzhen Unified Spatial Base Grid" in client.get("/login").get_data(as_text=True)
    chinese = client.get("/?lang=zh-CN").get_data(as_text=True)
    assert "<title>gridkit · 深圳市统一空间基础网格</title>" in chinese and "Shenzhen" not in chinese


def test_deployment_language_wins_over_browser_locale(app):
    assert '<html lang="zh-CN">' in app.test_client().get("/", headers={"Accept-Language": "en-GB,en;q=0.8"}).get_data(
        as_text=True
    )
    assert '<html lang="zh-CN">' in app.test_client().get(
        "/", headers={"Accept-Language": "zh-TW;q=0.9, en;q=0.5"}
    ).get_data(as_text=True)
    assert '<html lang="zh-CN">' in app.test_client().get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    # An unknown ?lang= is ignored.
    assert '<html lang="zh-CN">' in app.test_client().get("/?lang=xx").get_data(as_text=True)


def test_settings_language_is_the_fallback(fresh_settings):
    app = create_app(Settings(home=fresh_settings.home, database_url=fresh_settings.database_url, lang="en"))
    html = app.test_client().get("/").get_data(as_text=True)
    assert '<html lang="en">' in html and "No base grid edition yet." in html
    assert _count(html, "base_cells") == "0"


def test_home_page_uses_no_cdn(client):
    html = client.get("/").get_data(as_text=True)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {OSM_TILES["url"]}, urls
    for forbidden in ("jsdelivr", "cdnjs", "bootstrapcdn", "code.jquery", "unpkg"):
        assert forbidden not in html
    sources = re.findall(r'<script[^>]*\ssrc="([^"]+)"', html) + re.findall(r'<link[^>]*\shref="([^"]+)"', html)
    assert sources and all(s.startswith("/static/") or s == "data:," for s in sources), sources
    assert "/static/vendor/leaflet/leaflet.js" in sources
    assert "/static/vendor/leaflet/leaflet.css" in sources
    # folium's own defaults stay untouched for anyone else using folium in this process.
    assert any("jsdelivr" in url for _, url in folium.Map.default_js)
    # And the files are really served by Flask.
    js = client.get("/static/vendor/leaflet/leaflet.js")
    assert js.status_code == 200 and b"Leaflet 1.9.4" in js.data
    assert client.get("/static/vendor/leaflet/images/layers.png").status_code == 200
    assert client.get("/static/js/gridkit-map.js").status_code == 200
    assert client.get("/static/css/gridkit.css").status_code == 200
    assert "BSD 2-Clause" in (LEAFLET_DIR / "LICENSE").read_text()


def test_home_page_on_an_empty_database(fresh_settings):
    html = create_app(fresh_settings).test_client().get("/").get_data(as_text=True)
    assert "尚无基础网格版本。" in html
    assert '"hasData": false' in html
    # A new city's map, before anything is imported, shows the whole country rather than one city.
    assert "[[18.1, 73.5], [53.6, 135.1]]" in html and "114.06" not in html


def test_base_grid_page_before_the_first_edition_shows_the_admin_units(fresh_settings):
    from sqlalchemy import text

    commit(fresh_settings, make_base_grid)
    commit(fresh_settings, lambda s: s.execute(text("DELETE FROM base_cell; DELETE FROM base_grid_edition")))
    html = create_app(fresh_settings).test_client().get("/basegrid").get_data(as_text=True)
    assert '"hasData": true' in html and "[[18.1, 73.5], [53.6, 135.1]]" not in html
    assert f"[[{Y0}, {X0}]," in html  # fitted to the admin units, whose south-west corner is the grid's


# API -----------------------------------------------------------------------------------------


def test_api_summary(client):
    body = client.get("/api/summary").get_json()
    assert body["base_cells"] == 9 and body["communities"] == 1 and body["streets"] == 1
    assert body["edition"]["name"] == "2026" and body["edition"]["status"] == "published"
    assert body["incidents"] == {"open": 0, "total": 0}


def test_api_admin_units(client):
    everything = client.get("/api/admin-units").get_json()
    assert everything["type"] == "FeatureCollection"
    assert [f["properties"]["level"] for f in everything["features"]] == ["city", "district", "street", "community"]
    response = client.get("/api/admin-units?level=community")
    assert response.content_type == "application/json"
    (feature,) = response.get_json()["features"]
    assert feature["properties"] == {
        "code": COMMUNITY,
        "name": "测试1社区",
        "level": "community",
        "parent_code": STREET,
    }
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert len(client.get(f"/api/admin-units?parent={STREET}").get_json()["features"]) == 1
    assert len(client.get("/api/admin-units?level=street&parent=440304").get_json()["features"]) == 1
    bad = client.get("/api/admin-units?level=province")
    assert bad.status_code == 400 and bad.get_json()["error"] == "ValidationError"
    missing = client.get("/api/admin-units?parent=999999")
    assert missing.status_code == 404 and missing.get_json()["error"] == "NotFound"
    assert client.get("/api/admin-units?tolerance=abc").status_code == 400


def test_api_base_cells(client):
    everything = client.get("/api/base-cells").get_json()
    assert everything["type"] == "FeatureCollection" and len(everything["features"]) == 9
    assert everything["edition"]["name"] == "2026"
    some = client.get(f"/api/base-cells?bbox={_inner_bbox(1, 1, 2, 2)}").get_json()
    # The north-east 2×2 block: cells 2, 3 (north row) and 5, 6 (middle row).
    assert [f["properties"]["code"] for f in some["features"]] == [f"{COMMUNITY}{n:03d}" for n in (2, 3, 5, 6)]
    feature = some["features"][0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Polygon"
    assert set(feature["properties"]) == {"code", "community_code", "community_name", "area_m2"}
    assert feature["properties"]["community_name"] == "测试1社区"
    assert feature["properties"]["area_m2"] == pytest.approx(11390, rel=0.01)
    edition = everything["edition"]["id"]
    assert len(client.get(f"/api/base-cells?edition={edition}").get_json()["features"]) == 9
    far_away = client.get("/api/base-cells?bbox=100,30,100.1,30.1").get_json()
    assert far_away["features"] == []


@pytest.mark.parametrize(
    "query", ["bbox=1,2,3", "bbox=a,b,c,d", "bbox=114.06,22.53,114.05,22.54", "bbox=", "bbox=114,22,114,95"]
)
def test_api_base_cells_malformed_bbox_is_400_json(client, query):
    response = client.get(f"/api/base-cells?{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "ValidationError"
    assert body["code"].startswith("layers.bbox") and "范围" in body["message"]


def test_api_base_cells_bad_edition(client):
    assert client.get("/api/base-cells?edition=abc").get_json()["error"] == "ValidationError"
    missing = client.get("/api/base-cells?edition=987654")
    assert missing.status_code == 404 and "987654" in missing.get_json()["message"]


def test_api_health(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["schema_revision"] == db.head_revision() == body["head_revision"]
    assert body["postgis"]


def test_unreachable_database_is_503(tmp_path):
    app = create_app(Settings(home=tmp_path / "home", database_url="postgresql://nobody@127.0.0.1:1/nothing"))
    api = app.test_client().get("/api/health")
    assert api.status_code == 503 and api.get_json()["error"] == "SetupError"
    assert "无法连接" in api.get_json()["message"]
    assert "cannot connect" in app.test_client().get("/api/health?lang=en").get_json()["message"]
    page = app.test_client().get("/")
    assert page.status_code == 503 and page.content_type.startswith("text/html")
    assert "服务暂不可用" in page.get_data(as_text=True)


# Errors --------------------------------------------------------------------------------------


def test_unknown_page_is_404_html(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.content_type.startswith("text/html")
    html = response.get_data(as_text=True)
    assert "页面不存在" in html and "<nav" in html
    assert "Page not found" in client.get("/no/such/page?lang=en").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/", "/api/no-such-thing", "/api"])
def test_unknown_api_url_is_404_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["error"] == "NotFound"


def test_wrong_method_on_api_is_405_json(client):
    response = client.post("/api/summary")
    assert response.status_code == 405 and response.get_json()["error"] == "MethodNotAllowed"


# Sign-in -------------------------------------------------------------------------------------


def _csrf(client, path="/login"):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_login_and_logout(client):
    home = client.get("/").get_data(as_text=True)
    assert 'href="/login"' in home and "planner1" not in home

    token = _csrf(client)
    wrong = client.post("/login", data={"name": "planner1", "password": "nope-nope", "csrf_token": token})
    assert wrong.status_code == 200 and "用户名或密码错误。" in wrong.get_data(as_text=True)
    with client.session_transaction() as cookie_session:
        assert "user_id" not in cookie_session

    right = client.post("/login", data={"name": "planner1", "password": PASSWORD, "csrf_token": token})
    # Signed in, a user lands in their role's workspace.
    assert right.status_code == 302 and right.headers["Location"] == "/planner"
    home = client.get("/").get_data(as_text=True)
    assert "planner1（网格规划员）" in home and 'action="/logout"' in home

    assert client.post("/logout").status_code == 400  # no CSRF token: refused
    assert "planner1" in client.get("/").get_data(as_text=True)
    token = _csrf(client, "/")
    with client.session_transaction() as cookie_session:
        copied = dict(cookie_session)
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 302
    assert "planner1" not in client.get("/").get_data(as_text=True)
    # The session ends on the server: a cookie copied before signing out no longer works.
    with client.session_transaction() as cookie_session:
        cookie_session.update(copied)
    assert "planner1" not in client.get("/").get_data(as_text=True)
    assert client.get("/api/planner/departments").status_code == 401


def test_login_without_csrf_token_is_refused(client):
    response = client.post("/login", data={"name": "planner1", "password": PASSWORD})
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)


def test_login_goes_to_next_but_only_on_this_site(client):
    token = _csrf(client)
    ok = client.post(
        "/login", data={"name": "planner1", "password": PASSWORD, "csrf_token": token, "next": "/api/summary"}
    )
    assert ok.headers["Location"] == "/api/summary"
    client.post("/logout", data={"csrf_token": _csrf(client, "/")})
    token = _csrf(client)
    evil = client.post(
        "/login", data={"name": "planner1", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"}
    )
    assert evil.headers["Location"] == "/planner"


def test_login_required_by_role(fresh_settings):
    commit(
        fresh_settings,
        lambda s: (
            make_base_grid(s),
            add_user(s, "planner1", "planner", password=PASSWORD),
            add_user(s, "admin1", "admin", password=PASSWORD),
        ),
    )
    app = create_app(fresh_settings)
    bp = Blueprint("probe", __name__)

    @bp.route("/admin-only")
    @login_required(roles=("admin",))
    def admin_only():
        return "secret admin page"

    @bp.route("/api/anyone")
    @login_required
    def anyone():
        return {"ok": True}

    app.register_blueprint(bp)
    client = app.test_client()
    anonymous = client.get("/admin-only")
    assert anonymous.status_code == 302 and anonymous.headers["Location"] == "/login?next=/admin-only"
    assert client.get("/api/anyone").status_code == 401

    token = _csrf(client)
    client.post("/login", data={"name": "planner1", "password": PASSWORD, "csrf_token": token})
    denied = client.get("/admin-only")
    assert denied.status_code == 403 and "网格规划员" in denied.get_data(as_text=True)
    assert client.get("/api/anyone").get_json() == {"ok": True}

    token = _csrf(client, "/")
    client.post("/logout", data={"csrf_token": token})
    token = _csrf(client)
    client.post("/login", data={"name": "admin1", "password": PASSWORD, "csrf_token": token})
    assert client.get("/admin-only").get_data(as_text=True) == "secret admin page"


# Settings ------------------------------------------------------------------------------------


def test_secret_key_is_kept_in_home_with_mode_0600(fresh_settings):
    app = create_app(fresh_settings)
    path = fresh_settings.home / "secret_key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert app.config["SECRET_KEY"] == path.read_text().strip()
    assert create_app(fresh_settings).config["SECRET_KEY"] == app.config["SECRET_KEY"]
    assert app.config["GRIDKIT_SETTINGS"] is fresh_settings
    given = Settings(home=fresh_settings.home, database_url=fresh_settings.database_url, secret_key="k" * 32)
    assert create_app(given).config["SECRET_KEY"] == "k" * 32


# Translations --------------------------------------------------------------------------------


def _catalogs():
    return {lang: catalogue(lang) for lang in ("zh-CN", "en")}


def test_translation_files_have_the_same_keys_and_fields():
    zh, en = _catalogs().values()
    assert set(zh) == set(en)
    for key in zh:
        assert set(re.findall(r"\{(\w+)\}", zh[key])) == set(re.findall(r"\{(\w+)\}", en[key])), key
        assert zh[key].strip() and en[key].strip(), key


def test_every_key_used_exists_in_both_languages():
    catalogs = _catalogs()
    used, prefixes = set(), set()
    for template in (WEB / "templates").glob("*.html"):
        source = template.read_text(encoding="utf-8")
        used |= set(re.findall(r"""_\(\s*['"]([^'"]+)['"]\s*[,)]""", source))
        prefixes |= set(re.findall(r"""_\(\s*['"]([^'"]+)['"]\s*~""", source))
    # Prefixes of the pages built here are covered below; other workspaces test their own.
    assert {"role.", "lang.", "edition.status.", "summary."} <= prefixes
    for module in WEB.glob("*.py"):
        used |= set(re.findall(r"""\bt\(\s*['"]([^'"{]+)['"]""", module.read_text(encoding="utf-8")))
    # Keys built from data: roles, edition states, summary counts, languages, error pages, map strings.
    used |= {f"role.{r}" for r in ROLES} | {f"edition.status.{s}" for s in EDITION_STATUSES}
    used |= {f"lang.{code}" for code in ("zh-CN", "en")} | set(JS_STRINGS)
    used |= {
        f"summary.{k}"
        for k in (
            "districts",
            "streets",
            "communities",
            "base_cells",
            "departments",
            "work_cells",
            "coordinators",
            "buildings",
            "residents",
            "legal_entities",
        )
    }
    used |= {f"error.title.{code}" for code in (400, 403, 404, 409, 500, 503)}
    assert len(used) > 40
    for lang, catalog in catalogs.items():
        missing = sorted(used - set(catalog))
        assert not missing, f"{lang}.json lacks {missing}"


class _TextCollector(HTMLParser):
    """Collects text nodes and user-visible attributes outside <script> and <style>."""

    VISIBLE_ATTRIBUTES = frozenset({"title", "alt", "placeholder", "aria-label", "value"})

    def __init__(self):
        super().__init__()
        self.skip = 0
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        for name, value in attrs:
            if name in self.VISIBLE_ATTRIBUTES and value:
                self.found.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.found.append(data)


def test_templates_hold_no_untranslated_text():
    brand_names = {"gridkit"}
    for template in (WEB / "templates").glob("*.html"):
        source = template.read_text(encoding="utf-8")
        # Blocks that fill class attributes hold CSS class names, not text.
        bare = re.sub(r"\{% block \w+_class %\}.*?\{% endblock %\}", " ", source, flags=re.DOTALL)
        # Jinja expressions and statements are where translated text comes from.
        bare = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", bare, flags=re.DOTALL)
        collector = _TextCollector()
        collector.feed(bare)
        for text in collector.found:
            words = [w for w in re.findall(r"[A-Za-z\u4e00-\u9fff]+", text) if w not in brand_names]
            assert not words, f"{template.name}: untranslated text {text.strip()!r}"


def test_no_chinese_literals_outside_translations():
    for path in [*WEB.glob("*.py"), WEB / "static/js/gridkit-map.js"]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"[\u4e00-\u9fff]", text), (
            f"{path.name} has Chinese text: use the message catalogue gridkit/messages"
        )


def test_a_value_the_database_refuses_is_logged_without_the_value(app, client, caplog):
    # The web logs such errors to be fixed: the log line names the statement, never the value.
    from sqlalchemy import text as sql_text

    from web.database import db_session

    bp = Blueprint("refused", __name__)

    @bp.route("/refused")
    def refused():
        db_session().execute(sql_text("SELECT CAST(:p AS int)"), {"p": "张三丰 13800138000"})
        return "unreachable"

    app.register_blueprint(bp)
    with caplog.at_level("WARNING", logger="web.errors"):
        response = client.get("/refused")
    assert response.status_code == 400
    logged = caplog.text
    assert "13800138000" not in logged and "张三丰" not in logged
    assert "database refused a value" in logged and "SELECT CAST" in logged and "22P02" in logged
