"""Renumbering of a draft edition's base cells by the numbering rule (gridkit.grids.numbering)."""

from __future__ import annotations

import statistics

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import InvalidTransition, NotFound, ValidationError
from gridkit.grids.numbering import (
    order_west_east_north_south as order_in_rows,  # one rule for generation and renumbering
)
from gridkit.grids.problems import Problem
from gridkit.grids.validate import resolve_profile
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition
from gridkit.rules import EditionState
from gridkit.standard.codes import CodeProfile, base_cell_code

__all__ = ["renumber_base_cells", "order_in_rows"]


def renumber_base_cells(
    session: Session,
    edition: BaseGridEdition,
    *,
    community: str | None = None,
    profile: CodeProfile | str | None = None,
) -> list[tuple[str, str]]:
    """Give the edition's cells codes by the numbering rule; return (old, new) for every changed code.

    The rule, per community (default: every community of the edition, else only `community`):

    1. Each cell is represented by ST_PointOnSurface(geom), a point always inside the cell, in
       EPSG:4490 lon/lat; its height is ST_YMax - ST_YMin of the cell, in degrees of latitude.
    2. h = the median cell height in the community.
    3. Rows, north→south (order_in_rows): take the northernmost remaining point (largest
       latitude; ties by smaller longitude, then smaller old code); its row is every remaining
       cell whose point lies less than h/2 south of it. Repeat with the rest.
    4. Inside a row, west→east: by longitude, then latitude north first, then old code.
    5. The k-th cell gets community code + k, zero-padded to the profile's sequence digits
       (3 by default, 2 in cjt213).

    A regular grid is thus numbered row by row from the north-west corner, like make_base_grid.
    Only draft editions can be renumbered (InvalidTransition otherwise); a community with more
    cells than the profile's sequence allows raises ValidationError and nothing is changed.
    Codes are updated one by one in an order that never holds one code twice, so the
    non-deferrable unique (edition, code) and the check constraints hold after every row.
    Loaded BaseCell objects of the edition get their code reloaded on next access.
    """
    if edition.status != EditionState.DRAFT:
        raise InvalidTransition("geometry.renumber_not_draft", edition=edition.name, status=edition.status)
    profile = resolve_profile(edition, profile)
    session.flush()
    if community is not None and session.get(AdminUnit, community) is None:
        raise NotFound("geometry.no_such_community", community=community)
    rows = _cell_points(session, edition, community)
    by_community: dict[str, list] = {}
    for r in rows:
        by_community.setdefault(r.community_code, []).append(r)
    _refuse_unnumberable(rows, by_community, profile)

    old_code = {r.id: r.code for r in rows}
    new_code = _numbered(by_community, profile)
    changed = {i: c for i, c in new_code.items() if old_code[i] != c}
    if not changed:
        return []
    community_of = {r.id: r.community_code for r in rows}
    moves = _collision_free_moves(old_code, changed, community_of)
    session.execute(text("UPDATE base_cell SET code = :code WHERE id = :id"), [{"id": i, "code": c} for i, c in moves])
    for obj in list(session.identity_map.values()):
        if isinstance(obj, BaseCell) and obj.id in changed:
            session.expire(obj, ["code"])
    return sorted(((old_code[i], c) for i, c in changed.items()), key=lambda pair: pair[1])


def _cell_points(session: Session, edition: BaseGridEdition, community: str | None) -> list:
    """Return id, code, community, point on surface (x, y) and height of the cells, in old-code order."""
    query = """
        SELECT id, code, community_code, ST_X(p) AS x, ST_Y(p) AS y, ST_YMax(geom) - ST_YMin(geom) AS h
        FROM (SELECT id, code, community_code, geom, ST_PointOnSurface(geom) AS p
              FROM base_cell WHERE edition_id = :e {where}) c
        ORDER BY community_code, code, id"""
    params = {"e": edition.id}
    if community is not None:
        query = query.format(where="AND community_code = :c")
        params["c"] = community
    else:
        query = query.format(where="")
    return session.execute(text(query), params).all()


def _refuse_unnumberable(rows: list, by_community: dict[str, list], profile: CodeProfile) -> None:
    """Raise ValidationError for empty cells, or communities with more cells than the profile numbers."""
    limit = 10**profile.base_cell_seq_digits - 1
    too_many = [
        Problem(
            "code_format",
            [code],
            None,
            None,
            "geometry.validate.too_many_cells",
            {"community": code, "count": len(cells), "profile": profile.name, "limit": limit},
        )
        for code, cells in by_community.items()
        if len(cells) > limit
    ]
    empty = [r.code for r in rows if r.x is None]
    if empty:
        raise ValidationError("geometry.renumber_empty_cells", cells=", ".join(empty))
    if too_many:
        raise ValidationError(
            "geometry.renumber_too_many",
            count=len(too_many),
            profile=profile.name,
            limit=limit,
            problems=[p.to_dict() for p in too_many],
        )


def _numbered(by_community: dict[str, list], profile: CodeProfile) -> dict[int, str]:
    """Return each cell's code by the numbering rule (id → code)."""
    new_code: dict[int, str] = {}
    for code, cells in by_community.items():
        points = [(r.x, r.y) for r in cells]  # cells come in old-code order
        for seq, k in enumerate(order_in_rows(points, statistics.median(r.h for r in cells)), start=1):
            new_code[cells[k].id] = base_cell_code(code, seq, profile)
    return new_code


def _collision_free_moves(
    old_code: dict[int, str], changed: dict[int, str], community_of: dict[int, str]
) -> list[tuple[int, str]]:
    """Return (id, code) updates that reach `changed` without ever giving two cells one code.

    PostgreSQL checks a non-deferrable unique constraint row by row, so a permutation of codes
    must be applied in chain order: a cell moves only once its target code is free. A cycle
    (A wants B's code, B wants A's) is broken by parking one cell on a free code of the same
    community (sequence 0, never a target), which keeps the code and prefix checks satisfied.
    """
    holder = {code: i for i, code in old_code.items()}
    state = dict(old_code)
    moves: list[tuple[int, str]] = []

    def move(i: int, code: str) -> None:
        del holder[state[i]]
        holder[code] = i
        state[i] = code
        moves.append((i, code))

    def parking(community: str) -> str:
        # Both the 15- and the 14-digit all-zero sequences pass the table's checks (14-15 digits,
        # community prefix); a community has at most 999 cells, so one of the 1,100 codes is free.
        candidates = (
            [community + "000", community + "00"]
            + [f"{community}{n:03d}" for n in range(1000)]
            + [f"{community}{n:02d}" for n in range(100)]
        )
        return next(c for c in candidates if c not in holder)

    for start in sorted(changed, key=lambda i: changed[i]):
        if state[start] == changed[start]:
            continue
        chain = [start]
        cycle = False
        while True:
            j = holder.get(changed[chain[-1]])
            if j is None:
                break
            if j == start:
                cycle = True
                break
            chain.append(j)  # j holds the code chain[-1] wants, so j moves first
        if cycle:
            move(start, parking(community_of[start]))
            for i in reversed(chain[1:]):
                move(i, changed[i])
            move(start, changed[start])
        else:
            for i in reversed(chain):
                move(i, changed[i])
    return moves
