"""pytest plugin (entry point ``pytest11: kmsenvelope``): the ``kmsenvelope_*`` fixtures.

* ``kmsenvelope_local_aws`` -- a local AWS (patched moto server) with no pending faults or recordings;
* ``kmsenvelope_local_aws_server`` -- the session-wide server behind it, never reset;
* ``kmsenvelope_postgres`` -- SQLAlchemy URL of a throwaway PostgreSQL for the session.

Every name carries the ``kmsenvelope_`` prefix: a bare ``postgres`` or ``local_aws`` fixture would
collide with other plugins and with users' own fixtures. A project that wants a short name defines an
alias in its ``conftest.py`` (see ``docs/testing.md``).

One moto server serves the whole test session (starting it costs about a second); each test gets it
with injected faults and request recordings cleared before and after. Importing this module imports
neither moto nor boto3.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .local import LocalAws

__all__ = ["kmsenvelope_local_aws", "kmsenvelope_local_aws_server", "kmsenvelope_postgres"]


@pytest.fixture(scope="session")
def kmsenvelope_local_aws_server() -> Iterator[LocalAws]:
    """The session-wide local AWS server behind ``kmsenvelope_local_aws`` (faults and recordings kept)."""
    from .local import local_aws as start_local_aws

    with start_local_aws() as aws:
        yield aws


@pytest.fixture
def kmsenvelope_local_aws(kmsenvelope_local_aws_server: LocalAws) -> Iterator[LocalAws]:
    """A local AWS endpoint (patched moto) with no pending faults or recorded requests."""
    aws = kmsenvelope_local_aws_server
    aws.reset()
    yield aws
    aws.reset()


@pytest.fixture(scope="session")
def kmsenvelope_postgres() -> Iterator[str]:
    """SQLAlchemy URL of a throwaway PostgreSQL for the session (or of ``KMSENVELOPE_TEST_DSN``)."""
    from .postgres import postgres as start_postgres

    with start_postgres() as dsn:
        yield dsn
