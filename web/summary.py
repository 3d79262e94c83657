"""The home page's counts and map extent, kept per app and recomputed only when the data changed.

The stamp (gridkit.counts.change_stamp) is a few index lookups; the counts scan whole tables.
A publish or import changes the stamp, so the counts are recomputed on the next request; as a
stamp does not see deletions, counts also expire after MAX_AGE seconds.
"""

from __future__ import annotations

import threading
import time

from flask import current_app

from gridkit.counts import change_stamp, city_counts
from gridkit.layers import map_extent
from web.database import db_session

MAX_AGE = 60.0
# The stamp itself is read at most this often: the home page stays cheap under load.
STAMP_AGE = 1.0

_lock = threading.Lock()


def cached_counts() -> dict:
    """Return the city's counts (gridkit.counts.city_counts), recomputed when the data changed."""
    return _kept("counts", city_counts)


def cached_extent():
    """Return the home map's extent (gridkit.layers.map_extent), recomputed when the data changed."""
    return _kept("extent", map_extent)


def _kept(name: str, compute):
    kept = current_app.extensions.setdefault("gridkit_kept", {}).setdefault(name, {})
    now = time.monotonic()
    if kept and now - kept["checked"] < STAMP_AGE:
        return kept["value"]
    session = db_session()
    stamp = change_stamp(session)
    if kept and kept["stamp"] == stamp and now - kept["made"] < MAX_AGE:
        kept["checked"] = now
        return kept["value"]
    value = compute(session)
    with _lock:
        kept.update(value=value, stamp=stamp, made=now, checked=now)
    return value


def forget_counts() -> None:
    """Drop the kept counts (a publish or import in this process): the next request recomputes them."""
    current_app.extensions.pop("gridkit_kept", None)
