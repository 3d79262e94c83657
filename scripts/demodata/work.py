"""Departments' work cells, their coordinators, and the incidents of the demo city."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import shapely

from gridkit.standard.categories import load_categories
from gridkit.standard.codes import work_cell_code

from .constants import DEPARTMENTS, INCIDENTS_DAYS, INCIDENTS_END, SEED_INCIDENTS, SEED_PEOPLE, TARGET_INCIDENTS
from .geometry import adjacency, to_metric
from .grid import DemoGrid
from .names import COMPONENT_DEFECTS, EVENT_DETAILS, PUBLIC_REPORTERS
from .subjects import mobile_number, nearest_road, person_name, point_inside, weighted_cells


def partition_contiguous(
    codes: list[str],
    adjacent: dict[str, dict[str, float]],
    area: dict[str, float],
    centre: dict[str, tuple[float, float]],
    k: int,
    start_last: bool,
) -> list[list[str]]:
    """Return codes (in order) split into k edge-connected groups of similar area, by region growing.

    The first seed is the first code (or the last, for a different layout); the others are each the
    cell farthest from the seeds so far. The group with the least area grows next, by one neighbour.
    """
    if k <= 1:
        return [sorted(codes)]
    centres = np.array([centre[c] for c in codes])
    seeds = [len(codes) - 1 if start_last else 0]
    while len(seeds) < k:
        distance = np.min(np.linalg.norm(centres[:, None, :] - centres[seeds][None, :, :], axis=2), axis=1)
        seeds.append(int(np.argmax(distance)))
    group_of = {codes[s]: g for g, s in enumerate(seeds)}
    totals = [area[codes[s]] for s in seeds]
    members = set(codes)
    while len(group_of) < len(codes):
        for g in sorted(range(k), key=lambda g: (totals[g], g)):
            frontier = sorted(
                n for c, gg in group_of.items() if gg == g for n in adjacent[c] if n in members and n not in group_of
            )
            if frontier:
                group_of[frontier[0]] = g
                totals[g] += area[frontier[0]]
                break
        else:
            raise RuntimeError("community cells are not edge-connected")
    return [sorted(c for c, g in group_of.items() if g == gg) for gg in range(k)]


@dataclass
class WorkCell:
    dept_code: str
    code: str
    name: str
    base_cells: list[str]


def make_work_cells(grid: DemoGrid) -> list[WorkCell]:
    """Return each department's work cells: whole, contiguous sets of base cells inside one community."""
    codes = sorted(grid.cells)
    metric = {c: to_metric(grid.cells[c]) for c in codes}
    adjacent_idx = adjacency([metric[c] for c in codes])
    adjacent = {codes[i]: {codes[j]: v for j, v in adjacent_idx[i].items()} for i in range(len(codes))}
    area = {c: metric[c].area for c in codes}
    centre = {c: metric[c].centroid.coords[0] for c in codes}
    by_community: dict[str, list[str]] = defaultdict(list)
    for c in codes:
        by_community[grid.cell_community[c]].append(c)
    median = sorted(len(v) for v in by_community.values())[len(by_community) // 2]

    work_cells = []
    for dept_code, _, short in DEPARTMENTS:
        for community in sorted(by_community):
            members = by_community[community]
            if short == "综治":  # smaller cells: about two per community
                k, start_last = (3 if len(members) >= 30 else 2), False
            elif short == "城管":
                k, start_last = 1, False
            else:  # 民政: large communities get two
                k, start_last = (2 if len(members) > median else 1), True
            for seq, group in enumerate(partition_contiguous(members, adjacent, area, centre, k, start_last), start=1):
                code = work_cell_code(dept_code, community, seq)
                name = f"{grid.names[community]}{short}网格{seq:02d}"
                work_cells.append(WorkCell(dept_code, code, name, group))
    return work_cells


@dataclass
class Coordinator:
    name: str
    phone: str
    dept: str
    work_cells: list[str]


def make_coordinators(grid: DemoGrid, work_cells: list[WorkCell]) -> list[Coordinator]:
    """Return one row per person and department; some people serve two departments (多员合一)."""
    rng = random.Random(SEED_PEOPLE)
    used_phones: set[str] = set()
    used_names: set[str] = set()

    def person() -> tuple[str, str]:
        while True:
            name = person_name(rng, rng.random() < 0.5)
            if name not in used_names:
                used_names.add(name)
                return name, mobile_number(rng, used_phones)

    by_dept_community: dict[tuple[str, str], list[WorkCell]] = defaultdict(list)
    for wc in work_cells:
        by_dept_community[(wc.dept_code, wc.code[6:18])].append(wc)
    communities = sorted({wc.code[6:18] for wc in work_cells})
    zongzhi, chengguan, minzheng = (d[0] for d in DEPARTMENTS)
    rows: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (name, phone, dept) -> work cells
    for n, community in enumerate(communities):
        zz_people = []
        for wc in by_dept_community[(zongzhi, community)]:
            who = person()
            zz_people.append(who)
            rows[(*who, zongzhi)].append(wc.code)
        # 多员合一: in every fourth community the 综治 coordinator also works the 城管 cell,
        # and in every fifth the second 综治 coordinator also serves 民政.
        cg = zz_people[0] if n % 4 == 0 else person()
        for wc in by_dept_community[(chengguan, community)]:
            rows[(*cg, chengguan)].append(wc.code)
        mz = zz_people[1] if n % 5 == 2 and len(zz_people) > 1 else person()
        for wc in by_dept_community[(minzheng, community)]:
            rows[(*mz, minzheng)].append(wc.code)
    coordinators = [Coordinator(name, phone, dept, sorted(cells)) for (name, phone, dept), cells in rows.items()]
    return sorted(coordinators, key=lambda c: (c.dept, c.work_cells[0]))


# --- incidents -------------------------------------------------------------------------------------


@dataclass
class Incident:
    code: str
    category_code: str
    description: str
    reported_at: str
    reporter: str
    lon: float
    lat: float


def make_incidents(grid: DemoGrid, work_cells: list[WorkCell], coordinators: list[Coordinator]) -> list[Incident]:
    """Return ~TARGET_INCIDENTS incidents inside cells over the 60 days before 2026-11-01 (+08:00)."""
    rng = random.Random(SEED_INCIDENTS)
    categories = load_categories()
    events = [c for c in categories if c.kind == "event"]
    components = [c for c in categories if c.kind == "component"]
    road_tree = shapely.STRtree([r.geom for r in grid.roads])
    # Coordinators of 综治 and 城管 patrol and report; find who covers a cell.
    reporter_of: dict[str, list[str]] = defaultdict(list)
    person_of_work_cell = {wc: c.name for c in coordinators for wc in c.work_cells}
    for wc in work_cells:
        if wc.dept_code in (DEPARTMENTS[0][0], DEPARTMENTS[1][0]):
            for cell in wc.base_cells:
                reporter_of[cell].append(person_of_work_cell[wc.code])

    start = INCIDENTS_END - timedelta(days=INCIDENTS_DAYS)
    drafts = []
    for cell in weighted_cells(grid, rng, TARGET_INCIDENTS):
        lon, lat = point_inside(grid.cells[cell], rng)
        category = rng.choice(events) if rng.random() < 0.75 else rng.choice(components)
        road = nearest_road((lon, lat), grid.roads, road_tree)
        place = f"{road.name}{rng.randint(1, 399)}号附近"
        if category.kind == "event":
            detail = rng.choice(EVENT_DETAILS[category.major_code])
            description = f"{place}发现{category.name}，{detail}"
        else:
            description = f"{place}{category.name}{rng.choice(COMPONENT_DEFECTS)}，请权属单位处置。"
        reported = start + timedelta(days=rng.randrange(INCIDENTS_DAYS), seconds=rng.randrange(7 * 3600, 22 * 3600))
        reporter = rng.choice(sorted(reporter_of[cell])) if rng.random() < 0.7 else rng.choice(PUBLIC_REPORTERS)
        drafts.append((reported, category.code, description, reporter, lon, lat))
    drafts.sort()
    incidents, serial_of_day = [], defaultdict(int)
    for reported, category_code, description, reporter, lon, lat in drafts:
        day = f"{reported:%Y%m%d}"
        serial_of_day[day] += 1
        incidents.append(
            Incident(
                f"SJ{day}{serial_of_day[day]:04d}", category_code, description, reported.isoformat(), reporter, lon, lat
            )
        )
    return incidents
