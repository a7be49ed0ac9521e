"""Row mode: the encrypted columns of a row share one data key (DB-ESDK structured encryption).

Each row is one DB-ESDK record: the encrypted columns are ``ENCRYPT_AND_SIGN`` attributes, the primary
key columns ``SIGN_ONLY`` attributes, and two extra columns hold the record header (suite, message id,
legend, EDKs, key commitment) and footer (HMAC per EDK). An encrypted column stores the DB-ESDK terminal:
a 2-byte type id, the AES-GCM ciphertext and a 16-byte tag, i.e. 18 bytes more than the plaintext.

What binds what:

* the table name: canonical path of every attribute (the AES-GCM AAD of each column and the footer
  HMAC) and the encryption context (``aws-kmsenvelope-table``, authenticated but not stored);
* the column name: canonical path, so a ciphertext moved to another column fails its tag;
* the primary key: a signed attribute, so a ciphertext (or a whole row's) moved to another row fails
  the footer check;
* NULLs: a NULL column is left out of the record, but the set of signed attributes is fixed by the
  header legend and covered by the footer, so turning a value into NULL (or back) is detected.

The context holds no per-row value, so a caching materials manager can serve a whole table with one
data key. Use it from the ORM (:mod:`kmsenvelope.sql.rows_orm`, wired automatically) or from Core with
:meth:`EncryptedColumns.encrypt_row` and :meth:`EncryptedColumns.decrypt_row`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from sqlalchemy import event
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import MappedColumn, mapped_column
from sqlalchemy.sql.schema import Column, Table
from sqlalchemy.types import LargeBinary, TypeDecorator

from ..errors import ConfigurationError, MalformedInputError, PolicyError
from ..materials.cmm import as_materials_manager
from ..materials.materials import RESERVED_CONTEXT_PREFIX
from ..materials.protocols import Keyring, MaterialsManager
from ..structured.decrypt import decrypt_record
from ..structured.encrypt import encrypt_record
from ..structured.model import BINARY_TYPE, FOOTER_FIELD, HEADER_FIELD, Action, Terminal
from ..suites import DbeSuite
from ..values import freeze_context
from . import codec
from .types import TABLE_KEY

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import Dialect

__all__ = ["EncryptedColumns", "RowValueType", "Sealed", "UnsealedValueError"]

_T = TypeVar("_T")

DEFAULT_SUITE = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384
"""Row mode's default: no ECDSA signature (smaller footer, faster); pass the ECDSA suite if readers must
not be able to forge rows."""

# DB-ESDK terminal type ids where the encoding is the DynamoDB one; our own kinds use 0x6Bxx ("k").
_DDB_TYPE_IDS = {codec.Kind.STR: b"\x00\x01", codec.Kind.BYTES: b"\xff\xff", codec.Kind.BOOL: b"\x00\x04"}


def _type_id(tagged: bytes) -> bytes:
    tag = tagged[0]
    for kind, type_id in _DDB_TYPE_IDS.items():
        if kind.value == tag:
            return type_id
    return bytes((0x6B, tag))


def _tag_of(type_id: bytes) -> int:
    for kind, known in _DDB_TYPE_IDS.items():
        if known == type_id:
            return kind.value
    if len(type_id) != 2 or type_id[0] != 0x6B:
        raise MalformedInputError(f"unknown terminal type id 0x{type_id.hex()}")
    return type_id[1]


def _terminal(kind: codec.Kind, value: Any) -> Terminal:
    tagged = codec.encode(kind, value)
    return Terminal(_type_id(tagged), tagged[1:])


class UnsealedValueError(PolicyError, StatementError):
    """A plaintext was bound to a row-mode column directly (bypassing :class:`EncryptedColumns`).

    A :class:`~kmsenvelope.errors.PolicyError`; also a ``StatementError`` only so that SQLAlchemy raises
    it as is rather than wrapped in an error listing the statement's (plaintext) parameters.
    """

    def __init__(self, message: str) -> None:
        StatementError.__init__(self, message, None, None, None, hide_parameters=True)

    def __str__(self) -> str:
        return str(self.args[0])


class Sealed(bytes):
    """Column bytes produced by row-mode encryption (the only values a row-mode column will bind)."""


class RowValueType(TypeDecorator[_T], Generic[_T]):
    """Type of one row-mode encrypted column; values are sealed by :class:`EncryptedColumns`."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, group: EncryptedColumns, value_type: Any) -> None:
        super().__init__()
        try:
            self._kind = codec.kind_of(value_type)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from None
        self.group = group
        self.value_type = value_type

    @property
    def kind(self) -> codec.Kind:
        return self._kind

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, Sealed):
            return value
        # A plaintext here means the row bypassed EncryptedColumns: refuse rather than store it.
        raise UnsealedValueError("row-mode columns are written by EncryptedColumns.encrypt_row or the ORM")

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        # Ciphertext until EncryptedColumns.decrypt_row (or the ORM load hook) opens the whole row.
        return None if value is None else Sealed(value)

    def __repr__(self) -> str:
        return f"RowValueType({self._kind.label})"


class _EnvelopeColumnType(TypeDecorator[bytes]):
    """Type of the header and footer columns; marks the table as row-encrypted by ``group``."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, group: EncryptedColumns, role: str) -> None:
        super().__init__()
        self.group = group
        self.role = role

    def _set_parent(self, parent: Any, outer: bool = False, **kw: Any) -> None:
        super()._set_parent(parent, outer, **kw)
        if isinstance(parent, Column) and self.role == HEADER_FIELD:
            event.listen(parent, "after_parent_attach", self.group._attach)


class EncryptedColumns:
    """Row-mode encryption for one table. Declare its columns through this object::

        rows = EncryptedColumns(keyring)

        class Patient(Base):
            __tablename__ = "patients"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = rows.mapped_column(str)
            dob: Mapped[date | None] = rows.mapped_column(date, nullable=True)
            enc_header: Mapped[bytes | None] = rows.mapped_header()
            enc_footer: Mapped[bytes | None] = rows.mapped_footer()

    ``source`` is a keyring or materials manager (DB-ESDK suites; a :class:`~kmsenvelope.CachingMaterials`
    reuses data keys across rows). ``context`` adds (stored) encryption context pairs. One instance
    serves one table. The primary key must be known before ``INSERT``: the ORM integration fetches the
    next value of a PostgreSQL serial/identity column itself; otherwise assign it in Python.
    """

    def __init__(
        self,
        source: Keyring | MaterialsManager,
        *,
        context: Mapping[str, str] | None = None,
        suite: DbeSuite = DEFAULT_SUITE,
    ) -> None:
        self._manager = as_materials_manager(source)
        if not isinstance(suite, DbeSuite):
            raise ConfigurationError("row mode needs a DB-ESDK suite (kmsenvelope.suites.DbeSuite)")
        frozen = freeze_context(context)
        for key in frozen:
            if key == TABLE_KEY or key.startswith(RESERVED_CONTEXT_PREFIX):
                raise ConfigurationError(f"encryption context key {key!r} is reserved")
        self._user_context = frozen
        self._suite = suite
        self._table: Table | None = None

    # -- declaring columns ---------------------------------------------------------------------

    def column(self, name: str, value_type: type[_T] | str, *, nullable: bool = False) -> Column[_T]:
        """A Core column encrypted in row mode."""
        return Column(name, RowValueType(self, value_type), nullable=nullable)

    def mapped_column(self, value_type: type[_T] | str, *, nullable: bool = False) -> MappedColumn[_T]:
        """A declarative column encrypted in row mode."""
        # active_history: changing one column re-encrypts the whole row, which needs the old ciphertexts.
        return mapped_column(RowValueType(self, value_type), nullable=nullable, active_history=True)

    def header_column(self, name: str = "aws_dbe_head") -> Column[bytes]:
        """The Core column holding each row's record header."""
        return Column(name, _EnvelopeColumnType(self, HEADER_FIELD), nullable=True)

    def footer_column(self, name: str = "aws_dbe_foot") -> Column[bytes]:
        """The Core column holding each row's record footer."""
        return Column(name, _EnvelopeColumnType(self, FOOTER_FIELD), nullable=True)

    def mapped_header(self) -> MappedColumn[bytes | None]:
        """Declarative form of :meth:`header_column`."""
        return mapped_column(_EnvelopeColumnType(self, HEADER_FIELD), nullable=True, active_history=True)

    def mapped_footer(self) -> MappedColumn[bytes | None]:
        """Declarative form of :meth:`footer_column`."""
        return mapped_column(_EnvelopeColumnType(self, FOOTER_FIELD), nullable=True, active_history=True)

    def _attach(self, column: Column[Any], table: Any) -> None:
        if not isinstance(table, Table):
            return
        if self._table is not None and self._table is not table:
            raise ConfigurationError("one EncryptedColumns instance serves one table")
        self._table = table

    # -- the table's layout ----------------------------------------------------------------------

    @property
    def table(self) -> Table:
        if self._table is None:
            raise ConfigurationError(
                "EncryptedColumns needs its header and footer columns in the table "
                "(header_column()/footer_column() or mapped_header()/mapped_footer())"
            )
        return self._table

    @property
    def suite(self) -> DbeSuite:
        return self._suite

    @property
    def materials_manager(self) -> MaterialsManager:
        return self._manager

    def encrypted_columns(self) -> list[Column[Any]]:
        """The row-mode encrypted columns of the table, in table order."""
        return [c for c in self.table.c if isinstance(c.type, RowValueType) and c.type.group is self]

    def _special(self, role: str) -> Column[Any]:
        for c in self.table.c:
            if isinstance(c.type, _EnvelopeColumnType) and c.type.group is self and c.type.role == role:
                return c
        raise ConfigurationError(f"the table has no {'header' if role == HEADER_FIELD else 'footer'} column")

    @property
    def header(self) -> Column[Any]:
        return self._special(HEADER_FIELD)

    @property
    def footer(self) -> Column[Any]:
        return self._special(FOOTER_FIELD)

    def primary_key(self) -> list[Column[Any]]:
        columns = list(self.table.primary_key.columns)
        if not columns:
            raise ConfigurationError("row mode needs a primary key (it binds ciphertexts to their row)")
        return columns

    # -- encrypt / decrypt -------------------------------------------------------------------------

    def _signed_key(self, row: Mapping[str, Any]) -> dict[str, Terminal]:
        out = {}
        for column in self.primary_key():
            value = row.get(column.key)
            if value is None:
                raise PolicyError(f"primary key column {column.name!r} must be known before encryption")
            try:
                out[column.name] = _terminal(codec.kind_of(type(value)), value)
            except TypeError:
                raise ConfigurationError(f"unsupported primary key type {type(value).__name__}") from None
        return out

    def _context(self) -> dict[str, str]:
        return {**self._user_context, TABLE_KEY: self.table.name}

    def encrypt_row(
        self, values: Mapping[str, Any], *, source: MaterialsManager | None = None
    ) -> dict[str, Any]:
        """Column values (by key) for one row: the encrypted columns, header and footer, ready to write.

        ``values`` must hold the primary key and every encrypted column's plaintext (missing = NULL);
        other keys are passed through unchanged.
        """
        record = self._signed_key(values)
        actions = dict.fromkeys(record, Action.SIGN_ONLY)
        columns = self.encrypted_columns()
        for column in columns:
            value = values.get(column.key)
            if value is not None:
                type_ = cast("RowValueType[Any]", column.type)
                try:
                    record[column.name] = _terminal(type_.kind, value)
                except codec.ValueTypeError as exc:
                    from .types import EncryptedValueError

                    raise EncryptedValueError(f"row-mode column {column.name!r}: {exc}") from None
                actions[column.name] = Action.ENCRYPT_AND_SIGN
        manager = source or self._manager
        encrypted = encrypt_record(
            self.table.name, record, actions, manager, self._suite, self._context(), {TABLE_KEY}
        ).record
        out = dict(values)
        for column in columns:
            encrypted_now = actions.get(column.name) is Action.ENCRYPT_AND_SIGN
            out[column.key] = Sealed(encrypted[column.name].value) if encrypted_now else None
        out[self.header.key] = Sealed(encrypted[HEADER_FIELD].value)
        out[self.footer.key] = Sealed(encrypted[FOOTER_FIELD].value)
        return out

    def decrypt_row(
        self, row: Mapping[Any, Any], *, source: MaterialsManager | None = None
    ) -> dict[str, Any]:
        """The plaintexts (by column key) of one row read as stored; raises if anything was tampered with.

        ``row`` maps column keys to stored values and must hold the primary key, header, footer and every
        encrypted column.
        """
        header, footer = row.get(self.header.key), row.get(self.footer.key)
        if header is None or footer is None:
            raise MalformedInputError(f"row of {self.table.name!r} has no encryption header or footer")
        signed = self._signed_key(row)
        columns = self.encrypted_columns()
        for column in columns:
            if column.key not in row:
                raise ConfigurationError(f"decrypting a row needs column {column.name!r}")
            stored = row[column.key]
            if stored is not None:
                signed[column.name] = Terminal(BINARY_TYPE, bytes(stored))
        result = decrypt_record(
            self.table.name, signed, bytes(header), bytes(footer), source or self._manager, self._context(),
            {TABLE_KEY},
        ).record
        out: dict[str, Any] = {}
        for column in columns:
            terminal = result.get(column.name)
            if terminal is None:
                out[column.key] = None
                continue
            type_ = cast("RowValueType[Any]", column.type)
            tagged = bytes((_tag_of(terminal.type_id),)) + terminal.value
            try:
                out[column.key] = codec.decode(type_.kind, tagged)
            except MalformedInputError as exc:
                raise MalformedInputError(f"row-mode column {column.name!r}: {exc}") from None
        return out

    def __repr__(self) -> str:
        table = self._table.name if self._table is not None else None
        return f"EncryptedColumns(table={table!r}, suite={self._suite.name}, source={self._manager!r})"


# The ORM integration registers itself on import.
from . import rows_orm as _rows_orm  # noqa: E402, F401
