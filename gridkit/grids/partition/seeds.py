"""Step 3 of the partition: k well-spread seed cells per piece (weighted k-means++ and Lloyd)."""

from __future__ import annotations

from collections import deque

import numpy as np

from gridkit.grids.partition.graph import bfs_from, deepest, voronoi

_LLOYD_ITERATIONS = 25


def choose_seeds(piece: list[int], k: int, adj, weff, pos) -> list[int]:
    """Return k well-spread seed cells of one piece (weighted k-means++ then Lloyd)."""
    if k >= len(piece):
        return list(piece)
    if pos is None:
        return graph_seeds(piece, k, adj, weff)
    xy = np.array([pos[v] for v in piece], dtype=float)
    wt = np.array([weff[v] for v in piece], dtype=float)
    centre = (xy * wt[:, None]).sum(axis=0) / wt.sum()
    first = int(np.argmin(((xy - centre) ** 2).sum(axis=1)))  # argmin: the first (smallest id) on ties
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


def graph_seeds(piece: list[int], k: int, adj, weff) -> list[int]:
    """k seeds from hop distances: k-means++-style farthest picks, then cluster centres."""
    far = bfs_from([piece[0]], adj)
    a = max(piece, key=lambda v: (far[v], -v))
    da = bfs_from([a], adj)
    b = max(piece, key=lambda v: (da[v], -v))
    db = bfs_from([b], adj)
    first = min(piece, key=lambda v: (max(da[v], db[v]), v))
    seeds = [first]
    chosen = {first}
    near = bfs_from(seeds, adj)
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
        owner = voronoi(seeds, adj)
        clusters: list[set[int]] = [set() for _ in seeds]
        for v in piece:
            clusters[owner[v]].add(v)
        new = [deepest(cluster, adj, owner, i) for i, cluster in enumerate(clusters)]
        if new == seeds or len(set(new)) < k:
            break
        seeds = new
    return seeds
