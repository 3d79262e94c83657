"""Real data: 10,000 Baltimore 311 service requests (../shared/data/baltimore-311, City of Baltimore,
Open Baltimore) imported with their own timestamps through tests/data/baltimore_311_map.json, onto
a 20×20 base grid laid over the city: intake, classification, assignment to base cells and work
cells as of the report time, evaluation. Rows with the placeholder location (39, -77) or none are
reported row by row and kept without a place; nothing is dropped."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, box
from sqlalchemy import func, select, text

from gridkit.errors import ValidationError
from gridkit.grids import work
from gridkit.incidents import import_rows, importer
from gridkit.incidents.categories import seed_categories
from gridkit.incidents.evaluate import evaluate
from gridkit.incidents.importer import import_incidents, load_mapping
from gridkit.incidents.queries import list_incidents
from gridkit.io.problems import problem_text
from gridkit.models import (
    SRID,
    AdminUnit,
    BaseCell,
    BaseGridEdition,
    Incident,
    IncidentHistory,
)
from gridkit.pii import public_location
from gridkit.spatial import bulk

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "baltimore-311" / "baltimore_311_sample.csv"
MAPPING = ROOT / "data" / "baltimore_311_map.json"
# The seed extended as a deployment would: one more event category for requests of no other kind.
EXTRA_CATEGORIES = ROOT / "data" / "baltimore_categories.csv"
# Baltimore City, roughly; four communities (quadrants) of 10×10 cells.
X0, Y0, X1, Y1 = -76.712, 39.197, -76.529, 39.372
N = 20
CITY, DISTRICT, STREET = "440300", "440304", "440304001"
DEPT = "200001"


def make_baltimore_grid(session) -> None:
    dx, dy = (X1 - X0) / N, (Y1 - Y0) / N

    def xs(i):  # one value per grid line: neighbours share their edges exactly
        return round(X0 + i * dx, 9)

    def ys(j):
        return round(Y0 + j * dy, 9)

    outline = MultiPolygon([box(X0, Y0, X1, Y1)])
    for code, level, parent in ((CITY, "city", None), (DISTRICT, "district", CITY), (STREET, "street", DISTRICT)):
        session.add(
            AdminUnit(code=code, name=code, level=level, parent_code=parent, geom=from_shape(outline, srid=SRID))
        )
    session.flush()
    edition = BaseGridEdition(name="baltimore", status="published", published_at=datetime(2010, 1, 1, tzinfo=UTC))
    session.add(edition)
    session.flush()
    communities = {}
    for q, (qx, qy) in enumerate(((0, 1), (1, 1), (0, 0), (1, 0))):
        code = f"{STREET}{q + 1:03d}"
        half = N // 2
        geom = box(xs(qx * half), ys(qy * half), xs((qx + 1) * half), ys((qy + 1) * half))
        session.add(
            AdminUnit(
                code=code,
                name=f"社区{q + 1}",
                level="community",
                parent_code=STREET,
                geom=from_shape(MultiPolygon([geom]), srid=SRID),
            )
        )
        session.flush()
        cells = []
        for r in reversed(range(half)):
            for c in range(half):
                i, j = qx * half + c, qy * half + r
                cells.append(f"{code}{len(cells) + 1:03d}")
                session.add(
                    BaseCell(
                        edition_id=edition.id,
                        code=cells[-1],
                        community_code=code,
                        geom=from_shape(box(xs(i), ys(j), xs(i + 1), ys(j + 1)), srid=SRID),
                    )
                )
        communities[code] = cells
    session.flush()
    work.add_department(session, DEPT, "城市管理", jurisdiction=STREET)
    work.add_department(session, "100001", "综治中心", jurisdiction=STREET)
    version = work.start_draft(session, DEPT, by="test")
    for code, cells in communities.items():
        work.set_members(session, version, f"{DEPT}{code}01", cells)
    work.publish(session, version, at=datetime(2013, 1, 1, tzinfo=UTC), by="test")
    for n, code in enumerate(communities):
        work.add_coordinator(session, f"网格员{n + 1}", f"1390000000{n}", DEPT, [f"{DEPT}{code}01"])


@pytest.fixture
def baltimore(session):
    seed_categories(session)
    seed_categories(session, EXTRA_CATEGORIES)
    make_baltimore_grid(session)
    return import_incidents(session, DATA, load_mapping(MAPPING))


def test_every_row_is_imported_and_rows_without_a_place_are_reported(session, baltimore):
    raw = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    assert baltimore["imported"] == len(raw) == 10_000
    assert session.scalar(select(func.count()).select_from(Incident)) == 10_000
    placeholder = ((raw.Latitude == "39") & (raw.Longitude == "-77")).sum()
    empty = ((raw.Latitude == "") | (raw.Longitude == "")).sum()
    assert (placeholder, empty) == (885, 590)
    notes = baltimore["notes"]
    assert sum(n["kind"] in ("placeholder_location", "no_location") for n in notes) == 885 + 590
    assert baltimore["without_location"] == 885 + 590
    # Placed outside every base cell of the grid (Baltimore County): kept, unassigned, each row noted.
    outside = [n for n in notes if n["kind"] == "outside_grid"]
    assert len(outside) == baltimore["unassigned"] - baltimore["without_location"] > 0
    assert "outside every base cell" in outside[0]["message"]
    assert sum(n["kind"] == "placeholder_location" for n in notes) == 885
    first = raw.index[(raw.Latitude == "39") & (raw.Longitude == "-77")][0] + 2
    assert any(n["message"].startswith(f"baltimore_311_sample.csv, line {first}:") for n in notes)
    assert session.scalar(select(func.count()).select_from(Incident).where(Incident.geom.is_(None))) == 1475
    # Kept, unassigned, in the supervisor's queue, with those outside the grid (Baltimore County).
    assert baltimore["assigned"] + baltimore["unassigned"] == 10_000
    assert baltimore["unassigned"] > 1475 and baltimore["assigned"] > 7000
    assert list_incidents(session, unassigned=True, limit=1)["total"] == baltimore["unassigned"]


def test_places_outside_the_grid_are_reported_to_about_100_m_not_exactly(baltimore):
    """A case's place can be its caller's home: the report names the row and gives the place as to the public."""
    raw = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    outside = [n for n in baltimore["notes"] if n["kind"] == "outside_grid"]
    exact = 0
    for note in outside:
        line = int(re.search(r"line (\d+):", note["message"]).group(1))
        row = raw.iloc[line - 2]
        for value in (row.Longitude, row.Latitude):
            if len(value.partition(".")[2]) > 3:  # finer than the public 0.001°: must not be quoted
                exact += 1
                assert value not in note["message"], note["message"]
        lon, lat = public_location(float(row.Longitude), float(row.Latitude))
        assert f"about {lon}, {lat}, rounded to about 100 m" in note["message"], note["message"]
        assert note["message"].startswith(f"baltimore_311_sample.csv, line {line}:")
    assert outside and exact


def test_own_timestamps_states_and_categories(session, baltimore):
    case = session.scalar(select(Incident).where(Incident.external_id == "18-00838880"))
    # 11/13/2018 01:06:56 PM America/New_York (EST, UTC-5).
    assert case.reported_at == datetime(2018, 11, 13, 18, 6, 56, tzinfo=UTC)
    assert case.status == "closed" and case.closed_at == datetime(2018, 11, 13, 18, 7, 16, tzinfo=UTC)
    assert case.category_code == "E0607" and case.code == "BAL-18-00838880"
    status = pd.read_csv(DATA, dtype=str, keep_default_na=False).SRStatus
    assert baltimore["states"]["closed"] == status.isin(["Closed", "Closed (Transferred)"]).sum()
    assert baltimore["states"]["rejected"] == status.str.contains("Duplicate").sum()
    history = session.scalars(
        select(IncidentHistory).where(IncidentHistory.incident_id == case.id).order_by(IncidentHistory.id)
    ).all()
    assert [(h.from_status, h.to_status) for h in history] == [(None, "reported"), ("reported", "closed")]
    assert history[1].at == case.closed_at
    pothole = session.scalar(select(Incident).where(Incident.description == "TRM-Pothole Repair").limit(1))
    assert pothole.category_code == "E0408" and pothole.dept_code == DEPT


def test_work_cells_as_of_report_time_and_evaluation(session, baltimore):
    dispatched = session.scalar(select(func.count()).select_from(Incident).where(Incident.work_cell_id.is_not(None)))
    assert dispatched > 3000
    assert (
        session.scalar(
            select(func.count())
            .select_from(Incident)
            .where(Incident.work_cell_id.is_not(None), Incident.coordinator_id.is_(None))
        )
        == 0
    )
    by_community = evaluate(session, by="community", from_="2014-01-01", to="2019-03-01")
    assert by_community["total"]["cases"] == 10_000
    assert sum(r["cases"] for r in by_community["rows"]) == 10_000
    assert len([r for r in by_community["rows"] if r["key"]]) == 4
    total = by_community["total"]
    assert 0 < total["on_time_rate"] < 1 and total["steps"]["total"]["n"] > 9000
    by_cell = evaluate(session, by="work-cell", from_="2014-01-01", to="2019-03-01")
    assert sum(r["cases"] for r in by_cell["rows"] if r["key"]) == dispatched


def test_importing_the_same_file_again_is_refused_and_changes_nothing(session, baltimore):
    with pytest.raises(ValidationError) as exc:
        import_incidents(session, DATA, load_mapping(MAPPING))
    assert exc.value.params["count"] == 10_000 and exc.value.problems[0]["kind"] == "already_imported"
    assert session.scalar(select(func.count()).select_from(Incident)) == 10_000


def test_unmapped_types_are_refused_row_by_row(session, tmp_path):
    seed_categories(session)
    seed_categories(session, EXTRA_CATEGORIES)
    mapping = load_mapping(MAPPING)
    del mapping["categories"]["SW-Dirty Alley"]
    with pytest.raises(ValidationError) as exc:
        import_incidents(session, DATA, mapping)
    raw = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    assert exc.value.params["count"] == (raw.SRType == "SW-Dirty Alley").sum()
    assert "'SW-Dirty Alley' has no category" in exc.value.problems[0]["message"]
    assert session.scalar(select(func.count()).select_from(Incident)) == 0


def _stored(session) -> tuple:
    """Everything an intake writes: the cases, their history, both rollups, the tables' indexes and constraints."""
    rows = [
        "SELECT code, category_code, status, base_cell_id, work_cell_id, coordinator_id, deadline, reported_at, "
        "closed_at, ST_AsText(geom) FROM incident ORDER BY code",
        "SELECT i.code, h.at, h.from_status, h.to_status, h.note FROM incident_history h "
        "JOIN incident i ON i.id = h.incident_id ORDER BY 1, 2, 4",
        "SELECT * FROM incident_heat WHERE n <> 0 ORDER BY 1, 2, 3, 4, 5",
        "SELECT * FROM incident_eval ORDER BY 1, 2, 3, 4, 5",
        "SELECT indexdef FROM pg_indexes WHERE tablename IN ('incident', 'incident_history') ORDER BY 1",
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid IN ('incident'::regclass, 'incident_history'::regclass) ORDER BY 1, 2",
    ]
    return tuple(session.execute(text(sql)).all() for sql in rows)


def test_a_bulk_intake_builds_indexes_and_keys_once_and_stores_the_same(session, monkeypatch):
    seed_categories(session)
    seed_categories(session, EXTRA_CATEGORIES)
    make_baltimore_grid(session)
    savepoint = session.begin_nested()
    import_incidents(session, DATA, load_mapping(MAPPING))  # 10,000 rows: indexes kept, rows checked one by one
    row_by_row = _stored(session)
    savepoint.rollback()
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 1000)
    rebuilt = []
    real = importer.rebuilt_indexes

    @contextmanager
    def recorded(session, table, rows):
        with real(session, table, rows) as done:
            left = session.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": table})
            rebuilt.append((table, done, sorted(left)))
            yield done

    monkeypatch.setattr(importer, "rebuilt_indexes", recorded)
    import_incidents(session, DATA, load_mapping(MAPPING))
    assert rebuilt == [("incident", True, ["pk_incident"]), ("incident_history", True, ["pk_incident_history"])]
    assert _stored(session) == row_by_row
    assert len(row_by_row[0]) == 10_000


def test_a_file_read_in_chunks_stores_the_same_and_reports_across_chunks(session, monkeypatch, tmp_path):
    # The file is streamed CHUNK_ROWS rows at a time: the rows and every problem's line are the same as when the
    # file fits in one chunk, and a case repeated in a later chunk is found with the line it first appeared on.
    seed_categories(session)
    seed_categories(session, EXTRA_CATEGORIES)
    make_baltimore_grid(session)
    savepoint = session.begin_nested()
    whole = import_incidents(session, DATA, load_mapping(MAPPING))
    stored = _stored(session)
    savepoint.rollback()
    monkeypatch.setattr(import_rows, "CHUNK_ROWS", 777)
    savepoint = session.begin_nested()
    chunked = import_incidents(session, DATA, load_mapping(MAPPING))
    assert _stored(session) == stored
    assert [n["message"] for n in chunked.pop("notes")] == [n["message"] for n in whole.pop("notes")]
    assert chunked == whole
    savepoint.rollback()
    # A GB18030 file (as exported by Chinese systems) with problems in several chunks, told in both languages.
    raw = pd.read_csv(DATA, dtype=str, keep_default_na=False).head(2000)
    raw.loc[5, "CreatedDate"] = "下午 3 点"
    raw.loc[1500, "ServiceRequestNum"] = raw.loc[10, "ServiceRequestNum"]
    raw.loc[1999, "SRType"] = "未映射类型"
    path = tmp_path / "cases_gbk.csv"
    raw.to_csv(path, index=False, encoding="gb18030")
    with pytest.raises(ValidationError) as exc:
        import_incidents(session, path, load_mapping(MAPPING))
    got = [(p["index"], p["kind"]) for p in exc.value.problems]
    assert got == [(7, "bad_time"), (1502, "duplicate_id"), (2001, "unmapped_category")]
    repeated = exc.value.problems[1]
    assert repeated["message"].startswith("cases_gbk.csv, line 1502: case ")
    assert "(first on line 12)" in repeated["message"]
    assert "「未映射类型」在映射文件中没有对应类别" in problem_text(exc.value.problems[2], "zh-CN")
    assert "'下午 3 点' does not match %m/%d/%Y %I:%M:%S %p" in exc.value.problems[0]["message"]
    assert session.scalar(select(func.count()).select_from(Incident)) == 0


@pytest.mark.parametrize(
    ("content", "key", "says"),
    [
        ("", "incident_import.empty", "is empty (no header line)"),
        (
            'ServiceRequestNum,SRType,CreatedDate\nA1,"SW-Dirty Alley,01/02/2024 10:00:00 AM\nA2,x,y\n',
            "incident_import.unreadable",
            "cannot be read",
        ),
        ("ServiceRequestNum,SRType,CreatedDate\nA1,SW-Dirty Alley,01/02/2024 10:00:00 AM,extra,cells\n", None, None),
    ],
)
def test_a_broken_case_file_is_refused_with_a_sentence_not_a_traceback(session, tmp_path, content, key, says):
    seed_categories(session)
    seed_categories(session, EXTRA_CATEGORIES)
    path = tmp_path / "cases.csv"
    path.write_text(content, encoding="utf-8")
    mapping = load_mapping(MAPPING)
    mapping["columns"] = {"external_id": "ServiceRequestNum", "category": "SRType", "reported_at": "CreatedDate"}
    with pytest.raises(ValidationError) as exc:
        import_incidents(session, path, mapping)
    if key is not None:
        assert exc.value.code == key and says in exc.value.message
    assert "cases.csv" in exc.value.message
    assert session.scalar(select(func.count()).select_from(Incident)) == 0


def test_ids_too_long_for_a_case_code_are_refused_row_by_row(session, tmp_path):
    # BAL-<id> must fit incident.code (30): two long ids cut to the same code would collide.
    seed_categories(session)
    seed_categories(session, EXTRA_CATEGORIES)
    path = tmp_path / "cases.csv"
    ids = ["A" * 26, "B" * 27, "B" * 28]
    rows = [f"{i},SW-Dirty Alley,01/02/2024 10:00:00 AM" for i in ids]
    path.write_text("ServiceRequestNum,SRType,CreatedDate\n" + "\n".join(rows) + "\n", encoding="utf-8")
    mapping = load_mapping(MAPPING)
    mapping["columns"] = {"external_id": "ServiceRequestNum", "category": "SRType", "reported_at": "CreatedDate"}
    with pytest.raises(ValidationError) as exc:
        import_incidents(session, path, mapping)
    assert [(p["index"], p["kind"]) for p in exc.value.problems] == [(3, "id_too_long"), (4, "id_too_long")]
    assert "has 27 characters; with the prefix BAL a case code keeps 26" in exc.value.problems[0]["message"]


def test_a_case_file_of_a_header_only_imports_nothing(session, tmp_path):
    seed_categories(session)
    path = tmp_path / "cases.csv"
    path.write_text("ServiceRequestNum,SRType,CreatedDate\n", encoding="utf-8")
    mapping = load_mapping(MAPPING)
    mapping["columns"] = {"external_id": "ServiceRequestNum", "category": "SRType", "reported_at": "CreatedDate"}
    result = import_incidents(session, path, mapping)
    assert (result["imported"], result["assigned"], result["states"], list(result["notes"])) == (0, 0, {}, [])
    assert session.scalar(select(func.count()).select_from(Incident)) == 0
