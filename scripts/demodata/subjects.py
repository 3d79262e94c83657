"""Buildings, residents and legal entities of the demo city."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import shapely
from shapely.geometry import Point, Polygon

from gridkit.standard.ids import (
    citizen_id_check_char,
    credit_code_check_char,
    organization_code_check_char,
    validate_citizen_id,
    validate_credit_code,
    validate_phone,
)

from .constants import (
    DECIMALS,
    DISTRICT_CODE,
    INCIDENTS_END,
    SEED_BUILDINGS,
    SEED_ENTITIES,
    SEED_RESIDENTS,
    TARGET_BUILDINGS,
    TARGET_ENTITIES,
    TARGET_RESIDENTS,
)
from .geometry import to_metric
from .grid import DemoGrid
from .names import COMPANY_TRADES, COMPANY_WORDS, GIVEN_ANY, GIVEN_FEMALE, GIVEN_MALE, MOBILE_PREFIXES, SURNAMES
from .roads import Road


def point_inside(poly: Polygon, rng: random.Random) -> tuple[float, float]:
    """Return a random lon/lat (rounded to the output precision) at least ~2 m inside poly."""
    minx, miny, maxx, maxy = poly.bounds
    for _ in range(10_000):
        lon = round(rng.uniform(minx, maxx), DECIMALS)
        lat = round(rng.uniform(miny, maxy), DECIMALS)
        p = Point(lon, lat)
        # Strictly inside, away from the edge: a subject on a shared edge would have two cells.
        if poly.contains(p) and poly.boundary.distance(p) > 2e-5:
            return lon, lat
    raise RuntimeError("no room for a point in a cell")


def nearest_road(point_lonlat: tuple[float, float], roads: list[Road], tree) -> Road:
    """Return the road nearest to a lon/lat point."""
    p = to_metric(Point(point_lonlat))
    return roads[int(tree.nearest(p))]


def weighted_cells(grid: DemoGrid, rng: random.Random, count: int) -> list[str]:
    """Return `count` cell codes drawn with replacement, weighted by the square root of cell area (jittered)."""
    codes = sorted(grid.cells)
    # Weight by the square root of the area so small dense cells still get buildings.
    weights = [math.sqrt(to_metric(grid.cells[c]).area) * rng.uniform(0.3, 1.7) for c in codes]
    return rng.choices(codes, weights=weights, k=count)


@dataclass
class Building:
    code: str
    address: str
    floors: int
    lon: float
    lat: float


def make_buildings(grid: DemoGrid) -> list[Building]:
    """Return ~TARGET_BUILDINGS buildings, each strictly inside a base cell, coded cell + 4-digit serial."""
    rng = random.Random(SEED_BUILDINGS)
    road_tree = shapely.STRtree([r.geom for r in grid.roads])
    per_cell: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for code in weighted_cells(grid, rng, TARGET_BUILDINGS):
        per_cell[code].append(point_inside(grid.cells[code], rng))
    used_numbers: dict[str, set[int]] = defaultdict(set)
    buildings = []
    for cell in sorted(per_cell):
        points = sorted(per_cell[cell], key=lambda p: (-p[1], p[0]))
        for serial, (lon, lat) in enumerate(points, start=1):
            road = nearest_road((lon, lat), grid.roads, road_tree)
            number = rng.randint(1, 399)
            while number in used_numbers[road.name]:
                number = rng.randint(1, 399)
            used_numbers[road.name].add(number)
            community = grid.names[grid.cell_community[cell]]
            kind = rng.random()
            floors = rng.randint(1, 5) if kind < 0.25 else rng.randint(6, 9) if kind < 0.65 else rng.randint(10, 45)
            buildings.append(Building(f"{cell}{serial:04d}", f"{community}{road.name}{number}号", floors, lon, lat))
    return buildings


def person_name(rng: random.Random, male: bool, surname: str | None = None) -> str:
    """Return a Chinese name: the surname given (else a common one) and one or two given characters."""
    surname = surname or rng.choice(SURNAMES)
    pool = GIVEN_MALE if male else GIVEN_FEMALE
    if rng.random() < 0.75:
        return surname + rng.choice(GIVEN_ANY + pool) + rng.choice(pool)
    return surname + rng.choice(pool)


def mobile_number(rng: random.Random, used: set[str]) -> str:
    """Return a valid mobile number not in `used`, and add it there."""
    while True:
        phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if phone not in used:
            used.add(phone)
            return validate_phone(phone)


def _citizen_id(rng: random.Random, birth: date, male: bool, used: set[str]) -> str:
    while True:
        seq = rng.randrange(0, 100) * 10 + rng.choice([1, 3, 5, 7, 9] if male else [0, 2, 4, 6, 8])
        first17 = f"{DISTRICT_CODE}{birth:%Y%m%d}{seq:03d}"
        number = validate_citizen_id(first17 + citizen_id_check_char(first17), today=INCIDENTS_END.date())
        if number not in used:
            used.add(number)
            return number


def _birth(rng: random.Random, year_low: int, year_high: int) -> date:
    # The demo population is born 1940-2020: clamp both ends into that range.
    year_low = min(max(year_low, 1940), 2020)
    year_high = min(max(year_high, year_low), 2020)
    start = date(year_low, 1, 1)
    return start + timedelta(days=rng.randrange((date(year_high, 12, 31) - start).days + 1))


@dataclass
class Resident:
    id_number: str
    name: str
    phone: str
    household: str
    population_type: str
    building_code: str


def make_residents(buildings: list[Building]) -> list[Resident]:
    """Return ~TARGET_RESIDENTS residents in households of 1-5 people sharing a building and a room."""
    rng = random.Random(SEED_RESIDENTS)
    used_ids: set[str] = set()
    used_phones: set[str] = set()
    used_rooms: set[str] = set()
    weights = [b.floors for b in buildings]
    residents: list[Resident] = []
    while len(residents) < TARGET_RESIDENTS:
        building = rng.choices(buildings, weights=weights)[0]
        room = f"{rng.randint(1, building.floors)}{rng.randint(1, 8):02d}"
        household = f"{building.code}-{room}"
        if household in used_rooms:
            continue
        used_rooms.add(household)
        size = rng.choices([1, 2, 3, 4, 5], weights=[20, 25, 30, 16, 9])[0]
        population_type = "registered" if rng.random() < 0.6 else "floating"
        head_year = rng.randint(1945, 1996)
        head_male = rng.random() < 0.55
        surname = rng.choice(SURNAMES)
        members = [(head_male, surname, _birth(rng, head_year, head_year))]
        if size >= 2:
            spouse_year = head_year + rng.randint(-4, 4)
            members.append((not head_male, None, _birth(rng, spouse_year, spouse_year)))
        for _ in range(max(0, size - 2) - (1 if size == 5 and head_year >= 1962 else 0)):
            child_year = min(2020, head_year + rng.randint(22, 38))
            members.append((rng.random() < 0.5, surname, _birth(rng, child_year, child_year)))
        if size == 5 and head_year >= 1962:
            parent_year = head_year - rng.randint(22, 30)
            members.append((rng.random() < 0.4, surname, _birth(rng, parent_year, parent_year)))
        for male, family, birth in members:
            residents.append(
                Resident(
                    id_number=_citizen_id(rng, birth, male, used_ids),
                    name=person_name(rng, male, family),
                    phone=mobile_number(rng, used_phones),
                    household=household,
                    population_type=population_type,
                    building_code=building.code,
                )
            )
    return residents


@dataclass
class Entity:
    credit_code: str
    name: str
    lon: float
    lat: float


_CREDIT_BODY_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 characters (no I O Z S V)


def make_entities(grid: DemoGrid) -> list[Entity]:
    """Return ~TARGET_ENTITIES legal entities with valid GB 32100 codes (region 440304), inside cells."""
    rng = random.Random(SEED_ENTITIES)
    used_codes: set[str] = set()
    used_names: set[str] = set()
    entities = []
    for cell in weighted_cells(grid, rng, TARGET_ENTITIES):
        while True:
            # 9 = registered by market regulation, 1 = enterprise; organisation codes since 2015 start "MA".
            body = "MA5" + "".join(rng.choice(_CREDIT_BODY_CHARS) for _ in range(5))
            check = organization_code_check_char(body)
            if check not in _CREDIT_BODY_CHARS:
                continue
            first17 = f"91{DISTRICT_CODE}{body}{check}"
            code = validate_credit_code(first17 + credit_code_check_char(first17))
            if code not in used_codes:
                used_codes.add(code)
                break
        while True:
            name = f"深圳市{rng.choice(COMPANY_WORDS)}{rng.choice(COMPANY_TRADES)}有限公司"
            if name not in used_names:
                used_names.add(name)
                break
        lon, lat = point_inside(grid.cells[cell], rng)
        entities.append(Entity(code, name, lon, lat))
    return sorted(entities, key=lambda e: e.credit_code)
