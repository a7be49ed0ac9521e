"""Online re-encryption of a table: key rotation, a move to a multi-Region key, first encryption.

``reencrypt(engine, Model, new_source=...)`` walks the table in primary-key order (keyset pagination),
one transaction per batch with the batch's rows locked (``SELECT ... FOR UPDATE``), and rewrites every
encrypted value that is not already under ``new_source``. Whether a value is done is read from its
header alone (no key is used): the suite and the set of encrypted data keys -- provider id and key name,
ignoring per-message parts such as IVs -- must equal what ``new_source`` writes. So a rerun after a
crash skips finished rows and never encrypts a value twice, and rows written meanwhile by an application
already using the new key are left alone.

Readers keep working throughout when their keyring can decrypt both old and new values, e.g. an
``Envelope(MultiKeyring(generator=new, children=[old]))``, which is also what the encrypted columns
should be configured with during the migration (values are decrypted with the column's own envelope,
or ``decrypt_with``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, or_, select, type_coerce, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import LargeBinary

from ..bulk.targets import edk_fingerprint
from ..envelope import Envelope
from ..errors import ConfigurationError, KmsEnvelopeError
from ..materials.cmm import as_materials_manager
from ..materials.materials import EncryptedDataKey
from ..materials.protocols import Keyring, MaterialsManager
from ..message.header import DecryptLimits, parse_header
from ..structured.encrypt import encrypt_record
from ..structured.header import parse_header as parse_record_header
from ..structured.model import Action, Terminal
from .rows import EncryptedColumns, _EnvelopeColumnType
from .types import TABLE_KEY, EncryptedType

__all__ = ["ReencryptStats", "edk_fingerprint", "reencrypt"]


@dataclass
class ReencryptStats:
    """What a run did. ``values`` counts column values written; ``rows`` rows touched."""

    scanned: int = 0
    rows: int = 0
    values: int = 0
    skipped: int = 0
    batches: int = 0
    last_key: tuple[Any, ...] | None = field(default=None)


def _fingerprints(edks: Iterable[EncryptedDataKey], intermediate: bool) -> frozenset[tuple[Any, ...]]:
    return frozenset(edk_fingerprint(edk, intermediate) for edk in edks)


class _Column:
    """How to check, decrypt and re-encrypt one EncryptedType column."""

    def __init__(self, column: Any, new: Envelope, reader: Envelope | None, source: Any | None) -> None:
        self.column = column
        self.type: EncryptedType[Any] = column.type
        self.new = new
        self.readers = [reader or self.type.envelope, new]
        self.source = source  # plaintext column to encrypt from, for first-time encryption
        probe = new.encrypt(b"", self.type.encryption_context)
        header = parse_header(probe, DecryptLimits())
        self.suite = header.suite
        self.target = _fingerprints(header.encrypted_data_keys, False)

    def done(self, raw: bytes) -> bool:
        try:
            header = parse_header(raw, DecryptLimits())
        except KmsEnvelopeError:
            return False
        return header.suite is self.suite and _fingerprints(header.encrypted_data_keys, False) == self.target

    def rewrite(self, raw: bytes | None, plaintext: Any) -> bytes | None:
        """New column bytes, or None when the value is already under the new key (or absent)."""
        if raw is None:
            if self.source is None or plaintext is None:
                return None
            return self.type.encrypt_value(plaintext, self.new)
        if self.done(raw):
            return None
        error: KmsEnvelopeError | None = None
        for reader in self.readers:
            try:
                value = self.type.decrypt_value(raw, reader)
                break
            except KmsEnvelopeError as exc:
                error = exc
        else:
            if error is None:
                raise ConfigurationError("no reader key configured to decrypt existing values")
            raise error
        return self.type.encrypt_value(value, self.new)


class _Rows:
    """How to check and re-encrypt a row-mode group."""

    def __init__(
        self, group: EncryptedColumns, new: MaterialsManager, reader: MaterialsManager | None
    ) -> None:
        self.group = group
        self.new = new
        self.readers = [reader or group.materials_manager, new]
        self.columns = [*group.encrypted_columns(), group.header, group.footer]
        # A throwaway record encrypted under the new source shows which EDKs finished rows carry.
        probe = encrypt_record(
            group.table.name,
            {"probe": Terminal(b"\x00\x01", b"")},
            {"probe": Action.SIGN_ONLY},
            new,
            group.suite,
            group._context(),
            {TABLE_KEY},
        )
        self.target = _fingerprints(probe.header.encrypted_data_keys, True)

    def done(self, header: bytes | None) -> bool:
        if header is None:
            return False
        try:
            parsed = parse_record_header(bytes(header))
        except KmsEnvelopeError:
            return False
        fingerprints = _fingerprints(parsed.encrypted_data_keys, True)
        return parsed.suite is self.group.suite and fingerprints == self.target

    def rewrite(self, row: dict[str, Any]) -> dict[str, Any] | None:
        if self.done(row[self.group.header.key]):
            return None
        error: KmsEnvelopeError | None = None
        for reader in self.readers:
            try:
                plain = self.group.decrypt_row(row, source=reader)
                break
            except KmsEnvelopeError as exc:
                error = exc
        else:
            if error is None:
                raise ConfigurationError("no reader key configured to decrypt existing values")
            raise error
        sealed = self.group.encrypt_row({**row, **plain}, source=self.new)
        return {c.key: sealed[c.key] for c in self.columns}


def _as_envelope(source: Any, like: Envelope) -> Envelope:
    if isinstance(source, Envelope):
        return source
    return Envelope(
        source, suite=like.suite, frame_length=like.frame_length, commitment_policy=like.commitment_policy
    )


def _after(pk: Sequence[Any], last: tuple[Any, ...]) -> ColumnElement[bool]:
    # (a, b) > (x, y) spelled out, so it works on every database.
    terms = []
    for i, column in enumerate(pk):
        terms.append(and_(*[pk[j] == last[j] for j in range(i)], column > last[i]))
    return or_(*terms)


def reencrypt(
    bind: Engine,
    table_or_model: Any,
    /,
    *,
    new_source: Keyring | MaterialsManager | Envelope,
    batch_size: int = 500,
    where: ColumnElement[bool] | None = None,
    columns: Iterable[str] | None = None,
    plaintext_columns: dict[str, str] | None = None,
    decrypt_with: Keyring | MaterialsManager | Envelope | None = None,
    on_batch: Callable[[ReencryptStats], None] | None = None,
    progress: bool | None = None,
    engine: object = None,
    ranges: int = 0,
    database: Any = None,
) -> ReencryptStats:
    """Re-encrypt every encrypted value of a table under ``new_source``; returns what was done.

    * ``new_source``: keyring, materials manager (e.g. a :class:`~kmsenvelope.CachingMaterials`, to
      wrap one data key per many values) or ``Envelope``. ``EncryptedType`` columns keep their
      envelope's suite and frame length unless an ``Envelope`` is given.
    * ``columns``: only these ``EncryptedType`` column keys (default: all, plus row mode if present).
    * ``plaintext_columns``: ``{encrypted_key: plaintext_key}`` to encrypt a plaintext column for the
      first time (expand/contract migration: the encrypted column is filled where it is NULL).
    * ``decrypt_with``: reader for old values (default: each column's own envelope / materials).
    * ``where``: restrict to matching rows. ``on_batch``: called after each committed batch.
    * ``progress``: a rich progress bar (``cli`` extra); by default when stderr is a terminal.
    * ``engine`` (keyword only; the first, positional-only argument is the SQLAlchemy engine): where
      the work runs: ``None`` (here, one pass in key order), ``"processes"`` (every local core) or a
      ``dask.distributed.Client``. The primary-key space is split into ``ranges`` ranges (0: four per
      concurrent task) run as parallel tasks (:mod:`kmsenvelope.bulk.sql_ranges`); tasks connect with
      ``database`` (a URL or a zero-argument callable returning an engine; default: the engine's URL,
      password included). ``on_batch`` then runs inside each task.
    """
    if engine is not None:
        return _reencrypt_in_ranges(
            bind, table_or_model, engine, ranges, database,
            dict(new_source=new_source, batch_size=batch_size, where=where, columns=columns,
                 plaintext_columns=plaintext_columns, decrypt_with=decrypt_with, on_batch=on_batch),
        )  # fmt: skip
    table = getattr(table_or_model, "__table__", table_or_model)
    if not isinstance(table, Table):
        raise ConfigurationError("reencrypt needs a Table or a mapped class")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError("batch_size must be a positive int")
    pk = list(table.primary_key.columns)
    if not pk:
        raise ConfigurationError("reencrypt pages through the primary key; the table has none")
    wanted = set(columns) if columns is not None else None
    sources = dict(plaintext_columns or {})
    handlers: list[_Column] = []
    for column in table.c:
        if isinstance(column.type, EncryptedType) and (wanted is None or column.key in wanted):
            reader = None if decrypt_with is None else _as_envelope(decrypt_with, column.type.envelope)
            new = _as_envelope(new_source, column.type.envelope)
            source = table.c[sources.pop(column.key)] if column.key in sources else None
            handlers.append(_Column(column, new, reader, source))
    if sources:
        raise ConfigurationError(f"plaintext_columns names no encrypted column: {sorted(sources)}")
    groups = {c.type.group for c in table.c if isinstance(c.type, _EnvelopeColumnType)}
    row_handlers = []
    if wanted is None:
        manager = new_source.materials_manager if isinstance(new_source, Envelope) else new_source
        reader_mm = None
        if decrypt_with is not None:
            reader_mm = as_materials_manager(
                decrypt_with.materials_manager if isinstance(decrypt_with, Envelope) else decrypt_with
            )
        for group in groups:
            row_handlers.append(_Rows(group, as_materials_manager(manager), reader_mm))
    if not handlers and not row_handlers:
        raise ConfigurationError(f"table {table.name!r} has no encrypted columns to re-encrypt")

    selected: list[Any] = list(pk)
    for handler in handlers:
        selected.append(type_coerce(handler.column, LargeBinary).label(f"raw_{handler.column.key}"))
        if handler.source is not None:
            selected.append(handler.source.label(f"plain_{handler.column.key}"))
    for row_handler in row_handlers:
        selected.extend(row_handler.columns)

    stats = ReencryptStats()
    bar = _progress_bar(bind, table, where, progress)
    try:
        while True:
            with bind.begin() as conn:
                stmt = select(*selected).order_by(*pk).limit(batch_size)
                if where is not None:
                    stmt = stmt.where(where)
                if stats.last_key is not None:
                    stmt = stmt.where(_after(pk, stats.last_key))
                if conn.dialect.name != "sqlite":
                    stmt = stmt.with_for_update(of=table)
                batch = conn.execute(stmt).all()
                if not batch:
                    break
                updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
                for row in batch:
                    mapping = row._mapping
                    changes: dict[str, Any] = {}
                    for handler in handlers:
                        key = handler.column.key
                        plain = mapping[f"plain_{key}"] if handler.source is not None else None
                        new_bytes = handler.rewrite(mapping[f"raw_{key}"], plain)
                        if new_bytes is not None:
                            changes[key] = new_bytes
                    for row_handler in row_handlers:
                        needed = [*row_handler.group.primary_key(), *row_handler.columns]
                        rewritten = row_handler.rewrite({c.key: mapping[c.key] for c in needed})
                        if rewritten is not None:
                            changes.update(rewritten)
                    stats.scanned += 1
                    if changes:
                        stats.rows += 1
                        stats.values += len(changes)
                        params = {f"k_{c.key}": mapping[c.key] for c in pk}
                        params.update({f"v_{k}": None if v is None else bytes(v) for k, v in changes.items()})
                        updates.setdefault(tuple(sorted(changes)), []).append(params)
                    else:
                        stats.skipped += 1
                for keys, params_list in updates.items():
                    statement = (
                        update(table)
                        .where(*[c == bindparam(f"k_{c.key}") for c in pk])
                        .values({table.c[k]: bindparam(f"v_{k}", type_=LargeBinary) for k in keys})
                    )
                    conn.execute(statement, params_list)
                stats.last_key = tuple(batch[-1]._mapping[c.key] for c in pk)
            stats.batches += 1
            if bar is not None:
                bar.advance(len(batch))
            if on_batch is not None:
                on_batch(stats)
    finally:
        if bar is not None:
            bar.close()
    return stats


def _reencrypt_in_ranges(
    engine: Engine, table_or_model: Any, compute: object, ranges: int, database: Any, options: dict[str, Any]
) -> ReencryptStats:
    from ..bulk.engine import parallelism
    from ..bulk.sql_ranges import run_ranges

    table = getattr(table_or_model, "__table__", table_or_model)
    if not isinstance(table, Table) or not table.primary_key.columns:
        raise ConfigurationError("reencrypt needs a Table or a mapped class with a primary key")
    if not isinstance(ranges, int) or ranges < 0:
        raise ConfigurationError("ranges must be a non-negative int")
    parts = ranges or 4 * parallelism(compute)
    target = database if database is not None else engine.url.render_as_string(hide_password=False)

    def combine(results: list[ReencryptStats]) -> ReencryptStats:
        total = ReencryptStats()
        for part in results:
            total.scanned += part.scanned
            total.rows += part.rows
            total.values += part.values
            total.skipped += part.skipped
            total.batches += part.batches
        return total

    result: ReencryptStats = run_ranges(compute, engine, target, table, parts, options, combine)
    return result


class _Bar:
    def __init__(self, total: int, name: str) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=False)
        self._task = self._progress.add_task(f"re-encrypting {name}", total=total)
        self._progress.start()

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def close(self) -> None:
        self._progress.stop()


def _progress_bar(engine: Engine, table: Table, where: Any, progress: bool | None) -> _Bar | None:
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    try:
        import rich  # noqa: F401 - the cli extra
    except ImportError:
        return None
    with engine.connect() as conn:
        count = select(func.count()).select_from(table)
        total = conn.execute(count.where(where) if where is not None else count).scalar_one()
    return _Bar(int(total), table.name)
