"""Step 5 of the partition: rebalance boundary cells, then smooth boundaries without widening the spread."""

from __future__ import annotations

import math

from gridkit.grids.partition.graph import dist2, stays_connected

_MAX_REFINE_ROUNDS = 500


def refine(piece: list[int], assign: dict[int, int], k: int, adj, weff, pos) -> None:
    """Rebalance by moving boundary cells, then smooth the boundaries without widening the spread."""
    members: list[set[int]] = [set() for _ in range(k)]
    for v in piece:
        members[assign[v]].add(v)
    load = [math.fsum(weff[v] for v in m) for m in members]
    budget = [50 * len(piece) + 1000]
    rebalance(piece, assign, members, load, adj, weff, pos, budget)
    smooth(piece, assign, members, load, adj, weff, budget)


def move(v: int, a: int, b: int, assign, members, load, weff, budget) -> None:
    members[a].discard(v)
    members[b].add(v)
    assign[v] = b
    load[a] -= weff[v]
    load[b] += weff[v]
    budget[0] -= 1


def rebalance(piece, assign, members, load, adj, weff, pos, budget) -> int:
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
                    da, db = dist2(pos[v], centre[a]), dist2(pos[v], centre[b])
                    shape += (da - db) / max(da + db, 1e-300)
                candidates.append((-gain * (1.0 + 0.5 * shape), v, b))
        candidates.sort()
        moved = 0
        for _, v, b in candidates:
            a = assign[v]
            if a == b or weff[v] * (load[a] - load[b] - weff[v]) <= tol:
                continue
            if not any(assign[u] == b for u in adj[v]) or not stays_connected(members[a], v, adj):
                continue
            move(v, a, b, assign, members, load, weff, budget)
            moved += 1
            if budget[0] <= 0:
                return total + moved
        total += moved
        if not moved:
            break
    return total


def smooth(piece, assign, members, load, adj, weff, budget) -> int:
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
            if best is None or not stays_connected(members[a], v, adj):
                continue
            move(v, a, best, assign, members, load, weff, budget)
            moved += 1
            if budget[0] <= 0:
                return total + moved
        total += moved
        if not moved:
            break
    return total
