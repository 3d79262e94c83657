"""Departments and their work grids, one module per job:

| module | what it holds |
|---|---|
| `departments` | add_department, department (lookup) |
| `versions` | current_version, versions_in_force, list_departments, version_history, start_draft, draft, |
| | touch_draft, version_by_number, version_profile, diff_versions |
| `membership` | check_work_cell (code in the edition's profile), set_members, exclude_cells, |
| | cells_in_polygon, polygon_in_file, cells_in_admin_unit, members_in_edition (a work cell's base cells in the |
| | edition in force, matched by code) |
| `validation` | Problem, validate_version |
| `publishing` | publish, rollback |
| `coordinators` | add_coordinator, assign_coordinator, list_coordinators, coordinators_json |
| `responsibility` | responsibility_at (who is responsible for a point at a time) |

A work cell is a set of whole base cells (work_cell_member). Its geometry is derived: the
union of its base cells, cached when the version is published. Subjects keep only their base
cell; who is responsible is looked up through the version in force at the time asked.

`from gridkit.grids import work` gives the public functions of all of them (`work.publish`).
"""

from gridkit.grids.work.coordinators import add_coordinator, assign_coordinator, coordinators_json, list_coordinators
from gridkit.grids.work.departments import add_department, department
from gridkit.grids.work.membership import (
    cells_in_admin_unit,
    cells_in_polygon,
    check_work_cell,
    exclude_cells,
    members_in_edition,
    polygon_in_file,
    set_members,
)
from gridkit.grids.work.publishing import publish, rollback
from gridkit.grids.work.responsibility import responsibility_at
from gridkit.grids.work.validation import Problem, validate_version
from gridkit.grids.work.versions import (
    current_version,
    diff_versions,
    draft,
    list_departments,
    start_draft,
    touch_draft,
    version_by_number,
    version_history,
    version_profile,
    versions_in_force,
)

# Models that callers reach through this package (work.Department in gridkit/demo.py, tests).
from gridkit.models import Coordinator, Department, WorkCellMember

__all__ = [
    "Coordinator",
    "Department",
    "Problem",
    "WorkCellMember",
    "add_coordinator",
    "add_department",
    "assign_coordinator",
    "cells_in_admin_unit",
    "cells_in_polygon",
    "check_work_cell",
    "coordinators_json",
    "current_version",
    "department",
    "diff_versions",
    "draft",
    "exclude_cells",
    "list_coordinators",
    "list_departments",
    "members_in_edition",
    "polygon_in_file",
    "publish",
    "responsibility_at",
    "rollback",
    "set_members",
    "start_draft",
    "touch_draft",
    "validate_version",
    "version_by_number",
    "version_history",
    "version_profile",
    "versions_in_force",
]
