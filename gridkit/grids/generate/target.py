"""What generation aims at (`Target`) and what it returns (`GeneratedCell`, `GenerationResult`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shapely.geometry import Polygon

from gridkit.errors import ValidationError
from gridkit.messages import Message

# Land cells less compact than this (Polsby-Popper 4πA/P²) are split when they can be, else explained.
MIN_COMPACTNESS = 0.15
# A cell made by merging across a major road stays within this area (m², the straddle cap): a large
# block with few buildings (a park, one big compound) is a cell of its own rather than part of one
# across the road. 0: no cell straddles a major road.
STRADDLE_MAX_M2 = 300_000.0


def check_straddle_max(value) -> float:
    """Return the straddle cap in m² (a number, or text such as '300,000'); refuse anything but 0 or more."""
    text = str(value).strip().replace(",", "").replace("_", "")
    try:
        cap = float(text)
    except ValueError:
        raise ValidationError("generate.straddle_max", value=str(value)) from None
    if not math.isfinite(cap) or cap < 0:
        raise ValidationError("generate.straddle_max", value=str(value))
    return cap


@dataclass(frozen=True)
class Target:
    """How big a cell should be: min..max buildings per cell, or min..max square metres."""

    measure: str  # "buildings" | "area"
    min: float
    max: float

    def __post_init__(self):
        if self.measure not in ("buildings", "area"):
            raise ValidationError("generate.target_measure", measure=self.measure)
        if not (math.isfinite(self.min) and math.isfinite(self.max)) or self.min < 0 or self.max <= 0:
            raise ValidationError("generate.target_not_positive", min=self.min, max=self.max)
        if self.min > self.max:
            raise ValidationError("generate.target_min_above_max", min=self.min, max=self.max)

    @classmethod
    def buildings(cls, min_: int, max_: int) -> Target:
        """Return a target of min_..max_ buildings per cell."""
        return cls("buildings", float(min_), float(max_))

    @classmethod
    def area_m2(cls, min_: float, max_: float) -> Target:
        """Return a target of min_..max_ square metres per cell."""
        return cls("area", float(min_), float(max_))

    @classmethod
    def parse(cls, text: str, measure: str) -> Target:
        """Return the target written as 'MIN-MAX' (e.g. '20-150' buildings or '20000-400000' m²)."""
        parts = str(text).replace("–", "-").replace(",", "").split("-")
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise ValidationError("generate.target_syntax", text=str(text)) from None
        return cls(measure, low, high)

    def message(self) -> Message:
        """Return the target as a message, e.g. '20–150 buildings' / '20–150 栋建筑'."""
        return Message(f"generate.target.{self.measure}", min=self.min, max=self.max)

    def describe(self) -> str:
        """Return the target as English text, e.g. '20–150 buildings'."""
        return self.message().render("en")

    def size(self, value: float) -> Message:
        """Return a size in the target's measure as a message, e.g. '43 buildings'."""
        return Message(f"generate.size.{self.measure}", value=float(value))


@dataclass
class GeneratedCell:
    """One generated cell in the metric CRS, with its measures and target status.

    `buildings` counts by the building rule (gridkit.rules.building_cell): the count the cell
    has after publishing. `reason` says why a cell is outside the target; `notes` explain a
    cell that is in the target but unusual (it straddles a major road, it is elongated).
    """

    polygon: Polygon
    area_m2: float
    buildings: int
    water: bool
    status: str  # "ok" | "below" | "above" | "water"
    reason: Message | None = None
    notes: list[Message] = field(default_factory=list)

    @property
    def compactness(self) -> float:
        """Return the Polsby-Popper score 4πA/P² (1 for a disc, about 0.785 for a square)."""
        return polsby_popper(self.polygon)


def polsby_popper(polygon) -> float:
    """Return 4πA/P² of a polygon (0 for an empty one)."""
    perimeter = polygon.length
    return 4 * math.pi * polygon.area / perimeter**2 if perimeter > 0 else 0.0


@dataclass
class GenerationResult:
    """The cells of one community in numbering order, plus what the algorithm did."""

    cells: list[GeneratedCell]
    target: Target
    faces: int = 0  # faces after splitting along roads and rivers
    merges: int = 0
    splits: int = 0
    rounds: int = 0
    tiling_error_m2: float = 0.0  # area of (union of cells) △ community
    overlap_m2: float = 0.0  # sum of cell areas − area of their union
    seconds: float = 0.0
    carriageways: int = 0  # pairs of carriageways treated as one road

    @property
    def outside(self) -> list[GeneratedCell]:
        """Return the cells not within the target (water cells included: they carry a reason too)."""
        return [c for c in self.cells if c.status != "ok"]

    @property
    def in_target(self) -> int:
        """Return how many cells meet the target."""
        return sum(c.status == "ok" for c in self.cells)

    @property
    def in_target_share(self) -> float:
        """Return the share of cells the target applies to (not water cells) that meet it."""
        applicable = [c for c in self.cells if c.status != "water"]
        return sum(c.status == "ok" for c in applicable) / len(applicable) if applicable else 1.0
