"""`gridkit incident …`: the 7-step workflow, lists, supervision and evaluation of cases.

Commands act as the user named by --as (or GRIDKIT_USER); that user's role and area are checked
by the workflow. Every command has --json. Each runs in one transaction: a refused step
changes nothing.
"""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitCommand, GridkitGroup, output, say, with_settings
from gridkit.cli import as_option as cli_as_option
from gridkit.rules import SEVERITIES, IncidentState

as_option = cli_as_option("username")


def _actor(session, username, *, required: bool = True):
    from gridkit.incidents.actors import actor_for

    if not username and not required:
        return None
    return actor_for(session, username)


@click.group(cls=GridkitGroup)
def incident():
    """Incidents (事件/部件问题): report, accept, classify, dispatch, feedback, close; supervise and evaluate."""


def _state(state: str | None) -> str:
    """Return an incident state's name in the CLI's language."""
    return say(f"incident.state.{state}") if state else "-"


# -- categories ------------------------------------------------------------------------------------


@incident.group("categories", cls=GridkitGroup)
def categories():
    """Incident and component categories: code, department, time limit per step."""


@categories.command("list")
@click.option("--kind", type=click.Choice(["component", "event"]))
@output.command_output
@with_settings
def categories_list(settings, kind):
    """List categories with their default department and time limits (hours, in working time or around the
    clock)."""
    from gridkit.incidents.categories import category_rows

    with db.transaction(settings) as session:
        rows = category_rows(session, kind)
    table = [
        {
            **{k: r[k] for k in ("code", "kind", "name", "major_code", "department", "time_limit_hours")},
            **{f"{s}_h": h for s, h in r["step_hours"].items() if s != "handle"},
            "clock": say(f"cli.clock.{r['clock']}"),
        }
        for r in rows
    ]
    return output.Result(rows, rows=table)


# -- the steps ---------------------------------------------------------------------------------------


@incident.command("report")
@click.option("--lon", type=float, help="Longitude (CGCS2000).")
@click.option("--lat", type=float, help="Latitude (CGCS2000).")
@click.option("--component", help="16-digit component code: the case takes its place and category.")
@click.option("--description", required=True)
@click.option("--category", help="Category code (see `incident categories list`).")
@click.option("--source", help="Channel: hotline, app, patrol, open311 …")
@click.option("--reported-at", help="When it was reported (ISO 8601; default now).")
@click.option("--key", help="Idempotency key: the same report sent twice gives one case.")
@as_option
@output.command_output
@with_settings
def report(settings, lon, lat, component, description, category, source, reported_at, key, username):
    """信息采集: record a new case; print its id and code, and open cases it may duplicate."""
    from gridkit.incidents.workflow import report_incident

    with db.transaction(settings) as session:
        actor = _actor(session, username)
        result = report_incident(
            session,
            lon=lon,
            lat=lat,
            component=component,
            description=description,
            category=category,
            source=source,
            reported_at=reported_at,
            key=key,
            actor=actor,
        )
        data = result.to_dict()
    lines = [say("cli.incident.reported" if data["created"] else "cli.incident.already_reported", **data)]
    if data["base_cell_id"] is None:
        lines.append(say("cli.incident.outside"))
    lines += [
        say("cli.incident.possible_duplicate", code=d["code"], state=_state(d["state"]), metres=d["metres"])
        for d in data["duplicates"]
    ]
    return output.Result(data, lines=lines)


def _step(settings, action: str, ident, username, **params):
    from gridkit.incidents.queries import show_incident
    from gridkit.incidents.workflow import transition

    with db.transaction(settings) as session:
        actor = _actor(session, username)
        case = transition(session, ident, action, actor, **params)
        data = show_incident(session, case.id, actor)
    lines = [f"{data['code']}: {_state(data['history'][-1]['from'])} → {_state(data['state'])}"]
    if action == "dispatch" and data["needs_dispatch"]:
        reason = say(f"incident.dispatch_gap.{data['needs_dispatch']}")
        lines.append(say("cli.incident.needs_dispatch", reason=reason, code=data["code"]))
    return output.Result(data, lines=lines)


def _simple_step(action: str, doc: str, note_required: bool = False):
    @incident.command(action, help=doc)
    @click.argument("ident", metavar="ID")
    @click.option("--note", required=note_required)
    @as_option
    @output.command_output
    @with_settings
    def command(settings, ident, note, username):
        return _step(settings, action, ident, username, note=note)

    return command


accept = _simple_step("accept", "事件受理: accept a reported case (ID: id or code).")
reject = _simple_step("reject", "Reject a reported case.")
close = _simple_step("close", "汇总监督: verify the feedback and close the case.")
rework = _simple_step("rework", "Send a fed-back case back for rework (note required).", note_required=True)


@incident.command("duplicate")
@click.argument("ident", metavar="ID")
@click.option("--of", "of", required=True, help="The original case (id or code).")
@click.option("--note")
@as_option
@output.command_output
@with_settings
def duplicate(settings, ident, of, note, username):
    """Mark a case as a duplicate of another."""
    return _step(settings, "duplicate", ident, username, of=of, note=note)


@incident.command("classify")
@click.argument("ident", metavar="ID")
@click.option("--category", required=True)
@click.option("--severity", type=click.Choice(SEVERITIES), default="normal", show_default=True)
@click.option("--note")
@as_option
@output.command_output
@with_settings
def classify(settings, ident, category, severity, note, username):
    """分级分类: set category and severity; deadlines are computed per step."""
    return _step(settings, "classify", ident, username, category=category, severity=severity, note=note)


@incident.command("dispatch")
@click.argument("ident", metavar="ID")
@click.option("--dept", help="Department code (default: the category's).")
@click.option(
    "--coordinator",
    "coordinator_phone",
    metavar="PHONE",
    help="Another coordinator, by phone; '-' reads it from standard input.",
)
@click.option("--reason", help="Why another coordinator, or why again (with --coordinator, or for a case in hand).")
@click.option("--note")
@as_option
@output.command_output
@with_settings
def dispatch(settings, ident, dept, coordinator_phone, reason, note, username):
    """任务执行: send to the department and the coordinator of the work grid valid at the report time."""
    if coordinator_phone is not None:
        from gridkit.cli import personal_argument
        from gridkit.cli.coordinator import PHONE_ARGUMENT

        coordinator_phone = personal_argument(coordinator_phone, **PHONE_ARGUMENT)
    return _step(
        settings, "dispatch", ident, username, dept=dept, coordinator_phone=coordinator_phone, reason=reason, note=note
    )


@incident.command("feedback")
@click.argument("ident", metavar="ID")
@click.option("--note", required=True)
@click.option(
    "--attach",
    "attachments",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A photo (JPEG, PNG, GIF, WebP; repeatable).",
)
@as_option
@output.command_output
@with_settings
def feedback(settings, ident, note, attachments, username):
    """执行反馈: report the work done, with a note and photos."""
    return _step(settings, "feedback", ident, username, note=note, attachments=list(attachments), home=settings.home)


# -- reading ---------------------------------------------------------------------------------------


@incident.command("show")
@click.argument("ident", metavar="ID")
@as_option
@output.command_output
@with_settings
def show(settings, ident, username):
    """Show a case: state, category, cells, coordinator, deadlines, overdue, history.

    The coordinator's name and phone are in clear (audited) only when --as names a user who may read
    personal data there; masked otherwise."""
    from gridkit.incidents.queries import show_incident

    with db.transaction(settings) as session:
        actor = _actor(session, username, required=False)
        data = show_incident(session, ident, actor)
    step = data["pending_step"]
    lines = [
        f"{data['code']}  {_state(data['state'])}  {(data['category'] or {}).get('name', '-')}",
        say(
            "cli.incident.cells",
            base_cell=data["base_cell"] or "-",
            work_cell=data["work_cell"] or "-",
            department=data["department"] or "-",
        ),
        say(
            "cli.incident.step_due",
            step=say(f"incident.step.{step}") if step else "-",
            due=data["step_deadline"] or "-",
        )
        + ("  " + _left_text(data["time_left"]) if data["time_left"] else ""),
    ]
    rows = [
        {"at": h["at"], "from": _state(h["from"]), "to": _state(h["to"]), "actor": h["actor"], "note": h["note"]}
        for h in data["history"]
    ]
    return output.Result(data, lines=lines, rows=rows)


@incident.command("list")
@click.option("--state", type=click.Choice([s.value for s in IncidentState]))
@click.option("--dept")
@click.option("--area", help="Admin unit code: cases in it.")
@click.option("--category")
@click.option("--overdue", is_flag=True, help="Only cases past their current step's deadline.")
@click.option("--unassigned", is_flag=True, help="Only cases outside every base cell or without a place.")
@click.option(
    "--needs-dispatch",
    is_flag=True,
    help="Only dispatched cases no coordinator was found for (waiting for a manual dispatch).",
)
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--offset", type=int, default=0)
@as_option
@output.command_output
@with_settings
def list_(settings, state, dept, area, category, overdue, unassigned, needs_dispatch, limit, offset, username):
    """List cases, newest first."""
    from gridkit.incidents.queries import list_incidents

    with db.transaction(settings) as session:
        actor = _actor(session, username, required=False)
        data = list_incidents(
            session,
            state=state,
            dept=dept,
            area=area,
            category=category,
            overdue=overdue,
            unassigned=unassigned,
            needs_dispatch=needs_dispatch,
            actor=actor,
            limit=limit,
            offset=offset,
        )
    columns = [
        "id",
        "code",
        "state",
        "category",
        "department",
        "base_cell",
        "work_cell",
        "reported_at",
        "step_deadline",
        "overdue",
        "needs_dispatch",
    ]
    return output.Result(
        data, lines=[say("cli.incident.cases", count=data["total"])], rows=data["items"], columns=columns
    )


@incident.command("overdue")
@click.option("--dept")
@as_option
@output.command_output
@with_settings
def overdue(settings, dept, username):
    """Open cases past their step's deadline, per step, and the escalation list."""
    from gridkit.incidents.queries import overdue_cases

    with db.transaction(settings) as session:
        actor = _actor(session, username, required=False)
        data = overdue_cases(session, actor=actor, dept=dept)
    per_step = ", ".join(f"{say(f'incident.step.{k}')} {v}" for k, v in data["per_step"].items())
    lines = [
        say("cli.incident.overdue_total", count=data["total"], per_step=per_step),
        say("cli.incident.to_escalate", count=len(data["escalation"])),
    ]
    columns = ["code", "state", "step", "step_deadline", "hours_late", "rework_count", "escalate"]
    rows = [{**c, "hours_late": _late_text(c["hours_late"], c["working_time"])} for c in data["cases"]]
    return output.Result(data, lines=lines, rows=rows, columns=columns)


def _late_text(hours: float, working: bool) -> str:
    """Return how long a case is late, labelled with how it counts (working hours, or around the clock)."""
    return say(f"cli.incident.late.{'working' if working else 'around'}", hours=hours)


def _left_text(left: dict) -> str:
    """Return what a case's pending step has left, or how long it is overdue, labelled with how it counts."""
    clock = "working" if left["working"] else "around"
    if left["hours"] < 0:
        return say(f"cli.incident.late_by.{clock}", hours=-left["hours"])
    return say(f"cli.incident.left.{clock}", hours=left["hours"])


@incident.command("evaluate")
@click.option(
    "--by",
    type=click.Choice(["work-cell", "department", "coordinator", "community"]),
    default="department",
    show_default=True,
)
@click.option("--from", "from_", help="First report time (ISO 8601 date or time).")
@click.option("--to", help="End of the period: a date is included whole, a time is not (default now).")
@click.option("--dept")
@as_option
@output.command_output
@with_settings
def evaluate(settings, by, from_, to, dept, username):
    """综合评价: on-time closure rate, rework rate, mean and p90 hours per step, backlog.

    By coordinator, names are in clear (audited) only when --as names a user who may read personal
    data in its area; masked otherwise."""
    from gridkit.incidents.evaluate import evaluate as run
    from gridkit.incidents.evaluate import flat_rows

    with db.transaction(settings) as session:
        actor = _actor(session, username, required=False)
        data = run(session, by=by, from_=from_, to=to, actor=actor, dept=dept)
    columns = [
        "key",
        "name",
        "cases",
        "closed",
        "on_time_rate",
        "rework_rate",
        "backlog",
        "overdue",
        "accept_mean_h",
        "classify_mean_h",
        "dispatch_mean_h",
        "handle_mean_h",
        "handle_p90_h",
        "verify_mean_h",
        "total_mean_h",
        "total_p90_h",
    ]
    lines = [say("sup.eval.p90_sample")] if data["p90_sample"] else []
    return output.Result(data, lines=lines, rows=flat_rows(data, say("sup.eval.total")), columns=columns)


# -- imports (registered under `gridkit import`) ----------------------------------------------------


def _import(settings, name: str, work) -> output.Result:
    """Run an import in one transaction; write its report (problems and notes) under GRIDKIT_HOME/reports."""
    from gridkit.cli.common import prune_old_reports, refused_import
    from gridkit.errors import ValidationError
    from gridkit.io.problems import problem_count
    from gridkit.io.report import write_report

    prune_old_reports(settings)
    try:
        with db.transaction(settings) as session:
            summary = work(session)
    except ValidationError as exc:
        raise refused_import(settings, name, exc) from None
    notes = summary.pop("notes", [])
    json_path, text_path = write_report(settings.home, name, [], notes, summary)
    summary.update(report=str(json_path), notes=problem_count(notes))
    lines = [output.pairs({k: v for k, v in summary.items() if k not in ("report", "notes", "states", "source")})]
    if notes:
        lines.append(say("cli.import_rows_noted", count=problem_count(notes), report=str(text_path)))
    if summary.get("waiting_dispatch"):
        lines.append(say("cli.incident.import_needs_dispatch", count=summary["waiting_dispatch"]))
    return output.Result(summary, lines=lines)


@click.command("components", cls=GridkitCommand)
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Read FIELD (code, name, lon, lat) from COLUMN (repeatable).",
)
@click.option("--encoding")
@click.option("--layer")
@click.option("--src-crs")
@output.command_output
@with_settings
def import_components_command(settings, path, maps, encoding, layer, src_crs):
    """Import the component inventory (部件): 16-digit codes, points or lines (all-or-nothing)."""
    from gridkit.incidents.components import import_components
    from gridkit.io.subjects import parse_mapping

    mapping = parse_mapping(maps)
    return _import(
        settings,
        "components-import",
        lambda session: import_components(
            session, path, mapping=mapping, encoding=encoding, layer=layer, src_crs=src_crs
        ),
    )


@click.command("incidents", cls=GridkitCommand)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--map",
    "mapping_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="JSON mapping: columns, time format and zone, categories and states of the file.",
)
@click.option("--encoding")
@output.command_output
@with_settings
def import_incidents_command(settings, path, mapping_path, encoding):
    """Import historic cases with their own timestamps (all-or-nothing; rows without a place are kept)."""
    from gridkit.incidents.importer import import_incidents, load_mapping

    mapping = load_mapping(mapping_path)
    # Bytes read and staged of the file's.
    with output.progress_callback(say("cli.progress.incidents")) as progress:
        return _import(
            settings,
            "incidents-import",
            lambda session: import_incidents(session, path, mapping, encoding=encoding, progress=progress),
        )
