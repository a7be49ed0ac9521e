"""``kmsenvelope.sql.reencrypt(..., engine=...)``: the table's primary-key space in ranges, one task each.

The ranges split the first primary-key column at quantiles (rows sharing a first-column value stay in
one range), so every row belongs to exactly one task. Each task runs the ordinary sequential
re-encryption (keyset pages, ``FOR UPDATE`` batches) restricted to its range, through its own
SQLAlchemy engine. What travels to a task is :class:`RangeTask`: a database URL or a zero-argument
callable returning an engine (pass a callable that reads the password on the worker when the URL
should not carry it), the ``Table`` with its ``EncryptedType`` columns (their keyrings pickle as
``docs/bulk.md`` describes), and the range bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, func, select
from sqlalchemy.engine import Engine

from ..errors import ConfigurationError

__all__ = ["RangeTask", "key_ranges", "reencrypt_range", "run_ranges"]


@dataclass(frozen=True)
class RangeTask:
    """One key range of a parallel re-encryption."""

    database: Any  # a URL string or a zero-argument callable returning an Engine
    table: Table
    low: Any  # inclusive; None: from the start
    high: Any  # exclusive; None: to the end
    options: dict[str, Any] = field(default_factory=dict)


def _engine_of(database: Any) -> Engine:
    if isinstance(database, Engine):
        return database
    if isinstance(database, str):
        from sqlalchemy import create_engine

        return create_engine(database)
    if callable(database):
        return database()  # type: ignore[no-any-return]
    raise ConfigurationError(
        "database must be an Engine, a URL or a zero-argument callable returning an Engine"
    )


def reencrypt_range(task: RangeTask) -> Any:
    """Re-encrypt the rows of one range (a plain function of one picklable argument)."""
    from ..sql.migrate import reencrypt

    engine = _engine_of(task.database)
    column = next(iter(task.table.primary_key.columns))
    bounds = []
    if task.low is not None:
        bounds.append(column >= task.low)
    if task.high is not None:
        bounds.append(column < task.high)
    options = dict(task.options)
    where = options.pop("where", None)
    if where is not None:
        bounds.append(where)
    try:
        return reencrypt(
            engine, task.table, where=and_(*bounds) if bounds else None, progress=False, **options
        )
    finally:
        if not isinstance(task.database, Engine):
            engine.dispose()


def key_ranges(engine: Engine, table: Table, parts: int, where: Any = None) -> list[tuple[Any, Any]]:
    """Up to ``parts`` ranges [low, high) of the first primary-key column, of about equal row counts."""
    column = next(iter(table.primary_key.columns))
    with engine.connect() as conn:
        count_query = select(func.count()).select_from(table)
        total = conn.execute(count_query.where(where) if where is not None else count_query).scalar_one()
        cuts: list[Any] = []
        for index in range(1, parts):
            query = select(column).order_by(column).offset(total * index // parts).limit(1)
            value = conn.execute(query.where(where) if where is not None else query).scalar()
            if value is not None and (not cuts or value != cuts[-1]):
                cuts.append(value)
    edges = [None, *cuts, None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def run_ranges(
    compute: object,
    engine: Engine,
    database: Any,
    table: Table,
    parts: int,
    options: dict[str, Any],
    combine: Callable[[list[Any]], Any],
) -> Any:
    """Split, run one task per range on ``compute`` (see :mod:`kmsenvelope.bulk.engine`), combine."""
    from .clients import check_picklable
    from .engine import check_engine, run_tasks

    check_engine(compute)
    ranges = key_ranges(engine, table, parts, options.get("where"))
    tasks = [RangeTask(database, table, low, high, options) for low, high in ranges]
    if compute is not None:
        check_picklable("the table (its EncryptedType columns' keyrings) and options", tasks[0])
    return combine(run_tasks(compute, reencrypt_range, tasks))
