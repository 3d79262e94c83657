"""Where a vector file's features lie: coordinates that are numbers (`fail_non_finite`), inside China once in
CGCS2000 lon/lat (`check_in_china`). Moved out of gridkit.io.vector, which calls both for every feature read."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely

from gridkit.io.problems import _LIST_AT_MOST, problem
from gridkit.messages import Message
from gridkit.pii import public_extent
from gridkit.rules import CHINA_LAT, CHINA_LON

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["check_in_china", "fail_non_finite"]

# Above this share of features outside China, one file-level problem replaces per-feature ones:
# the coordinate system is wrong, not the features.
_MOSTLY = 0.5


def fail_non_finite(geoms: np.ndarray, keep: np.ndarray, fail) -> None:
    """Fail each kept feature with an x or y that is NaN or infinite in the file, whatever its CRS.

    Such a feature is no number, not a sign of a wrong coordinate system: one feature alone was refused as "1 of
    1 features lie outside China" blaming the .prj, and a NaN vertex (which GEOS leaves out of a bounding box)
    passed the China check and then broke the repair of the polygon with a GEOS traceback, or a multipoint was
    stored with a point of no place.

    A member of a multipoint whose x and y are NaN is read as an empty point (NaN, NaN is how WKB writes POINT
    EMPTY), which has no coordinates to test: such a feature was refused as "is a MultiPoint" (not one point) by
    the subject imports instead. An empty part in a feature that is not empty is taken as no number too."""
    kept = np.flatnonzero(keep)
    if not len(kept):
        return
    coords, owner = shapely.get_coordinates(geoms[kept], return_index=True)
    bad = np.bincount(owner[~np.isfinite(coords).all(axis=1)], minlength=len(kept)) > 0
    parts, part_owner = shapely.get_parts(geoms[kept], return_index=True)
    bad |= np.bincount(part_owner[shapely.is_empty(parts)], minlength=len(kept)) > 0
    for i in kept[bad]:
        fail(i, "not_convertible")


def _where(x0, y0, x1, y1, personal: bool):
    """Return how a problem names a feature's extent: as it is, or for a layer of people's homes as the public
    may read it (gridkit.pii.public_extent)."""
    return public_extent(x0, y0, x1, y1) if personal else f"x {x0:.6g}–{x1:.6g}, y {y0:.6g}–{y1:.6g}"


def check_in_china(series: gpd.GeoSeries, keep: np.ndarray, fail, source: dict, problems: list, hint="") -> None:
    """Fail the features outside China after conversion to CGCS2000 lon/lat; most of a file so is one file-level
    problem (axes swapped, or a wrong coordinate system: `hint` says what the coordinates look like)."""
    bounds = np.array(shapely.bounds(np.array(series.values, dtype=object)), dtype=float).reshape(-1, 4)
    present = keep & np.isfinite(bounds).all(axis=1)
    x0, y0, x1, y1 = bounds.T
    with np.errstate(invalid="ignore"):
        inside = (x0 >= CHINA_LON[0]) & (x1 <= CHINA_LON[1]) & (y0 >= CHINA_LAT[0]) & (y1 <= CHINA_LAT[1])
        swapped = (y0 >= CHINA_LON[0]) & (y1 <= CHINA_LON[1]) & (x0 >= CHINA_LAT[0]) & (x1 <= CHINA_LAT[1])
    # Non-finite coordinates (NaN or infinity in the file, or a failed transformation) count as outside: most
    # of a file so is a wrong coordinate system; one feature among others is said to be no number.
    outside = keep & ~(present & inside)
    checked = int(keep.sum())
    if not outside.any() or checked == 0:
        return
    display, personal = source["display"], bool(source.get("personal"))  # personal: people's homes, never exact
    positions = np.flatnonzero(outside)
    indexes = [series.index[i] for i in positions]
    listed = ", ".join(str(i) for i in indexes[:_LIST_AT_MOST]) + (" …" if len(indexes) > _LIST_AT_MOST else "")
    if (outside & swapped).sum() > _MOSTLY * checked:
        first = positions[0]
        problems.append(
            problem(
                "axes_swapped",
                Message(
                    "geometry.vector.axes_swapped",
                    file=display,
                    count=int((outside & swapped).sum()),
                    checked=checked,
                    where=_where(x0[first], y0[first], x1[first], y1[first], personal),
                    example=indexes[0],
                ),
                field="geometry",
            )
        )
        keep[outside] = False
        return
    if len(positions) > _MOSTLY * checked:
        problems.append(
            problem(
                "outside_china",
                Message(
                    "geometry.vector.mostly_outside_china",
                    file=display,
                    count=len(positions),
                    checked=checked,
                    listed=listed,
                    crs=source.get("crs"),
                    hint=hint,
                ),
                field="geometry",
            )
        )
        keep[outside] = False
        return
    for i in positions:
        where = _where(x0[i], y0[i], x1[i], y1[i], personal)
        if not np.isfinite(bounds[i]).all():
            fail(i, "not_convertible")
        elif swapped[i]:  # one feature drawn as latitude, longitude among right ones
            fail(i, "axes_swapped", "axes_swapped_feature", where=where)
        else:
            fail(i, "outside_china", where=where)
