"""One rule for who is responsible for a case (audit): dispatch, the historic-case import and whois agree after a
new base grid edition that splits a cell (the covering cell of the edition in force at the report time, then the
work cell holding its code), and a case reported before any edition was published takes the version's own
edition's cells in both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from factories_incidents import C1, DEPT, IN_C1, SUPERVISOR, W1, make_incident_world
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import box
from sqlalchemy import select, text

from gridkit.grids import work
from gridkit.grids.editions import publish_edition
from gridkit.incidents import workflow as wf
from gridkit.incidents.importer import import_incidents
from gridkit.models import BaseCell, BaseGridEdition, Incident, WorkCell
from gridkit.rules import SRID

E2_AT = datetime(2026, 6, 1, tzinfo=UTC)  # the edition splitting cell 004 of community 1 is published
BEFORE_E2 = "2026-03-01T08:00:00+00:00"
AFTER_E2 = "2026-09-01T08:00:00+00:00"
MAPPING = {
    "source": "hist",
    "code_prefix": "H",
    "columns": {"external_id": "id", "category": "type", "reported_at": "reported", "lon": "lon", "lat": "lat"},
    "categories": {"0101": "0101"},
}


@pytest.fixture
def world(session):
    return make_incident_world(session)


def split_edition(session) -> tuple[tuple[float, float], tuple[float, float]]:
    """Publish (at E2_AT) an edition of the same cells but cell 004 of community 1, split into a west half keeping
    its code and an east half of a new code, 010, in no work cell; return a point in each half."""
    current = session.scalar(select(BaseGridEdition).where(BaseGridEdition.status == "published"))
    edition = BaseGridEdition(name="split")
    session.add(edition)
    session.flush()
    halves = None
    for old in session.scalars(select(BaseCell).where(BaseCell.edition_id == current.id)):
        parts = [(old.code, old.geom)]
        if old.code == f"{C1}004":
            x0, y0, x1, y1 = to_shape(old.geom).bounds
            mid = (x0 + x1) / 2
            parts = [(old.code, from_shape(box(x0, y0, mid, y1), srid=SRID))]
            parts.append((f"{C1}010", from_shape(box(mid, y0, x1, y1), srid=SRID)))
            halves = ((x0 + mid) / 2, (y0 + y1) / 2), ((mid + x1) / 2, (y0 + y1) / 2)
        for code, geom in parts:
            session.add(BaseCell(edition_id=edition.id, code=code, community_code=old.community_code, geom=geom))
    session.flush()
    publish_edition(session, edition, at=E2_AT)
    return halves


def write_cases(tmp_path, rows: list[tuple[str, str, tuple[float, float]]]):
    lines = ["id,type,reported,lon,lat"] + [f"{i},0101,{at},{p[0]!r},{p[1]!r}" for i, at, p in rows]
    path = tmp_path / "cases.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def imported(session, external_id: str) -> Incident:
    return session.scalar(select(Incident).where(Incident.external_id == external_id))


def test_import_after_a_split_edition_follows_dispatch_and_whois(session, world, tmp_path):
    kept, new = split_edition(session)
    path = write_cases(
        tmp_path,
        [("new-after", AFTER_E2, new), ("kept-after", AFTER_E2, kept), ("new-before", BEFORE_E2, new)],
    )
    import_incidents(session, path, MAPPING)
    w1 = session.scalar(select(WorkCell.id).where(WorkCell.code == W1))
    coordinator = world["coord1"].id
    expected = {"new-after": (None, None), "kept-after": (w1, coordinator), "new-before": (w1, coordinator)}
    for external_id, (work_cell, coordinator_id) in expected.items():
        case = imported(session, external_id)
        assert (case.work_cell_id, case.coordinator_id) == (work_cell, coordinator_id), external_id
        # The one rule: what dispatch finds for the same case, department and report time.
        assert wf.responsible_at_report(session, case, DEPT) == (work_cell, coordinator_id), external_id
    # Whois at the same times says the same (the new half: in no work cell after the split, in W1 before).
    for point, at, code in ((new, E2_AT.replace(month=9), None), (new, E2_AT.replace(month=3), W1), (kept, None, W1)):
        answer = work.responsibility_at(session, *point, at)
        assert [d["work_cell"] for d in answer["departments"] if d["dept"] == DEPT] == [code]


def test_a_case_reported_before_any_edition_takes_the_versions_own_cells(session, world, tmp_path):
    # The edition is published after the version's validity began: a case reported in between has no edition in
    # force then, and both dispatch and the import take the cells of the version's own edition.
    session.execute(text("UPDATE base_grid_edition SET published_at = '2021-01-01T00:00:00+00:00'"))
    early = "2020-06-01T08:00:00+00:00"
    import_incidents(session, write_cases(tmp_path, [("early", early, IN_C1)]), MAPPING)
    w1 = session.scalar(select(WorkCell.id).where(WorkCell.code == W1))
    case = imported(session, "early")
    assert (case.work_cell_id, case.coordinator_id) == (w1, world["coord1"].id)
    reported = wf.report_incident(
        session, lon=IN_C1[0], lat=IN_C1[1], description="井盖", category="0101", reported_at=early, actor=SUPERVISOR
    ).incident
    for step in (wf.accept, wf.classify):
        step(session, reported.id, SUPERVISOR, **({"category": "0101"} if step is wf.classify else {}))
    wf.dispatch(session, reported.id, SUPERVISOR)
    assert (reported.work_cell_id, reported.coordinator_id) == (w1, world["coord1"].id)
