"""Global table with a multi-Region key: written in us-east-1 under the MRK primary, read in
ap-southeast-2 through the replica (KmsKeyring) and by discovery (KmsDiscoveryKeyring), with every
KMS call staying in ap-southeast-2.

moto does not replicate global tables, so the test copies the stored items byte for byte from the
us-east-1 table to the ap-southeast-2 table, as DynamoDB replication would.
"""

from __future__ import annotations

from typing import Any

import pytest

import kmsenvelope
from kmsenvelope import KmsDiscoveryKeyring, KmsKeyring
from kmsenvelope.aws import accounting
from kmsenvelope.dynamodb import EncryptedClient
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import config, create_table, person, unique

WRITER, READER = "us-east-1", "ap-southeast-2"
COUNT = 12


def _replicate(local_aws: LocalAws, table: str) -> int:
    source = local_aws.client("dynamodb", WRITER)
    target = local_aws.client("dynamodb", READER)
    copied = 0
    for page in source.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            target.put_item(TableName=table, Item=item)
            copied += 1
    return copied


@pytest.fixture
def written(local_aws: LocalAws) -> tuple[str, Any, list[dict[str, Any]]]:
    mrk = local_aws.create_mrk(WRITER, [READER])
    table = unique("global")
    for region in (WRITER, READER):
        create_table(local_aws, table, region=region)
    supplier = local_aws.client_supplier()
    writer = EncryptedClient(
        local_aws.client("dynamodb", WRITER),
        {table: config("orders", keyring=KmsKeyring(mrk.arn(WRITER), client_supplier=supplier))},
    )
    items = [person(f"customer{i}", ssn={"S": f"secret-{i}"}) for i in range(COUNT)]
    half = COUNT // 2
    for item in items[:half]:
        writer.put_item(TableName=table, Item=item)
    writer.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item}} for item in items[half:]]})
    assert _replicate(local_aws, table) == COUNT
    stored = local_aws.client("dynamodb", READER).scan(TableName=table)["Items"]
    assert all(set(item["ssn"]) == {"B"} for item in stored)
    return table, mrk, items


@pytest.mark.parametrize("reader_keyring", ["replica", "discovery"])
def test_reader_in_replica_region_uses_only_local_kms(
    local_aws: LocalAws, written: tuple[str, Any, list[dict[str, Any]]], reader_keyring: str
) -> None:
    table, mrk, items = written
    supplier = local_aws.client_supplier()
    keyring: Any = (
        KmsKeyring(mrk.arn(READER), client_supplier=supplier)
        if reader_keyring == "replica"
        else KmsDiscoveryKeyring(READER, client_supplier=supplier)
    )
    reader = EncryptedClient(local_aws.client("dynamodb", READER), {table: config("orders", keyring=keyring)})
    accounting.reset()
    local_aws.reset()

    pages = reader.get_paginator("scan").paginate(TableName=table, PaginationConfig={"PageSize": 5})
    read = [item for page in pages for item in page["Items"]]
    single = reader.get_item(TableName=table, Key={"pk": {"S": "customer0"}, "sk": {"S": "profile"}})["Item"]

    assert sorted(read, key=lambda i: i["pk"]["S"]) == sorted(items, key=lambda i: i["pk"]["S"])
    assert single == items[0]
    stats = kmsenvelope.stats()
    assert dict(stats.by_region) == {READER: COUNT + 1}
    assert stats.count(operation="Decrypt", region=READER) == COUNT + 1
    kms_requests = local_aws.requests(service="kms")
    assert len(kms_requests) == COUNT + 1
    assert {r.region for r in kms_requests} == {READER}
    assert {r.key_id for r in kms_requests} == {mrk.arn(READER)}
    assert local_aws.requests(service="kms", region=WRITER) == ()
    assert {r.region for r in local_aws.requests(service="dynamodb")} == {READER}


def test_writer_region_key_is_not_needed_by_reader(
    local_aws: LocalAws, written: tuple[str, Any, list[dict[str, Any]]]
) -> None:
    """With KMS in us-east-1 failing every call, the ap-southeast-2 reader still reads everything."""
    table, mrk, _items = written
    local_aws.inject_fault("Decrypt", "KMSInternalException", count=1000, region=WRITER)
    reader = EncryptedClient(
        local_aws.client("dynamodb", READER),
        {
            table: config(
                "orders", keyring=KmsKeyring(mrk.arn(READER), client_supplier=local_aws.client_supplier())
            )
        },
    )
    assert len(reader.scan(TableName=table)["Items"]) == COUNT
    assert local_aws.pending_faults() == 1000
