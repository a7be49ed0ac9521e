"""ORM integration of row mode: mapped instances hold plaintexts, the database holds the record.

For every mapper whose table has an :class:`~kmsenvelope.sql.EncryptedColumns` header column:

* ``before_insert`` / ``before_update``: the row is (re-)encrypted when an encrypted column or the
  primary key changed, and the attributes are set to the sealed values the ``INSERT``/``UPDATE`` writes;
* ``after_insert`` / ``after_update``: the plaintexts are put back as the committed values;
* ``load`` / ``refresh``: the row is verified and decrypted, and the plaintexts become committed values.

A PostgreSQL serial or identity primary key is fetched with ``nextval`` before the ``INSERT``, since
the record binds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, select, text
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.schema import Column, Sequence

from ..errors import PolicyError
from .rows import EncryptedColumns, RowValueType, Sealed, _EnvelopeColumnType

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__: list[str] = []

_STASH = "_kmsenvelope_row_plaintexts"


def _next_primary_key(connection: Connection, column: Column[Any]) -> Any:
    default = column.default
    if isinstance(default, Sequence):
        return connection.execute(select(default.next_value())).scalar_one()
    if default is not None and getattr(default, "is_scalar", False):
        return default.arg  # type: ignore[attr-defined]
    if default is not None and getattr(default, "is_callable", False):
        return default.arg(None)  # type: ignore[attr-defined]
    if connection.dialect.name == "postgresql" and column.autoincrement in (True, "auto"):
        table = connection.dialect.identifier_preparer.format_table(column.table)
        value = connection.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, :c))"), {"t": table, "c": column.name}
        ).scalar_one()
        if value is not None:
            return value
    raise PolicyError(
        f"row mode binds the primary key, so {column.table.name}.{column.name} must be known before INSERT: "
        "assign it in Python (or use a PostgreSQL serial/identity column or a Sequence)"
    )


class _Wiring:
    """The attribute names of one mapper's row-mode columns and the event handlers using them."""

    def __init__(self, mapper: Mapper[Any], group: EncryptedColumns) -> None:
        self.group = group

        def key(column: Column[Any]) -> str:
            return mapper.get_property_by_column(column).key

        self.encrypted = {c.key: key(c) for c in group.encrypted_columns()}
        self.primary = {c.key: key(c) for c in group.primary_key()}
        self.pk_columns = {c.key: c for c in group.primary_key()}
        self.header = key(group.header)
        self.footer = key(group.footer)

    def install(self, mapper: Mapper[Any]) -> None:
        event.listen(mapper, "before_insert", self.before_insert)
        event.listen(mapper, "before_update", self.before_update)
        event.listen(mapper, "after_insert", self.after_write)
        event.listen(mapper, "after_update", self.after_write)
        event.listen(mapper, "load", self.on_load)
        event.listen(mapper, "refresh", self.on_refresh)

    # -- writes ------------------------------------------------------------------------------

    def _seal(self, target: Any) -> None:
        values: dict[str, Any] = {}
        for column_key, attr in self.primary.items():
            values[column_key] = getattr(target, attr)
        plaintexts = {}
        for column_key, attr in self.encrypted.items():
            value = getattr(target, attr)
            if isinstance(value, Sealed):
                raise PolicyError(f"attribute {attr!r} holds ciphertext: the row was never decrypted")
            values[column_key] = plaintexts[attr] = value
        sealed = self.group.encrypt_row(values)
        target.__dict__[_STASH] = plaintexts
        for column_key, attr in self.encrypted.items():
            setattr(target, attr, sealed[column_key])
        setattr(target, self.header, sealed[self.group.header.key])
        setattr(target, self.footer, sealed[self.group.footer.key])

    def before_insert(self, mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        for column_key, attr in self.primary.items():
            if getattr(target, attr) is None:
                setattr(target, attr, _next_primary_key(connection, self.pk_columns[column_key]))
        self._seal(target)

    def before_update(self, mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        state = inspect(target)
        watched = [*self.encrypted.values(), *self.primary.values()]
        if any(state.attrs[attr].history.has_changes() for attr in watched):
            self._seal(target)

    def after_write(self, mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        for attr, value in target.__dict__.pop(_STASH, {}).items():
            set_committed_value(target, attr, value)

    # -- reads -------------------------------------------------------------------------------

    def on_load(self, target: Any, context: Any) -> None:
        self._open(target, context)

    def on_refresh(self, target: Any, context: Any, attrs: Any) -> None:
        if attrs is None or not {*self.encrypted.values(), self.header, self.footer}.isdisjoint(attrs):
            self._open(target, context)

    def _open(self, target: Any, context: Any) -> None:
        state = inspect(target)
        data = state.dict
        sealed = any(isinstance(data.get(attr), Sealed) for attr in self.encrypted.values())
        if not sealed and not isinstance(data.get(self.header), Sealed):
            return
        row: dict[str, Any] = {}
        complete = True
        for column_key, attr in [*self.primary.items(), *self.encrypted.items(),
                                 (self.group.header.key, self.header), (self.group.footer.key, self.footer)]:
            if attr not in data or attr in state.committed_state:
                complete = False
                break
            value = data[attr]
            if attr in self.encrypted.values() and value is not None and not isinstance(value, Sealed):
                complete = False
                break
            row[column_key] = value
        if not complete:
            # Some ciphertexts are not loaded (deferred, expired or modified): read the record as stored.
            row = self._fetch(context.session, state.identity)
        plaintexts = self.group.decrypt_row(row)
        for column_key, attr in self.encrypted.items():
            if attr in data and attr not in state.committed_state:
                set_committed_value(target, attr, plaintexts[column_key])

    def _fetch(self, session: Any, identity: Any) -> dict[str, Any]:
        group = self.group
        columns = [*group.primary_key(), *group.encrypted_columns(), group.header, group.footer]
        stmt = select(*columns)
        for column, value in zip(group.primary_key(), identity, strict=True):
            stmt = stmt.where(column == value)
        return dict(session.connection().execute(stmt).one()._mapping)


@event.listens_for(Mapper, "mapper_configured")
def _wire_row_mode(mapper: Mapper[Any], class_: type) -> None:
    groups = []
    for prop in mapper.column_attrs:
        for column in prop.columns:
            type_ = column.type
            if isinstance(type_, (_EnvelopeColumnType, RowValueType)) and type_.group not in groups:
                groups.append(type_.group)
    for group in groups:
        # _Wiring raises ConfigurationError when the table lacks the group's header or footer column.
        _Wiring(mapper, group).install(mapper)
