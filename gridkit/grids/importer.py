"""What the admin unit and base cell importers share: the result, the refusal, and reading a file's features.

Both services (gridkit.grids.import_admin, gridkit.grids.import_cells) read the file with
`gridkit.io.vector`, check every feature, and only then write, in bulk, inside a savepoint. On any
problem they raise `ImportRefused` (a ValidationError) whose `problems` list every problem found
(feature index, code, field, kind, message) and whose `notes` and `source` say what was read;
nothing is written. The caller owns the transaction and writes the report
(`gridkit.io.report.write_report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time

import numpy as np
import pandas as pd

from gridkit.admin import city_extent
from gridkit.io.problems import ImportRefused, problem, refusal
from gridkit.io.vector import read_vector_collecting
from gridkit.messages import Message

__all__ = [
    "ImportResult",
    "ImportRefused",
    "json_value",
    "records",
    "resolve_field",
    "snap_notes",
    "tolerance_notes",
    "refuse",
    "on_feature",
    "feature_problems",
    "NAME_LENGTH",
]

# The longest name an admin unit or base cell may have (the column's length).
NAME_LENGTH = 100
# Snapping moves smaller than this (metres) are not noted one by one: they only join T-junctions.
SNAP_NOTE_M = 0.0005


@dataclass
class ImportResult:
    """What an import wrote: counts, the notes on what was changed on the way, the source, the edition."""

    created: int
    updated: int = 0
    notes: list[dict] = field(default_factory=list)
    source: dict = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)
    edition: str | None = None
    edition_id: int | None = None

    def summary(self) -> dict:
        """Return the counts and source as a flat dict, for reports and CLI output."""
        out = {
            "file": self.source.get("path"),
            "layer": self.source.get("layer"),
            "driver": self.source.get("driver"),
            "encoding": self.source.get("encoding"),
            "crs": self.source.get("crs"),
            "features": self.source.get("features"),
            "created": self.created,
            "updated": self.updated,
        }
        if self.levels:
            out["levels"] = dict(self.levels)
        if self.edition is not None:
            out["edition"] = self.edition
        return out


def read_polygons(session, path, settings, *, multipart: str, layer, encoding, src_crs, code_field):
    """Read a polygon layer drawn for the city (admin units, base cells, work cells): `gridkit.io.vector`'s
    reader with the settings' vertex limit and the city's extent for the advice to a file without a CRS.
    Returns (read, problems)."""
    return read_vector_collecting(
        path,
        layer=layer,
        encoding=encoding,
        src_crs=src_crs,
        multipart=multipart,
        code_field=code_field,
        max_vertices=settings.max_vertices,
        city=city_extent(session),
    )


def resolve_field(
    fields: list[str], name: str | None, option: str, display: str, notes: list, problems: list
) -> str | None:
    """Return the field to use for `name` (exact, or the one field equal ignoring case), else record a problem."""
    if name is None:
        return None
    if name in fields:
        return name
    folded = [f for f in fields if f.casefold() == name.casefold()]
    if len(folded) == 1:
        notes.append(
            problem(
                "field_case",
                Message("geometry.import.field_case", file=display, name=name, used=folded[0]),
                field=folded[0],
            )
        )
        return folded[0]
    listed = ", ".join(fields) if fields else "none"
    problems.append(
        problem(
            "missing_field",
            Message("geometry.import.missing_field", file=display, name=name, option=option, listed=listed),
            field=name,
        )
    )
    return None


def records(gdf, *columns):
    """Yield one dict per feature holding `columns` (None ones skipped), "geometry" and "attributes".

    "attributes" holds every other field of the file, JSON-ready (faster than iterrows).
    """
    wanted = [c for c in columns if c is not None]
    others = [c for c in gdf.columns if c != gdf.geometry.name and c not in wanted]
    values = [gdf[c].tolist() for c in wanted]
    other_values = [gdf[c].tolist() for c in others]
    geoms = list(gdf.geometry.values)
    for i, geom in enumerate(geoms):
        record = {c: v[i] for c, v in zip(wanted, values)}
        record["geometry"] = geom
        record["attributes"] = {c: json_value(v[i]) for c, v in zip(others, other_values)}
        yield record


def json_value(value):
    """Return an attribute value as JSON: numbers, text, true/false, ISO dates, or None for empty/NaN."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (datetime, date, time, pd.Timestamp)):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def snap_notes(rows: list[dict], changed, tolerance_m: float, display: str, what: str, notes: list) -> None:
    """Add a note per feature that snapping moved by 0.5 mm or more, and one for shared vertices only."""
    moved = [c for c in changed if c.moved_m >= SNAP_NOTE_M]
    for c in moved:
        row = rows[c.index]
        onto = ", ".join(rows[j]["code"] for j in c.neighbours)
        sentence = ("snapped_parent" if onto else "snapped_parent_only") if c.parent else "snapped"
        notes.append(
            problem(
                "snapped",
                on_feature(
                    display,
                    row["index"],
                    row["code"],
                    sentence,
                    cm=c.moved_m * 100,
                    onto=onto,
                    what=Message(f"geometry.import.{what}"),
                    tolerance_cm=tolerance_m * 100,
                ),
                index=row["index"],
                code=row["code"],
                field="geometry",
            )
        )
    shared = len(changed) - len(moved)
    if shared:
        notes.append(
            problem(
                "vertices_shared",
                Message("geometry.import.vertices_shared", file=display, count=shared),
                field="geometry",
            )
        )


def tolerance_notes(thin, display: str, notes: list) -> None:
    """Add a note per overlap, gap or part outside the parent narrower than the tolerance left after snapping."""
    for p in thin:
        notes.append(
            problem(
                "thin_" + p.type,
                Message("geometry.import.left_after_snapping", file=display, text=Message(p.key, **p.params)),
                code=p.codes[0] if p.codes else None,
                field="geometry",
            )
        )


def refuse(source: dict, problems: list, notes: list) -> ImportRefused:
    code, params = refusal(source.get("display", source.get("path", "the file")), problems, "imported")
    return ImportRefused(code, problems=problems, notes=notes, source=source, **params)


def on_feature(display: str, index, code, sentence: str, /, **params) -> Message:
    """Return "<file>, feature <index> (code <code>): <geometry.import.<sentence>>" as a Message."""
    label = Message("geometry.vector.code_label", code=code) if code else ""
    return Message(
        "geometry.vector.on_feature",
        file=display,
        index=index,
        code_label=label,
        text=Message(f"geometry.import.{sentence}", **params),
    )


def feature_problems(problems: list, display: str, index, code, field_: str | None):
    """Return add(kind, sentence, field_=`field_`, **params), which records a problem of this feature in `problems`."""

    def add(kind, sentence, field_=field_, **params):
        problems.append(
            problem(kind, on_feature(display, index, code, sentence, **params), index=index, code=code, field=field_)
        )

    return add
