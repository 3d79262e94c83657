"""Graph helpers of the partition: symmetric adjacency, components, hop distances, articulation."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from gridkit.standard import InvalidValue


def symmetric(adjacency: Mapping[int, Iterable[int]], nodes: Iterable[int]) -> dict[int, tuple[int, ...]]:
    """Return node → sorted neighbours, each edge in both directions, self-loops dropped."""
    adj: dict[int, set[int]] = {v: set() for v in nodes}
    for v, neighbours in adjacency.items():
        for u in neighbours:
            if u == v:
                continue
            if u not in adj:
                raise InvalidValue("partition.unknown_neighbour", cell=v, neighbour=u)
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


def dist2(a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def bfs_from(sources: Iterable[int], adj, allowed: set[int] | None = None) -> dict[int, int]:
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


def voronoi(seeds: list[int], adj) -> dict[int, int]:
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


def deepest(cluster: set[int], adj, owner, i: int) -> int:
    """The cell of the cluster farthest (in hops) from the cluster's edge."""
    edge = [v for v in cluster if any(owner[u] != i for u in adj[v])] or [min(cluster)]
    depth = bfs_from(edge, adj, cluster)
    return max(sorted(cluster), key=lambda v: (depth.get(v, 0), -v))


def stays_connected(members: set[int], v: int, adj) -> bool:
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
