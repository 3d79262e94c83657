"""Load balancing of work grids (负载均衡): group contiguous base cells into n connected work cells.

Two layers:

* `partition(adjacency, weights, n)` is pure Python (no database): it splits a graph of base
  cells into n connected parts whose total weights are as even as it can make them.
* `balance_draft(session, draft, n, by)` reads a department's base cells, their edge adjacency
  and their load (residents, buildings, open incidents or area) from PostGIS, partitions them and
  rewrites the draft's work cells. `describe_balance(result)` formats the result for a terminal.

The algorithm (`partition`)
---------------------------
0. **Graph.** Nodes are base cells; two cells are adjacent when they share an edge. A shared
   corner is not enough: the union of two cells meeting at a corner is two polygons, so such a
   work cell would fail validation. Adjacency is made symmetric; weights must be finite and ≥ 0.
1. **Pieces.** Connected components ("pieces": islands, enclaves, cells cut off by excluded
   ones) are found by BFS. A part cannot span two pieces, so n < number of pieces raises
   `PiecesError` (a ValueError naming every piece). The n parts are shared out among the pieces
   by `apportion`: in proportion to weight, at least 1 each, at most one per cell, greedily
   minimising Σ W_i² / n_i (the sum of squared part loads if each piece split perfectly).
2. **Effective weights.** Each cell counts as weight + ε, ε = 0.1 % of the mean cell weight (1
   if every weight is 0). Cells without load (parks, water) then still count a little, so parts
   stay compact instead of swallowing empty land for free, and an all-zero input is split by
   cell count. Statistics are always computed on the true weights.
3. **Seeds.** Per piece, k seeds spread over the load: deterministic weighted k-means++ on the
   cell centroids (first seed nearest the weighted mean, each next one the cell maximising
   weight × squared distance to the nearest seed), then weighted Lloyd iterations; each seed is
   the cell nearest its cluster centre. Without centroids the same runs on hop distances (a
   seed is the cell deepest inside its BFS-Voronoi cluster).
4. **Three constructions**, each connected by construction (a part only ever takes a cell that
   touches it) and covering every cell:
   a. *region growing*: the part with the lowest current load grows next, taking its free
      neighbouring cell nearest its seed; a part with no free neighbour stops;
   b. *balanced flood*: all parts grow at once in order of |cell − centre|² − α_part (a power
      diagram grown through the adjacency); α rises for light parts and falls for heavy ones and
      the centres move to their parts' centroids (like capacity-constrained Voronoi), up to 40
      rounds (fewer once within 1 % or no longer improving), keeping the most even;
   c. *recursive bisection*: split along the principal axis into two connected sides whose loads
      match the number of parts each side gets (two fronts grow from the two ends, the one
      furthest behind its share first), then split each side again.
5. **Refinement** of each construction. First *rebalancing*: boundary cells move from a heavier
   part A to a lighter neighbouring part B while that lowers Σ load² (load_A − load_B > w_v),
   A keeps a cell and stays connected without it (articulation check: BFS inside A; B stays
   connected because the cell touches it). Moves are tried in rounds, largest decrease first,
   favouring cells that touch B on more edges or lie nearer B's centre. Load flows along chains
   of parts, so a heavy part need not border the lightest. Then *smoothing*: a cell moves to
   the part it touches on more edges when Σ (load/mean)² + λ·(cut edges) decreases and both
   loads stay inside the current [min, max] — boundaries get shorter, the spread never widens.
   Both objectives strictly decrease, so both phases end (a move budget guards anyway).
6. **Choice.** Of the three refined results the one with the smallest (max − min) / mean wins;
   within one percentage point of it, the one with fewer cut edges (more compact) wins.
7. **Output.** Parts are sorted node lists, ordered by piece, then by smallest node. Everything
   iterates in sorted order, so the same input always gives the same output.

`spread_of(loads)` reports max, min, mean, population standard deviation and (max − min) / mean.
No partition can beat the granularity of the heaviest cells (a part holding a cell of 30 % of
the mean load is uneven by construction). Measured (tests/test_balance.py; residents log-normal
around a dense centre, 10-12 % empty cells): 20 × 20 grid, n = 4/8/12: 0.3/0.7/3.0 %; ~500 cells
with an irregular outline and a river crossed by bridges, n = 8/12/20/30: 1.2/1.7/5.1/8.0 %.
~7,300 cells, n = 200 (heaviest cell 30 % of the mean): 3.8 % in about 6 s of CPU.

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

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session

from gridkit.admin import area_prefix
from gridkit.errors import InvalidTransition, NotFound, ValidationError
from gridkit.grids.numbering import order_west_east_north_south
from gridkit.grids.work import touch_draft, version_profile
from gridkit.models import (
    AdminUnit,
    BaseCell,
    Building,
    Department,
    Incident,
    Resident,
    WorkCell,
    WorkCellMember,
    WorkGridVersion,
)
from gridkit.rules import OPEN_INCIDENT_STATES, VersionState
from gridkit.standard import codes

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

_LLOYD_ITERATIONS = 25
_MAX_REFINE_ROUNDS = 500
_FLOOD_ITERATIONS = 40


class PiecesError(ValueError):
    """The cells form more separate pieces than parts were asked for."""

    def __init__(self, pieces: list[list[int]], n: int):
        self.pieces = pieces
        self.n = n
        sizes = ", ".join(f"{len(p)} cells from {p[0]}" for p in pieces[:10])
        more = f" and {len(pieces) - 10} more" if len(pieces) > 10 else ""
        super().__init__(
            f"the cells form {len(pieces)} separate pieces that share no edge ({sizes}{more}); "
            f"each part must be connected, so at least {len(pieces)} parts are needed, not {n}.")


# -- statistics ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spread:
    """How even a set of loads is: max, min, mean, standard deviation, (max − min) / mean."""

    parts: int
    total: float
    max: float
    min: float
    mean: float
    std: float
    relative: float        # (max − min) / mean; 0.0 when the mean is 0

    def to_dict(self) -> dict:
        """Return the statistics as a JSON-ready dict."""
        return asdict(self)

    def __str__(self) -> str:
        return (f"{self.parts} parts, load max {self.max:g} / min {self.min:g} / mean {self.mean:.4g}, "
                f"std {self.std:.4g}, spread (max-min)/mean {self.relative:.1%}")


def spread_of(loads: Sequence[float]) -> Spread:
    """Return the spread statistics of a list of part loads (population standard deviation)."""
    if not loads:
        return Spread(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    total = float(math.fsum(loads))
    mean = total / len(loads)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in loads) / len(loads))
    hi, lo = float(max(loads)), float(min(loads))
    return Spread(len(loads), total, hi, lo, mean, std, (hi - lo) / mean if mean > 0 else 0.0)


# -- pure algorithm -----------------------------------------------------------------------------

def _symmetric(adjacency: Mapping[int, Iterable[int]], nodes: Iterable[int]) -> dict[int, tuple[int, ...]]:
    adj: dict[int, set[int]] = {v: set() for v in nodes}
    for v, neighbours in adjacency.items():
        for u in neighbours:
            if u == v:
                continue
            if u not in adj:
                raise ValueError(f"cell {v} is adjacent to {u}, which has no weight and no adjacency entry.")
            adj[v].add(u)
            adj[u].add(v)
    # Sorted tuples: iteration order never depends on how the caller built its sets.
    return {v: tuple(sorted(neighbours)) for v, neighbours in adj.items()}


def connected_components(adjacency: Mapping[int, Iterable[int]]) -> list[list[int]]:
    """Return the connected components (sorted node lists), ordered by their smallest node."""
    seen: set[int] = set()
    pieces = []
    for start in sorted(adjacency):
        if start in seen:
            continue
        seen.add(start)
        piece, queue = [], deque([start])
        while queue:
            v = queue.popleft()
            piece.append(v)
            for u in adjacency[v]:
                if u not in seen:
                    seen.add(u)
                    queue.append(u)
        pieces.append(sorted(piece))
    return pieces


def apportion(weights: Sequence[float], n: int, *, minimum: Sequence[int] | None = None,
              maximum: Sequence[int] | None = None) -> list[int]:
    """Return how many of n parts each group gets, in proportion to weight, within [minimum, maximum].

    Greedy on the marginal decrease of Σ W_i² / n_i, which is optimal for that convex objective.
    Ties go to the earlier group, so the result is deterministic.
    """
    count = len(weights)
    low = list(minimum) if minimum is not None else [1] * count
    high = list(maximum) if maximum is not None else [n] * count
    if any(lo > hi for lo, hi in zip(low, high)):
        raise ValueError("a group needs more parts than it has cells.")
    if sum(low) > n:
        raise ValueError(f"{sum(low)} parts are needed at least, only {n} asked for.")
    if sum(high) < n:
        raise ValueError(f"at most {sum(high)} parts are possible (one per cell), {n} asked for.")
    seats = list(low)
    heap = []
    for i, w in enumerate(weights):
        if seats[i] < high[i]:
            s = max(seats[i], 1)
            gain = w * w / (s * (s + 1)) if seats[i] else math.inf
            heapq.heappush(heap, (-gain, i))
    for _ in range(n - sum(seats)):
        _, i = heapq.heappop(heap)
        seats[i] += 1
        if seats[i] < high[i]:
            s = seats[i]
            heapq.heappush(heap, (-(weights[i] ** 2) / (s * (s + 1)), i))
    return seats


def partition(adjacency: Mapping[int, set[int]], weights: Mapping[int, float], n: int, *,
              seeds: Sequence[int] | None = None,
              centroids: Mapping[int, tuple[float, float]] | None = None) -> list[list[int]]:
    """Split a graph of base cells into n connected parts of balanced total weight.

    adjacency: node → neighbours sharing an edge (made symmetric); weights: node → load ≥ 0
    (a node missing from weights weighs 0); centroids: node → (x, y) in a metric CRS, for compact
    shapes (without them, hop distances stand in); seeds: n distinct nodes, at least one per
    piece, to start region growing and the balanced flood from instead of the k-means++ seeds
    (recursive bisection is then not tried; a seed may still end up in another part). Returns
    n sorted node lists covering every node once. Raises ValueError (PiecesError when n is
    below the number of separate pieces). See the module docstring for the algorithm.
    """
    nodes = sorted(set(adjacency) | set(weights))
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of parts must be a positive whole number, not {n!r}.")
    if not nodes:
        raise ValueError("there are no cells to partition.")
    if n > len(nodes):
        raise ValueError(f"{n} parts asked for but there are only {len(nodes)} cells: "
                         "each part needs at least one cell.")
    w: dict[int, float] = {}
    for v in nodes:
        x = float(weights.get(v, 0.0))
        if not math.isfinite(x) or x < 0:
            raise ValueError(f"cell {v} has weight {x}: weights must be finite and not negative.")
        w[v] = x
    adj = _symmetric(adjacency, nodes)
    pos = None
    if centroids is not None:
        missing = [v for v in nodes if v not in centroids]
        if missing:
            raise ValueError(f"{len(missing)} cells have no centroid, e.g. {missing[0]}.")
        pos = {v: (float(centroids[v][0]), float(centroids[v][1])) for v in nodes}

    total = math.fsum(w.values())
    eps = total / len(nodes) * 1e-3 if total > 0 else 1.0
    weff = {v: w[v] + eps for v in nodes}

    pieces = connected_components(adj)
    piece_of = {v: i for i, piece in enumerate(pieces) for v in piece}
    if seeds is not None:
        seeds = list(seeds)
        if len(seeds) != n or len(set(seeds)) != n:
            raise ValueError(f"give exactly {n} distinct seeds, not {len(seeds)}.")
        unknown = [s for s in seeds if s not in adj]
        if unknown:
            raise ValueError(f"seed {unknown[0]} is not a cell of the graph.")
        seeds_of: list[list[int]] = [[] for _ in pieces]
        for s in seeds:
            seeds_of[piece_of[s]].append(s)
        empty = [i for i, s in enumerate(seeds_of) if not s]
        if empty:
            raise ValueError(f"piece {empty[0] + 1} (cells from {pieces[empty[0]][0]}) has no seed: "
                             "every separate piece needs one.")
    else:
        if n < len(pieces):
            raise PiecesError(pieces, n)
        counts = apportion([math.fsum(weff[v] for v in p) for p in pieces], n,
                           maximum=[len(p) for p in pieces])
        seeds_of = [_choose_seeds(piece, k, adj, weff, pos) for piece, k in zip(pieces, counts)]

    result: list[list[int]] = []
    for piece, piece_seeds in zip(pieces, seeds_of):
        if len(piece_seeds) == 1:
            result.append(list(piece))
            continue
        if len(piece_seeds) == len(piece):
            result.extend([v] for v in piece)
            continue
        assign = _split_piece(piece, piece_seeds, adj, weff, pos, seeds is not None)
        parts: list[list[int]] = [[] for _ in piece_seeds]
        for v in piece:
            parts[assign[v]].append(v)
        result.extend(sorted(parts, key=lambda p: p[0]))
    return result


def _split_piece(piece: list[int], seeds: list[int], adj, weff, pos, explicit: bool) -> dict[int, int]:
    """Return node → part for one connected piece: the best of three constructions, each refined."""
    k = len(seeds)
    best_key, best = None, None
    for make in (_grow, _balanced_flood) if explicit else (_grow, _balanced_flood, _bisect):
        assign = make(piece, list(seeds), adj, weff, pos)
        _refine(piece, assign, k, adj, weff, pos)
        load = [0.0] * k
        for v in piece:
            load[assign[v]] += weff[v]
        mean = math.fsum(load) / k
        cut = sum(1 for v in piece for u in adj[v] if assign[u] != assign[v])
        # Balance first; within one percentage point of spread, the shorter boundary wins.
        key = ((max(load) - min(load)) / mean, cut)
        if best is None or key[0] < best_key[0] - 0.01 or (key[0] <= best_key[0] + 0.01 and key[1] < best_key[1]):
            best_key, best = key, assign
    return best


def _dist2(a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def _choose_seeds(piece: list[int], k: int, adj, weff, pos) -> list[int]:
    """Return k well-spread seed cells of one piece (weighted k-means++ then Lloyd)."""
    if k >= len(piece):
        return list(piece)
    if pos is None:
        return _graph_seeds(piece, k, adj, weff)
    xy = np.array([pos[v] for v in piece], dtype=float)
    wt = np.array([weff[v] for v in piece], dtype=float)
    centre = (xy * wt[:, None]).sum(axis=0) / wt.sum()
    first = int(np.argmin(((xy - centre) ** 2).sum(axis=1)))   # argmin: the first (smallest id) on ties
    chosen = [first]
    near = ((xy - xy[first]) ** 2).sum(axis=1)
    for _ in range(1, k):
        score = wt * near
        score[chosen] = -1.0
        nxt = int(np.argmax(score))
        chosen.append(nxt)
        near = np.minimum(near, ((xy - xy[nxt]) ** 2).sum(axis=1))
    centres = xy[chosen].copy()
    for _ in range(_LLOYD_ITERATIONS):
        d2 = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        label = d2.argmin(axis=1)
        mass = np.bincount(label, weights=wt, minlength=k)
        sx = np.bincount(label, weights=wt * xy[:, 0], minlength=k)
        sy = np.bincount(label, weights=wt * xy[:, 1], minlength=k)
        new = centres.copy()
        filled = mass > 0
        new[filled, 0] = sx[filled] / mass[filled]
        new[filled, 1] = sy[filled] / mass[filled]
        if np.array_equal(new, centres):
            break
        centres = new
    result: list[int] = []
    taken = np.zeros(len(piece), dtype=bool)
    for c in centres:
        d2 = ((xy - c) ** 2).sum(axis=1)
        d2[taken] = np.inf
        i = int(np.argmin(d2))
        taken[i] = True
        result.append(piece[i])
    return result


def _bfs_from(sources: Iterable[int], adj, allowed: set[int] | None = None) -> dict[int, int]:
    """Hop distance from the nearest source, within `allowed` (default: everything)."""
    dist = {}
    queue = deque()
    for s in sources:
        if s not in dist:
            dist[s] = 0
            queue.append(s)
    while queue:
        v = queue.popleft()
        for u in adj[v]:
            if u not in dist and (allowed is None or u in allowed):
                dist[u] = dist[v] + 1
                queue.append(u)
    return dist


def _graph_seeds(piece: list[int], k: int, adj, weff) -> list[int]:
    """k seeds from hop distances: k-means++-style farthest picks, then cluster centres."""
    far = _bfs_from([piece[0]], adj)
    a = max(piece, key=lambda v: (far[v], -v))
    da = _bfs_from([a], adj)
    b = max(piece, key=lambda v: (da[v], -v))
    db = _bfs_from([b], adj)
    first = min(piece, key=lambda v: (max(da[v], db[v]), v))
    seeds = [first]
    chosen = {first}
    near = _bfs_from(seeds, adj)
    while len(seeds) < k:
        nxt = max((v for v in piece if v not in chosen), key=lambda v: (weff[v] * near[v] ** 2, -v))
        seeds.append(nxt)
        chosen.add(nxt)
        # Only cells now nearer to the new seed change: a BFS pruned where it stops helping.
        near[nxt] = 0
        queue = deque([nxt])
        while queue:
            v = queue.popleft()
            for u in adj[v]:
                if near[v] + 1 < near[u]:
                    near[u] = near[v] + 1
                    queue.append(u)
    for _ in range(_LLOYD_ITERATIONS):
        owner = _voronoi(seeds, adj)
        clusters: list[set[int]] = [set() for _ in seeds]
        for v in piece:
            clusters[owner[v]].add(v)
        new = [_deepest(cluster, adj, owner, i) for i, cluster in enumerate(clusters)]
        if new == seeds or len(set(new)) < k:
            break
        seeds = new
    return seeds


def _voronoi(seeds: list[int], adj) -> dict[int, int]:
    """Owner (seed index) of every node: nearest seed in hops, ties to the earlier seed."""
    owner = {s: i for i, s in enumerate(seeds)}
    queue = deque(seeds)
    while queue:
        v = queue.popleft()
        for u in adj[v]:
            if u not in owner:
                owner[u] = owner[v]
                queue.append(u)
    return owner


def _grow(piece: list[int], seeds: list[int], adj, weff, pos) -> dict[int, int]:
    """Grow parts from the seeds, the lightest part first; return node → part index."""
    assign = {s: i for i, s in enumerate(seeds)}
    load = [weff[s] for s in seeds]
    order = [0] * len(seeds)          # cells taken so far: the key without centroids
    frontier: list[list] = [[] for _ in seeds]

    def push(i: int, v: int, step: int) -> None:
        key = _dist2(pos[v], pos[seeds[i]]) if pos is not None else step
        heapq.heappush(frontier[i], (key, v))

    for i, s in enumerate(seeds):
        for u in adj[s]:
            if u not in assign:
                push(i, u, 1)
    parts = [(load[i], i) for i in range(len(seeds))]
    heapq.heapify(parts)
    while parts:
        _, i = heapq.heappop(parts)
        heap = frontier[i]
        while heap and heap[0][1] in assign:
            heapq.heappop(heap)
        if not heap:
            continue                  # enclosed: this part grows no more
        _, v = heapq.heappop(heap)
        assign[v] = i
        load[i] += weff[v]
        order[i] += 1
        for u in adj[v]:
            if u not in assign:
                push(i, u, order[i] + 1)
        heapq.heappush(parts, (load[i], i))
    return assign


def _flood(seeds: list[int], alpha: list[float], centres, adj, pos) -> dict[int, int]:
    """Grow all parts at once from their seeds in order of key; a cell goes to the first part to reach it.

    Key of cell u for part i: |u − centre_i|² − alpha_i with centroids (a power diagram grown
    through the adjacency, hence connected), else hops from the seed − alpha_i.
    """
    assign = {s: i for i, s in enumerate(seeds)}
    heap: list[tuple[float, int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    if pos is not None:
        for i, s in enumerate(seeds):
            x0, y0 = centres[i]
            for u in adj[s]:
                if u not in assign:
                    push(heap, ((pos[u][0] - x0) ** 2 + (pos[u][1] - y0) ** 2 - alpha[i], i, u))
        while heap:
            _, i, v = pop(heap)
            if v in assign:
                continue
            assign[v] = i
            (x0, y0), a = centres[i], alpha[i]
            for u in adj[v]:
                if u not in assign:
                    x, y = pos[u]
                    push(heap, ((x - x0) ** 2 + (y - y0) ** 2 - a, i, u))
        return assign
    for i, s in enumerate(seeds):
        for u in adj[s]:
            if u not in assign:
                push(heap, (1 - alpha[i], i, u))
    while heap:
        key, i, v = pop(heap)
        if v in assign:
            continue
        assign[v] = i
        for u in adj[v]:
            if u not in assign:
                push(heap, (key + 1, i, u))
    return assign


def _balanced_flood(piece: list[int], seeds: list[int], adj, weff, pos) -> dict[int, int]:
    """Flood with per-part offsets tuned to even out the loads, re-centring the parts (Lloyd).

    A heavy part's offset shrinks, a light part's grows, like a capacity-constrained power
    diagram; returns the most even assignment met.
    """
    k = len(seeds)
    target = math.fsum(weff[v] for v in piece) / k
    alpha = [0.0] * k
    if pos is not None:
        centres = [pos[s] for s in seeds]
        edges = [(v, u) for v in piece for u in adj[v] if u > v]
        spacing2 = math.fsum(_dist2(pos[v], pos[u]) for v, u in edges) / max(len(edges), 1)
        scale = len(piece) / k * spacing2 / math.pi
    else:
        centres = None
        scale = math.sqrt(len(piece) / k)
    best, best_spread, stale = None, math.inf, 0
    step = 0.5
    for _ in range(_FLOOD_ITERATIONS):
        assign = _flood(seeds, alpha, centres, adj, pos)
        members: list[list[int]] = [[] for _ in range(k)]
        for v in piece:
            members[assign[v]].append(v)
        load = [math.fsum(weff[v] for v in m) for m in members]
        spread = max(load) - min(load)
        if spread < best_spread - 1e-9 * target:
            best, best_spread, stale = assign, spread, 0
        else:
            stale += 1
        # Good enough for the refinement to finish, or no longer improving.
        if best_spread <= 0.01 * target or stale >= 8:
            break
        for i in range(k):
            alpha[i] += step * scale * (target - load[i]) / target
        if pos is not None:
            centres = [(math.fsum(pos[v][0] for v in m) / len(m), math.fsum(pos[v][1] for v in m) / len(m))
                       for m in members]
            seeds = [min(m, key=lambda v: (_dist2(pos[v], c), v)) for m, c in zip(members, centres)]
        else:
            seeds = [_deepest(set(m), adj, assign, i) for i, m in enumerate(members)]
        step *= 0.93
    return best


def _bisect(piece: list[int], seeds: list[int], adj, weff, pos) -> dict[int, int]:
    """Recursive bisection: split along the long axis in proportion to the parts each side gets.

    Each split grows two parts from the two ends of the axis (the lighter one, relative to its
    share, grows next, taking its frontier cell lowest resp. highest along the axis), so both
    sides are connected. Without centroids the axis is hops from one end minus hops from the other.
    """
    assign: dict[int, int] = {}
    stack = [(list(piece), len(seeds), 0)]
    while stack:
        cells, k, first = stack.pop()
        if k == 1:
            for v in cells:
                assign[v] = first
            continue
        k0 = k // 2
        side0, side1 = _split_two(cells, k0 / k, adj, weff, pos)
        # Each side needs at least one cell per part (skewed weights can starve a side).
        k0 = min(max(k0, k - len(side1)), len(side0))
        stack.append((side1, k - k0, first + k0))
        stack.append((side0, k0, first))
    return assign


def _split_two(cells: list[int], share: float, adj, weff, pos) -> tuple[list[int], list[int]]:
    """Split a connected cell set into two connected sides, the first holding `share` of the load."""
    inside = set(cells)
    if pos is not None:
        xy = np.array([pos[v] for v in cells], dtype=float)
        xy -= xy.mean(axis=0)
        values, vectors = np.linalg.eigh(xy.T @ xy)
        axis = vectors[:, int(np.argmax(values))]
        if axis[0] < -1e-12 or (abs(axis[0]) <= 1e-12 and axis[1] < 0):
            axis = -axis                      # a fixed direction: west→east (else south→north)
        along = dict(zip(cells, (xy @ axis).tolist()))
    else:
        far = _bfs_from([cells[0]], adj, inside)
        a = max(cells, key=lambda v: (far[v], -v))
        da = _bfs_from([a], adj, inside)
        b = max(cells, key=lambda v: (da[v], -v))
        db = _bfs_from([b], adj, inside)
        along = {v: da[v] - db[v] for v in cells}
    ends = (min(cells, key=lambda v: (along[v], v)), max(cells, key=lambda v: (along[v], -v)))
    total = math.fsum(weff[v] for v in cells)
    target = (share * total, (1 - share) * total)
    side = {ends[0]: 0, ends[1]: 1}
    load = [weff[ends[0]], weff[ends[1]]]
    frontier: list[list] = [[], []]

    def push(i: int, v: int) -> None:
        for u in adj[v]:
            if u in inside and u not in side:
                heapq.heappush(frontier[i], ((along[u], u) if i == 0 else (-along[u], -u), u))

    push(0, ends[0])
    push(1, ends[1])
    while len(side) < len(cells):
        for h in frontier:
            while h and h[0][1] in side:
                heapq.heappop(h)
        growable = [i for i in (0, 1) if frontier[i]]
        i = min(growable, key=lambda j: (load[j] / target[j] if target[j] > 0 else math.inf, j))
        _, v = heapq.heappop(frontier[i])
        side[v] = i
        load[i] += weff[v]
        push(i, v)
    return [v for v in cells if side[v] == 0], [v for v in cells if side[v] == 1]


def _deepest(cluster: set[int], adj, owner, i: int) -> int:
    """The cell of the cluster farthest (in hops) from the cluster's edge."""
    edge = [v for v in cluster if any(owner[u] != i for u in adj[v])] or [min(cluster)]
    depth = _bfs_from(edge, adj, cluster)
    return max(sorted(cluster), key=lambda v: (depth.get(v, 0), -v))


def _stays_connected(members: set[int], v: int, adj) -> bool:
    """True if members minus v is still connected (v is not an articulation point of the part)."""
    inside = [u for u in adj[v] if u in members]
    if len(inside) <= 1:
        return len(members) > 1
    targets = set(inside)
    start = min(inside)
    seen = {start, v}
    targets.discard(start)
    queue = deque([start])
    while queue and targets:
        x = queue.popleft()
        for u in adj[x]:
            if u in members and u not in seen:
                seen.add(u)
                targets.discard(u)
                queue.append(u)
    return not targets


def _refine(piece: list[int], assign: dict[int, int], k: int, adj, weff, pos) -> None:
    """Rebalance by moving boundary cells, then smooth the boundaries without widening the spread."""
    members: list[set[int]] = [set() for _ in range(k)]
    for v in piece:
        members[assign[v]].add(v)
    load = [math.fsum(weff[v] for v in m) for m in members]
    budget = [50 * len(piece) + 1000]
    _rebalance(piece, assign, members, load, adj, weff, pos, budget)
    _smooth(piece, assign, members, load, adj, weff, budget)


def _move(v: int, a: int, b: int, assign, members, load, weff, budget) -> None:
    members[a].discard(v)
    members[b].add(v)
    assign[v] = b
    load[a] -= weff[v]
    load[b] += weff[v]
    budget[0] -= 1


def _rebalance(piece, assign, members, load, adj, weff, pos, budget) -> int:
    """Move boundary cells from heavier to lighter neighbouring parts while Σ load² decreases."""
    k = len(members)
    # Ignore improvements below float noise, so rounding never makes moves cycle.
    tol = math.fsum(load) / k * 1e-9
    total = 0
    for _ in range(_MAX_REFINE_ROUNDS):
        centre = None
        if pos is not None:
            sx, sy, sw = [0.0] * k, [0.0] * k, [0.0] * k
            for v in piece:
                i, w = assign[v], weff[v]
                sx[i] += w * pos[v][0]
                sy[i] += w * pos[v][1]
                sw[i] += w
            centre = [(x / m, y / m) for x, y, m in zip(sx, sy, sw)]
        candidates = []
        for v in piece:
            a = assign[v]
            neighbours = adj[v]
            others = [assign[u] for u in neighbours if assign[u] != a]
            if not others:
                continue
            w = weff[v]
            own = len(neighbours) - len(others)
            for b in sorted(set(others)):
                gain = w * (load[a] - load[b] - w)
                if gain <= tol:
                    continue
                # Favour cells that sit more in B than in A: moves then keep the boundary smooth.
                shape = (others.count(b) - own) / len(neighbours)
                if centre is not None:
                    da, db = _dist2(pos[v], centre[a]), _dist2(pos[v], centre[b])
                    shape += (da - db) / max(da + db, 1e-300)
                candidates.append((-gain * (1.0 + 0.5 * shape), v, b))
        candidates.sort()
        moved = 0
        for _, v, b in candidates:
            a = assign[v]
            if a == b or weff[v] * (load[a] - load[b] - weff[v]) <= tol:
                continue
            if not any(assign[u] == b for u in adj[v]) or not _stays_connected(members[a], v, adj):
                continue
            _move(v, a, b, assign, members, load, weff, budget)
            moved += 1
            if budget[0] <= 0:
                return total + moved
        total += moved
        if not moved:
            break
    return total


def _smooth(piece, assign, members, load, adj, weff, budget) -> int:
    """Shorten part boundaries: move cells when Σ (load/mean)² + λ·(cut edges) decreases.

    Loads stay within the [min, max] they had when smoothing started, so the spread never
    widens; the objective strictly decreases, so this ends. λ makes one cut edge worth moving an
    average cell across a load difference of 1 % of the mean.
    """
    k = len(members)
    mean = math.fsum(load) / k
    cell = math.fsum(weff[v] for v in piece) / len(piece)
    lam = 2 * cell * 0.01 * mean / (mean * mean)
    hi, lo = max(load), min(load)
    tiny = 1e-12
    total = 0
    for _ in range(_MAX_REFINE_ROUNDS):
        moved = 0
        for v in piece:
            a = assign[v]
            touching: dict[int, int] = {}
            for u in adj[v]:
                if assign[u] != a:
                    touching[assign[u]] = touching.get(assign[u], 0) + 1
            if not touching:
                continue
            own = len(adj[v]) - sum(touching.values())
            w = weff[v]
            best, best_delta = None, -tiny
            for b in sorted(touching):
                if load[b] + w > hi or load[a] - w < lo:
                    continue
                delta = 2 * w * (w - (load[a] - load[b])) / (mean * mean) + lam * (own - touching[b])
                if delta < best_delta:
                    best, best_delta = b, delta
            if best is None or not _stays_connected(members[a], v, adj):
                continue
            _move(v, a, best, assign, members, load, weff, budget)
            moved += 1
            if budget[0] <= 0:
                return total + moved
        total += moved
        if not moved:
            break
    return total


# -- database: balance a draft -------------------------------------------------------------------

@dataclass
class WorkCellLoad:
    """One work cell written by a balance: its code, how many base cells, its load."""

    code: str
    base_cells: int
    load: float
    status: str            # "new", or "kept" when an emptied work cell of that code was reused

    def to_dict(self) -> dict:
        """Return the work cell as a JSON-ready dict."""
        return asdict(self)


@dataclass
class BalanceResult:
    """What `balance_draft` did: the work cells written, their spread, the work cells removed."""

    draft_id: int
    revision: int
    by: str
    area_code: str | None          # the admin unit balanced; None = the whole city
    within: str | None
    work_cells: list[WorkCellLoad]
    spread: Spread
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the result as a JSON-ready dict."""
        return {"draft": self.draft_id, "revision": self.revision, "by": self.by, "area": self.area_code,
                "within": self.within, "work_cells": [c.to_dict() for c in self.work_cells],
                "spread": self.spread.to_dict(), "removed": self.removed}


def describe_balance(result: BalanceResult) -> str:
    """Return the result as text for the terminal: one line per work cell, then the spread."""
    unit = {"residents": "residents", "buildings": "buildings", "incidents": "open incidents", "area": "m²"}[result.by]
    s = result.spread
    lines = [f"{c.code}  {c.base_cells:5d} base cells  {c.load:12.0f} {unit}"
             + ("" if c.status == "new" else "  (kept)") for c in result.work_cells]
    lines.append(f"{s.parts} work cells by {result.by} in {result.area_code or 'the whole city'}"
                 + (f", within each {result.within}" if result.within else "")
                 + f" (draft {result.draft_id}, revision {result.revision})")
    lines.append(f"load max {s.max:.0f}, min {s.min:.0f}, mean {s.mean:.1f}, std {s.std:.1f}; "
                 f"spread (max-min)/mean {s.relative:.1%}")
    if result.removed:
        lines.append(f"removed (left empty): {', '.join(result.removed)}")
    return "\n".join(lines)


def balance_draft(session: Session, draft: WorkGridVersion, n: int, by: str, *, area_code: str | None = None,
                  within: str | None = None, expected_revision: int | None = None,
                  actor: str | None = None) -> BalanceResult:
    """Regroup the base cells of a draft's jurisdiction (or of `area_code`) into n balanced work cells.

    Load `by`: residents, buildings or open incidents counted per base cell, or area (m², on the
    spheroid). Base cells deliberately excluded from the draft stay excluded. The membership of
    the balanced base cells is replaced by n connected work cells coded per DESIGN.md: department
    code + area code (the community, or the smallest admin unit holding all the work cell's base
    cells padded with zeros) + a sequence per area, numbered west→east in rows north→south by
    the work cell's centroid, skipping sequences kept by the draft's other work cells. A new code
    that an emptied work cell had reuses that row, so its name and coordinators carry over; other
    emptied work cells are deleted. Work cells of other areas are untouched. within='community'
    balances each community on its own (see the module docstring). Bumps the draft revision
    once, refusing a stale `expected_revision` (Conflict). Does not commit.
    """
    if draft.status != VersionState.DRAFT:
        raise InvalidTransition(f"version {draft.number} of department {draft.dept_code} is {draft.status}: "
                                "only a draft can be balanced; start a draft from it.")
    if by not in BY:
        raise ValidationError(f"balance by {by!r}? Choose one of {', '.join(BY)}.")
    if within not in (None, "community"):
        raise ValidationError(f"within={within!r}? Use 'community' or nothing.")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValidationError(f"the number of work cells must be a positive whole number, not {n!r}.")
    dept = session.get(Department, draft.dept_code)
    scope = _scope(session, dept.jurisdiction_code) if dept.jurisdiction_code else None
    if area_code is not None:
        area = _scope(session, area_code)
        if scope is not None and not area[1].startswith(scope[1]):
            raise ValidationError(f"{area_code} lies outside department {dept.code}'s jurisdiction "
                                  f"{dept.jurisdiction_code}.")
        scope = area
    scope_code, prefix = scope if scope is not None else (None, "")
    where = scope_code or "the whole city"

    rows = session.execute(text(
        "SELECT b.id, b.code, b.community_code, ST_X(c) AS lon, ST_Y(c) AS lat, "
        "  ST_YMin(b.geom) AS ymin, ST_YMax(b.geom) AS ymax, ST_Area(b.geom::geography) AS area "
        "FROM base_cell b CROSS JOIN LATERAL ST_Centroid(b.geom) AS c "
        "WHERE b.edition_id = :e AND b.community_code LIKE :p AND NOT EXISTS "
        "  (SELECT 1 FROM work_grid_exclusion x WHERE x.version_id = :v AND x.base_cell_id = b.id) "
        "ORDER BY b.code"), {"e": draft.base_edition_id, "p": prefix + "%", "v": draft.id}).all()
    if not rows:
        raise NotFound(f"draft {draft.id} has no base cells to balance in {where}.")
    cells = {r.id: r for r in rows}
    if n > len(cells):
        raise ValidationError(f"{n} work cells asked for, but {where} has only {len(cells)} base cells: "
                              "each work cell needs at least one.")

    # Edge neighbours only: boundaries meeting in a line (DE-9IM B/B = 1), or overlapping; a
    # corner is not enough, since the union of two cells touching at a corner is two polygons.
    # `&&` lets the GiST index find the candidates.
    adjacency: dict[int, set[int]] = {i: set() for i in cells}
    for a, b in session.execute(text(
            "SELECT a.id, b.id FROM base_cell a JOIN base_cell b ON b.edition_id = a.edition_id "
            "  AND a.geom && b.geom AND a.id < b.id "
            "WHERE a.edition_id = :e AND a.community_code LIKE :p AND b.community_code LIKE :p "
            "  AND (ST_Relate(a.geom, b.geom, '****1****') OR ST_Relate(a.geom, b.geom, '2********'))"),
            {"e": draft.base_edition_id, "p": prefix + "%"}):
        if a in cells and b in cells:
            adjacency[a].add(b)
            adjacency[b].add(a)

    weights = _loads(session, draft, by, prefix, cells)
    lon0 = sum(r.lon for r in rows) / len(rows)
    lat0 = sum(r.lat for r in rows) / len(rows)
    # A local equirectangular projection to metres: only compared here, never stored.
    kx = 111_320.0 * math.cos(math.radians(lat0))
    centroids = {i: ((r.lon - lon0) * kx, (r.lat - lat0) * 110_574.0) for i, r in cells.items()}

    if within is None:
        groups = [sorted(cells)]
        counts = [n]
    else:
        by_community: dict[str, list[int]] = {}
        for i, r in cells.items():
            by_community.setdefault(r.community_code, []).append(i)
        names = sorted(by_community)
        groups = [sorted(by_community[c]) for c in names]
        pieces = [len(connected_components({i: adjacency[i] & set(g) for i in g})) for g in groups]
        if n < sum(pieces):
            raise ValidationError(
                f"balancing within each community needs at least {sum(pieces)} work cells in {where} "
                f"({len(groups)} communities"
                + (", some in several separate pieces" if sum(pieces) > len(groups) else "")
                + f"), not {n}.")
        eps = (math.fsum(weights.values()) / len(weights) or 1.0) * 1e-3
        counts = apportion([math.fsum(weights[i] + eps for i in g) for g in groups], n,
                           minimum=pieces, maximum=[len(g) for g in groups])
    parts: list[list[int]] = []
    for group, k in zip(groups, counts):
        members = set(group)
        try:
            parts.extend(partition({i: adjacency[i] & members for i in group}, {i: weights[i] for i in group}, k,
                                   centroids={i: centroids[i] for i in group}))
        except PiecesError as exc:
            samples = ", ".join(f"{len(p)} from {cells[p[0]].code}" for p in exc.pieces[:10])
            raise ValidationError(
                f"the base cells of {where} form {len(exc.pieces)} separate pieces that share no edge "
                f"({samples}): each work cell must be connected, so balance needs at least "
                f"{len(exc.pieces)} work cells, not {n}.") from None

    # Area code of each part: the smallest admin unit holding all its base cells.
    profile = version_profile(session, draft)
    chains = _admin_chains(session, sorted({r.community_code for r in rows}))
    areas = []
    for part in parts:
        communities = sorted({cells[i].community_code for i in part})
        common = [u for u in chains[communities[0]] if all(u in chains[c] for c in communities[1:])]
        if not common:
            raise ValidationError(f"base cells {cells[part[0]].code} … of one work cell share no admin unit: "
                                  "check the parent codes of the admin units (`gridkit admin validate`).")
        areas.append(codes.work_cell_area_code(common[0], profile))

    ids = sorted(cells)
    # Codes of work cells that keep base cells outside the balanced ones: not to be reused.
    taken = set(session.scalars(text(
        "SELECT DISTINCT w.code FROM work_cell w JOIN work_cell_member m ON m.work_cell_id = w.id "
        "WHERE w.version_id = :v AND NOT (m.base_cell_id = ANY(:ids))"), {"v": draft.id, "ids": ids}))

    # Number west→east in rows north→south, by each work cell's area-weighted centroid.
    new_codes: list[str] = [""] * len(parts)
    by_area: dict[str, list[int]] = {}
    for j, a in enumerate(areas):
        by_area.setdefault(a, []).append(j)
    for a, js in sorted(by_area.items()):
        points, heights = [], []
        for j in js:
            mass = math.fsum(cells[i].area for i in parts[j]) or 1.0
            points.append((math.fsum(cells[i].lon * cells[i].area for i in parts[j]) / mass,
                           math.fsum(cells[i].lat * cells[i].area for i in parts[j]) / mass))
            heights.append(max(cells[i].ymax for i in parts[j]) - min(cells[i].ymin for i in parts[j]))
        heights.sort()
        seq = 0
        limit = codes.work_cell_sequence_limit(profile)
        for idx in order_west_east_north_south(points, heights[len(heights) // 2]):
            while True:
                seq += 1
                if seq > limit:
                    raise ValidationError("balance.sequence_exhausted", area=a, needed=len(js), limit=limit,
                                          digits=profile.work_cell_seq_digits, profile=profile.name)
                code = codes.work_cell_code(draft.dept_code, a, seq, profile)
                if code not in taken:
                    break
            new_codes[js[idx]] = code

    touch_draft(session, draft, expected_revision=expected_revision, by=actor)
    session.execute(text("DELETE FROM work_cell_member WHERE version_id = :v AND base_cell_id = ANY(:ids)"),
                    {"v": draft.id, "ids": ids})
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
    for part, code in sorted(zip(parts, new_codes), key=lambda pc: pc[1]):
        members_rows.extend({"version_id": draft.id, "base_cell_id": i, "work_cell_id": rows_of[code].id} for i in part)
        work_cells.append(WorkCellLoad(code, len(part), round(math.fsum(weights[i] for i in part), 3), status[code]))
    session.execute(text("INSERT INTO work_cell_member (version_id, base_cell_id, work_cell_id) "
                         "VALUES (:version_id, :base_cell_id, :work_cell_id)"), members_rows)
    session.expire(draft, ["work_cells"])
    session.flush()
    return BalanceResult(draft.id, draft.revision, by, scope_code, within, work_cells,
                         spread_of([c.load for c in work_cells]), removed)


def _empty_work_cells(session: Session, version_id: int) -> dict[str, WorkCell]:
    """Return the version's work cells that have no base cell, by code."""
    return {w.code: w for w in session.scalars(select(WorkCell).where(
        WorkCell.version_id == version_id,
        ~exists().where(WorkCellMember.work_cell_id == WorkCell.id)).order_by(WorkCell.code))}


def _scope(session: Session, code: str) -> tuple[str, str]:
    """Return (code, prefix of its communities' codes) for an admin unit, or raise NotFound."""
    unit = session.get(AdminUnit, code)
    if unit is None:
        raise NotFound(f"no admin unit has code {code!r}: see `gridkit admin list`.")
    return unit.code, area_prefix(session, unit.code)


def _loads(session: Session, draft: WorkGridVersion, by: str, prefix: str, cells: dict) -> dict[int, float]:
    """Return the load of every base cell: subjects counted by base cell, or area in m²."""
    if by == "area":
        return {i: float(r.area) for i, r in cells.items()}
    model = {"residents": Resident, "buildings": Building, "incidents": Incident}[by]
    query = (select(model.base_cell_id, func.count()).join(BaseCell, BaseCell.id == model.base_cell_id)
             .where(BaseCell.edition_id == draft.base_edition_id, BaseCell.community_code.startswith(prefix))
             .group_by(model.base_cell_id))
    if by == "incidents":
        # Finished cases no longer load a work cell.
        query = query.where(Incident.status.in_(sorted(OPEN_INCIDENT_STATES)))
    counts = dict(session.execute(query).all())
    return {i: float(counts.get(i, 0)) for i in cells}


def _admin_chains(session: Session, communities: list[str]) -> dict[str, list[str]]:
    """Return each community's chain of admin unit codes, itself first, up to the city."""
    parent = dict(session.execute(text(
        "WITH RECURSIVE up AS ("
        "  SELECT code, parent_code FROM admin_unit WHERE code = ANY(:codes)"
        "  UNION SELECT a.code, a.parent_code FROM admin_unit a JOIN up ON a.code = up.parent_code) "
        "SELECT code, parent_code FROM up"), {"codes": communities}).all())
    chains = {}
    for c in communities:
        chain, code = [], c
        while code is not None and code not in chain:
            chain.append(code)
            code = parent.get(code)
        chains[c] = chain
    return chains
