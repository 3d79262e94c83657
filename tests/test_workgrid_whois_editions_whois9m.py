"""Whois after a new base grid edition (audit): the work grid in force stays drawn on the retired edition,
and whois (service, whois cache, `gridkit whois`, /api/whois) answers by the statistics' rule: the cell of the
edition in force covering the point, then the work cell holding its code. Checked against `subjects stats
--by work-cell` and an independent PostGIS ST_Covers query; answers `at` a time before the publish unchanged.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC, datetime

from click.testing import CliRunner
from geoalchemy2.shape import from_shape
from shapely.geometry import box
from sqlalchemy import select, text

from gridkit import db
from gridkit.assign import assign_subjects
from gridkit.cli import main
from gridkit.grids.editions import publish_edition
from gridkit.grids.work import add_department, publish, responsibility_at, set_members, start_draft
from gridkit.grids.work.responsibility_cache import ResponsibilityCache
from gridkit.models import BaseCell, BaseGridEdition
from gridkit.rules import SRID
from tests.factories import DISTRICT, STREET, X0, Y0, D, make_base_grid
from tests.factories_web import commit
from web import create_app
from web.api import responsibility_cache
from web.database import COMMITS

DEPT = "100001"
COMMUNITY = STREET + "001"
T1 = datetime(2026, 1, 1, tzinfo=UTC)
BEFORE = datetime(2026, 3, 1, tzinfo=UTC)  # v1 and edition 1 in force
T2 = datetime(2026, 6, 1, tzinfo=UTC)  # edition 2 published
WEST, EAST = f"{DEPT}{COMMUNITY}01", f"{DEPT}{COMMUNITY}02"
ENGLISH = {"GRIDKIT_LANG": "en", "LANG": "C.UTF-8"}


def cell(seq: int) -> str:
    return f"{COMMUNITY}{seq:03d}"


def centre(seq: int, dx: float = 0.5) -> tuple[float, float]:
    """A point inside cell `seq` of edition 1 (cells numbered north→south, west→east), `dx` of a cell from its west."""
    r, c = divmod(seq - 1, 3)
    return X0 + (c + dx) * D, Y0 + (2 - r + 0.5) * D


# Points: the east half of cell 5 (split off as new cell 10 in edition 2), the west half of cell 2 (cell 1
# grows over it in edition 2), the west half of cell 5, and cells 9 and 1 (unchanged).
SPLIT, MOVED, KEPT_HALF = centre(5, 0.75), centre(2, 0.25), centre(5, 0.25)
PLAIN_EAST, PLAIN_WEST = centre(9), centre(1)
POINTS = [SPLIT, MOVED, KEPT_HALF, PLAIN_EAST, PLAIN_WEST]


def edition_2(session) -> BaseGridEdition:
    """Cell 5 split into a west half (5) and a new east half (10); cell 1 grows half a cell east over cell 2."""
    edition = BaseGridEdition(name="2026b")
    session.add(edition)
    session.flush()
    for seq in range(1, 10):
        r, c = divmod(seq - 1, 3)
        x, y = X0 + c * D, Y0 + (2 - r) * D
        parts = [(seq, x, x + D)]
        if seq == 5:
            parts = [(5, x, x + D / 2), (10, x + D / 2, x + D)]
        elif seq == 1:
            parts = [(1, x, x + 1.5 * D)]
        elif seq == 2:
            parts = [(2, x + D / 2, x + D)]
        for code_seq, x0, x1 in parts:
            geom = from_shape(box(x0, y, x1, y + D), srid=SRID)
            session.add(BaseCell(edition_id=edition.id, code=cell(code_seq), community_code=COMMUNITY, geom=geom))
    session.flush()
    return edition


def city(session) -> None:
    """Edition 1, one resident at each point, and work grid version 1 drawn on edition 1."""
    make_base_grid(session)
    for lon, lat in POINTS:
        session.execute(
            text(
                "INSERT INTO resident (id_number_hash, id_number_masked, name, household, population_type, geom) "
                "VALUES (md5(:k), '4403**********0000', '测试', :k, 'registered', ST_SetSRID(ST_MakePoint(:x, :y), :s))"
            ),
            {"k": f"{lon},{lat}", "x": lon, "y": lat, "s": SRID},
        )
    assign_subjects(session, edition=session.scalar(select(BaseGridEdition)))
    add_department(session, DEPT, "综治", jurisdiction=DISTRICT)
    draft = start_draft(session, DEPT, by="planner")
    set_members(session, draft, WEST, [cell(s) for s in (1, 4, 5, 7)])
    set_members(session, draft, EAST, [cell(s) for s in (2, 3, 6, 8, 9)])
    publish(session, draft, at=T1, by="planner")


# Independent of gridkit: the published edition's cell covering the point (ST_Covers, smallest code), then the
# work cell of the version in force holding a cell of that code.
_INDEPENDENT = """
SELECT (SELECT w.code FROM base_cell vb JOIN work_cell_member m ON m.base_cell_id = vb.id
        JOIN work_cell w ON w.id = m.work_cell_id
        JOIN work_grid_version v ON v.id = m.version_id AND v.status = 'published' AND v.valid_to IS NULL
        WHERE vb.code = c.code)
FROM (SELECT b.code FROM base_cell b JOIN base_grid_edition e ON e.id = b.edition_id
      WHERE e.status = 'published' AND ST_Covers(b.geom, ST_SetSRID(ST_MakePoint(:x, :y), :s))
      ORDER BY b.code LIMIT 1) c"""


def run_json(settings, *args):
    result = CliRunner(env=ENGLISH).invoke(main, [*args, "--json"], obj=settings, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def work_cell_of(answer: dict) -> tuple[str | None, bool]:
    (dept,) = [d for d in answer["departments"] if d["dept"] == DEPT]
    return dept["work_cell"], dept["unplaced"]


def test_whois_after_a_new_edition_answers_as_the_statistics(fresh_settings):
    settings = fresh_settings
    commit(settings, city)
    cache = ResponsibilityCache(recheck=600, commits=lambda: COMMITS.count)

    @contextmanager
    def connect():
        with db.session_factory(db.engine_for(settings))() as session:
            yield session

    def service(lon, lat, at=None):
        return commit(settings, lambda s: responsibility_at(s, lon, lat, at))

    before = {p: service(*p, BEFORE) for p in POINTS}
    assert [work_cell_of(before[p])[0] for p in POINTS] == [WEST, EAST, WEST, EAST, WEST]
    assert [work_cell_of(cache.responsibility(connect, *p))[0] for p in POINTS] == [WEST, EAST, WEST, EAST, WEST]

    app = create_app(settings)
    app.config["TESTING"] = True
    client = app.test_client()
    with app.app_context():
        responsibility_cache(app).recheck = 600  # only a commit makes it read its state again
    assert work_cell_of(client.get("/api/whois", query_string=dict(zip(("lon", "lat"), SPLIT))).get_json()) == (
        WEST,
        False,
    )

    # Both caches were read before the publish and are not due for a periodic check: the publish's commit
    # makes them read the state again.
    published = commit(settings, lambda s: publish_edition(s, edition_2(s), at=T2))
    assert published["work_grids_uncovered"] == [{"dept": DEPT, "version": 1, "codes": [cell(10)]}]
    expected = {SPLIT: None, MOVED: WEST, KEPT_HALF: WEST, PLAIN_EAST: EAST, PLAIN_WEST: WEST}
    engine = db.engine_for(settings)
    for point, work_cell in expected.items():
        lon, lat = point
        with engine.connect() as conn:
            assert conn.scalar(text(_INDEPENDENT), {"x": lon, "y": lat, "s": SRID}) == work_cell, point
        now = service(lon, lat)
        kept = cache.responsibility(connect, lon, lat)
        cli = run_json(settings, "whois", str(lon), str(lat))
        web = client.get(f"/api/whois?lon={lon}&lat={lat}").get_json()
        unplaced = point == SPLIT
        for answer in (now, kept, cli, web):
            assert work_cell_of(answer) == (work_cell, unplaced), (point, answer)
            assert answer["base_cell"] == (cell(10) if point == SPLIT else now["base_cell"])
        # As of a time before the publish: the edition and version valid then, unchanged.
        at = BEFORE.isoformat()
        assert service(lon, lat, BEFORE)["departments"] == before[point]["departments"]
        cli_then = run_json(settings, "whois", str(lon), str(lat), "--at", at)
        assert cli_then["departments"] == before[point]["departments"]
        past = client.get("/api/whois", query_string={"lon": lon, "lat": lat, "at": at}).get_json()
        assert (past["base_cell"], past["departments"]) == (before[point]["base_cell"], before[point]["departments"])
    assert work_cell_of(service(*MOVED))[0] != work_cell_of(before[MOVED])[0]

    # The statistics count each resident (one per point) in the work cell whois names.
    stats = run_json(settings, "subjects", "stats", "--by", "work-cell", "--dept", DEPT)
    counted = {row["code"]: row["residents"] for row in stats}
    named = [w for w in expected.values() if w is not None]
    assert counted == {code: named.count(code) for code in (WEST, EAST)}

    # The CLI tells what to do about a new cell, as the publish did.
    said = CliRunner(env=ENGLISH).invoke(main, ["whois", *map(str, SPLIT)], obj=settings, catch_exceptions=False)
    assert cell(10) in said.output and "gridkit workgrid draft --dept 100001" in said.output, said.output


def test_a_subjects_work_cell_and_an_export_by_department_follow_the_same_rule(fresh_settings, tmp_path):
    """`subjects responsible` and `export --dept` name, after a new edition, the work cell whois names: the one
    holding the code of the subject's cell (gridkit.grids.work.membership.work_cell_of_code_sql)."""
    import pyogrio
    from shapely.geometry import Point

    from gridkit.models import Building

    settings = fresh_settings
    commit(settings, city)
    commit(settings, lambda s: publish_edition(s, edition_2(s), at=T2))

    def buildings(session):
        for i, (lon, lat) in enumerate(POINTS):
            session.add(Building(code=f"B{i}", geom=from_shape(Point(lon, lat), srid=SRID)))
        session.flush()
        assign_subjects(session, ["buildings"])

    commit(settings, buildings)
    expected = {"B0": None, "B1": WEST, "B2": WEST, "B3": EAST, "B4": WEST}  # as whois above, point by point
    for code, work_cell in expected.items():
        answer = run_json(settings, "subjects", "responsible", "--kind", "buildings", code)
        (dept,) = [d for d in answer["departments"] if d["dept"] == DEPT]
        assert dept["work_cell"] == work_cell, (code, answer)
    out = tmp_path / "buildings.gpkg"
    run_json(settings, "export", "buildings", "-o", str(out), "--dept", DEPT)
    read = pyogrio.read_dataframe(out)
    exported = {code: (w if isinstance(w, str) else None) for code, w in zip(read["code"], read["work_cell"])}
    assert exported == expected
