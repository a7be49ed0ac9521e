"""``EncryptedType``: one column value = one AWS Encryption SDK message.

The column holds exactly the bytes :meth:`kmsenvelope.Envelope.encrypt` produced, so any ESDK reader
(``aws-encryption-sdk`` in any language) can decrypt them with the same keys. The message's encryption
context binds the table and column names (``aws-kmsenvelope-table``, ``aws-kmsenvelope-column``) plus
the caller's ``context``; a ciphertext copied into another column or table fails to decrypt.

The names are learnt when the column is attached to its table (SQLAlchemy's ``after_parent_attach``
event), so one ``EncryptedType`` instance serves exactly one column; attaching the same instance to a
second column raises :class:`~kmsenvelope.errors.ConfigurationError`. Copies made by SQLAlchemy
(``Column._copy``: declarative mixins, ``Table.to_metadata``) are re-bound to their new column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from sqlalchemy import event
from sqlalchemy.exc import StatementError
from sqlalchemy.sql import operators
from sqlalchemy.sql.schema import Column, Table
from sqlalchemy.types import LargeBinary, TypeDecorator

from ..envelope import Envelope
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    KmsEnvelopeError,
    MalformedInputError,
    PolicyError,
)
from ..materials.materials import RESERVED_CONTEXT_PREFIX
from ..values import freeze_context
from . import codec

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import Dialect
    from sqlalchemy.sql.elements import ColumnElement
    from sqlalchemy.sql.operators import OperatorType
    from sqlalchemy.sql.type_api import TypeEngine

__all__ = ["COLUMN_KEY", "TABLE_KEY", "ColumnEncryptionError", "EncryptedType", "EncryptedValueError"]

TABLE_KEY = "aws-kmsenvelope-table"
"""Encryption context key binding a value to its table name."""
COLUMN_KEY = "aws-kmsenvelope-column"
"""Encryption context key binding a value to its column name."""

_T = TypeVar("_T")

# Comparisons that would compare ciphertexts: always wrong, since every encryption is randomized.
_REFUSED = {
    operators.ne, operators.lt, operators.le, operators.gt, operators.ge, operators.like_op,
    operators.ilike_op, operators.not_like_op, operators.not_ilike_op, operators.between_op,
    operators.not_in_op, operators.startswith_op, operators.endswith_op, operators.contains_op,
    operators.is_distinct_from, operators.is_not_distinct_from,
}


class EncryptedValueError(codec.ValueTypeError, StatementError):
    """A value bound to an encrypted column has the wrong Python type.

    It is a :class:`kmsenvelope.errors.MalformedInputError` (and ``TypeError``). It also derives from
    SQLAlchemy's ``StatementError`` only so that SQLAlchemy raises it as is instead of wrapping it in an
    error whose message would list the statement's parameters, which are plaintexts.
    """

    def __init__(self, message: str) -> None:
        StatementError.__init__(self, message, None, None, None, hide_parameters=True)

    def __str__(self) -> str:
        return str(self.args[0])


class ColumnEncryptionError(KmsEnvelopeError, StatementError):
    """Encrypting a bound value failed (no usable key, KMS unavailable, column not attached, ...).

    ``orig`` (and ``__cause__``) is the original :mod:`kmsenvelope.errors` exception. SQLAlchemy would
    otherwise wrap it in a ``StatementError`` whose message lists the parameters: the plaintexts.
    """

    def __init__(self, orig: KmsEnvelopeError) -> None:
        message = f"{type(orig).__name__}: {orig}"
        StatementError.__init__(self, message, None, None, orig, hide_parameters=True)

    def __str__(self) -> str:
        return str(self.args[0])


class _Binding:
    """Table and column an ``EncryptedType`` serves. Shared with SQLAlchemy's per-dialect copies."""

    __slots__ = ("column", "context", "owner")

    def __init__(self, owner: object, column: Column[Any] | None = None) -> None:
        self.owner = owner
        self.column = column
        self.context: Mapping[str, str] | None = None


class EncryptedType(TypeDecorator[_T], Generic[_T]):
    """A column whose values are encrypted client-side, each into one ESDK message (``BYTEA``).

    * ``value_type``: ``str``, ``bytes``, ``int``, ``float``, ``Decimal``, ``bool``, ``date``, ``datetime``,
      ``uuid.UUID``, or ``"json"`` / ``dict`` / ``list`` for JSON values. Binding a value of another type
      raises :class:`EncryptedValueError` (a :class:`~kmsenvelope.errors.MalformedInputError`).
    * ``envelope``: encrypts and decrypts; during a key migration give it a keyring that can decrypt
      both the old and the new key (see :func:`kmsenvelope.sql.reencrypt`).
    * ``context``: extra encryption context pairs (not secret: stored in every value's header).
    * ``encrypt_null``: store ``None`` as an encrypted, authenticated null instead of SQL ``NULL``; a
      plain SQL ``NULL`` then fails to read (it could have been written by anyone).

    Equality queries (``Model.col == value``, ``.in_(...)``) work when the table has a beacon column
    for this column (:func:`kmsenvelope.sql.beacon_column`); other comparisons raise ``PolicyError``.
    """

    impl = LargeBinary
    cache_ok = True

    @overload
    def __init__(
        self: EncryptedType[_T], value_type: type[_T], envelope: Envelope, *,
        context: Mapping[str, str] | None = None, encrypt_null: bool = False,
    ) -> None: ...

    @overload
    def __init__(
        self: EncryptedType[Any], value_type: Literal["json"], envelope: Envelope, *,
        context: Mapping[str, str] | None = None, encrypt_null: bool = False,
    ) -> None: ...

    def __init__(
        self, value_type: Any, envelope: Envelope, *,
        context: Mapping[str, str] | None = None, encrypt_null: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(envelope, Envelope):
            raise ConfigurationError("EncryptedType needs a kmsenvelope.Envelope")
        try:
            self._kind = codec.kind_of(value_type)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from None
        frozen = freeze_context(context)
        for key in frozen:
            if key in (TABLE_KEY, COLUMN_KEY) or key.startswith(RESERVED_CONTEXT_PREFIX):
                raise ConfigurationError(f"encryption context key {key!r} is reserved")
        # Public attributes named like the __init__ arguments form SQLAlchemy's cache key.
        self.value_type = value_type
        self.envelope = envelope
        self.context = frozen
        self.encrypt_null = bool(encrypt_null)
        self._binding = _Binding(self)

    # -- binding to the column --------------------------------------------------------------

    def _set_parent(self, parent: Any, outer: bool = False, **kw: Any) -> None:
        super()._set_parent(parent, outer, **kw)
        if not isinstance(parent, Column):
            return
        binding = self._binding
        if binding.column is parent:
            return
        if binding.column is not None:
            if binding.owner is self:
                raise ConfigurationError(
                    f"this EncryptedType is already used by column {binding.column.name!r}: "
                    "create one EncryptedType per column (its encryption context names the column)"
                )
            # A copy made by Column._copy(): it serves the new column.
            binding = self._binding = _Binding(self)
        binding.column = parent
        event.listen(parent, "after_parent_attach", self._attached)
        table = getattr(parent, "table", None)
        if isinstance(table, Table):
            self._attached(parent, table)

    def _attached(self, column: Column[Any], table: Any) -> None:
        if not isinstance(table, Table) or self._binding.column is not column:
            return
        context = dict(self.context)
        context[TABLE_KEY] = table.name
        context[COLUMN_KEY] = column.name
        bound = self._binding.context
        if bound is not None and bound != context:
            raise ConfigurationError("an encrypted column cannot move to another table")
        self._binding.context = freeze_context(context)

    @property
    def kind(self) -> codec.Kind:
        """The value kind (and tag) this column stores."""
        return self._kind

    @property
    def bound_column(self) -> Column[Any] | None:
        """The column this type is attached to, once known."""
        return self._binding.column

    @property
    def encryption_context(self) -> Mapping[str, str]:
        """The full encryption context of this column's values (user pairs + table + column)."""
        context = self._binding.context
        if context is None:
            raise ConfigurationError(
                "EncryptedType is not attached to a table column yet, so its encryption context is unknown"
            )
        return context

    # -- values -----------------------------------------------------------------------------

    def encrypt_value(self, value: Any, envelope: Envelope | None = None) -> bytes | None:
        """The column bytes for ``value`` (``None`` stays ``None`` unless ``encrypt_null``)."""
        if value is None and not self.encrypt_null:
            return None
        try:
            plaintext = codec.encode(self._kind, value)
        except codec.ValueTypeError as exc:
            raise EncryptedValueError(f"{self._describe()}: {exc}") from None
        return (envelope or self.envelope).encrypt(plaintext, self.encryption_context)

    def decrypt_value(self, data: bytes | memoryview | None, envelope: Envelope | None = None) -> Any:
        """The value stored in column bytes ``data``; raises if they do not authenticate."""
        if data is None:
            if self.encrypt_null:
                raise AuthenticationError(f"{self._describe()} holds an unencrypted NULL")
            return None
        plaintext = (envelope or self.envelope).decrypt(bytes(data), self.encryption_context)
        try:
            return codec.decode(self._kind, plaintext)
        except MalformedInputError as exc:
            raise MalformedInputError(f"{self._describe()}: {exc}") from None

    def _describe(self) -> str:
        column = self._binding.column
        table = getattr(column, "table", None)
        name = f"{getattr(table, 'name', '?')}.{column.name}" if column is not None else "unattached"
        return f"encrypted column {name}"

    # -- TypeDecorator hooks ----------------------------------------------------------------

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import LONGBLOB

            return dialect.type_descriptor(LONGBLOB())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        try:
            return self.encrypt_value(value)
        except EncryptedValueError:
            raise
        except KmsEnvelopeError as exc:
            raise ColumnEncryptionError(exc) from exc

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return self.decrypt_value(value)

    def process_literal_param(self, value: Any, dialect: Dialect) -> str:
        raise PolicyError("encrypted values cannot be rendered as SQL literals")

    @property
    def python_type(self) -> type[Any]:
        special: dict[codec.Kind, type[Any]] = {
            codec.Kind.JSON: object, codec.Kind.JSON_OBJECT: dict, codec.Kind.JSON_ARRAY: list
        }
        return special.get(self._kind) or self.value_type

    def __repr__(self) -> str:
        return f"EncryptedType({self._kind.label}, encrypt_null={self.encrypt_null})"

    class comparator_factory(TypeDecorator.Comparator[Any]):
        """Equality through the column's beacon; every other comparison of ciphertexts is refused."""

        def operate(self, op: OperatorType, *other: Any, **kwargs: Any) -> ColumnElement[Any]:
            expr = self.expr
            type_ = expr.type
            if not isinstance(type_, EncryptedType):
                raise TypeError("the encrypted comparator runs on EncryptedType columns only")
            if op in (operators.eq, operators.in_op):
                if op is operators.eq and other and other[0] is None and not type_.encrypt_null:
                    return super().operate(op, *other, **kwargs)  # IS NULL
                from .beacons import beacon_criterion

                return beacon_criterion(expr, op, other[0])
            if op in _REFUSED:
                raise PolicyError(
                    f"cannot compare encrypted column {getattr(expr, 'name', '?')!r} with {op.__name__}: "
                    "values are encrypted client-side (only == and in_() through a beacon are possible)"
                )
            return super().operate(op, *other, **kwargs)
