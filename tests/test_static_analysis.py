"""The code base stays `ruff` and `mypy --strict` clean (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_clean() -> None:
    result = _run("ruff", "check", "src", "tests", "benchmarks", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_is_light() -> None:
    """`import kmsenvelope` must not pull in boto3, SQLAlchemy, rich, click or moto."""
    code = (
        "import sys, kmsenvelope; "
        "names = ('boto3', 'botocore', 'sqlalchemy', 'rich', 'click', 'moto'); "
        "heavy = [m for m in names if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
