"""The runnable examples in examples/ run offline, exit 0 and print their closing ``OK`` line.

Each example starts its own local AWS (and PostgreSQL, for the Aurora one) in a subprocess, with the
interpreter running the tests. The expected names are listed here so that a missing example fails
rather than silently running nothing; any further script in examples/ is run too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

EXAMPLES_DIR = REPO_ROOT / "examples"
EXPECTED = (
    "quickstart.py",
    "dynamodb_global_table.py",
    "aurora_global_columns.py",
    "kms_rsa_offline_encrypt.py",
    "rotate_keys.py",
    "secrets_in_env.py",
)
ALL = sorted({*EXPECTED, *(path.name for path in EXAMPLES_DIR.glob("*.py"))})
# Each example takes 1-4 s on an idle machine; the limit only stops a hung one.
TIMEOUT_SECONDS = 120
MARKER = "OK"
# The public API: what the docs tell users to import. Examples must not reach into internal modules.
PUBLIC_MODULES = {
    "kmsenvelope",
    "kmsenvelope.errors",
    "kmsenvelope.aws",
    "kmsenvelope.dynamodb",
    "kmsenvelope.sql",
    "kmsenvelope.testing",
}


def _path(name: str) -> Path:
    path = EXAMPLES_DIR / name
    assert path.is_file(), f"example {name} is missing from {EXAMPLES_DIR}"
    return path


@pytest.mark.parametrize("name", ALL)
def test_example_runs(name: str) -> None:
    path = _path(name)
    start = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, str(path)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{name} did not finish within {TIMEOUT_SECONDS} s; output so far:\n{exc.stdout!r}")
    elapsed = time.perf_counter() - start
    output = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, f"{name} exited with {result.returncode} after {elapsed:.1f} s\n{output}"
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert lines and lines[-1] == MARKER, f"{name} did not print {MARKER!r} last\n{output}"
    assert len(lines) >= 3, f"{name} should show what happened, not only {MARKER!r}\n{output}"


@pytest.mark.parametrize("name", ALL)
def test_example_uses_public_api_and_says_how_to_run(name: str) -> None:
    path = _path(name)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    ours = {module for module in imported if module.split(".")[0] == "kmsenvelope"}
    assert ours <= PUBLIC_MODULES, f"{name} imports internal modules: {sorted(ours - PUBLIC_MODULES)}"
    docstring = ast.get_docstring(tree) or ""
    assert f".venv/bin/python examples/{name}" in docstring, f"{name}: the docstring should say how to run it"
