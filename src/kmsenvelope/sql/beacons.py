"""Beacon columns: equality search over an ``EncryptedType`` column through a truncated HMAC.

A beacon column sits next to the encrypted column it indexes (its *source*) and holds the DB-ESDK
standard beacon of the source's plaintext (:mod:`kmsenvelope.sql.beacon_keys`), e.g.
``users.ssn_beacon = "3f1a"`` next to ``users.ssn``. It is indexed, and ``User.ssn == value`` or
``User.ssn.in_(values)`` compile to ``ssn_beacon = <beacon of value>``: no plaintext reaches the
database. Several plaintexts share a beacon (that is the privacy), so matches include false positives;
:mod:`kmsenvelope.sql.exact` drops them after decryption.

Beacons are filled in automatically: by an ORM attribute event when the source attribute is set, and
by a column default on a Core ``INSERT``. A Core ``UPDATE`` that changes the source must set the beacon
too: ``.values(with_beacons(table, ssn=value))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import bindparam, event
from sqlalchemy.orm import MappedColumn, Mapper, mapped_column
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.schema import Column, Table
from sqlalchemy.types import String, TypeDecorator

from ..errors import ConfigurationError, PolicyError
from ..structured.beacon_hash import beacon_chars, check_beacon_length
from . import codec
from .beacon_keys import BeaconKeys
from .types import EncryptedType, EncryptedValueError

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import Dialect, ExecutionContext
    from sqlalchemy.sql.elements import ColumnElement
    from sqlalchemy.sql.operators import OperatorType

__all__ = ["BeaconType", "beacon_column", "beacon_criterion", "mapped_beacon", "with_beacons"]

# Kinds whose payload bytes are equal exactly when the values are equal. (Decimal("1.0") == Decimal("1.00")
# but their text differs; floats have -0.0 and NaN; datetimes compare across time zones.)
_SEARCHABLE = {codec.Kind.STR, codec.Kind.BYTES, codec.Kind.INT, codec.Kind.UUID, codec.Kind.DATE}
_MAX_CHARS = 16  # a 63-bit beacon


class BeaconType(TypeDecorator[str]):
    """The type of a beacon column: a short hex string computed from the source column's plaintext."""

    impl = String(_MAX_CHARS)
    cache_ok = True

    def __init__(self, source: str, keys: BeaconKeys, *, length: int, beacon_name: str | None = None) -> None:
        super().__init__()
        if not isinstance(source, str) or not source:
            raise ConfigurationError("a beacon needs the name of its source column")
        if not isinstance(keys, BeaconKeys):
            raise ConfigurationError("keys must be a kmsenvelope.sql.BeaconKeys")
        self.source = source
        self.keys = keys
        self.length = check_beacon_length(length)
        self.beacon_name = beacon_name or source

    def compute(self, source_type: EncryptedType[Any], value: Any) -> str | None:
        """The beacon of ``value`` (``None`` for ``None``)."""
        if value is None:
            return None
        if source_type.kind not in _SEARCHABLE:
            raise ConfigurationError(f"beacons are not supported for {source_type.kind.label} columns")
        try:
            data = codec.payload(source_type.kind, value)
        except codec.ValueTypeError as exc:
            raise EncryptedValueError(f"beacon {self.beacon_name!r}: {exc}") from None
        return self.keys.hash(self.beacon_name, self.length, data)

    def __repr__(self) -> str:
        return f"BeaconType(source={self.source!r}, length={self.length}, beacon_name={self.beacon_name!r})"


class _BeaconQuery(TypeDecorator[str]):
    """Type of a query parameter holding a *plaintext*; it is bound as that plaintext's beacon.

    Keeping the plaintext in the statement lets :mod:`kmsenvelope.sql.exact` drop false positives.
    """

    impl = String(_MAX_CHARS)
    cache_ok = True

    def __init__(self, beacon: BeaconType, source: EncryptedType[Any]) -> None:
        super().__init__()
        self.beacon = beacon
        self.source = source

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return self.beacon.compute(self.source, value)



def find_beacon(selectable: Any, source_name: str) -> Column[Any] | None:
    """The beacon column of ``source_name`` in a table (or alias of one), if it has one."""
    columns = getattr(selectable, "c", None)
    if columns is None:
        return None
    for column in columns:
        type_ = column.type
        if isinstance(type_, BeaconType) and type_.source == source_name:
            return cast("Column[Any]", column)
    return None


def _is_sql(value: Any) -> bool:
    # Columns, ORM attributes and other SQL expressions: their values are ciphertexts or unknown here.
    return isinstance(value, ClauseElement) or hasattr(value, "__clause_element__")


def beacon_criterion(expr: ColumnElement[Any], op: OperatorType, other: Any) -> ColumnElement[bool]:
    """``expr == other`` or ``expr.in_(other)`` rewritten onto ``expr``'s beacon column."""
    source_type = expr.type
    if not isinstance(source_type, EncryptedType):
        raise TypeError("beacon_criterion needs an EncryptedType column")
    name = getattr(expr, "name", None)
    beacon = find_beacon(getattr(expr, "table", None), name) if isinstance(name, str) else None
    if beacon is None:
        raise PolicyError(
            f"encrypted column {name!r} has no beacon column, so it cannot be compared: values are "
            "encrypted with random data keys (add kmsenvelope.sql.beacon_column for equality search)"
        )
    beacon_type = beacon.type
    if not isinstance(beacon_type, BeaconType):
        raise TypeError("find_beacon returned a column that is not a BeaconType")
    if source_type.kind not in _SEARCHABLE:
        raise ConfigurationError(f"beacons are not supported for {source_type.kind.label} columns")
    query_type = _BeaconQuery(beacon_type, source_type)
    if op is operators.eq:
        if _is_sql(other):
            raise PolicyError("an encrypted column can only be compared with Python values")
        return beacon == bindparam(None, other, type_=query_type)
    if _is_sql(other) or isinstance(other, (str, bytes)) or not isinstance(other, Iterable):
        raise PolicyError("in_() on an encrypted column needs a list of Python values")
    values = list(other)
    if any(_is_sql(value) for value in values):
        raise PolicyError("in_() on an encrypted column needs a list of Python values")
    return beacon.in_(bindparam(None, values, type_=query_type, expanding=True))


def _source_type(table: Any, beacon: BeaconType) -> EncryptedType[Any]:
    source = table.c.get(beacon.source) if table is not None else None
    if source is None or not isinstance(source.type, EncryptedType):
        raise ConfigurationError(f"beacon source {beacon.source!r} is not an EncryptedType column")
    return source.type


def _insert_default(context: ExecutionContext) -> str | None:
    """Column default of a beacon: the beacon of the source value in the same INSERT row."""
    column = context.current_column  # type: ignore[attr-defined]
    beacon = column.type
    if not isinstance(beacon, BeaconType):
        raise TypeError("the beacon default runs on BeaconType columns only")
    source_type = _source_type(column.table, beacon)
    source = source_type.bound_column
    if source is None:
        raise ConfigurationError(f"beacon column for {beacon.source!r} has no bound source column")
    params = context.get_current_parameters()  # type: ignore[attr-defined]
    return beacon.compute(source_type, params.get(source.key))


def beacon_column(
    source: str, keys: BeaconKeys, *, length: int, beacon_name: str | None = None, name: str | None = None,
    index: bool = True,
) -> Column[str]:
    """A beacon column for the encrypted column named ``source`` (Core tables, or declarative classes
    without a ``Mapped[]`` annotation; see :func:`mapped_beacon`).

    ``length`` is the beacon length in bits (1..63): shorter = more false positives and more privacy
    (see ``docs/sql.md``). ``beacon_name`` (default: ``source``) keys the HMAC; equal names and keys give
    equal beacons in every table. ``name`` is the column name (default ``<source>_beacon``).
    """
    beacon = BeaconType(source, keys, length=length, beacon_name=beacon_name)
    return Column(name or f"{source}_beacon", beacon, index=index, nullable=True, default=_insert_default)


def mapped_beacon(
    source: str, keys: BeaconKeys, *, length: int, beacon_name: str | None = None, index: bool = True,
) -> MappedColumn[str | None]:
    """:func:`beacon_column` for declarative classes.

    ``ssn_beacon: Mapped[str | None] = mapped_beacon("ssn", keys, length=16)``
    """
    beacon = BeaconType(source, keys, length=length, beacon_name=beacon_name)
    return mapped_column(beacon, index=index, nullable=True, insert_default=_insert_default)


def with_beacons(table: Any, values: Mapping[str, Any] | None = None, /, **kw: Any) -> dict[str, Any]:
    """``values`` plus the beacon of every source column among them, for Core ``UPDATE``/``INSERT``.

    ``table`` is a ``Table`` or a mapped class; keys are column keys.
    """
    out = dict(values or {}, **kw)
    table = getattr(table, "__table__", table)
    if not isinstance(table, Table):
        raise ConfigurationError("with_beacons needs a Table or a mapped class")
    for column in table.c:
        beacon = column.type
        if isinstance(beacon, BeaconType) and column.key not in out:
            source = table.c.get(beacon.source)
            if source is not None and source.key in out:
                out[column.key] = beacon.compute(_source_type(table, beacon), out[source.key])
    return out


@event.listens_for(Mapper, "mapper_configured")
def _wire_orm_beacons(mapper: Mapper[Any], class_: type) -> None:
    """Keep each beacon attribute in step with its source attribute on mapped instances."""
    for prop in mapper.column_attrs:
        for column in prop.columns:
            beacon = column.type
            table = getattr(column, "table", None)
            if not isinstance(beacon, BeaconType) or not isinstance(table, Table):
                continue
            source_type = _source_type(table, beacon)
            source_column = table.c[beacon.source]
            source_prop = mapper.get_property_by_column(source_column)
            event.listen(
                getattr(class_, source_prop.key), "set", _setter(prop.key, beacon, source_type)
            )


def _setter(key: str, beacon: BeaconType, source_type: EncryptedType[Any]) -> Any:
    def on_set(target: Any, value: Any, oldvalue: Any, initiator: Any) -> None:
        setattr(target, key, beacon.compute(source_type, value))

    return on_set


def beacon_width(length: int) -> int:
    """Characters a beacon of ``length`` bits occupies (for sizing columns in migrations)."""
    return beacon_chars(check_beacon_length(length))
