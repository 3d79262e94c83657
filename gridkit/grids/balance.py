"""Load balancing of a draft (负载均衡): regroup its base cells into n connected work cells of even load.

`balance_draft(session, draft, n, by)` reads a department's base cells, their edge adjacency and
their load (residents, buildings, open incidents or area) from PostGIS, partitions them with the
pure algorithm of gridkit.grids.partition and rewrites the draft's work cells, coded in the code
profile of the draft's base grid edition. `describe_balance(result)` formats the result for a terminal.

Community boundaries (`within='community'`)
-------------------------------------------
Work cells often must not cross a community boundary (one residents' committee runs them). With
`within='community'` each community is partitioned on its own; the n work cells are shared out
among communities by `apportion` (in proportion to load, at least one each and at least one per
separate piece of a community, at most one per base cell), so n must be at least the number of
communities. The spread is then also bounded by how the communities' loads divide. The default
`within=None` ignores community boundaries; a work cell spanning communities takes the code of
the smallest admin unit holding all its base cells (street code + 000, district code + 000000).
"""

import math
from dataclasses import asdict, dataclass, field

from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session

from gridkit.admin import area_prefix
from gridkit.errors import InvalidTransition, NotFound, ValidationError
from gridkit.grids.base import state_name
from gridkit.grids.numbering import order_west_east_north_south
from gridkit.grids.partition import PiecesError, Spread, apportion, connected_components, partition, spread_of
from gridkit.grids.work.versions import touch_draft, version_profile
from gridkit.messages import Message, render
from gridkit.models import (
    AdminUnit,
    BaseCell,
    Building,
    Department,
    Incident,
    ResidentCell,
    WorkCell,
    WorkCellMember,
    WorkGridVersion,
)
from gridkit.rules import OPEN_INCIDENT_STATES, VersionState
from gridkit.standard import codes
from gridkit.standard.codes import CodeProfile

__all__ = [
    "BY",
    "BalanceResult",
    "PiecesError",
    "Spread",
    "WorkCellLoad",
    "apportion",
    "balance_draft",
    "connected_components",
    "describe_balance",
    "partition",
    "spread_of",
]

# What a work cell's load can be counted by.
BY = ("residents", "buildings", "incidents", "area")


@dataclass
class WorkCellLoad:
    """One work cell written by a balance: its code, how many base cells, its load."""

    code: str
    base_cells: int
    load: float
    status: str  # "new", or "kept" when an emptied work cell of that code was reused

    def to_dict(self) -> dict:
        """Return the work cell as a JSON-ready dict."""
        return asdict(self)


@dataclass
class BalanceResult:
    """What `balance_draft` did: the work cells written, their spread, the work cells removed."""

    draft_id: int
    revision: int
    by: str
    area_code: str | None  # the admin unit balanced; None = the whole city
    within: str | None
    work_cells: list[WorkCellLoad]
    spread: Spread
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the result as a JSON-ready dict."""
        return {
            "draft": self.draft_id,
            "revision": self.revision,
            "by": self.by,
            "area": self.area_code,
            "within": self.within,
            "work_cells": [c.to_dict() for c in self.work_cells],
            "spread": self.spread.to_dict(),
            "removed": self.removed,
        }


def describe_balance(result: BalanceResult, lang: str | None = None) -> str:
    """Return the result as text for the terminal in `lang` (default zh-CN): one line per work cell, then the spread."""
    unit = render(f"balance.unit.{result.by}", lang)
    s = result.spread
    lines = [
        render(
            "balance.line.work_cell" if c.status == "new" else "balance.line.work_cell_kept",
            lang,
            code=c.code,
            cells=f"{c.base_cells:5d}",
            load=f"{c.load:12.0f}",
            unit=unit,
        )
        for c in result.work_cells
    ]
    where = result.area_code or Message("balance.whole_city")
    key = "balance.line.summary_within" if result.within else "balance.line.summary"
    lines.append(render(key, lang, parts=s.parts, by=unit, area=where, draft=result.draft_id, revision=result.revision))
    lines.append(
        render(
            "balance.line.spread",
            lang,
            max=f"{s.max:.0f}",
            min=f"{s.min:.0f}",
            mean=f"{s.mean:.1f}",
            std=f"{s.std:.1f}",
            spread=f"{s.relative:.1%}",
        )
    )
    if result.removed:
        lines.append(render("balance.line.removed", lang, codes=", ".join(result.removed)))
    return "\n".join(lines)


def balance_draft(
    session: Session,
    draft: WorkGridVersion,
    n: int,
    by: str,
    *,
    area_code: str | None = None,
    within: str | None = None,
    expected_revision: int | None = None,
    actor: str | None = None,
) -> BalanceResult:
    """Regroup the base cells of a draft's jurisdiction (or of `area_code`) into n balanced work cells.

    Load `by`: residents, buildings or open incidents counted per base cell, or area (m², on the
    spheroid). Base cells deliberately excluded from the draft stay excluded. The membership of
    the balanced base cells is replaced by n connected work cells coded in the code profile of the
    draft's base grid edition: department code + area code (the community, or the smallest admin
    unit holding all the work cell's base cells padded with zeros) + a sequence per area, numbered
    west→east in rows north→south by the work cell's centroid, skipping sequences kept by the
    draft's other work cells. A new code that an emptied work cell had reuses that row, so its name
    and coordinators carry over; other emptied work cells are deleted. Work cells of other areas
    are untouched. within='community' balances each community on its own (see the module
    docstring). Bumps the draft revision once, refusing a stale `expected_revision` (Conflict).
    Does not commit.
    """
    _check_request(draft, n, by, within)
    scope_code, prefix = _balance_scope(session, draft, area_code)
    where = scope_code or Message("balance.whole_city")
    cells = _read_cells(session, draft, prefix, where)
    if n > len(cells):
        raise ValidationError("balance.too_few_cells", n=n, area=where, cells=len(cells))
    adjacency = _adjacency(session, draft, prefix, cells)
    weights = _loads(session, draft, by, prefix, cells)
    parts = _partition_cells(cells, adjacency, weights, n, within, where)
    profile = version_profile(session, draft)
    areas = _area_codes(session, cells, parts, profile)
    ids = sorted(cells)
    # Codes of work cells that keep base cells outside the balanced ones: not to be reused.
    taken = set(
        session.scalars(
            text(
                "SELECT DISTINCT w.code FROM work_cell w JOIN work_cell_member m ON m.work_cell_id = w.id "
                "WHERE w.version_id = :v AND NOT (m.base_cell_id = ANY(:ids))"
            ),
            {"v": draft.id, "ids": ids},
        )
    )
    new_codes = _number_work_cells(draft.dept_code, cells, parts, areas, taken, profile)
    touch_draft(session, draft, expected_revision=expected_revision, by=actor)
    work_cells, removed = _write_work_cells(session, draft, ids, parts, new_codes, weights)
    return BalanceResult(
        draft.id, draft.revision, by, scope_code, within, work_cells, spread_of([c.load for c in work_cells]), removed
    )


def _check_request(draft: WorkGridVersion, n, by: str, within: str | None) -> None:
    """Refuse a balance of a non-draft, an unknown load or grouping, or a bad number of work cells."""
    if draft.status != VersionState.DRAFT:
        raise InvalidTransition(
            "balance.not_draft", number=draft.number, dept=draft.dept_code, status=state_name(draft.status)
        )
    if by not in BY:
        raise ValidationError("balance.unknown_by", by=by, choices=", ".join(BY))
    if within not in (None, "community"):
        raise ValidationError("balance.unknown_within", within=within)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValidationError("balance.bad_count", n=n)


def _balance_scope(session: Session, draft: WorkGridVersion, area_code: str | None) -> tuple[str | None, str]:
    """Return (admin unit code or None for the whole city, prefix of its communities' codes)."""
    dept = session.get(Department, draft.dept_code)
    scope = _scope(session, dept.jurisdiction_code) if dept.jurisdiction_code else None
    if area_code is not None:
        area = _scope(session, area_code)
        if scope is not None and not area[1].startswith(scope[1]):
            raise ValidationError(
                "balance.outside_jurisdiction", area=area_code, dept=dept.code, jurisdiction=dept.jurisdiction_code
            )
        scope = area
    return scope if scope is not None else (None, "")


def _read_cells(session: Session, draft: WorkGridVersion, prefix: str, where) -> dict:
    """Return id → row (code, community_code, lon, lat, ymin, ymax, area) of the base cells to balance."""
    rows = session.execute(
        text(
            "SELECT b.id, b.code, b.community_code, ST_X(c) AS lon, ST_Y(c) AS lat, "
            "  ST_YMin(b.geom) AS ymin, ST_YMax(b.geom) AS ymax, ST_Area(b.geom::geography) AS area "
            "FROM base_cell b CROSS JOIN LATERAL ST_Centroid(b.geom) AS c "
            "WHERE b.edition_id = :e AND b.community_code LIKE :p AND NOT EXISTS "
            "  (SELECT 1 FROM work_grid_exclusion x WHERE x.version_id = :v AND x.base_cell_id = b.id) "
            "ORDER BY b.code"
        ),
        {"e": draft.base_edition_id, "p": prefix + "%", "v": draft.id},
    ).all()
    if not rows:
        raise NotFound("balance.no_cells", draft=draft.id, area=where)
    return {r.id: r for r in rows}


def _adjacency(session: Session, draft: WorkGridVersion, prefix: str, cells: dict) -> dict[int, set[int]]:
    """Return the edge neighbours of every base cell to balance."""
    # Edge neighbours only: boundaries meeting in a line (DE-9IM B/B = 1), or overlapping; a
    # corner is not enough, since the union of two cells touching at a corner is two polygons.
    # `&&` lets the GiST index find the candidates.
    adjacency: dict[int, set[int]] = {i: set() for i in cells}
    for a, b in session.execute(
        text(
            "SELECT a.id, b.id FROM base_cell a JOIN base_cell b ON b.edition_id = a.edition_id "
            "  AND a.geom && b.geom AND a.id < b.id "
            "WHERE a.edition_id = :e AND a.community_code LIKE :p AND b.community_code LIKE :p "
            "  AND (ST_Relate(a.geom, b.geom, '****1****') OR ST_Relate(a.geom, b.geom, '2********'))"
        ),
        {"e": draft.base_edition_id, "p": prefix + "%"},
    ):
        if a in cells and b in cells:
            adjacency[a].add(b)
            adjacency[b].add(a)
    return adjacency


def _partition_cells(
    cells: dict, adjacency: dict[int, set[int]], weights: dict[int, float], n: int, within: str | None, where
) -> list[list[int]]:
    """Partition the cells into n connected parts (per community with within='community')."""
    lon0 = math.fsum(r.lon for r in cells.values()) / len(cells)
    lat0 = math.fsum(r.lat for r in cells.values()) / len(cells)
    # A local equirectangular projection to metres: only compared here, never stored.
    kx = 111_320.0 * math.cos(math.radians(lat0))
    centroids = {i: ((r.lon - lon0) * kx, (r.lat - lat0) * 110_574.0) for i, r in cells.items()}
    if within is None:
        groups, counts = [sorted(cells)], [n]
    else:
        by_community: dict[str, list[int]] = {}
        for i, r in cells.items():
            by_community.setdefault(r.community_code, []).append(i)
        groups = [sorted(by_community[c]) for c in sorted(by_community)]
        pieces = [len(connected_components({i: adjacency[i] & set(g) for i in g})) for g in groups]
        if n < sum(pieces):
            key = "balance.within_needs_more_split" if sum(pieces) > len(groups) else "balance.within_needs_more"
            raise ValidationError(key, needed=sum(pieces), area=where, communities=len(groups), n=n)
        eps = (math.fsum(weights.values()) / len(weights) or 1.0) * 1e-3
        counts = apportion(
            [math.fsum(weights[i] + eps for i in g) for g in groups],
            n,
            minimum=pieces,
            maximum=[len(g) for g in groups],
        )
    parts: list[list[int]] = []
    for group, k in zip(groups, counts, strict=True):
        members = set(group)
        try:
            parts.extend(
                partition(
                    {i: adjacency[i] & members for i in group},
                    {i: weights[i] for i in group},
                    k,
                    centroids={i: centroids[i] for i in group},
                )
            )
        except PiecesError as exc:
            samples = ", ".join(f"{cells[p[0]].code} ({len(p)})" for p in exc.pieces[:10])
            raise ValidationError(
                "balance.separate_pieces", area=where, pieces=len(exc.pieces), samples=samples, n=n
            ) from None
    return parts


def _area_codes(session: Session, cells: dict, parts: list[list[int]], profile: CodeProfile) -> list[str]:
    """Return the area part of each part's code: the smallest admin unit holding all its base cells."""
    chains = _admin_chains(session, sorted({r.community_code for r in cells.values()}))
    areas = []
    for part in parts:
        communities = sorted({cells[i].community_code for i in part})
        common = [u for u in chains[communities[0]] if all(u in chains[c] for c in communities[1:])]
        if not common:
            raise ValidationError("balance.no_common_admin_unit", code=cells[part[0]].code)
        areas.append(codes.work_cell_area_code(common[0], profile))
    return areas


def _number_work_cells(
    dept_code: str, cells: dict, parts: list[list[int]], areas: list[str], taken: set[str], profile: CodeProfile
) -> list[str]:
    """Return the code of each part: per area, west→east in rows north→south by area-weighted centroid.

    Sequences run up to the profile's width; a sequence used by a work cell kept in the draft is skipped.
    """
    new_codes: list[str] = [""] * len(parts)
    by_area: dict[str, list[int]] = {}
    for j, a in enumerate(areas):
        by_area.setdefault(a, []).append(j)
    limit = codes.work_cell_sequence_limit(profile)
    for a, js in sorted(by_area.items()):
        points, heights = [], []
        for j in js:
            mass = math.fsum(cells[i].area for i in parts[j]) or 1.0
            points.append(
                (
                    math.fsum(cells[i].lon * cells[i].area for i in parts[j]) / mass,
                    math.fsum(cells[i].lat * cells[i].area for i in parts[j]) / mass,
                )
            )
            heights.append(max(cells[i].ymax for i in parts[j]) - min(cells[i].ymin for i in parts[j]))
        heights.sort()
        seq = 0
        for idx in order_west_east_north_south(points, heights[len(heights) // 2]):
            while True:
                seq += 1
                if seq > limit:
                    raise ValidationError(
                        "balance.sequence_exhausted",
                        area=a,
                        needed=len(js),
                        limit=limit,
                        digits=profile.work_cell_seq_digits,
                        profile=profile.name,
                    )
                code = codes.work_cell_code(dept_code, a, seq, profile)
                if code not in taken:
                    break
            new_codes[js[idx]] = code
    return new_codes


def _write_work_cells(
    session: Session,
    draft: WorkGridVersion,
    ids: list[int],
    parts: list[list[int]],
    new_codes: list[str],
    weights: dict[int, float],
) -> tuple[list[WorkCellLoad], list[str]]:
    """Replace the membership of base cells `ids` by the parts; return the work cells written and those removed."""
    session.execute(
        text("DELETE FROM work_cell_member WHERE version_id = :v AND base_cell_id = ANY(:ids)"),
        {"v": draft.id, "ids": ids},
    )
    emptied = _empty_work_cells(session, draft.id)
    rows_of: dict[str, WorkCell] = {}
    status: dict[str, str] = {}
    for code in sorted(new_codes):
        row = emptied.pop(code, None)
        status[code] = "new" if row is None else "kept"
        if row is None:
            row = WorkCell(version_id=draft.id, code=code)
            session.add(row)
        rows_of[code] = row
    removed = sorted(emptied)
    for row in emptied.values():
        session.delete(row)
    session.flush()
    work_cells: list[WorkCellLoad] = []
    members_rows = []
    for part, code in sorted(zip(parts, new_codes, strict=True), key=lambda pc: pc[1]):
        members_rows.extend({"version_id": draft.id, "base_cell_id": i, "work_cell_id": rows_of[code].id} for i in part)
        work_cells.append(WorkCellLoad(code, len(part), round(math.fsum(weights[i] for i in part), 3), status[code]))
    session.execute(
        text(
            "INSERT INTO work_cell_member (version_id, base_cell_id, work_cell_id) "
            "VALUES (:version_id, :base_cell_id, :work_cell_id)"
        ),
        members_rows,
    )
    session.expire(draft, ["work_cells"])
    session.flush()
    return work_cells, removed


def _empty_work_cells(session: Session, version_id: int) -> dict[str, WorkCell]:
    """Return the version's work cells that have no base cell, by code."""
    return {
        w.code: w
        for w in session.scalars(
            select(WorkCell)
            .where(WorkCell.version_id == version_id, ~exists().where(WorkCellMember.work_cell_id == WorkCell.id))
            .order_by(WorkCell.code)
        )
    }


def _scope(session: Session, code: str) -> tuple[str, str]:
    """Return (code, prefix of its communities' codes) for an admin unit, or raise NotFound."""
    unit = session.get(AdminUnit, code)
    if unit is None:
        raise NotFound("grids.unknown_admin_unit", code=code)
    return unit.code, area_prefix(session, unit.code)


def _loads(session: Session, draft: WorkGridVersion, by: str, prefix: str, cells: dict) -> dict[int, float]:
    """Return the load of every base cell: subjects counted by base cell, or area in m²."""
    if by == "area":
        return {i: float(r.area) for i, r in cells.items()}
    # Residents' cells are rows of their own table (gridkit.resident_cells): counted there, no resident read.
    model = {"residents": ResidentCell, "buildings": Building, "incidents": Incident}[by]
    query = (
        select(model.base_cell_id, func.count())
        .join(BaseCell, BaseCell.id == model.base_cell_id)
        .where(BaseCell.edition_id == draft.base_edition_id, BaseCell.community_code.startswith(prefix))
        .group_by(model.base_cell_id)
    )
    if by == "incidents":
        # Finished cases no longer load a work cell.
        query = query.where(Incident.status.in_(sorted(OPEN_INCIDENT_STATES)))
    counts = dict(session.execute(query).all())
    return {i: float(counts.get(i, 0)) for i in cells}


def _admin_chains(session: Session, communities: list[str]) -> dict[str, list[str]]:
    """Return each community's chain of admin unit codes, itself first, up to the city."""
    parent = dict(
        session.execute(
            text(
                "WITH RECURSIVE up AS ("
                "  SELECT code, parent_code FROM admin_unit WHERE code = ANY(:codes)"
                "  UNION SELECT a.code, a.parent_code FROM admin_unit a JOIN up ON a.code = up.parent_code) "
                "SELECT code, parent_code FROM up"
            ),
            {"codes": communities},
        ).all()
    )
    chains = {}
    for c in communities:
        chain, code = [], c
        while code is not None and code not in chain:
            chain.append(code)
            code = parent.get(code)
        chains[c] = chain
    return chains
