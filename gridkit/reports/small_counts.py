"""Reports under the small-count rule (gridkit.rules.SMALL_COUNT_MAX) for readers who may not see residents.

A report's unit counting 1 or 2 residents (children of an age band, elderly, households …) singles them out: to a
reader whose role may not read personal data there, such counts, and the figures computed from them (shares,
residents per coordinator, a school band's gap), are shown as SMALL_COUNT_SHOWN, and the report says so.
"""

from __future__ import annotations

from gridkit.reports.decision import SCHOOL_BANDS
from gridkit.reports.units import ReportResult, Section
from gridkit.rules import SMALL_COUNT_SHOWN, is_small_count, shown_count

# The report columns counting residents (people) per unit.
RESIDENT_COUNTS = frozenset(
    {
        "residents",
        "registered",
        "floating",
        "households",
        "residents_in_buildings",
        "age_60_plus",
        "age_80_plus",
        "unknown_age",
        "children",
        *(name for name, _, _ in SCHOOL_BANDS),
    }
)
# Columns computed from resident counts: hidden with any count they are computed from.
DERIVED = {
    "floating_pct": ("floating", "residents"),
    "age_60_pct": ("age_60_plus", "residents"),
    "age_80_pct": ("age_80_plus", "residents"),
    "residents_per_coordinator": ("residents",),
    "gap": ("children",),
    "use_pct": ("children",),
}
# The report parameter saying the rule was applied (the header's note, gridkit.reports.render.header_block).
APPLIED = "small_counts"


def hide_small_counts(result: ReportResult) -> ReportResult:
    """Apply the small-count rule to every section's rows and total, in place; return `result`."""
    for section in result.sections:
        _hide_in(section)
    result.params[APPLIED] = SMALL_COUNT_SHOWN
    return result


def _hide_in(section: Section) -> None:
    counted = [c for c in section.columns if c in RESIDENT_COUNTS]
    derived = [(c, DERIVED[c]) for c in section.columns if c in DERIVED]
    if not counted:
        return
    for row in [*section.rows, *([section.total] if section.total is not None else [])]:
        small = {c for c in counted if is_small_count(row.get(c))}
        for column in small:
            row[column] = shown_count(row[column])
        for column, sources in derived:
            if small.intersection(sources):
                row[column] = SMALL_COUNT_SHOWN
