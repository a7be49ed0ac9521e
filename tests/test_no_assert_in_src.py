"""``assert`` is not control flow: ``python -O`` removes it, so no check in ``src/`` may be an ``assert``."""

from __future__ import annotations

import ast

from .conftest import REPO_ROOT

SRC = REPO_ROOT / "src" / "kmsenvelope"


def _asserts(source: str, name: str) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(source, name)) if isinstance(node, ast.Assert)]


def test_the_scan_finds_asserts() -> None:
    assert _asserts("def f(x):\n    assert x is not None\n    return x\n", "sample") == [2]
    assert _asserts('"""Example:\n\n    assert 1 == 1\n"""\n', "docstring") == []  # prose is not code


def test_no_assert_statement_in_src() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50
    found = [
        f"{path.relative_to(REPO_ROOT)}:{line}"
        for path in files
        for line in _asserts(path.read_text("utf-8"), str(path))
    ]
    assert found == [], "replace these with explicit checks raising a kmsenvelope.errors class: " + ", ".join(
        found
    )
