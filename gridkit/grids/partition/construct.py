"""Step 4 of the partition: three constructions of connected parts (region growing, balanced flood, bisection)."""

from __future__ import annotations

import heapq
import math

import numpy as np

from gridkit.grids.partition.graph import bfs_from, deepest, dist2

_FLOOD_ITERATIONS = 40


def grow(piece: list[int], seeds: list[int], adj, weff, pos) -> dict[int, int]:
    """Grow parts from the seeds, the lightest part first; return node → part index."""
    assign = {s: i for i, s in enumerate(seeds)}
    load = [weff[s] for s in seeds]
    order = [0] * len(seeds)  # cells taken so far: the key without centroids
    frontier: list[list] = [[] for _ in seeds]

    def push(i: int, v: int, step: int) -> None:
        key = dist2(pos[v], pos[seeds[i]]) if pos is not None else step
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
            continue  # enclosed: this part grows no more
        _, v = heapq.heappop(heap)
        assign[v] = i
        load[i] += weff[v]
        order[i] += 1
        for u in adj[v]:
            if u not in assign:
                push(i, u, order[i] + 1)
        heapq.heappush(parts, (load[i], i))
    return assign


def flood(seeds: list[int], alpha: list[float], centres, adj, pos) -> dict[int, int]:
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


def balanced_flood(piece: list[int], seeds: list[int], adj, weff, pos) -> dict[int, int]:
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
        spacing2 = math.fsum(dist2(pos[v], pos[u]) for v, u in edges) / max(len(edges), 1)
        scale = len(piece) / k * spacing2 / math.pi
    else:
        centres = None
        scale = math.sqrt(len(piece) / k)
    best, best_spread, stale = None, math.inf, 0
    step = 0.5
    for _ in range(_FLOOD_ITERATIONS):
        assign = flood(seeds, alpha, centres, adj, pos)
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
            centres = [
                (math.fsum(pos[v][0] for v in m) / len(m), math.fsum(pos[v][1] for v in m) / len(m)) for m in members
            ]
            seeds = [min(m, key=lambda v: (dist2(pos[v], c), v)) for m, c in zip(members, centres)]
        else:
            seeds = [deepest(set(m), adj, assign, i) for i, m in enumerate(members)]
        step *= 0.93
    return best


def bisect(piece: list[int], seeds: list[int], adj, weff, pos) -> dict[int, int]:
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
        side0, side1 = split_two(cells, k0 / k, adj, weff, pos)
        # Each side needs at least one cell per part (skewed weights can starve a side).
        k0 = min(max(k0, k - len(side1)), len(side0))
        stack.append((side1, k - k0, first + k0))
        stack.append((side0, k0, first))
    return assign


def split_two(cells: list[int], share: float, adj, weff, pos) -> tuple[list[int], list[int]]:
    """Split a connected cell set into two connected sides, the first holding `share` of the load."""
    inside = set(cells)
    if pos is not None:
        xy = np.array([pos[v] for v in cells], dtype=float)
        xy -= xy.mean(axis=0)
        values, vectors = np.linalg.eigh(xy.T @ xy)
        axis = vectors[:, int(np.argmax(values))]
        if axis[0] < -1e-12 or (abs(axis[0]) <= 1e-12 and axis[1] < 0):
            axis = -axis  # a fixed direction: west→east (else south→north)
        along = dict(zip(cells, (xy @ axis).tolist()))
    else:
        far = bfs_from([cells[0]], adj, inside)
        a = max(cells, key=lambda v: (far[v], -v))
        da = bfs_from([a], adj, inside)
        b = max(cells, key=lambda v: (da[v], -v))
        db = bfs_from([b], adj, inside)
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
