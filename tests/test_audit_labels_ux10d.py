"""The audit log shows actions by their catalogue labels in the reader's language (ux10d), the code kept in a
small type beside it and the filter's values; every action the code records has a label in both languages."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

from factories_web import commit, make_web_city, sign_in

from gridkit import audit
from gridkit.messages import LANGUAGES, catalogue
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
# The functions whose argument at this position (0-based) is an audit action.
RECORDERS = {"record": 2}


def _resolve(node: ast.expr, module: ast.Module, where: str) -> list[str]:
    """Return the action codes an argument can be: a literal, audit's (or the module's) constant, both branches of
    `a if c else b`; a parameter of its function is resolved at that function's calls (see _actions_in)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _resolve(node.body, module, where) + _resolve(node.orelse, module, where)
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    for stmt in module.body:
        if isinstance(stmt, ast.Assign) and any(getattr(t, "id", None) == name for t in stmt.targets):
            return _resolve(stmt.value, module, where)
    assert name is not None and isinstance(getattr(audit, name, None), str), f"{where}: action {ast.unparse(node)}?"
    return [getattr(audit, name)]


def _actions_in(path: Path) -> list[tuple[str, str]]:
    module = ast.parse(path.read_text(encoding="utf-8"))
    recorders = dict(RECORDERS)
    # A helper handing its parameter on as the action (web.admin._link_and_record) is a recorder too.
    for func in ast.walk(module):
        if not isinstance(func, ast.FunctionDef):
            continue
        params = [a.arg for a in func.args.args]
        for call in ast.walk(func):
            if isinstance(call, ast.Call) and _name(call) in RECORDERS and len(call.args) > RECORDERS[_name(call)]:
                arg = call.args[RECORDERS[_name(call)]]
                if isinstance(arg, ast.Name) and arg.id in params and func.name not in RECORDERS:
                    recorders[func.name] = params.index(arg.id)
    found = []
    for call in ast.walk(module):
        if isinstance(call, ast.Call) and _name(call) in recorders and len(call.args) > recorders[_name(call)]:
            arg = call.args[recorders[_name(call)]]
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if isinstance(arg, ast.Name) and _name(call) in RECORDERS and _is_param(module, call, arg.id):
                continue  # handed on: resolved at the helper's calls
            found += [(code, where) for code in _resolve(arg, module, where)]
    return found


def _name(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)


def _is_param(module: ast.Module, call: ast.Call, name: str) -> bool:
    return any(
        isinstance(f, ast.FunctionDef) and name in [a.arg for a in f.args.args] and call in list(ast.walk(f))
        for f in ast.walk(module)
    )


def _recorded_actions() -> list[tuple[str, str]]:
    paths = [*sorted((ROOT / "gridkit").rglob("*.py")), *sorted((ROOT / "web").rglob("*.py"))]
    return [found for path in paths if "record(" in path.read_text(encoding="utf-8") for found in _actions_in(path)]


def test_every_action_the_code_records_is_known_and_labelled_in_both_languages():
    recorded = _recorded_actions()
    codes = {code for code, _ in recorded}
    # The collector sees literal, constant and handed-on actions alike (web.admin's forms, exports, restores).
    assert {"personal_data.read", "user.add", "user.role", "user.active", "user.stopped", "audit.archived"} <= codes
    assert {"personal_data.erased", "database.restored", "user.password_reset"} <= codes
    unknown = sorted(f"{where}: {code}" for code, where in recorded if code not in audit.ACTIONS)
    assert unknown == [], "add these to gridkit.audit.ACTIONS and label them"
    for lang in LANGUAGES:
        missing = [code for code in audit.ACTIONS if f"audit.action.{code}" not in catalogue(lang)]
        assert missing == [], f"{lang}: no label for {missing}"


def test_labels_follow_the_language_and_an_unknown_code_shows_as_it_is():
    assert audit.action_label(audit.PERSONAL_DATA_READ, "zh-CN") == "读取个人信息"
    assert audit.action_label(audit.PERSONAL_DATA_READ, "en") == "Personal data read"
    assert audit.action_label("export.residents", "en") == "export.residents"  # a row of an older release


def test_the_audit_log_page_shows_labels_with_the_code_in_a_tooltip_and_the_filter(fresh_settings):
    def fill(session):
        make_web_city(session)
        audit.record(session, "web:analyst1", audit.PERSONAL_DATA_READ, object_type="resident", object_id=1)
        audit.record(session, "cli:old", "export.residents", object_type="layer")

    commit(fresh_settings, fill)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    client = app.test_client()
    sign_in(client, "admin1")
    for lang, label in (("zh-CN", "读取个人信息"), ("en", "Personal data read")):
        page = html.unescape(client.get(f"/admin?lang={lang}").get_data(as_text=True))
        table = page[page.index('id="gk-audit"') :]
        cell = re.search(r'data-action="personal_data.read">(.*?)</td>', table, re.S).group(1)
        # The label, then the code in small type (what the filter takes).
        assert re.fullmatch(
            rf'\s*<a href="[^"]*action=personal_data.read#audit">{label}</a>\s*'
            r'<code class="audit-code" translate="no">personal_data.read</code>',
            cell,
        ), cell
        assert 'translate="no">export.residents</a>' in table  # unknown: the code, as it is, once
        assert f'<option value="personal_data.read">{label}</option>' in page
    # Filtering by the code still works, the chosen one selected.
    page = html.unescape(client.get("/admin?lang=en&action=personal_data.read").get_data(as_text=True))
    table = page[page.index('id="gk-audit"') :]
    assert "Personal data read" in table and "export.residents</a>" not in table
    assert '<option value="personal_data.read" selected>' in page
