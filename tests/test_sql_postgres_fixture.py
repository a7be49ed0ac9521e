"""The throwaway PostgreSQL helper behind the ``postgres`` fixture."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import kmsenvelope.testing
from kmsenvelope.testing import postgres as postgres_server
from kmsenvelope.testing.postgres import DSN_ENV


def test_environment_dsn_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DSN_ENV, "postgresql+psycopg://someone@db.example:5432/app")
    with postgres_server() as dsn:
        assert dsn == "postgresql+psycopg://someone@db.example:5432/app"


def test_fixture_server_is_shared_and_usable(postgres: str) -> None:
    assert kmsenvelope.testing.postgres is postgres_server
    if os.environ.get(DSN_ENV):
        pytest.skip("this run uses an external database (KMSENVELOPE_TEST_DSN), not a throwaway server")
    with postgres_server() as nested:
        assert nested == postgres  # one server per process, reference counted
    engine = create_engine(postgres)
    with engine.connect() as conn:
        port = conn.execute(text("SHOW port")).scalar_one()
        data = Path(conn.execute(text("SHOW data_directory")).scalar_one())
        assert conn.execute(text("SHOW fsync")).scalar_one() == "off"
        assert conn.execute(text("SELECT inet_server_addr()::text")).scalar_one().startswith("127.0.0.1")
    engine.dispose()
    assert postgres.endswith(f":{port}/postgres")
    assert data.name == "data" and data.parent.name.startswith("kmsenvelope-pg-")
    assert data.exists()  # still running: the nested block did not stop the shared server
