"""Component (部件) codes: 6-digit county + 2-digit major class + 2-digit minor class + 6-digit serial.

Digits 7-10 (major + minor) are the component's category code in the category table
(gridkit/standard/categories.csv: '0101' 上水井盖). Pure Python.
"""

from __future__ import annotations

from gridkit.standard.codes import check_component_code

__all__ = ["check_component_code", "component_category"]


def component_category(code: str) -> str:
    """Return the category code (digits 7-10) of a well-formed 16-digit component code."""
    return check_component_code(code)[6:10]
