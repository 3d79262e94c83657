"""The demo district's generated roads: major avenues and a wavy grid of minor roads, in metres."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import shapely
from shapely.geometry import LineString

from .constants import MINOR_ROAD_SPACING_M, SEED_ROADS
from .names import MAJOR_ROADS_EW, MAJOR_ROADS_NS, MINOR_NAMES_EW, MINOR_NAMES_NS


@dataclass
class Road:
    name: str
    kind: str  # major | minor
    geom: object  # metres, clipped to the district


def _wavy_line(start, end, rng: random.Random, amplitude: float) -> LineString:
    """Return a line from start to end with vertices every ~700 m nudged sideways, like a real street."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    steps = max(2, round(length / 700))
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    points = []
    for i in range(steps + 1):
        t = i / steps
        offset = 0.0 if i in (0, steps) else rng.uniform(-amplitude, amplitude)
        points.append((x0 + (x1 - x0) * t + nx * offset, y0 + (y1 - y0) * t + ny * offset))
    return LineString(points)


def make_roads(district_m) -> list[Road]:
    """Return a generated road network over the district (a few major roads and a minor grid), in metres."""
    rng = random.Random(SEED_ROADS)
    minx, miny, maxx, maxy = district_m.bounds
    width, height = maxx - minx, maxy - miny
    lines: list[tuple[str, str, LineString]] = []
    major_x = [minx + f * width for _, f in MAJOR_ROADS_NS]
    major_y = [miny + f * height for _, f in MAJOR_ROADS_EW]
    for (name, _), y in zip(MAJOR_ROADS_EW, major_y):
        lines.append((name, "major", _wavy_line((minx - 500, y), (maxx + 500, y), rng, 40)))
    for (name, _), x in zip(MAJOR_ROADS_NS, major_x):
        lines.append((name, "major", _wavy_line((x, miny - 500), (x, maxy + 500), rng, 40)))

    def minor_positions(low: float, high: float, majors: list[float]) -> list[float]:
        positions, p = [], low + MINOR_ROAD_SPACING_M / 2
        while p < high:
            jittered = p + rng.uniform(-90, 90)
            # Keep minor roads off the major ones: blocks thinner than ~300 m are not wanted.
            if all(abs(jittered - m) > 300 for m in majors):
                positions.append(jittered)
            p += MINOR_ROAD_SPACING_M
        return positions

    def span(low: float, high: float) -> tuple[float, float]:
        # About a third of the minor roads stop short at one end (dead ends make irregular blocks).
        a, b = low - 500, high + 500
        if rng.random() < 0.35:
            if rng.random() < 0.5:
                a = low + rng.uniform(0.15, 0.45) * (high - low)
            else:
                b = high - rng.uniform(0.15, 0.45) * (high - low)
        return a, b

    for i, y in enumerate(minor_positions(miny, maxy, major_y)):
        a, b = span(minx, maxx)
        lines.append((MINOR_NAMES_EW[i % len(MINOR_NAMES_EW)], "minor", _wavy_line((a, y), (b, y), rng, 25)))
    for i, x in enumerate(minor_positions(minx, maxx, major_x)):
        a, b = span(miny, maxy)
        lines.append((MINOR_NAMES_NS[i % len(MINOR_NAMES_NS)], "minor", _wavy_line((x, a), (x, b), rng, 25)))

    roads = []
    for name, kind, line in lines:
        for part in shapely.get_parts(shapely.intersection(line, district_m)):
            if isinstance(part, LineString) and part.length > 50:
                roads.append(Road(name, kind, part))
    return roads
