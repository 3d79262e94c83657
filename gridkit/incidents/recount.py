"""Counting cases again after the working calendar changed (a holiday added late, hours changed).

What a city expects: a case still open is measured on the calendar as it is now, so its deadlines are counted
again whenever the calendar changes (in the change's transaction: `recount_open_cases`, called by every change
in gridkit.incidents.calendar), with its step times so far; a finished case keeps the times it was evaluated
with, unless a supervisor asks for them to be counted again (`recount_cases`: `gridkit calendar recount
[--since DATE]`, audited).

A deadline is counted again from the instant its step's clock started, with the same working time as before:
the working time from that start to the old deadline on the old calendar, laid on the new one (so the limits the
case was given stay, whatever its category's limits became; an imported case's due date too). The starts are
those of the workflow (gridkit.incidents.workflow): accept from the report, classify from the acceptance,
dispatch and, until a rework, handle, verify and the case's deadline from the classification; after a rework
(the last one), handle and verify from it; an imported case's deadline from its report. A category that runs
around the clock has no calendar: its cases are left as they are.

Step times (`<step>_work_us`) are counted again by the rule of record_step_times (deadlines.spent_many); a step
whose stored time is empty (a case stored before working time was kept, which counts around the clock) stays
so. The evaluation's rollup (incident_eval) follows through its triggers on incident, as for any update.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.incidents.deadlines import PENDING_STEP, STEP_TIMES, spent_many
from gridkit.incidents.worktime import WorkCalendar, add_working_us, epoch_us, from_epoch_us, working_us_between
from gridkit.rules import OPEN_CASE_SQL, IncidentState, parse_time

# Each stored deadline (a key of `deadlines`, or the case's own "deadline") → the columns its clock started at,
# the first one present.
ANCHORS = {
    "accept": ("reported_at",),
    "classify": ("accepted_at",),
    "dispatch": ("classified_at",),
    "handle": ("reworked_at", "classified_at"),
    "verify": ("reworked_at", "classified_at"),
    "deadline": ("classified_at", "reported_at"),
}
# Cases counted again per statement (a progress step).
CHUNK = 5000
_WORKING_CASES = """
    FROM incident i LEFT JOIN incident_category c ON c.code = i.category_code
    WHERE NOT COALESCE(c.around_the_clock, FALSE) AND {where}"""


def recount_open_cases(session: Session, before: WorkCalendar, after: WorkCalendar) -> int:
    """Count the deadlines and step times of the open working-time cases again on calendar `after` (they were
    counted on `before`); return how many cases changed."""
    rows = session.execute(
        text(
            "SELECT i.id, i.status, i.reported_at, i.accepted_at, i.classified_at, i.deadline, i.deadlines, "
            "(SELECT max(h.at) FROM incident_history h WHERE h.incident_id = i.id AND h.from_status = 'fed_back' "
            " AND h.to_status = 'dispatched') AS reworked_at" + _WORKING_CASES.format(where=f"i.{OPEN_CASE_SQL}")
        )
    ).all()
    changed = _moved_deadlines(rows, before, after)
    if changed:
        session.execute(
            text(
                "UPDATE incident i SET deadlines = CAST(n.deadlines AS jsonb), deadline = n.deadline, "
                "step_deadline = n.step_deadline FROM unnest(CAST(:ids AS bigint[]), CAST(:deadlines AS text[]), "
                "CAST(:deadline AS timestamptz[]), CAST(:step AS timestamptz[])) AS n(id, deadlines, deadline, "
                "step_deadline) WHERE i.id = n.id"
            ),
            {
                "ids": list(changed),
                "deadlines": [c["deadlines"] for c in changed.values()],
                "deadline": [c["deadline"] for c in changed.values()],
                "step": [c["step_deadline"] for c in changed.values()],
            },
        )
    times = _recount_times(session, after, f"i.{OPEN_CASE_SQL}", {})
    return len(set(changed) | times)


def _moved_deadlines(rows, before: WorkCalendar, after: WorkCalendar) -> dict[int, dict]:
    """Return {case id: its new deadlines, deadline and step deadline} of the cases whose deadlines move."""
    stored = []  # (row index, key, anchor µs, old deadline µs)
    for n, r in enumerate(rows):
        dated = {k: parse_time(v) for k, v in (r.deadlines or {}).items()}
        dated["deadline"] = r.deadline
        for key, columns in ANCHORS.items():
            anchor = next((getattr(r, c) for c in columns if getattr(r, c) is not None), None)
            if dated.get(key) is not None and anchor is not None and dated[key] >= anchor:
                stored.append((n, key, epoch_us(anchor), epoch_us(dated[key])))
    if not stored:
        return {}
    where, keys, anchors, old = zip(*stored, strict=True)
    anchors, old = np.array(anchors, np.int64), np.array(old, np.int64)
    new = add_working_us(anchors, working_us_between(anchors, old, before), after)
    moved: dict[int, dict] = {}
    for n, key, was, now in zip(where, keys, old, new, strict=True):
        if was != now:
            moved.setdefault(n, {})[key] = from_epoch_us(now)
    changed = {}
    for n, keys_moved in moved.items():
        r = rows[n]
        deadlines = {**(r.deadlines or {}), **{k: v.isoformat() for k, v in keys_moved.items() if k != "deadline"}}
        pending = PENDING_STEP.get(IncidentState(r.status))
        changed[r.id] = {
            "deadlines": json.dumps(deadlines) if r.deadlines is not None else None,
            "deadline": keys_moved.get("deadline", r.deadline),
            "step_deadline": parse_time(deadlines[pending]) if deadlines.get(pending) else None,
        }
    return changed


def recount_cases(
    session: Session,
    calendar: WorkCalendar,
    *,
    since: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Count the step times of the working-time cases again on `calendar` (those with a step done at or after
    `since`, every one without): {"cases": counted, "changed": how many changed}. Never commits."""
    where, params = "TRUE", {}
    if since is not None:
        steps = sorted({c for pair in STEP_TIMES.values() for c in pair})
        where = "GREATEST(" + ", ".join(f"i.{c}" for c in steps) + ") >= :since"
        params["since"] = since
    ids = session.scalars(text("SELECT i.id" + _WORKING_CASES.format(where=where) + " ORDER BY i.id"), params).all()
    changed: set[int] = set()
    for first in range(0, len(ids), CHUNK):
        chunk = ids[first : first + CHUNK]
        changed |= _recount_times(session, calendar, "i.id = ANY(:ids)", {"ids": chunk})
        if progress is not None:
            progress(first + len(chunk), len(ids))
    return {"cases": len(ids), "changed": len(changed)}


def _recount_times(session: Session, calendar: WorkCalendar, where: str, params: dict) -> set[int]:
    """Count the stored step times of the working-time cases matching `where` again; return the ids changed."""
    columns = sorted({c for pair in STEP_TIMES.values() for c in pair})
    stored = [f"{step}_work_us" for step in STEP_TIMES]
    frame = pd.DataFrame(
        session.execute(
            text(f"SELECT i.id, {', '.join(f'i.{c}' for c in columns + stored)}" + _WORKING_CASES.format(where=where)),
            params,
        ).all(),
        columns=["id", *columns, *stored],
    )
    if frame.empty:
        return set()
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    working = pd.Series(False, index=frame.index)
    touched = pd.Series(False, index=frame.index)
    for step, (end, start) in STEP_TIMES.items():
        old = frame[f"{step}_work_us"].astype("Int64")
        # The times as stored (the workflow's to the microsecond; an import's to the second).
        new = spent_many(frame[start], frame[end], working, calendar).where(old.notna())
        touched |= (new != old).fillna(False)
        frame[f"{step}_work_us"] = new
    frame = frame[touched]
    if frame.empty:
        return set()
    sets = ", ".join(f"{c} = n.{c}" for c in stored)
    arrays = ", ".join(f"CAST(:{c} AS bigint[])" for c in stored)
    session.execute(
        text(
            f"UPDATE incident i SET {sets} FROM unnest(CAST(:ids AS bigint[]), {arrays}) AS n(id, {', '.join(stored)}) "
            "WHERE i.id = n.id"
        ),
        {"ids": [int(i) for i in frame["id"]]}
        | {c: [None if pd.isna(v) else int(v) for v in frame[c]] for c in stored},
    )
    return {int(i) for i in frame["id"]}
