"""Component (部件) codes: 6-digit county + 2-digit major class + 2-digit minor class + 6-digit serial.

Digits 7-10 (major + minor) are the component's category code in the category table
(gridkit/standard/categories.csv: '0101' 上水井盖). Pure Python (and numpy for the bulk form).
"""

from __future__ import annotations

import numpy as np

from gridkit.standard.codes import COMPONENT_MAJOR_CLASSES, check_component_code

__all__ = ["check_component_code", "component_category", "component_codes_valid"]

_MAJORS = np.array(sorted(int(major) for major in COMPONENT_MAJOR_CLASSES))


def component_category(code: str) -> str:
    """Return the category code (digits 7-10) of a well-formed 16-digit component code."""
    return check_component_code(code)[6:10]


def component_codes_valid(chars: np.ndarray) -> np.ndarray:
    """Return, for each row of an (n, 16) uint8 array of ASCII characters, whether check_component_code accepts
    it as written: the bulk form of the same rules (16 digits; the county neither 00xxxx nor xxxx00; a major
    class of COMPONENT_MAJOR_CLASSES; minor class and serial not all zeros), for millions of rows at once. A row
    it refuses goes through check_component_code, which says what is wrong."""
    digits = np.asarray(chars, dtype=np.uint8).reshape(-1, 16).astype(np.int16) - ord("0")
    shaped = ((digits >= 0) & (digits <= 9)).all(axis=1)
    digits = np.where(shaped[:, None], digits, 0)

    def number(start: int, stop: int) -> np.ndarray:
        weights = 10 ** np.arange(stop - start - 1, -1, -1, dtype=np.int64)
        return digits[:, start:stop].astype(np.int64) @ weights

    return (
        shaped
        & (number(0, 2) != 0)
        & (number(4, 6) != 0)
        & np.isin(number(6, 8), _MAJORS)
        & (number(8, 10) != 0)
        & (number(10, 16) != 0)
    )
