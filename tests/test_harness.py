"""Tests and benchmarks share harness/ (gunicorn, nginx, SMTP server, samples, settings) and
never import each other, so either can change without breaking the other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, as written."""
    tree = ast.parse(path.read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return modules | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


@pytest.mark.parametrize(
    ("folder", "other"),
    [("tests", "benchmarks"), ("benchmarks", "tests"), ("harness", "tests"), ("harness", "benchmarks")],
)
def test_no_import_across(folder, other):
    crossing = {
        path.relative_to(PROJECT).as_posix(): sorted(
            module for module in imported_modules(path) if module.split(".")[0] == other
        )
        for path in (PROJECT / folder).rglob("*.py")
    }
    assert {path: modules for path, modules in crossing.items() if modules} == {}
