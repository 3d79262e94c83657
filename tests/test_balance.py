"""Load balancing of work grids: the pure partition algorithm, then balance_draft on PostGIS."""

from __future__ import annotations

import math
import random
from collections import deque
from datetime import UTC, datetime

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import insert, select, text

from gridkit.errors import Conflict, InvalidTransition, ValidationError
from gridkit.grids.balance import balance_draft, describe_balance
from gridkit.grids.partition import PiecesError, apportion, connected_components, partition, spread_of
from gridkit.grids.work import (
    add_coordinator,
    add_department,
    check_work_cell,
    exclude_cells,
    publish,
    start_draft,
    validate_version,
)
from gridkit.models import SRID, BaseCell, CoordinatorAssignment, Incident, Resident, WorkCell
from gridkit.resident_cells import set_resident_cells
from tests.factories import STREET, X0, Y0, D, make_base_grid

DEPT = "100001"


# -- helpers ------------------------------------------------------------------------------------


def grid_graph(rows: int, cols: int, keep=None):
    """4-neighbour grid (edge sharing; corners do not count) and cell centroids in metres."""
    cells = {(r, c) for r in range(rows) for c in range(cols) if keep is None or keep(r, c)}
    adj = {
        r * cols + c: {
            rr * cols + cc for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)) if (rr, cc) in cells
        }
        for r, c in cells
    }
    centroids = {r * cols + c: (c * 100.0, -r * 100.0) for r, c in cells}
    return adj, centroids


def skewed_weights(
    nodes, cols: int, *, seed: int = 1, sigma: float = 0.6, zero: float = 0.12, centre=(0.35, 0.4), size: int = 20
):
    """Residents per cell: a dense centre, log-normal noise, some empty cells (parks, water)."""
    rnd = random.Random(seed)
    weights = {}
    for v in sorted(nodes):
        r, c = divmod(v, cols)
        d = math.hypot(r - size * centre[0], c - size * centre[1])
        density = 60 + 300 * math.exp(-d / (size / 4))
        weights[v] = 0 if rnd.random() < zero else round(density * rnd.lognormvariate(0, sigma))
    return weights


def check_parts(parts, adj, n):
    """Every node in exactly one part, n non-empty parts, each connected (BFS over edge neighbours)."""
    assert len(parts) == n
    seen = [v for p in parts for v in p]
    assert sorted(seen) == sorted(adj) and len(seen) == len(set(seen))
    for part in parts:
        assert part, "empty part"
        members = set(part)
        reached, queue = {part[0]}, deque([part[0]])
        while queue:
            v = queue.popleft()
            for u in adj[v]:
                if u in members and u not in reached:
                    reached.add(u)
                    queue.append(u)
        assert reached == members, f"part starting {part[0]} is not connected"


def loads(parts, weights):
    return [sum(weights.get(v, 0) for v in p) for p in parts]


def cut_edges(parts, adj) -> int:
    owner = {v: i for i, p in enumerate(parts) for v in p}
    return sum(1 for v in adj for u in adj[v] if owner[u] != owner[v]) // 2


# -- pure algorithm -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 8, 12])
@pytest.mark.parametrize("with_centroids", [True, False])
def test_skewed_20x20_is_balanced_and_connected(n, with_centroids):
    adj, centroids = grid_graph(20, 20)
    weights = skewed_weights(adj, 20)
    parts = partition(adj, weights, n, centroids=centroids if with_centroids else None)
    check_parts(parts, adj, n)
    s = spread_of(loads(parts, weights))
    heaviest = max(weights.values()) / s.mean
    print(
        f"20x20 n={n} centroids={with_centroids}: {s}; heaviest cell {heaviest:.0%} of the mean, "
        f"{cut_edges(parts, adj)} cut edges"
    )
    assert s.relative < 0.10
    # Compact: at most twice the boundary of n equal squares.
    assert cut_edges(parts, adj) <= 2 * (2 * math.sqrt(400 * n) - 40)


def test_realistic_several_hundred_cells_with_a_river():
    """~500 cells, irregular outline, a river crossed by a few bridges, skewed residents."""
    rows, cols = 24, 30

    def keep(r, c):
        dx, dy = (c - cols / 2) / (cols / 2), (r - rows / 2) / (rows / 2)
        if dx * dx + dy * dy * 1.2 > 1.05 + 0.15 * math.sin(5 * math.atan2(dy, dx)):
            return False
        return not (abs(c - cols * 0.55 - 3 * math.sin(r / 4)) < 0.8 and r % 9 != 0)

    adj, centroids = grid_graph(rows, cols, keep)
    assert 450 < len(adj) < 550
    weights = skewed_weights(adj, cols, seed=7, size=rows)
    assert len(connected_components(adj)) == 1
    results = {}
    for n in (8, 12, 20, 30):
        parts = partition(adj, weights, n, centroids=centroids)
        check_parts(parts, adj, n)
        s = spread_of(loads(parts, weights))
        results[n] = s.relative
        print(f"{len(adj)} cells n={n}: {s}; heaviest cell {max(weights.values()) / s.mean:.0%} of the mean")
    assert results[8] < 0.05 and results[12] < 0.05 and results[20] < 0.10 and results[30] < 0.15


def test_deterministic_whatever_the_set_order():
    adj, centroids = grid_graph(15, 15)
    weights = skewed_weights(adj, 15, seed=3, size=15)
    first = partition(adj, weights, 7, centroids=centroids)
    # Same graph built in another order, as plain lists, with one direction of each edge only.
    shuffled = {}
    for v in sorted(adj, reverse=True):
        shuffled[v] = [u for u in sorted(adj[v], reverse=True) if u > v]
    again = partition(
        shuffled, dict(reversed(list(weights.items()))), 7, centroids=dict(reversed(list(centroids.items())))
    )
    assert again == first
    assert partition(adj, weights, 7, centroids=centroids) == first


def test_islands_share_parts_by_weight():
    # Two islands with a water gap between them: west 10×6 cells, east 10×4 cells.
    adj, centroids = grid_graph(10, 11, keep=lambda r, c: c != 6)
    weights = {v: (2.0 if v % 11 < 6 else 1.5) for v in adj}  # 120 : 60
    pieces = connected_components(adj)
    assert [len(p) for p in pieces] == [60, 40]
    parts = partition(adj, weights, 6, centroids=centroids)
    check_parts(parts, adj, 6)
    assert len([p for p in parts if p[0] % 11 < 6]) == 4
    s = spread_of(loads(parts, weights))
    print(f"islands 120:60, n=6: {s}")
    assert s.relative < 0.05
    # 180 : 40 in 7 parts: 6 + 1 (loads 30 and 40) beats 5 + 2 (36 and 20).
    weights = {v: (3.0 if v % 11 < 6 else 1.0) for v in adj}
    parts = partition(adj, weights, 7, centroids=centroids)
    check_parts(parts, adj, 7)
    assert len([p for p in parts if p[0] % 11 < 6]) == 6


def test_too_few_parts_for_the_islands_is_explained():
    adj, centroids = grid_graph(4, 9, keep=lambda r, c: c not in (3, 6))
    with pytest.raises(PiecesError) as exc:
        partition(adj, {v: 1 for v in adj}, 2, centroids=centroids)
    assert isinstance(exc.value, ValueError)
    assert len(exc.value.pieces) == 3
    assert "3 separate pieces" in str(exc.value) and "at least 3 parts are needed, not 2" in str(exc.value)
    check_parts(partition(adj, {v: 1 for v in adj}, 3, centroids=centroids), adj, 3)


def test_corner_contact_is_not_adjacency():
    # A checkerboard diagonal: cells meet only at corners, so each is its own piece.
    adj = {0: set(), 1: set(), 2: set()}
    with pytest.raises(PiecesError):
        partition(adj, {0: 1, 1: 1, 2: 1}, 2)
    assert sorted(partition(adj, {0: 1, 1: 1, 2: 1}, 3)) == [[0], [1], [2]]


def test_zero_weights():
    adj, centroids = grid_graph(12, 12)
    # Nobody lives anywhere: split by cell count, still compact.
    parts = partition(adj, {v: 0 for v in adj}, 6, centroids=centroids)
    check_parts(parts, adj, 6)
    assert sorted(len(p) for p in parts) == [24] * 6
    assert spread_of(loads(parts, {v: 0 for v in adj})).relative == 0.0
    # The west half is a park: its cells still go somewhere, every part stays connected.
    weights = {v: (0 if v % 12 < 6 else 10) for v in adj}
    parts = partition(adj, weights, 4, centroids=centroids)
    check_parts(parts, adj, 4)
    assert spread_of(loads(parts, weights)).relative < 0.05
    # Missing weights count as zero.
    check_parts(partition(adj, {}, 3, centroids=centroids), adj, 3)


def test_one_part_all_parts_and_too_many():
    adj, centroids = grid_graph(3, 4)
    weights = {v: v + 1 for v in adj}
    assert partition(adj, weights, 1, centroids=centroids) == [sorted(adj)]
    singletons = partition(adj, weights, 12, centroids=centroids)
    assert sorted(singletons) == [[v] for v in sorted(adj)]
    with pytest.raises(ValueError, match="13 parts asked for but there are only 12 cells"):
        partition(adj, weights, 13)
    with pytest.raises(ValueError, match="positive whole number"):
        partition(adj, weights, 0)
    with pytest.raises(ValueError, match="must be finite and not negative"):
        partition(adj, {**weights, 0: -1}, 2)
    with pytest.raises(ValueError, match="no cells"):
        partition({}, {}, 1)


def test_explicit_seeds():
    adj, centroids = grid_graph(6, 6)
    parts = partition(adj, {v: 1 for v in adj}, 2, seeds=[0, 35], centroids=centroids)
    check_parts(parts, adj, 2)
    assert sorted(len(p) for p in parts) == [18, 18]
    with pytest.raises(ValueError, match="exactly 2 distinct seeds"):
        partition(adj, {v: 1 for v in adj}, 2, seeds=[0, 0])


def test_apportion_and_spread():
    assert apportion([180, 40], 7) == [6, 1]
    assert apportion([120, 60], 6) == [4, 2]
    assert apportion([1, 1, 1], 3) == [1, 1, 1]
    assert apportion([100, 0], 4, maximum=[2, 5]) == [2, 2]
    with pytest.raises(ValueError):
        apportion([1, 1, 1], 2)
    s = spread_of([90, 100, 110])
    assert (s.max, s.min, s.mean) == (110, 90, 100)
    assert s.relative == pytest.approx(0.2) and s.std == pytest.approx(math.sqrt(200 / 3))
    assert "spread (max-min)/mean 20.0%" in str(s)


# -- balance_draft on PostGIS --------------------------------------------------------------------


def community(i: int) -> str:
    return f"{STREET}{i:03d}"


def add_residents(session, edition, *, seed: int = 5) -> int:
    """Insert a skewed number of residents into each base cell; return how many."""
    rnd = random.Random(seed)
    rows, cells = [], []
    for cell_id, code in session.execute(
        select(BaseCell.id, BaseCell.code).where(BaseCell.edition_id == edition.id).order_by(BaseCell.code)
    ):
        count = 0 if rnd.random() < 0.1 else int(5 + 40 * rnd.random() ** 2)
        for k in range(count):
            rows.append(
                {
                    "id_number_hash": f"{code}-{k:04d}".ljust(64, "0"),
                    "id_number_masked": "4403**********1234",
                    "name": "居民",
                    "population_type": "registered",
                }
            )
            cells.append(cell_id)
    ids = session.scalars(insert(Resident).returning(Resident.id, sort_by_parameter_order=True), rows).all()
    set_resident_cells(session, dict(zip(ids, cells, strict=True)))
    return len(rows)


@pytest.fixture
def drafted(session):
    """3 communities of 6×6 base cells (108), residents, department 100001 over the district, a draft."""
    edition = make_base_grid(session, rows=6, cols=6, communities=3)
    total = add_residents(session, edition)
    add_department(session, DEPT, "综治中心", jurisdiction="440304")
    draft = start_draft(session, DEPT, by="planner")
    return draft, total


def work_cells(session, draft) -> dict[str, list[str]]:
    """Work cell code → its base cell codes."""
    result: dict[str, list[str]] = {}
    for wc, bc in session.execute(
        text(
            "SELECT w.code, b.code FROM work_cell w JOIN work_cell_member m ON m.work_cell_id = w.id "
            "JOIN base_cell b ON b.id = m.base_cell_id WHERE w.version_id = :v ORDER BY w.code, b.code"
        ),
        {"v": draft.id},
    ):
        result.setdefault(wc, []).append(bc)
    return result


def pieces_per_work_cell(session, draft) -> dict[str, int]:
    return dict(
        session.execute(
            text(
                "SELECT w.code, ST_NumGeometries(ST_Multi(ST_UnaryUnion(ST_Collect(b.geom)))) FROM work_cell w "
                "JOIN work_cell_member m ON m.work_cell_id = w.id JOIN base_cell b ON b.id = m.base_cell_id "
                "WHERE w.version_id = :v GROUP BY w.code"
            ),
            {"v": draft.id},
        ).all()
    )


def test_balance_draft_by_residents(session, drafted):
    draft, total = drafted
    before = draft.revision
    result = balance_draft(session, draft, 9, "residents", actor="planner")
    print(describe_balance(result, "en"))
    assert draft.revision == result.revision == before + 1
    assert draft.updated_by == "planner"
    assert [p for p in validate_version(session, draft) if p.severity == "error"] == []
    cells = work_cells(session, draft)
    assert sorted(cells) == sorted(c.code for c in result.work_cells) and len(cells) == 9
    assert sum(len(v) for v in cells.values()) == 108
    assert set(pieces_per_work_cell(session, draft).values()) == {1}
    for code, members in cells.items():
        check_work_cell(session, draft, code)
        communities = {m[:12] for m in members}
        # One community → its code; several (all in one street here) → street code + 000.
        assert code[6:18] == (communities.pop() if len(communities) == 1 else STREET + "000")
    assert sum(c.load for c in result.work_cells) == total == result.spread.total
    assert result.spread.relative < 0.15
    # Sequences run 01, 02 … per area.
    by_area: dict[str, list[int]] = {}
    for code in cells:
        by_area.setdefault(code[6:18], []).append(int(code[18:]))
    assert all(sorted(seqs) == list(range(1, len(seqs) + 1)) for seqs in by_area.values())
    assert result.to_dict()["spread"]["parts"] == 9


def test_stale_revision_is_refused(session, drafted):
    draft, _ = drafted
    seen = draft.revision
    balance_draft(session, draft, 4, "residents", expected_revision=seen, actor="wang")
    with pytest.raises(Conflict, match=r"changed by wang .* you had"):
        balance_draft(session, draft, 6, "residents", expected_revision=seen, actor="li")
    assert len(work_cells(session, draft)) == 4


def test_balance_within_community(session, drafted):
    draft, _ = drafted
    result = balance_draft(session, draft, 7, "residents", within="community")
    cells = work_cells(session, draft)
    assert len(cells) == 7
    per_community: dict[str, int] = {}
    for code, members in cells.items():
        assert {m[:12] for m in members} == {code[6:18]}  # never crosses a community boundary
        per_community[code[6:18]] = per_community.get(code[6:18], 0) + 1
    assert sorted(per_community) == [community(1), community(2), community(3)]
    assert set(pieces_per_work_cell(session, draft).values()) == {1}
    assert [p for p in validate_version(session, draft) if p.severity == "error"] == []
    print(describe_balance(result, "en"))
    with pytest.raises(ValidationError, match="at least 3 work cells"):
        balance_draft(session, draft, 2, "residents", within="community")


def test_rebalance_one_community_leaves_the_others(session, drafted):
    draft, _ = drafted
    balance_draft(session, draft, 6, "residents", within="community")
    coordinator = add_coordinator(session, "张三", None, DEPT, [f"{DEPT}{community(2)}01"], version=draft)
    before = work_cells(session, draft)
    result = balance_draft(session, draft, 3, "area", area_code=community(2))
    after = work_cells(session, draft)
    assert {c: m for c, m in after.items() if c[6:18] != community(2)} == {
        c: m for c, m in before.items() if c[6:18] != community(2)
    }
    mine = sorted(c for c in after if c[6:18] == community(2))
    assert mine == [f"{DEPT}{community(2)}{s:02d}" for s in (1, 2, 3)]
    assert sorted(len(after[c]) for c in mine) == [12, 12, 12]  # equal areas
    assert result.spread.relative < 0.01
    # Codes that existed before keep their rows, and so code 01 keeps its coordinator.
    existed = {c for c in before if c[6:18] == community(2)}
    assert [c.status for c in result.work_cells] == ["kept" if c in existed else "new" for c in mine]
    assert (
        session.scalar(
            select(WorkCell.code)
            .join(CoordinatorAssignment, CoordinatorAssignment.work_cell_id == WorkCell.id)
            .where(CoordinatorAssignment.coordinator_id == coordinator.id)
        )
        == mine[0]
    )
    add_department(session, "100002", "城管", jurisdiction=community(1))
    other = start_draft(session, "100002")
    with pytest.raises(ValidationError, match="outside department 100002's jurisdiction"):
        balance_draft(session, other, 2, "area", area_code=community(2))


def test_numbering_west_to_east_north_to_south(session):
    make_base_grid(session, rows=2, cols=4)
    add_department(session, DEPT, "综治中心", jurisdiction="440304")
    draft = start_draft(session, DEPT)
    balance_draft(session, draft, 2, "area")
    cells = work_cells(session, draft)
    first, second = f"{DEPT}{community(1)}01", f"{DEPT}{community(1)}02"
    assert sorted(cells) == [first, second]
    assert f"{community(1)}001" in cells[first]  # the north-west cell
    assert f"{community(1)}008" in cells[second]  # the south-east cell
    assert len(cells[first]) == len(cells[second]) == 4


def test_incidents_count_only_open_ones(session, drafted):
    draft, _ = drafted
    at = datetime(2026, 1, 1, tzinfo=UTC)
    cell = session.scalar(select(BaseCell).where(BaseCell.code == f"{community(1)}001"))
    for k, status in enumerate(("reported", "dispatched", "closed", "rejected")):
        session.add(
            Incident(
                code=f"T{k}",
                status=status,
                geom=from_shape(Point(X0 + D / 2, Y0 + 5.5 * D), srid=SRID),
                base_cell_id=cell.id,
                reported_at=at,
            )
        )
    session.flush()
    result = balance_draft(session, draft, 3, "incidents")
    assert result.spread.total == 2
    assert [p for p in validate_version(session, draft) if p.severity == "error"] == []


def test_separate_pieces_are_refused_with_a_reason(session):
    # 2×2 cells; leaving out one diagonal keeps two cells that meet only at a corner.
    make_base_grid(session, rows=2, cols=2)
    add_department(session, DEPT, "综治中心", jurisdiction="440304")
    draft = start_draft(session, DEPT)
    exclude_cells(session, draft, [f"{community(1)}001", f"{community(1)}004"], "水库")
    with pytest.raises(ValidationError, match="2 separate pieces .* at least 2 work cells, not 1"):
        balance_draft(session, draft, 1, "area")
    result = balance_draft(session, draft, 2, "area")
    assert sorted(c.base_cells for c in result.work_cells) == [1, 1]
    assert [p for p in validate_version(session, draft) if p.severity == "error"] == []


def test_bad_requests(session, drafted):
    draft, _ = drafted
    with pytest.raises(ValidationError, match="Choose one of residents, buildings, incidents, area"):
        balance_draft(session, draft, 3, "population")
    with pytest.raises(ValidationError, match="only 108 base cells"):
        balance_draft(session, draft, 109, "residents")
    with pytest.raises(ValidationError, match="positive whole number"):
        balance_draft(session, draft, 0, "residents")
    balance_draft(session, draft, 3, "residents")
    publish(session, draft)
    with pytest.raises(InvalidTransition, match="only a draft"):
        balance_draft(session, draft, 3, "residents")


def test_balance_then_publish(session, drafted):
    draft, _ = drafted
    balance_draft(session, draft, 5, "buildings")  # no buildings: split by cell count
    publish(session, draft)
    parts = session.execute(
        text("SELECT code, ST_NumGeometries(geom) FROM work_cell WHERE version_id = :v"), {"v": draft.id}
    ).all()
    assert len(parts) == 5 and {p for _, p in parts} == {1}


def test_fewer_work_cells_remove_the_rest(session, drafted):
    draft, _ = drafted
    first = balance_draft(session, draft, 9, "residents")
    second = balance_draft(session, draft, 3, "residents")
    assert len(work_cells(session, draft)) == 3
    assert set(second.removed) == {c.code for c in first.work_cells} - {c.code for c in second.work_cells}
    assert second.removed and "removed (left empty)" in describe_balance(second, "en")
    assert draft.revision == 2


def test_whole_city_and_city_jurisdiction(session):
    make_base_grid(session, rows=3, cols=3, communities=2)
    add_department(session, "100003", "民政", jurisdiction=None)
    # A city code covers its districts: 440300 → every 4403xx community.
    add_department(session, "100004", "消防", jurisdiction="440300")
    for dept, scope in (("100003", None), ("100004", "440300")):
        draft = start_draft(session, dept)
        result = balance_draft(session, draft, 3, "area", area_code="440304001" if scope else None)
        assert result.area_code == ("440304001" if scope else None)
        assert sum(c.base_cells for c in result.work_cells) == 18
        for c in result.work_cells:
            check_work_cell(session, draft, c.code)
        assert set(pieces_per_work_cell(session, draft).values()) == {1}
