"""SQL column encryption with AWS KMS (local moto server): single-Region key -> MRK, global reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    create_engine,
    insert,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Engine

from kmsenvelope import CachingMaterials, Envelope, KmsKeyring, MultiKeyring
from kmsenvelope.sql import EncryptedColumns, EncryptedType, reencrypt
from kmsenvelope.testing import LocalAws

ROWS = 60


@pytest.fixture(scope="module")
def engines(postgres: str) -> Iterator[dict[str, Engine]]:
    # One connection pool per application region; the label shows up in pg_stat_activity.
    made = {region: create_engine(postgres, connect_args={"application_name": f"app-{region}"})
            for region in ("us-east-1", "ap-southeast-2")}
    yield made
    for engine in made.values():
        engine.dispose()


def _accounts(name: str, envelope: Envelope) -> Table:
    return Table(name, MetaData(), Column("id", Integer, primary_key=True),
                 Column("iban", EncryptedType(str, envelope)))


def test_move_to_an_mrk_then_read_in_sydney_without_calling_us_east_1(
    local_aws: LocalAws, engines: dict[str, Engine]
) -> None:
    supplier = local_aws.client_supplier()
    single = local_aws.create_key("us-east-1")
    mrk = local_aws.create_mrk("us-east-1", ["ap-southeast-2"])
    us, sydney = engines["us-east-1"], engines["ap-southeast-2"]
    name = f"accounts_{uuid.uuid4().hex[:8]}"
    before = _accounts(name, Envelope(KmsKeyring(single, client_supplier=supplier)))
    before.metadata.create_all(us)
    try:
        with us.begin() as conn:
            conn.execute(insert(before), [{"id": i, "iban": f"DE{i:020d}"} for i in range(1, ROWS + 1)])
        # Migration: readers in us-east-1 decrypt both keys; re-encryption writes under the MRK primary.
        primary = KmsKeyring(mrk.primary, client_supplier=supplier)
        during = _accounts(name, Envelope(MultiKeyring(
            generator=primary, children=[KmsKeyring(single, client_supplier=supplier)]
        )))
        local_aws.reset()
        stats = reencrypt(us, during, new_source=CachingMaterials(primary, max_age=600), batch_size=25)
        assert stats.rows == ROWS
        assert len(local_aws.requests("Decrypt", region="us-east-1")) == ROWS  # one unwrap per old value
        assert len(local_aws.requests("GenerateDataKey")) == 1  # the cached MRK data key serves every row

        replica = KmsKeyring(mrk.arn("ap-southeast-2"), client_supplier=supplier)
        sydney_table = _accounts(name, Envelope(CachingMaterials(replica, max_age=600)))
        local_aws.reset()
        with sydney.connect() as conn:
            label = conn.execute(text("SELECT current_setting('application_name')")).scalar()
            assert label == "app-ap-southeast-2"
            values = dict(conn.execute(select(sydney_table.c.id, sydney_table.c.iban)).all())
        assert values == {i: f"DE{i:020d}" for i in range(1, ROWS + 1)}
        assert local_aws.requests(region="us-east-1") == ()
        assert len(local_aws.requests("Decrypt", region="ap-southeast-2")) == 1  # one data key, cached

        # New rows written in us-east-1 with the primary are readable in Sydney as well.
        writer = _accounts(name, Envelope(primary))
        with us.begin() as conn:
            conn.execute(insert(writer).values(id=ROWS + 1, iban="FR7630006000011234567890189"))
        local_aws.reset()
        with sydney.connect() as conn:
            got = conn.execute(select(sydney_table.c.iban).where(sydney_table.c.id == ROWS + 1)).scalar_one()
        assert got == "FR7630006000011234567890189"
        assert local_aws.requests(region="us-east-1") == ()

        with us.connect() as conn:
            raw = conn.execute(
                select(type_coerce(writer.c.iban, LargeBinary)).where(writer.c.id == 1)
            ).scalar_one()
        overhead = len(raw) - len(f"DE{1:020d}")
        print(f"\nESDK mode with one KMS EDK: {overhead} bytes added to a {len(f'DE{1:020d}')}-byte value")
        assert 300 < overhead < 800
    finally:
        before.metadata.drop_all(us)


def test_row_mode_with_kms(local_aws: LocalAws, engines: dict[str, Engine]) -> None:
    supplier = local_aws.client_supplier()
    mrk = local_aws.create_mrk("us-east-1", ["ap-southeast-2"])
    primary = KmsKeyring(mrk.primary, client_supplier=supplier)
    writer_rows = EncryptedColumns(CachingMaterials(primary, max_age=600))
    md = MetaData()
    name = f"kmsrows_{uuid.uuid4().hex[:8]}"
    table = Table(name, md, Column("id", Integer, primary_key=True), writer_rows.column("a", str),
                  writer_rows.column("b", str), writer_rows.header_column(), writer_rows.footer_column())
    md.create_all(engines["us-east-1"])
    try:
        local_aws.reset()
        with engines["us-east-1"].begin() as conn:
            conn.execute(insert(table), [writer_rows.encrypt_row({"id": i, "a": "x" * 11, "b": "y"})
                                         for i in range(20)])
        assert len(local_aws.requests("GenerateDataKey")) == 1
        reader_rows = EncryptedColumns(KmsKeyring(mrk.arn("ap-southeast-2"), client_supplier=supplier))
        check = Table(name, MetaData(), Column("id", Integer, primary_key=True), reader_rows.column("a", str),
                      reader_rows.column("b", str), reader_rows.header_column(), reader_rows.footer_column())
        local_aws.reset()
        with engines["ap-southeast-2"].connect() as conn:
            row = conn.execute(select(check).where(check.c.id == 3)).one()
        assert reader_rows.decrypt_row(dict(row._mapping)) == {"a": "x" * 11, "b": "y"}
        assert local_aws.requests(region="us-east-1") == ()
        print(f"\nrow mode with one KMS EDK: header {len(row.aws_dbe_head)} B, "
              f"footer {len(row.aws_dbe_foot)} B, per column {len(row.a) - 11} B")
        assert len(row.a) - 11 == 18 and len(row.aws_dbe_foot) == 48
    finally:
        md.drop_all(engines["us-east-1"])
