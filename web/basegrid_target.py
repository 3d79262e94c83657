"""The base grid page's target check: a (draft) edition's cells coloured in/above/below a target, with counts.

The cells come from /api/basegrid/target-cells (buildings counted by the building rule, so a draft
shows the counts it will have after publishing); this module gives the page's script its config.
"""

from __future__ import annotations

from flask import url_for
from sqlalchemy.orm import Session

from gridkit.grids.generate.layer import CELL_LIMIT, edition_target
from web.i18n import strings

TARGET_JS_STRINGS = (
    "basegrid.target.loading",
    "basegrid.target.counts",
    "basegrid.target.view_counts",
    "basegrid.target.error",
    "basegrid.target.layer",
    "basegrid.target.status.ok",
    "basegrid.target.status.above",
    "basegrid.target.status.below",
    "basegrid.target.tooltip.buildings",
    "basegrid.target.tooltip.area",
)


def target_config(session: Session, edition: dict) -> dict:
    """Return the config of gridkit-basegrid-target.js for an edition of the base grid page.

    `target`: the one the edition was generated to (drawn at once), else None (the planner gives one).
    """
    target = edition_target(session, edition["id"])
    return {
        "edition": edition["id"],
        "cells": edition["cells"],
        "limit": CELL_LIMIT,
        "url": url_for("api.basegrid_target_cells"),
        "target": None if target is None else {"measure": target.measure, "min": target.min, "max": target.max},
        "strings": strings(*TARGET_JS_STRINGS),
    }
