"""Online re-encryption on a real PostgreSQL: crash and resume, idempotence, key operation counts."""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import (
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
from sqlalchemy.engine import Engine

from kmsenvelope import (
    CachingMaterials,
    Envelope,
    HierarchicalKeyring,
    MultiKeyring,
    RawAesKeyring,
    StaticBranchKeyStore,
)
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from kmsenvelope.sql import EncryptedColumns, EncryptedType, ReencryptStats, reencrypt
from kmsenvelope.sql.migrate import edk_fingerprint
from kmsenvelope.structured import parse_header as parse_record_header
from kmsenvelope.structured.encrypt import encrypt_record
from kmsenvelope.structured.model import Action, Terminal
from kmsenvelope.suites import DbeSuite

ROWS = 10_000
BATCH = 1_000
CRASH_AFTER = 5


class Counting:
    """A keyring wrapper counting wrapping-key operations."""

    def __init__(self, inner: RawAesKeyring) -> None:
        self.inner = inner
        self.encrypts = 0
        self.decrypts = 0

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        self.encrypts += 1
        return self.inner.on_encrypt(materials)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        self.decrypts += 1
        return self.inner.on_decrypt(materials, edks)

    def reset(self) -> None:
        self.encrypts = self.decrypts = 0


OLD_RAW = RawAesKeyring("sql-tests", "old-key", bytes(range(32)))
NEW_RAW = RawAesKeyring("sql-tests", "new-key", bytes(range(100, 132)))


@pytest.fixture(scope="module")
def engine(postgres: str) -> Iterator[Engine]:
    eng = create_engine(postgres)
    yield eng
    eng.dispose()


def _table(md: MetaData, name: str, envelope: Envelope) -> Table:
    return Table(name, md, Column("id", Integer, primary_key=True),
                 Column("ssn", EncryptedType(str, envelope)),
                 Column("balance", EncryptedType(decimal.Decimal, envelope), nullable=True),
                 Column("note", String))


def _key_names(engine: Engine, table: Table, column: str, ids: range) -> dict[int, bytes]:
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.id, type_coerce(table.c[column], LargeBinary))
                            .where(table.c.id.between(ids.start, ids.stop - 1))).all()
    return {row_id: bytes(raw) for row_id, raw in rows}


def _provider_names(envelope: Envelope, raws: dict[int, bytes]) -> set[tuple[bytes, ...]]:
    return {tuple(edk.provider_info[:7] for edk in envelope.parse_header(raw).encrypted_data_keys)
            for raw in raws.values()}


def test_rotation_of_10000_rows_survives_a_crash_and_resumes(engine: Engine) -> None:
    old, new = Counting(OLD_RAW), Counting(NEW_RAW)
    name = f"accounts_{uuid.uuid4().hex[:8]}"
    v1 = _table(MetaData(), name, Envelope(old))  # the application before the migration
    v1.metadata.create_all(engine)
    expected = {i: (f"{i:03d}-00-{i:04d}", decimal.Decimal(i) / 100 if i % 10 else None)
                for i in range(1, ROWS + 1)}
    with engine.begin() as conn:
        conn.execute(insert(v1), [{"id": i, "ssn": s, "balance": b, "note": "n"}
                                  for i, (s, b) in expected.items()])
    values = ROWS + sum(1 for _, b in expected.values() if b is not None)
    # During the migration readers (and writers) use a keyring for both keys.
    reader = Envelope(MultiKeyring(generator=new, children=[old]))
    v2 = _table(MetaData(), name, reader)
    try:
        old.reset()
        new.reset()
        seen_mixed = []
        reader_unwraps = [0]

        def crash(stats: ReencryptStats) -> None:
            # Readers work mid-migration: one migrated row and one not yet migrated.
            before = old.decrypts
            with engine.connect() as conn:
                got = conn.execute(select(v2.c.id, v2.c.ssn).where(v2.c.id.in_([1, ROWS]))).all()
            reader_unwraps[0] += old.decrypts - before  # the reader's, not the migration's
            seen_mixed.append({row_id: ssn for row_id, ssn in got})
            if stats.batches == CRASH_AFTER:
                raise RuntimeError("injected crash")

        with pytest.raises(RuntimeError, match="injected crash"):
            reencrypt(engine, v2, new_source=CachingMaterials(new, max_age=600), batch_size=BATCH,
                      on_batch=crash)
        assert seen_mixed[-1] == {1: expected[1][0], ROWS: expected[ROWS][0]}
        done = CRASH_AFTER * BATCH
        migrated = _key_names(engine, v2, "ssn", range(1, done + 1))
        pending = _key_names(engine, v2, "ssn", range(done + 1, ROWS + 1))
        assert _provider_names(reader, migrated) == {(b"new-key",)}
        assert _provider_names(reader, pending) == {(b"old-key",)}
        first_run_decrypts, first_run_encrypts = old.decrypts - reader_unwraps[0], new.encrypts

        old.reset()
        new.reset()
        stats = reencrypt(engine, v2, new_source=CachingMaterials(new, max_age=600), batch_size=BATCH)
        assert (stats.scanned, stats.rows, stats.skipped) == (ROWS, ROWS - done, done)
        assert stats.batches == ROWS // BATCH
        # Every value was decrypted under the old key exactly once across both runs: none twice.
        assert first_run_decrypts + old.decrypts == values
        # With the caching materials manager one new data key serves each column: wrapping operations
        # under the new key are bounded by the column count per run, not by the row count.
        assert new.encrypts <= 2 and first_run_encrypts <= 2
        print(f"\nwrapping-key operations: old-key unwraps {values} (one per value), "
              f"new-key wraps {first_run_encrypts} + {new.encrypts}")
        assert _key_names(engine, v2, "ssn", range(1, done + 1)) == migrated  # untouched by the rerun
        only_new = Envelope(NEW_RAW)
        for column in ("ssn", "balance"):
            type_ = v2.c[column].type
            assert isinstance(type_, EncryptedType)
            with engine.connect() as conn:
                rows = conn.execute(select(v2.c.id, type_coerce(v2.c[column], LargeBinary))).all()
            assert len(rows) == ROWS
            for row_id, raw in rows:
                value = None if raw is None else type_.decrypt_value(raw, only_new)
                assert value == expected[row_id][0 if column == "ssn" else 1]
        old.reset()
        again = reencrypt(engine, v2, new_source=CachingMaterials(new, max_age=600), batch_size=BATCH)
        assert (again.rows, again.skipped, old.decrypts) == (0, ROWS, 0)
    finally:
        v1.metadata.drop_all(engine)


def test_first_encryption_of_a_plaintext_column(engine: Engine) -> None:
    envelope = Envelope(NEW_RAW)
    md = MetaData()
    table = Table(f"legacy_{uuid.uuid4().hex[:8]}", md, Column("id", Integer, primary_key=True),
                  Column("email_plain", String, nullable=True),
                  Column("email", EncryptedType(str, envelope), nullable=True))
    md.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), [{"id": i, "email_plain": None if i % 7 == 0 else f"u{i}@example.com"}
                                         for i in range(1, 301)])
        stats = reencrypt(engine, table, new_source=NEW_RAW, batch_size=64,
                          plaintext_columns={"email": "email_plain"}, progress=True)
        assert stats.rows == 300 - 300 // 7
        with engine.connect() as conn:
            rows = conn.execute(select(table.c.id, table.c.email_plain, table.c.email)).all()
        assert all(plain == enc for _, plain, enc in rows) and len(rows) == 300
        rerun = reencrypt(engine, table, new_source=NEW_RAW, plaintext_columns={"email": "email_plain"})
        assert rerun.rows == 0
    finally:
        md.drop_all(engine)


def test_row_mode_rotation(engine: Engine) -> None:
    old_rows = EncryptedColumns(OLD_RAW)
    md = MetaData()
    name = f"rowrot_{uuid.uuid4().hex[:8]}"
    table = Table(name, md, Column("id", Integer, primary_key=True), old_rows.column("a", str),
                  old_rows.column("b", int, nullable=True), old_rows.header_column(),
                  old_rows.footer_column())
    md.create_all(engine)
    try:
        with engine.begin() as conn:
            rows = [{"id": i, "a": f"v{i}", "b": i if i % 2 else None} for i in range(1, 201)]
            conn.execute(insert(table), [old_rows.encrypt_row(row) for row in rows])
        stats = reencrypt(engine, table, new_source=NEW_RAW, batch_size=50,
                          decrypt_with=MultiKeyring(children=[OLD_RAW, NEW_RAW]))
        assert stats.rows == 200
        new_rows = EncryptedColumns(NEW_RAW)
        check = Table(name, MetaData(), Column("id", Integer, primary_key=True), new_rows.column("a", str),
                      new_rows.column("b", int, nullable=True), new_rows.header_column(),
                      new_rows.footer_column())
        with engine.connect() as conn:
            stored = conn.execute(select(check)).all()
        for row in stored:
            plain: dict[str, Any] = new_rows.decrypt_row(dict(row._mapping))
            assert plain == {"a": f"v{row.id}", "b": row.id if row.id % 2 else None}
            edks = parse_record_header(bytes(row.aws_dbe_head)).encrypted_data_keys
            assert [edk.provider_info[:7] for edk in edks] == [b"new-key"]
        assert reencrypt(engine, table, new_source=NEW_RAW).rows == 0
    finally:
        md.drop_all(engine)


def _esdk_edk(keyring: Any) -> EncryptedDataKey:
    envelope = Envelope(keyring)
    return envelope.parse_header(envelope.encrypt(b"x")).encrypted_data_keys[0]


def _record_edk(keyring: Any) -> EncryptedDataKey:
    suite = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384
    manager = Envelope(keyring).materials_manager
    record = {"a": Terminal(b"\x00\x01", b"v")}
    encrypted = encrypt_record("t", record, {"a": Action.ENCRYPT_AND_SIGN}, manager, suite, {}, ())
    return encrypted.header.encrypted_data_keys[0]


def test_fingerprints_tell_branch_key_versions_apart() -> None:
    """A branch key rotation (same id, new version) counts as a new key; IVs and salts do not."""
    versions = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]
    for version in versions:
        store = StaticBranchKeyStore("bk", version, bytes(32), bytes(32))
        keyring = HierarchicalKeyring(store, branch_key_id="bk")
        first, second = _esdk_edk(keyring), _esdk_edk(keyring)
        assert first.ciphertext != second.ciphertext
        expected = ("aws-kms-hierarchy", b"bk", uuid.UUID(version).bytes)
        assert edk_fingerprint(first) == edk_fingerprint(second) == expected
        # Under DB-ESDK suites the EDK starts with the intermediate-wrapped data key.
        assert edk_fingerprint(_record_edk(keyring), intermediate=True) == expected
    first_raw, second_raw = edk_fingerprint(_esdk_edk(NEW_RAW)), edk_fingerprint(_esdk_edk(NEW_RAW))
    assert first_raw == second_raw == ("sql-tests", b"new-key\x00\x00\x00\x80\x00\x00\x00\x0c")
    assert edk_fingerprint(_esdk_edk(OLD_RAW)) != first_raw
