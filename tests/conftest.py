"""Shared test configuration: the conformance vectors, the --run-slow flag, short fixture names.

The vectors ship in ``tests/vectors`` (see its README): no test reads anything outside the repository,
so there is deliberately no environment variable to point them elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from kmsenvelope.testing import LocalAws

REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS = REPO_ROOT / "tests" / "vectors"
# How many cases each vector set holds; a loader that finds another number fails at collection.
ESDK_VECTOR_COUNT = 99
DBESDK_VECTOR_COUNT = 33

T = TypeVar("T")

pytest_plugins = ("pytester",)

# Test modules get pytest's assertion rewriting; these helper modules get it too, so their checks still
# run under `python -O` (which .ci/run uses for the vector tests: -O strips the asserts in src only).
pytest.register_assert_rewrite(
    "tests._branch_keys", "tests._dbesdk", "tests._dynamodb_env", "tests._esdk", "tests.fuzz"
)


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
    """A vector directory inside the repository; missing vectors fail (never skip), so CI cannot pass blind.

    Also called at collection time (by the loaders behind ``parametrize``): there the failure stops the
    run with a collection error instead of leaving a parametrized test with nothing to collect.
    """
    path = VECTORS / name
    if not path.is_dir():
        pytest.fail(f"conformance vectors not found at {path}; they ship in tests/vectors", pytrace=False)
    return path


def expect_cases(cases: Sequence[T], expected: int, what: str) -> Sequence[T]:
    """``cases`` if there are exactly ``expected`` of them, else fail (at collection, when used there)."""
    if len(cases) != expected:
        pytest.fail(f"expected {expected} {what}, found {len(cases)}", pytrace=False)
    return cases


# Short names for this suite's own tests; the plugin's public names carry the ``kmsenvelope_`` prefix so
# that they cannot collide with other plugins in users' projects.


@pytest.fixture
def local_aws(kmsenvelope_local_aws: LocalAws) -> LocalAws:
    """Alias of the plugin's ``kmsenvelope_local_aws``."""
    return kmsenvelope_local_aws


@pytest.fixture(scope="session")
def postgres(kmsenvelope_postgres: str) -> str:
    """Alias of the plugin's ``kmsenvelope_postgres``."""
    return kmsenvelope_postgres
