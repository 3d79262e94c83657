"""Base grid editions and work grid versions through the CLI: validate, publish, diff, rollback, as-of."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from geoalchemy2.shape import from_shape
from shapely.geometry import Point, box, mapping
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import main
from gridkit.errors import Conflict
from gridkit.grids import work
from gridkit.models import SRID, BaseCell, BaseGridEdition, Building, Resident, ResidentCell
from tests.factories import X0, Y0, D, make_base_grid

DEPT = "100001"
WC1 = f"{DEPT}44030400100101"
WC2 = f"{DEPT}44030400100102"
COMMUNITY = "440304001001"


def run(settings, *args, input=None):
    return CliRunner(env={"GRIDKIT_LANG": "en"}).invoke(
        main, list(args), obj=settings, input=input, catch_exceptions=False
    )


def ok(settings, *args):
    result = run(settings, *args)
    assert result.exit_code == 0, result.output
    return result


def ok_json(settings, *args):
    return json.loads(ok(settings, *args, "--json").output)


def cell_code(seq):
    return f"{COMMUNITY}{seq:03d}"


@pytest.fixture
def grid(fresh_settings):
    """3×3 published base grid; one building with 3 residents in the centre cell (005)."""
    with Session(db.engine_for(fresh_settings)) as session, session.begin():
        make_base_grid(session)
        b = Building(code="B1", geom=from_shape(Point(X0 + 1.5 * D, Y0 + 1.5 * D), srid=SRID))
        session.add(b)
        session.flush()
        for i in range(3):
            session.add(
                Resident(
                    id_number_hash=f"h{i}",
                    id_number_masked="4403**********123X",
                    name="x",
                    population_type="registered",
                    building_id=b.id,
                )
            )
    ok(fresh_settings, "assign")
    return fresh_settings


def test_basegrid_validate_clean_then_problem(grid):
    assert ok(grid, "basegrid", "validate").output.strip() == "no problems"
    with Session(db.engine_for(grid)) as session, session.begin():
        ed = BaseGridEdition(name="草稿")
        session.add(ed)
        session.flush()
        for seq in range(1, 10):
            r, c = divmod(seq - 1, 3)
            x, y = X0 + c * D, Y0 + (2 - r) * D
            geom = box(x, y, x + D * (1.3 if seq == 1 else 1), y + D)  # cell 001 overlaps 002
            session.add(
                BaseCell(
                    edition_id=ed.id, code=cell_code(seq), community_code=COMMUNITY, geom=from_shape(geom, srid=SRID)
                )
            )
    result = run(grid, "basegrid", "validate", "--edition", "草稿", "--json")
    assert result.exit_code == 1
    problems = json.loads(result.output)
    overlap = [p for p in problems if p["type"] == "overlap"]
    assert overlap[0]["codes"] == [cell_code(1), cell_code(2)]
    assert 3000 < overlap[0]["area_m2"] < 3700  # 0.3 × ~11,400 m²
    refused = run(grid, "basegrid", "publish", "--edition", "草稿")
    assert refused.exit_code == 1 and "validation problems" in refused.output


def test_publish_new_edition_moves_only_changed_subjects(grid):
    with Session(db.engine_for(grid)) as session, session.begin():
        ed = BaseGridEdition(name="2027")
        session.add(ed)
        session.flush()
        for seq in range(1, 10):
            r, c = divmod(seq - 1, 3)
            x, y = X0 + c * D, Y0 + (2 - r) * D
            if seq == 5:  # the centre cell is split into a west and an east half, 005 and 010
                session.add(
                    BaseCell(
                        edition_id=ed.id,
                        code=cell_code(5),
                        community_code=COMMUNITY,
                        geom=from_shape(box(x, y, x + D / 2, y + D), srid=SRID),
                    )
                )
                session.add(
                    BaseCell(
                        edition_id=ed.id,
                        code=cell_code(10),
                        community_code=COMMUNITY,
                        geom=from_shape(box(x + D / 2, y, x + D, y + D), srid=SRID),
                    )
                )
                continue
            session.add(
                BaseCell(
                    edition_id=ed.id,
                    code=cell_code(seq),
                    community_code=COMMUNITY,
                    geom=from_shape(box(x, y, x + D, y + D), srid=SRID),
                )
            )
    diff = ok_json(grid, "basegrid", "diff", "2026", "2027")
    assert [a["code"] for a in diff["added"]] == [cell_code(10)]
    assert [r["code"] for r in diff["reshaped"]] == [cell_code(5)]
    assert diff["removed"] == [] and diff["unchanged"] == 8
    result = ok_json(grid, "basegrid", "publish", "--edition", "2027")
    assert result["retired"] == "2026"
    assert result["subjects"]["buildings"]["relocated"] == 1
    with Session(db.engine_for(grid)) as session:
        codes = session.execute(
            select(BaseCell.code, BaseGridEdition.status)
            .join(ResidentCell, ResidentCell.base_cell_id == BaseCell.id)
            .join(BaseGridEdition)
        ).all()
    # The building sits exactly on the new shared edge: the smallest code wins.
    assert set(codes) == {(cell_code(5), "published")}
    editions = {e["name"]: e["status"] for e in ok_json(grid, "basegrid", "editions")}
    assert editions == {"2026": "retired", "2027": "published"}


def _publish_v1(settings):
    ok(settings, "dept", "add", DEPT, "综治中心", "--jurisdiction", "440304")
    d = ok_json(settings, "workgrid", "draft", "--dept", DEPT)
    ok(settings, "workgrid", "assign", "--draft", str(d["id"]), "--work-cell", WC2, "--admin-unit", "440304001001")
    ok(
        settings,
        "workgrid",
        "assign",
        "--draft",
        str(d["id"]),
        "--work-cell",
        WC1,
        "--cells",
        ",".join(cell_code(s) for s in (1, 4, 7)),
    )
    return d


def test_assign_by_admin_unit_takes_cells_from_other_work_cells(grid):
    d = _publish_v1(grid)
    result = ok_json(grid, "workgrid", "assign", "--draft", str(d["id"]), "--work-cell", WC1, "--cells", cell_code(1))
    assert result["revision"] == 3
    problems = json.loads(run(grid, "workgrid", "validate", "--draft", str(d["id"]), "--json").output)
    assert [p["type"] for p in problems] == ["no_coordinator"]


def test_assign_by_polygon_uses_the_share_threshold(grid, tmp_path):
    d = _publish_v1(grid)
    # Covers all of the west column and 40 % of the middle column.
    poly = tmp_path / "area.geojson"
    poly.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": mapping(box(X0 - D, Y0 - D, X0 + 1.4 * D, Y0 + 4 * D)),
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    result = ok_json(grid, "workgrid", "assign", "--draft", str(d["id"]), "--work-cell", WC1, "--polygon", str(poly))
    assert result["base_cells"] == [cell_code(s) for s in (1, 4, 7)]
    result = ok_json(
        grid,
        "workgrid",
        "assign",
        "--draft",
        str(d["id"]),
        "--work-cell",
        WC1,
        "--polygon",
        str(poly),
        "--share",
        "0.3",
    )
    assert result["base_cells"] == [cell_code(s) for s in (1, 2, 4, 5, 7, 8)]


def test_exclude_cells_counts_as_covered(grid):
    ok(grid, "dept", "add", DEPT, "综治中心", "--jurisdiction", "440304")
    d = ok_json(grid, "workgrid", "draft", "--dept", DEPT)
    ok(
        grid,
        "workgrid",
        "assign",
        "--draft",
        str(d["id"]),
        "--work-cell",
        WC1,
        "--cells",
        ",".join(cell_code(s) for s in range(1, 9)),
    )
    assert run(grid, "workgrid", "validate", "--draft", str(d["id"])).exit_code == 1
    ok(grid, "workgrid", "exclude", "--draft", str(d["id"]), "--cells", cell_code(9), "--reason", "水库")
    assert run(grid, "workgrid", "validate", "--draft", str(d["id"])).exit_code == 0


def test_diff_rollback_and_as_of(grid):
    d1 = _publish_v1(grid)
    ok(grid, "workgrid", "publish", "--draft", str(d1["id"]))
    ok(grid, "coordinator", "add", "张伟", "--phone", "13812345678", "--dept", DEPT, "--work-cell", WC2)
    t1 = datetime.now(UTC)
    d2 = ok_json(grid, "workgrid", "draft", "--dept", DEPT)
    # Move the centre cell (with its building and 3 residents) to the west work cell.
    ok(grid, "workgrid", "assign", "--draft", str(d2["id"]), "--work-cell", WC1, "--cells", cell_code(5))
    ok(grid, "workgrid", "publish", "--draft", str(d2["id"]))
    diff = ok_json(grid, "workgrid", "diff", "--dept", DEPT, "1", "2")
    assert diff["moved"] == [{"base_cell": cell_code(5), "from": WC2, "to": WC1}]
    assert diff["subjects_changing_work_cell"] == {"residents": 3, "buildings": 1, "open_incidents": 0}
    assert diff["added_work_cells"] == diff["removed_work_cells"] == []
    centre = (str(X0 + 1.5 * D + D / 10), str(Y0 + 1.5 * D))
    now = ok_json(grid, "whois", *centre)
    then = ok_json(grid, "whois", *centre, "--at", t1.isoformat())
    assert now["departments"][0]["work_cell"] == WC1 and now["departments"][0]["version"] == 2
    assert then["departments"][0]["work_cell"] == WC2 and then["departments"][0]["version"] == 1
    assert then["departments"][0]["coordinators"][0]["name"] == "张伟"
    back = ok_json(grid, "workgrid", "rollback", "--dept", DEPT, "--to", "1")
    assert back["number"] == 3
    assert ok_json(grid, "workgrid", "diff", "--dept", DEPT, "1", "3")["moved"] == []
    history = ok_json(grid, "workgrid", "history", "--dept", DEPT)
    assert [(v["number"], v["status"]) for v in history] == [(1, "retired"), (2, "retired"), (3, "published")]
    assert history[0]["valid_to"] == history[1]["valid_from"]
    refused = run(grid, "workgrid", "assign", "--draft", str(d1["id"]), "--work-cell", WC1, "--cells", cell_code(2))
    assert refused.exit_code == 1 and "cannot change" in refused.output


def test_two_planners_editing_one_draft_lose_no_update(grid):
    """Two real concurrent transactions on one draft: the second save is refused, naming the first."""
    ok(grid, "dept", "add", DEPT, "综治中心", "--jurisdiction", "440304")
    d = ok_json(grid, "workgrid", "draft", "--dept", DEPT)
    engine = db.engine_for(grid)
    a, b = Session(engine), Session(engine)
    try:
        with a.begin(), b.begin():
            draft_a = work.draft(a, d["id"])
            draft_b = work.draft(b, d["id"])
            assert draft_a.revision == draft_b.revision == 0
            work.set_members(a, draft_a, WC1, [cell_code(1)], by="planner-a")
            errors = []

            def second_save():
                try:
                    # Blocks on planner A's row lock until A commits, then sees the new revision.
                    work.set_members(b, draft_b, WC2, [cell_code(1)], by="planner-b", expected_revision=0)
                except Conflict as exc:
                    errors.append(exc)

            worker = threading.Thread(target=second_save)
            worker.start()
            worker.join(timeout=1)
            assert worker.is_alive(), "the second save should wait for the first transaction"
            a.commit()
            worker.join(timeout=30)
            assert len(errors) == 1
            assert "changed by planner-a" in errors[0].message and "revision 1" in errors[0].message
            b.rollback()
    finally:
        a.close()
        b.close()
    with Session(engine) as s:
        members = (
            s.execute(
                select(BaseCell.code)
                .join(work.WorkCellMember, work.WorkCellMember.base_cell_id == BaseCell.id)
                .where(work.WorkCellMember.version_id == d["id"])
            )
            .scalars()
            .all()
        )
        assert members == [cell_code(1)]
        assert work.draft(s, d["id"]).revision == 1


def test_generate_on_real_osm_roads(fresh_settings, tmp_path):
    """Admin units drawn over the Shanghai Bund OSM sample, cells generated along its real roads."""
    from tests.conftest import SHARED_DATA

    osm = SHARED_DATA / "shanghai-bund-osm"
    x0, y0, x1, y1 = 121.4830, 31.2290, 121.4990, 31.2480  # west bank (黄浦区), inside the sample
    mid = (x0 + x1) / 2
    units = tmp_path / "units.geojson"
    features = [
        ({"code": "310100", "name": "上海市"}, box(x0, y0, x1, y1)),
        ({"code": "310101", "name": "黄浦区"}, box(x0, y0, x1, y1)),
        ({"code": "310101001", "name": "外滩街道"}, box(x0, y0, x1, y1)),
        ({"code": "310101001001", "name": "西社区"}, box(x0, y0, mid, y1)),
        ({"code": "310101001002", "name": "东社区"}, box(mid, y0, x1, y1)),
    ]
    units.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": p, "geometry": mapping(g)} for p, g in features],
            }
        ),
        encoding="utf-8",
    )
    ok(fresh_settings, "admin", "import", str(units), "--code-field", "code", "--name-field", "name")
    report = ok_json(
        fresh_settings,
        "basegrid",
        "generate",
        "--all",
        "--roads",
        str(osm / "roads_lines.geojson"),
        "--water",
        str(osm / "water_polygons.geojson"),
        "--target-area-m2",
        "20000-200000",
        "--edition",
        "外滩生成",
    )
    assert report["cells"] >= 20
    assert report["in_target"] >= 0.9 * report["cells"]
    problems = json.loads(run(fresh_settings, "basegrid", "validate", "--edition", "外滩生成", "--json").output)
    assert problems == []
    cells = ok_json(fresh_settings, "basegrid", "cells", "--edition", "外滩生成")
    assert sorted(c["code"] for c in cells if c["community_code"] == "310101001001")[0] == "310101001001001"
    result = ok_json(fresh_settings, "basegrid", "publish", "--edition", "外滩生成")
    assert result["edition"] == "外滩生成" and result["retired"] is None


def test_balance_by_residents_then_publish(grid):
    """balance groups the 9 cells into 3 connected work cells; the spread is printed; publish accepts it."""
    ok(grid, "dept", "add", DEPT, "综治中心", "--jurisdiction", "440300")
    d = ok_json(grid, "workgrid", "draft", "--dept", DEPT)
    result = ok_json(grid, "workgrid", "balance", "--draft", str(d["id"]), "--cells", "3", "--by", "area")
    assert len(result["work_cells"]) == 3
    assert sorted(w["base_cells"] for w in result["work_cells"]) == [3, 3, 3]
    assert result["spread"]["relative"] < 0.01
    assert all(w["code"].startswith(DEPT + COMMUNITY) for w in result["work_cells"])
    text_out = ok(grid, "workgrid", "balance", "--draft", str(d["id"]), "--cells", "2", "--by", "residents").output
    assert "max" in text_out and "min" in text_out
    assert run(grid, "workgrid", "validate", "--draft", str(d["id"])).exit_code == 0
    ok(grid, "workgrid", "publish", "--draft", str(d["id"]))
    stale = run(grid, "workgrid", "balance", "--draft", str(d["id"]), "--cells", "2", "--by", "area")
    assert stale.exit_code == 1 and "cannot change" in stale.output
