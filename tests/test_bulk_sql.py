"""kmsenvelope.sql.reencrypt with a Dask engine: key ranges as parallel tasks, on the PostgreSQL fixture."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the sql extra")
distributed = pytest.importorskip("distributed", reason="Dask distributed is in the test extra")

from sqlalchemy import (  # noqa: E402
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    type_coerce,
)
from sqlalchemy.engine import Engine  # noqa: E402

from kmsenvelope import Envelope, MultiKeyring, RawAesKeyring  # noqa: E402
from kmsenvelope.sql import EncryptedType, reencrypt  # noqa: E402

from ._bulk_env import start_dask  # noqa: E402

OLD = RawAesKeyring("bulk-sql", "old-key", bytes(range(32)))
NEW = RawAesKeyring("bulk-sql", "new-key", bytes(range(100, 132)))
ROWS = 10_000


@pytest.fixture(scope="module")
def engine(postgres: str) -> Iterator[Engine]:
    eng = create_engine(postgres)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    cluster, client = start_dask()
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _table(name: str, envelope: Envelope) -> Table:
    return Table(name, MetaData(), Column("id", Integer, primary_key=True),
                 Column("ssn", EncryptedType(str, envelope)), Column("note", String))  # fmt: skip


def test_reencrypt_10000_rows_on_dask(engine: Engine, dask_client: Any) -> None:
    name = f"bulk_{uuid.uuid4().hex[:8]}"
    before = _table(name, Envelope(OLD))
    before.metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(before), [{"id": i, "ssn": f"ssn-{i}", "note": "n"} for i in range(1, ROWS + 1)]
            )
        during = _table(name, Envelope(MultiKeyring(generator=NEW, children=[OLD])))
        with distributed.get_task_stream(client=dask_client) as stream:
            stats = reencrypt(engine, during, new_source=NEW, batch_size=500, engine=dask_client, ranges=6)
        assert (stats.scanned, stats.rows, stats.values, stats.skipped) == (ROWS, ROWS, ROWS, 0)
        assert len(stream.data) == 6 and len({task["worker"] for task in stream.data}) == 2
        only_new = Envelope(NEW)
        column = during.c.ssn.type
        with engine.connect() as conn:
            rows = conn.execute(select(during.c.id, type_coerce(during.c.ssn, LargeBinary))).all()
        assert len(rows) == ROWS
        for row_id, raw in rows:
            assert column.decrypt_value(raw, only_new) == f"ssn-{row_id}"
        again = reencrypt(engine, during, new_source=NEW, engine=dask_client)
        assert (again.scanned, again.rows, again.skipped) == (ROWS, 0, ROWS)
    finally:
        before.metadata.drop_all(engine)


def test_ranges_cover_every_row_once(engine: Engine) -> None:
    from kmsenvelope.bulk.sql_ranges import key_ranges

    name = f"bulk_{uuid.uuid4().hex[:8]}"
    table = _table(name, Envelope(OLD))
    table.metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), [{"id": i * 3, "ssn": "x", "note": "n"} for i in range(1, 101)])
        ranges = key_ranges(engine, table, 7)
        assert len(ranges) == 7 and ranges[0][0] is None and ranges[-1][1] is None
        ids = [i * 3 for i in range(1, 101)]
        for row_id in ids:
            inside = [
                r for r in ranges if (r[0] is None or row_id >= r[0]) and (r[1] is None or row_id < r[1])
            ]
            assert len(inside) == 1
    finally:
        table.metadata.drop_all(engine)
