"""Shared test configuration: the conformance vector location and the --run-slow flag."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS = Path(os.environ.get("KMSENVELOPE_VECTORS", REPO_ROOT.parent / "shared" / "vectors"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="run long soak and fuzz tests")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running soak or fuzz runs, enabled with --run-slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="long run: enable with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def vectors_dir(name: str) -> Path:
    """The shared vector directory; missing vectors fail the test (never skip) so CI cannot pass blind."""
    path = VECTORS / name
    if not path.is_dir():
        pytest.fail(f"conformance vectors not found at {path}; they live in ../shared/vectors")
    return path
