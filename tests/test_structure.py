"""The layout rules of the house: no module over 600 lines, no function over 80 (README, "Layout").

Lines are counted in the files as formatted by `ruff format`; a function's length is its
`end_lineno - lineno + 1` in the AST (decorators not counted, docstring and comments counted).
Files and functions owned by engineers who are splitting them on their own branch are listed in
the allow-lists below, each with the branch; the lead removes an entry when that branch is merged.
An entry that is no longer over the limit fails too, so the lists only ever shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("gridkit", "web", "scripts", "tests")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

# Modules over MAX_MODULE_LINES, by path from the repository root.
MODULES_BEING_SPLIT: set[str] = set()

# Functions over MAX_FUNCTION_LINES, as "path:qualified name".
FUNCTIONS_BEING_SPLIT: set[str] = set()


def python_files() -> list[Path]:
    """Return every .py file under FOLDERS, sorted."""
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def relative(path: Path) -> str:
    """Return the path from the repository root, with forward slashes."""
    return path.relative_to(ROOT).as_posix()


def functions(tree: ast.AST, prefix: str = ""):
    """Yield (qualified name, node) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def long_modules() -> dict[str, int]:
    """Return {path: lines} of the modules over MAX_MODULE_LINES."""
    found = {}
    for path in python_files():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found[relative(path)] = lines
    return found


def long_functions() -> dict[str, int]:
    """Return {"path:qualified name": lines} of the functions over MAX_FUNCTION_LINES."""
    found = {}
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, node in functions(tree):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                found[f"{relative(path)}:{name}"] = lines
    return found


def test_the_folders_hold_python_files():
    assert len(python_files()) > 100, f"expected the source tree under {ROOT}"


def test_no_module_is_over_600_lines():
    found = long_modules()
    over = {path: n for path, n in found.items() if path not in MODULES_BEING_SPLIT}
    assert not over, "modules over {} lines; split them by job:\n{}".format(
        MAX_MODULE_LINES, "\n".join(f"  {path}: {n} lines" for path, n in sorted(over.items()))
    )


def test_no_function_is_over_80_lines():
    found = long_functions()
    over = {name: n for name, n in found.items() if name not in FUNCTIONS_BEING_SPLIT}
    assert not over, "functions over {} lines; split them into named steps:\n{}".format(
        MAX_FUNCTION_LINES, "\n".join(f"  {name}: {n} lines" for name, n in sorted(over.items()))
    )


@pytest.mark.parametrize(
    "allowed, found, limit",
    [
        (MODULES_BEING_SPLIT, long_modules, MAX_MODULE_LINES),
        (FUNCTIONS_BEING_SPLIT, long_functions, MAX_FUNCTION_LINES),
    ],
    ids=["modules", "functions"],
)
def test_the_allow_lists_name_only_what_is_still_too_long(allowed, found, limit):
    stale = sorted(allowed - set(found()))
    assert not stale, f"no longer over {limit} lines (or gone): remove from the allow-list in {__file__}: {stale}"
