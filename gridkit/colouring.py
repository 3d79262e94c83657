"""Map colours for work cells: neighbouring work cells never share a colour.

A DSatur greedy colouring of the adjacency graph of one work grid version. Two work cells are
neighbours when their geometries touch, corners included (ST_Intersects): on a map a shared
corner is as confusing as a shared edge. The colour is a palette index (0, 1, 2 …) into
PALETTE, more colours than DSatur needs on any map of cells. Tiles (gridkit.tiles) and the
planner's GeoJSON (gridkit.layers) take their indexes from here, and the pages' scripts
(gridkit-tiles.js, gridkit-planner.js) hold the same PALETTE, so a work cell has one colour on
every map.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

# After Tableau 10: apart from each other, and none of them the red of problems or the magenta of
# moved cells on the planner's map.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#76b7b2",
    "#a0cbe8",
    "#8cd17d",
)
PALETTE_SIZE = len(PALETTE)
# Colourings kept per process, by version and revision (see version_colours).
KEPT_COLOURINGS = 64
_kept: OrderedDict = OrderedDict()
_kept_lock = threading.Lock()

_ADJACENCY = text("""
    SELECT a.id, b.id
    FROM work_cell a
    JOIN work_cell b ON b.version_id = a.version_id AND a.id < b.id
                    AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)
    WHERE a.version_id = :version
""")

# Draft versions have no cached geometry yet: their neighbours come from the member base cells.
_DRAFT_ADJACENCY = text("""
    SELECT DISTINCT LEAST(ma.work_cell_id, mb.work_cell_id), GREATEST(ma.work_cell_id, mb.work_cell_id)
    FROM work_cell_member ma
    JOIN base_cell ca ON ca.id = ma.base_cell_id
    JOIN base_cell cb ON cb.edition_id = ca.edition_id AND cb.id <> ca.id
                     AND ca.geom && cb.geom AND ST_Intersects(ca.geom, cb.geom)
    JOIN work_cell_member mb ON mb.base_cell_id = cb.id AND mb.version_id = ma.version_id
    WHERE ma.version_id = :version AND ma.work_cell_id <> mb.work_cell_id
""")


def colour_graph(nodes: Iterable[Hashable], edges: Iterable[tuple[Hashable, Hashable]]) -> dict:
    """Return {node: colour index} with different colours at both ends of every edge (DSatur).

    Deterministic: ties are broken by degree, then by the node's order in `nodes`.
    """
    order = {node: i for i, node in enumerate(dict.fromkeys(nodes))}
    neighbours: dict = {node: set() for node in order}
    for a, b in edges:
        if a == b:
            continue
        for node in (a, b):
            if node not in order:
                order[node] = len(order)
                neighbours[node] = set()
        neighbours[a].add(b)
        neighbours[b].add(a)
    colours: dict = {}
    seen: dict = {node: set() for node in order}  # colours used by each node's neighbours
    uncoloured = set(order)
    while uncoloured:
        node = max(uncoloured, key=lambda n: (len(seen[n]), len(neighbours[n]), -order[n]))
        colour = 0
        while colour in seen[node]:
            colour += 1
        colours[node] = colour
        uncoloured.discard(node)
        for other in neighbours[node]:
            seen[other].add(colour)
    return colours


def work_cell_adjacency(session: Session, version_id: int, *, draft: bool = False) -> list[tuple[int, int]]:
    """Return the pairs of work cell ids of a version whose areas touch (edges or corners)."""
    query = _DRAFT_ADJACENCY if draft else _ADJACENCY
    return [(a, b) for a, b in session.execute(query, {"version": version_id})]


def work_cell_colours(session: Session, version_id: int, *, draft: bool = False) -> dict[int, int]:
    """Return {work cell id: palette index} for a version; touching work cells differ."""
    ids = (
        session.execute(
            text("SELECT id FROM work_cell WHERE version_id = :version ORDER BY code"), {"version": version_id}
        )
        .scalars()
        .all()
    )
    return colour_graph(ids, work_cell_adjacency(session, version_id, draft=draft))


def version_colours(session: Session, version) -> dict[int, int]:
    """Return {work cell id: palette index} of a WorkGridVersion, as work_cell_colours.

    A draft is coloured from its member base cells, a published or retired version from its
    cached outlines (as the tiles are). The answer is kept per database, version and revision
    (every edit of a draft raises its revision; other versions never change), so that the
    planner's map, reloaded after every move, does not recolour an unchanged version.
    """
    bind = session.get_bind()
    key = (
        str(getattr(bind, "engine", bind).url),
        version.id,
        version.status,
        version.revision,
        version.created_at,
        version.updated_at,
    )
    with _kept_lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    colours = work_cell_colours(session, version.id, draft=version.status == "draft")
    with _kept_lock:
        _kept[key] = colours
        while len(_kept) > KEPT_COLOURINGS:
            _kept.popitem(last=False)
    return colours
