"""The one message catalogue: both languages complete, and every error raised names a catalogue code."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

from gridkit import errors, messages

ROOT = Path(__file__).resolve().parent.parent
ERROR_CLASSES = {
    name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, errors.GridkitError)
}


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_languages_have_the_same_keys_and_fields():
    zh, en = messages.catalogue("zh-CN"), messages.catalogue("en")
    assert sorted(set(zh) ^ set(en)) == []
    different = [key for key in zh if _fields(zh[key]) != _fields(en[key])]
    assert different == []


def test_chinese_messages_are_chinese():
    zh = messages.catalogue("zh-CN")
    english_only = [
        key for key, text in zh.items() if key.startswith("error.") and not re.search(r"[\u4e00-\u9fff]", text)
    ]
    assert english_only == []


def _raises(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in ERROR_CLASSES:
                yield node.lineno, node.exc


def test_every_error_raised_names_a_catalogue_code():
    known = messages.catalogue("en")
    bad = []
    for path in sorted([*ROOT.joinpath("gridkit").rglob("*.py"), *ROOT.joinpath("web").rglob("*.py")]):
        for lineno, call in _raises(path):
            where = f"{path.relative_to(ROOT)}:{lineno}"
            if not call.args:
                bad.append(f"{where}: no code")
                continue
            first = call.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                if f"error.{first.value}" not in known:
                    bad.append(f"{where}: {first.value!r} is not in the catalogue")
            elif isinstance(first, ast.JoinedStr):
                # A computed code (f"whois.{kind}_not_found") is fine; a computed sentence is not.
                literal = "".join(v.value for v in first.values if isinstance(v, ast.Constant))
                prefix = first.values[0].value if isinstance(first.values[0], ast.Constant) else ""
                if " " in literal or not any(key.startswith(f"error.{prefix}") for key in known):
                    bad.append(f"{where}: an f-string sentence instead of a code")
    assert bad == []


def test_an_error_renders_in_both_languages():
    exc = errors.ValidationError("time.not_iso", field="--at", value="tomorrow")
    assert "ISO-8601" in exc.render("en")
    assert "时间" in exc.render("zh-CN")
    assert exc.to_dict("en")["code"] == "time.not_iso"
