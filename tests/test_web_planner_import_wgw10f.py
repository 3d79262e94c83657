"""The planner's import of drawn work cells on the draft page (web/planner_import.py), through the Flask client.

The files are written by GDAL (pyogrio) as a department delivers them: a shapefile in the Gauss-Kruger zone
EPSG:4547 with GBK attributes and no .cpg, zipped. Who may upload, what a refusal says and leaves unchanged, the
upload's size limit and scratch folder, and who may download the report.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from shapely.geometry import box

from gridkit import rules
from gridkit.models import WorkGridVersion
from tests.factories import X0, Y0, D
from tests.factories_planner import (  # noqa: F401 (fixtures)
    C1,
    C2,
    DEPT,
    NEW,
    OTHER_DEPT,
    A,
    B,
    cell,
    login,
    members,
    planner,
    planner_app,
    read,
)
from web.bodies import IMPORT_BYTES

TO_4547 = pyproj.Transformer.from_crs(4490, 4547, always_xy=True)
# The file's plan: NEW = the two western columns of community 1; B = the rest of community 1 and community 2 but
# for its eastern column, of which B holds 40 % only (below the rule's half): three base cells in no work cell.
PLAN = [
    {"code": NEW, "name": "西片网格", "geom": box(X0, Y0, X0 + 2 * D, Y0 + 3 * D)},
    {"code": B, "name": "东片网格", "geom": box(X0 + 2 * D, Y0, X0 + 5.4 * D, Y0 + 3 * D)},
]


def gauss_kruger(geom):
    """Return a lon/lat polygon in EPSG:4547 with a vertex every 10 m, as a surveyor's drawing."""
    projected = shapely.transform(geom, lambda xy: np.column_stack(TO_4547.transform(*xy.T)))
    return shapely.segmentize(projected, 10)


def zipped_shapefile(folder: Path, rows: list[dict], name: str = "工作网格") -> Path:
    """Write rows (code, name, lon/lat geometry) as a GBK shapefile in EPSG:4547 without .cpg; return it zipped."""
    folder.mkdir(parents=True, exist_ok=True)
    shp = folder / f"{name}.shp"
    frame = gpd.GeoDataFrame(
        {"WGBM": [r["code"] for r in rows], "网格名称": [r.get("name") for r in rows]},
        geometry=[gauss_kruger(r["geom"]) for r in rows],
        crs=4547,
    )
    frame.to_file(shp, engine="pyogrio", encoding="GBK")
    shp.with_suffix(".cpg").unlink(missing_ok=True)
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as z:
        for suffix in (".shp", ".shx", ".dbf", ".prj"):
            z.write(shp.with_suffix(suffix), shp.with_suffix(suffix).name)
    return path


def revision_of(settings, draft_id: int) -> int:
    return read(settings, lambda s: s.get(WorkGridVersion, draft_id).revision)


def upload(client, token, url, path: Path, **form):
    data = {"file": (io.BytesIO(path.read_bytes()), path.name), **{k: str(v) for k, v in form.items()}}
    return client.post(url, data=data, headers={"X-CSRF-Token": token}, content_type="multipart/form-data")


def scratch(settings) -> list[Path]:
    folder = Path(settings.home) / "exports"
    return sorted(folder.glob("gk-*")) if folder.exists() else []


def test_fields_then_import_then_report(planner, tmp_path):
    client, token, settings, ids = planner
    draft = ids["draft"]
    path = zipped_shapefile(tmp_path / "file", PLAN)
    fields = upload(client, token, f"/api/planner/drafts/{draft}/import/fields", path)
    assert fields.status_code == 200, fields.get_json()
    assert fields.get_json()["fields"] == ["WGBM", "网格名称"] and fields.get_json()["features"] == 2

    revision = revision_of(settings, draft)
    answer = upload(
        client,
        token,
        f"/api/planner/drafts/{draft}/import?lang=en",
        path,
        code_field="WGBM",
        name_field="网格名称",
        share=rules.WORK_CELL_SHARE,
        revision=revision,
    )
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert (body["work_cells"], body["base_cells_assigned"], body["split"], body["unassigned"]) == (2, 15, 0, 3)
    assert body["work_cells_removed"] == 1 and body["revision"] == revision + 1
    assert body["message"].startswith("工作网格.zip imported: 2 work cells, 15 base cells assigned")
    placed = members(settings, draft)
    assert placed[cell(C1, 1)] == NEW and placed[cell(C1, 3)] == B and placed[cell(C2, 2)] == B
    assert cell(C2, 3) not in placed and A not in placed.values()
    assert scratch(settings) == []  # the upload's folder went with the request

    report = client.get(body["report"])
    assert report.status_code == 200 and report.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(report.get_data().decode("utf-8-sig"))))
    assert sorted(r["code"] for r in rows if r["kind"] == "below_share") == [cell(C2, n) for n in (3, 6, 9)]
    # The report names cells and the file, never who imported (no audit needed to read it).
    reports = Path(settings.home) / "reports"
    assert all("planner1" not in p.read_text(encoding="utf-8-sig") for p in reports.iterdir())


def test_the_report_is_the_departments_planners_only(planner_app, planner, tmp_path):
    app, settings, ids = planner_app
    client, token, _, _ = planner
    draft = ids["draft"]
    path = zipped_shapefile(tmp_path / "file", PLAN)
    form = {"code_field": "WGBM", "revision": revision_of(settings, draft)}
    url = upload(client, token, f"/api/planner/drafts/{draft}/import", path, **form).get_json()["report"]
    assert client.get(url).status_code == 200
    outsider = app.test_client()
    login(outsider, "community1")  # a planner whose scope (community 1) does not hold the department's street
    assert outsider.get(url).status_code == 403
    coordinator = app.test_client()
    login(coordinator, "coord1")
    assert coordinator.get(url).status_code in (302, 403)
    # Only a report of this draft, by its own name.
    stem = url.rsplit("/", 1)[1][: -len(".csv")]
    assert client.get(f"/planner/draft/{ids['published']}/import-reports/{stem}.csv").status_code == 404
    assert client.get(f"/planner/draft/{draft}/import-reports/..%2F..%2Fsecret_key.csv").status_code == 404
    assert client.get(f"/planner/draft/{draft}/import-reports/20260101-000000-workgrid-import.csv").status_code == 404


def test_only_planners_whose_scope_holds_the_department_upload(planner_app, tmp_path):
    app, settings, ids = planner_app
    draft = ids["draft"]
    path = zipped_shapefile(tmp_path / "file", PLAN)
    before = members(settings, draft)
    form = {"code_field": "WGBM", "revision": revision_of(settings, draft)}
    for name, status in (("community1", 403), ("coord1", 403)):
        client = app.test_client()
        token = login(client, name)
        for url in (f"/api/planner/drafts/{draft}/import", f"/api/planner/drafts/{draft}/import/fields"):
            assert upload(client, token, url, path, **form).status_code == status, (name, url)
    anonymous = app.test_client()
    assert upload(anonymous, "", f"/api/planner/drafts/{draft}/import", path, **form).status_code == 401
    # Without the session's CSRF token: refused, as every change of the page.
    client = app.test_client()
    login(client, "street1")
    refused = upload(client, "wrong", f"/api/planner/drafts/{draft}/import", path, **form)
    assert refused.status_code == 400 and refused.get_json()["code"] == "web.csrf"
    assert members(settings, draft) == before and revision_of(settings, draft) == form["revision"]
    # A planner scoped to the department's street may.
    token = login(client, "street1")
    assert upload(client, token, f"/api/planner/drafts/{draft}/import", path, **form).status_code == 200


def test_a_refusal_lists_every_problem_and_changes_nothing(planner, tmp_path):
    client, token, settings, ids = planner
    draft = ids["draft"]
    rows = [
        PLAN[0],
        {"code": None, "name": "无编码", "geom": box(X0 + 2 * D, Y0, X0 + 3 * D, Y0 + D)},
        {"code": NEW, "name": "重复", "geom": box(X0 + 3 * D, Y0, X0 + 4 * D, Y0 + D)},
        {"code": f"{OTHER_DEPT}{C2}01", "name": "别的部门", "geom": box(X0 + 4 * D, Y0, X0 + 5 * D, Y0 + D)},
    ]
    path = zipped_shapefile(tmp_path / "file", rows)
    before, revision = members(settings, draft), revision_of(settings, draft)
    answer = upload(client, token, f"/api/planner/drafts/{draft}/import", path, code_field="WGBM", revision=revision)
    body = answer.get_json()
    assert answer.status_code == 400, body
    assert [(p["index"], p["code"], p["kind"]) for p in body["problems"]] == [
        (1, None, "missing_code"),
        (2, NEW, "duplicate_code"),
        (3, f"{OTHER_DEPT}{C2}01", "bad_code"),
    ]
    assert body["message"] == "导入被拒绝，未做任何修改：共 3 个问题。"
    assert "要素 2" in body["problems"][1]["message"]  # each sentence in the page's language
    assert members(settings, draft) == before and revision_of(settings, draft) == revision
    report = client.get(body["report"])
    assert report.status_code == 200 and "duplicate_code" in report.get_data().decode("utf-8-sig")
    assert scratch(settings) == []


def test_files_that_are_no_layer_are_refused(planner, tmp_path):
    client, token, settings, ids = planner
    draft = ids["draft"]
    revision = revision_of(settings, draft)
    url = f"/api/planner/drafts/{draft}/import?lang=en"
    text = tmp_path / "网格.txt"
    text.write_text("not a map", encoding="utf-8")
    answer = upload(client, token, url, text, code_field="WGBM", revision=revision)
    assert answer.status_code == 400 and answer.get_json()["code"] == "web.import_file_type"
    assert "网格.txt cannot be imported" in answer.get_json()["message"]
    empty = tmp_path / "空.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.txt", "no layer here")
    answer = upload(client, token, url, empty, code_field="WGBM", revision=revision)
    body = answer.get_json()
    assert answer.status_code == 400 and [p["kind"] for p in body["problems"]] == ["no_layer_in_zip"]
    assert "空.zip" in body["problems"][0]["message"]
    missing = client.post(url, data={"code_field": "WGBM", "revision": str(revision)}, headers={"X-CSRF-Token": token})
    assert missing.status_code == 400 and missing.get_json()["code"] == "web.import_no_file"
    # A wrong field, a share out of range, a stale revision: refused, nothing changed.
    path = zipped_shapefile(tmp_path / "file", PLAN)
    wrong = upload(client, token, url, path, code_field="CODE", revision=revision).get_json()
    assert [p["kind"] for p in wrong["problems"]] == ["missing_field"] and "WGBM" in wrong["problems"][0]["message"]
    assert upload(client, token, url, path, code_field="WGBM", share=1.5, revision=revision).status_code == 400
    stale = upload(client, token, url, path, code_field="WGBM", revision=revision + 5)
    assert stale.status_code == 409
    assert revision_of(settings, draft) == revision and members(settings, draft)[cell(C1, 1)] == A
    assert scratch(settings) == []


def test_a_file_over_the_limit_gets_a_413_and_nothing_is_kept(planner, tmp_path):
    client, token, settings, ids = planner
    draft = ids["draft"]
    big = io.BytesIO(b"PK\x03\x04" + b"\0" * IMPORT_BYTES)
    answer = client.post(
        f"/api/planner/drafts/{draft}/import?lang=en",
        data={"file": (big, "大.zip"), "code_field": "WGBM", "revision": str(revision_of(settings, draft))},
        headers={"X-CSRF-Token": token},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 413
    assert f"({IMPORT_BYTES // 1024**2} MB)" in answer.get_json()["message"]
    assert scratch(settings) == []
    # Just under it, the file is read (and refused for what it is).
    path = zipped_shapefile(tmp_path / "file", PLAN)
    assert upload(client, token, f"/api/planner/drafts/{draft}/import/fields", path).status_code == 200


def test_the_draft_page_offers_the_form_in_its_language(planner):
    client, _, _, ids = planner
    html = client.get(f"/planner/draft/{ids['draft']}?lang=en").get_data(as_text=True)
    assert 'id="gk-import"' in html and "Import drawn work cells" in html and "gridkit-planner-import.js" in html
    assert 'name="csrf_token"' in html
    html = client.get(f"/planner/draft/{ids['draft']}?lang=zh-CN").get_data(as_text=True)
    assert "导入绘制的工作网格" in html
    published = client.get(f"/planner/version/{ids['published']}").get_data(as_text=True)
    assert 'id="gk-import"' not in published


def test_the_reading_options_are_fields_of_the_form(planner, tmp_path):
    client, token, settings, ids = planner
    draft = ids["draft"]
    url = f"/api/planner/drafts/{draft}/import?lang=en"
    # A GeoPackage of two layers: the page's "Layer" field, not the command's --layer, chooses one.
    gpkg = tmp_path / "部门.gpkg"
    frame = gpd.GeoDataFrame(
        {"code": [r["code"] for r in PLAN], "name": [r["name"] for r in PLAN]},
        geometry=[gauss_kruger(r["geom"]) for r in PLAN],
        crs=4547,
    )
    frame.to_file(gpkg, layer="网格", engine="pyogrio", driver="GPKG")
    frame.iloc[:1].to_file(gpkg, layer="草图", engine="pyogrio", driver="GPKG")
    fields = upload(client, token, f"/api/planner/drafts/{draft}/import/fields?lang=en", gpkg)
    assert fields.status_code == 400
    assert '"More options", "Layer"' in fields.get_json()["message"] and "--layer" not in fields.get_json()["message"]
    fields = upload(client, token, f"/api/planner/drafts/{draft}/import/fields", gpkg, layer="网格")
    assert fields.status_code == 200 and fields.get_json()["fields"] == ["code", "name"]
    revision = revision_of(settings, draft)
    wrong = upload(client, token, url, gpkg, layer="网格", code_field="WGBM", revision=revision).get_json()
    assert [p["kind"] for p in wrong["problems"]] == ["missing_field"]
    assert "--code-field" not in wrong["problems"][0]["message"] and "code, name" in wrong["problems"][0]["message"]
    done = upload(client, token, url, gpkg, layer="网格", code_field="code", name_field="name", revision=revision)
    assert done.status_code == 200 and done.get_json()["base_cells_assigned"] == 15
    # A shapefile without .prj: refused, saying where to give the coordinate system; given, imported.
    path = zipped_shapefile(tmp_path / "file", PLAN)
    bare = tmp_path / "无坐标系.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bare, "w") as z:
        for member in source.namelist():
            if not member.endswith(".prj"):
                z.writestr(member, source.read(member))
    revision = revision_of(settings, draft)
    refused = upload(client, token, url, bare, code_field="WGBM", revision=revision).get_json()
    assert '"More options", "Coordinate system"' in refused["problems"][0]["message"]
    assert revision_of(settings, draft) == revision
    done = upload(client, token, url, bare, code_field="WGBM", src_crs="EPSG:4547", revision=revision)
    assert done.status_code == 200, done.get_json()
    assert members(settings, draft)[cell(C1, 1)] == NEW
