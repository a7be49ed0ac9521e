"""Aurora Global Database with encrypted columns: write in us-east-1, read in ap-southeast-2.

Run: .venv/bin/python examples/aurora_global_columns.py

Columns are encrypted client-side with SQLAlchemy types, so the database (and its cross-Region
replication, snapshots and logs) only ever holds ciphertext. Values are encrypted under the primary of
a multi-Region KMS key in us-east-1; the application in ap-southeast-2 reads the replicated rows with
the key's local replica, so it never calls KMS in us-east-1.

Offline: one throwaway PostgreSQL (`kmsenvelope.testing.postgres()`) stands in for both the primary
cluster and its Sydney secondary (two engines, labelled by `application_name`), and
`kmsenvelope.testing.local_aws()` is the KMS in both regions.
"""

from __future__ import annotations

import uuid
from datetime import date

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
    text,
)
from sqlalchemy import type_coerce as raw
from sqlalchemy.engine import Engine

import kmsenvelope
from kmsenvelope import CachingMaterials, DiscoveryFilter, Envelope, KmsDiscoveryKeyring, KmsKeyring
from kmsenvelope.aws import ClientSupplier, accounting
from kmsenvelope.sql import EncryptedColumns, EncryptedType
from kmsenvelope.testing import MrkKey, local_aws, postgres

WRITER, READER = "us-east-1", "ap-southeast-2"
# Unique table names: with KMSENVELOPE_TEST_DSN set, postgres() hands out a shared database.
SUFFIX = uuid.uuid4().hex[:8]
PATIENTS = [
    {"id": 1, "name": "Ada Lovelace", "born": date(1815, 12, 10), "ward": "north"},
    {"id": 2, "name": "Alan Turing", "born": date(1912, 6, 23), "ward": "south"},
    {"id": 3, "name": "Grace Hopper", "born": date(1906, 12, 9), "ward": "north"},
    {"id": 4, "name": "Edsger Dijkstra", "born": None, "ward": "east"},
]


def patients(envelope: Envelope) -> Table:
    """The table as each region's application declares it: same columns, that region's keyring.

    Every value is one AWS Encryption SDK message bound to its table and column name (the encryption
    context), so a ciphertext copied into another column does not decrypt.
    """
    return Table(
        f"patients_{SUFFIX}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", EncryptedType(str, envelope)),
        Column("born", EncryptedType(date, envelope), nullable=True),  # NULL stays a plain SQL NULL
        Column("ward", String(20)),  # not sensitive: plaintext, indexable, queryable
    )


def visits(rows: EncryptedColumns) -> Table:
    """Row mode: the encrypted columns of a row share one data key and are bound to the primary key."""
    return Table(
        f"visits_{SUFFIX}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        rows.column("diagnosis", str),
        rows.column("notes", str, nullable=True),
        rows.header_column(),
        rows.footer_column(),
    )


def write_in_us_east_1(engine: Engine, mrk: MrkKey, supplier: ClientSupplier) -> None:
    # CachingMaterials reuses a data key for up to 5 minutes: values of one column share their context,
    # so one GenerateDataKey serves the whole batch instead of one per value.
    primary = KmsKeyring(mrk.arn(WRITER), client_supplier=supplier)
    writer = patients(Envelope(CachingMaterials(primary, max_age=300)))
    writer_rows = EncryptedColumns(CachingMaterials(primary, max_age=300))
    writer_visits = visits(writer_rows)
    for table in (writer, writer_visits):
        table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(writer), PATIENTS)
        conn.execute(
            insert(writer_visits),
            [
                writer_rows.encrypt_row({"id": 1, "diagnosis": "analytical engine fever", "notes": None}),
                writer_rows.encrypt_row({"id": 2, "diagnosis": "enigma", "notes": "follow up in June"}),
            ],
        )
        # What the database holds: type_coerce to LargeBinary reads the column without decrypting it.
        stored = conn.execute(select(raw(writer.c.name, LargeBinary)).where(writer.c.id == 1)).scalar_one()
        head = conn.execute(select(writer_visits.c.aws_dbe_head).where(writer_visits.c.id == 2)).scalar_one()
    print(
        f"wrote {len(PATIENTS)} patients and 2 visits in {WRITER}; "
        f"KMS calls: {dict(kmsenvelope.stats().by_operation)}"
    )
    print(
        f"  stored: patients.name of row 1 is {len(stored)} B of BYTEA for a "
        f"{len(str(PATIENTS[0]['name']))}-char name; a visits row has a {len(bytes(head))} B header"
    )


def read_in_ap_southeast_2(engine: Engine, mrk: MrkKey, supplier: ClientSupplier, account: str) -> None:
    replica = KmsKeyring(mrk.arn(READER), client_supplier=supplier)
    reader = patients(Envelope(CachingMaterials(replica, max_age=300)))
    reader_rows = EncryptedColumns(replica)
    reader_visits = visits(reader_rows)
    with engine.connect() as conn:
        # Plaintext columns still work in WHERE clauses; encrypted ones are decrypted on the way out.
        for row in conn.execute(select(reader).where(reader.c.ward == "north").order_by(reader.c.id)):
            print(f"  {READER} replica key: #{row.id} {row.name}, born {row.born}, ward {row.ward}")
        for row in conn.execute(select(reader_visits).order_by(reader_visits.c.id)):
            print(f"  {READER} row mode:    visit #{row.id} {reader_rows.decrypt_row(row._mapping)}")

    # Discovery: no key ARN configured; the ARN in each value names the MRK, used via the local replica.
    discovery = KmsDiscoveryKeyring(
        READER, discovery_filter=DiscoveryFilter("aws", [account]), client_supplier=supplier
    )
    by_discovery = patients(Envelope(discovery))
    with engine.connect() as conn:
        name = conn.execute(select(by_discovery.c.name).where(by_discovery.c.id == 2)).scalar_one()
    print(f"  {READER} discovery:   #2 {name}")
    assert name == "Alan Turing"


def main() -> None:
    with local_aws() as aws, postgres() as dsn:
        mrk = aws.create_mrk(WRITER, [READER])
        supplier = aws.client_supplier()
        # One connection pool per application Region. On Aurora these would be the writer endpoint of
        # the primary cluster and the reader endpoint of the secondary cluster in Sydney.
        engines = {
            region: create_engine(dsn, connect_args={"application_name": f"app-{region}"})
            for region in (WRITER, READER)
        }
        try:
            write_in_us_east_1(engines[WRITER], mrk, supplier)

            # From here on, count KMS calls, and fail every us-east-1 KMS Decrypt (a regional outage).
            accounting.reset()
            aws.reset()
            aws.inject_fault("Decrypt", "KMSInternalException", count=100, region=WRITER)
            read_in_ap_southeast_2(engines[READER], mrk, supplier, aws.account_id)

            stats = kmsenvelope.stats()
            print(
                f"KMS calls while reading: {dict(stats.by_operation)} by region {dict(stats.by_region)}; "
                f"requests that reached {WRITER} KMS: {len(aws.requests(region=WRITER))}"
            )
            assert set(stats.by_region) == {READER}
            assert aws.requests(service="kms", region=WRITER) == ()
        finally:
            with engines[WRITER].begin() as conn:
                for name in (f"patients_{SUFFIX}", f"visits_{SUFFIX}"):
                    conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
            for engine in engines.values():
                engine.dispose()


if __name__ == "__main__":
    main()
    print("OK")
