"""Dropping beacon false positives after decryption.

``select(User).where(User.ssn == "123-45-6789")`` matches every row whose *beacon* matches, which can
include rows holding another SSN. Once rows are decrypted, those can be dropped:

* ORM: ``install_exact_match(Session)`` (or a ``sessionmaker`` / one session) registers a
  ``do_orm_execute`` hook that filters every ORM ``SELECT``.
* Core: ``exact_rows(statement, rows)`` filters rows already fetched.

Only beacon comparisons that are top-level ``AND`` terms of the ``WHERE`` clause are checked (inside an
``OR`` a failed comparison does not exclude the row). The compared column must be in the result, either
through its entity or as a selected column; otherwise the ORM hook leaves the rows as they are.
``LIMIT`` applies before filtering, so a limited query can return fewer rows than the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Result
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList, Grouping
from sqlalchemy.sql.schema import Table

from ..errors import ConfigurationError
from .beacons import BeaconType, _BeaconQuery

__all__ = ["exact_rows", "install_exact_match"]

_Check = tuple[Any, list[Any]]  # (source column or alias column, accepted plaintexts)


def _conjuncts(clause: Any) -> Iterator[Any]:
    if clause is None:
        return
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        for element in clause.clauses:
            yield from _conjuncts(element)
    elif isinstance(clause, Grouping):
        yield from _conjuncts(clause.element)
    else:
        yield clause


def beacon_checks(statement: Any) -> list[_Check]:
    """The (encrypted column, accepted values) pairs implied by a statement's beacon comparisons."""
    checks: list[_Check] = []
    for term in _conjuncts(getattr(statement, "whereclause", None)):
        if not isinstance(term, BinaryExpression) or term.operator not in (operators.eq, operators.in_op):
            continue
        param = term.right
        if not isinstance(param, BindParameter) or not isinstance(param.type, _BeaconQuery):
            continue
        beacon = term.left
        if not isinstance(beacon.type, BeaconType):
            continue
        source = beacon.table.c[beacon.type.source]
        values = list(param.value or ()) if param.expanding else [param.value]
        checks.append((source, values))
    return checks


def _base_table(selectable: Any) -> Any:
    while not isinstance(selectable, Table) and getattr(selectable, "element", None) is not None:
        selectable = selectable.element
    return selectable


def _same_column(candidate: Any, source: Any) -> bool:
    if getattr(candidate, "name", None) != source.name:
        return False
    table = getattr(candidate, "table", None)
    return table is source.table or (
        isinstance(source.table, Table) and _base_table(table) is source.table
    )


def _orm_getter(descriptions: Sequence[dict[str, Any]], source: Any) -> Callable[[Sequence[Any]], Any] | None:
    fallback: Callable[[Sequence[Any]], Any] | None = None
    for index, description in enumerate(descriptions):
        entity = description.get("entity")
        expr = description.get("expr")
        if entity is not None and expr is entity:
            info = inspect(entity)
            mapper = info.mapper
            selectable = info.selectable
            for prop in mapper.column_attrs:
                column = prop.columns[0]
                if column.name != source.name or _base_table(source.table) is not _base_table(column.table):
                    continue
                key = prop.key

                def getter(row: Sequence[Any], index: int = index, key: str = key) -> Any:
                    return getattr(row[index], key)

                plain = isinstance(source.table, Table) and not description["aliased"]
                if source.table is selectable or plain:
                    return getter
                fallback = fallback or getter
        elif _same_column(getattr(expr, "expression", expr), source):
            return lambda row, index=index: row[index]  # type: ignore[misc]
    return fallback


def _filter_orm(state: ORMExecuteState) -> Result[Any] | None:
    if not state.is_select or state.is_column_load or state.is_relationship_load:
        return None
    checks = beacon_checks(state.statement)
    if not checks:
        return None
    descriptions = getattr(state.statement, "column_descriptions", None)
    if not descriptions:
        return None
    tests = []
    for source, values in checks:
        getter = _orm_getter(descriptions, source)
        if getter is not None:
            tests.append((getter, values))
    if not tests:
        return None
    frozen = state.invoke_statement().freeze()
    # A single-entity result is frozen as bare objects rather than 1-tuples.
    scalars = bool(getattr(frozen, "_source_supports_scalars", False))
    frozen.data = [
        row for row in frozen.data
        if all(get((row,) if scalars else row) in values for get, values in tests)
    ]
    return frozen()


def install_exact_match(target: Any = Session) -> None:
    """Drop beacon false positives from ORM ``SELECT`` results of ``target``.

    ``target`` is the ``Session`` class (all sessions, the default), a ``sessionmaker`` or a session.
    Installing twice has no further effect.
    """
    if not event.contains(target, "do_orm_execute", _filter_orm):
        event.listen(target, "do_orm_execute", _filter_orm)


def exact_rows(statement: Any, rows: Iterable[Any]) -> list[Any]:
    """The rows (``Row`` objects) of a Core result that really match ``statement``'s beacon comparisons.

    The encrypted columns compared in the ``WHERE`` clause must be among the selected columns.
    """
    checks = beacon_checks(statement)
    out = []
    for row in rows:
        mapping = row._mapping
        keep = True
        for source, values in checks:
            try:
                value = mapping[source]
            except KeyError:
                raise ConfigurationError(
                    f"select column {source.name!r} to check beacon matches after decryption"
                ) from None
            if value not in values:
                keep = False
                break
        if keep:
            out.append(row)
    return out
