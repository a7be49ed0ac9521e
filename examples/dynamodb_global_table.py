"""DynamoDB global table with a multi-Region KMS key: write in us-east-1, read in ap-southeast-2.

Run: .venv/bin/python examples/dynamodb_global_table.py

Items are encrypted client-side (AWS Database Encryption SDK format) under the primary of a
multi-Region key (MRK) in us-east-1. A global table replicates the *stored* items, ciphertext and all,
to ap-southeast-2, where readers decrypt them with the MRK's local replica: the replica shares the key
material, so the Sydney readers never call KMS in us-east-1 and keep working during an outage there.

Offline: `kmsenvelope.testing.local_aws()` runs KMS and DynamoDB on 127.0.0.1. It does not replicate
global tables, so this script copies the raw items from one region's table to the other, as DynamoDB
replication would.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import kmsenvelope
from kmsenvelope import DiscoveryFilter, KmsDiscoveryKeyring, KmsKeyring
from kmsenvelope.aws import accounting
from kmsenvelope.dynamodb import Action, EncryptedClient, EncryptedTable, TableConfig
from kmsenvelope.testing import LocalAws, local_aws

WRITER, READER = "us-east-1", "ap-southeast-2"
TABLE = "orders"

# What happens to each attribute. The partition key must be signed (it stays plaintext so DynamoDB can
# index it); card and address are encrypted; DO_NOTHING attributes are neither encrypted nor signed and
# must be listed in allowed_unsigned (they may be changed in place with update_item).
ACTIONS = {
    "order_id": Action.SIGN_ONLY,
    "customer": Action.SIGN_ONLY,
    "total": Action.SIGN_ONLY,
    "card": Action.ENCRYPT_AND_SIGN,
    "address": Action.ENCRYPT_AND_SIGN,
    "status": Action.DO_NOTHING,
}


def config(keyring: Any) -> TableConfig:
    # The logical table name is authenticated with every item, so writer and reader must agree on it
    # (it is the same in every region of a global table).
    return TableConfig(TABLE, "order_id", actions=ACTIONS, keyring=keyring, allowed_unsigned=["status"])


def create_table(aws: LocalAws, region: str) -> None:
    aws.client("dynamodb", region).create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def replicate(aws: LocalAws) -> int:
    """What global-table replication does: the stored bytes, unchanged, land in the other region."""
    source, target = aws.client("dynamodb", WRITER), aws.client("dynamodb", READER)
    copied = 0
    for page in source.get_paginator("scan").paginate(TableName=TABLE):
        for item in page["Items"]:
            target.put_item(TableName=TABLE, Item=item)
            copied += 1
    return copied


def main() -> None:
    with local_aws() as aws:
        mrk = aws.create_mrk(WRITER, [READER])
        for region in (WRITER, READER):
            create_table(aws, region)
        supplier = aws.client_supplier()

        # -- us-east-1: the application writes through the encrypting wrappers, with the MRK primary.
        writer_keyring = KmsKeyring(mrk.arn(WRITER), client_supplier=supplier)
        client = EncryptedClient(aws.client("dynamodb", WRITER), {TABLE: config(writer_keyring)})
        client.put_item(
            TableName=TABLE,
            Item={
                "order_id": {"S": "o-1"},
                "customer": {"S": "alice"},
                "total": {"N": "19.90"},
                "card": {"S": "4111 1111 1111 1111"},
                "address": {"M": {"city": {"S": "Boston"}, "zip": {"S": "02110"}}},
                "status": {"S": "shipped"},
            },
        )
        # The resource-style Table takes Python values (Decimal for numbers), batch writes included.
        resource = aws.session.resource("dynamodb", region_name=WRITER, endpoint_url=aws.endpoint_url)
        table = EncryptedTable(resource.Table(TABLE), config(writer_keyring))
        more = [("o-2", "bob", "5500 0000 0000 0004"), ("o-3", "carol", "3400 0000 0000 009")]
        with table.batch_writer() as batch:
            for order_id, customer, card in more:
                batch.put_item(
                    Item={
                        "order_id": order_id,
                        "customer": customer,
                        "total": Decimal("42.00"),
                        "card": card,
                        "address": {"city": "Denver", "zip": "80202"},
                        "status": "new",
                    }
                )
        print(f"wrote 3 items in {WRITER}; KMS calls: {dict(kmsenvelope.stats().by_operation)}")

        # What DynamoDB stores: encrypted attributes are binary, plus a header and a footer attribute.
        raw = aws.client("dynamodb", WRITER)
        stored = raw.get_item(TableName=TABLE, Key={"order_id": {"S": "o-1"}})["Item"]
        shapes = [
            f"{name}={kind}({len(value)} B)" if kind == "B" else f"{name}={kind}({value})"
            for name, typed in sorted(stored.items())
            for kind, value in typed.items()
        ]
        print(f"  stored o-1: {', '.join(shapes)}")

        print(f"replicated {replicate(aws)} raw items to {READER}")

        # -- ap-southeast-2: start counting, and make us-east-1 KMS fail every Decrypt (a regional
        # outage). The readers below must not notice.
        accounting.reset()
        aws.reset()
        aws.inject_fault("Decrypt", "KMSInternalException", count=100, region=WRITER)

        # Reader 1: the replica's ARN, given explicitly.
        replica_keyring = KmsKeyring(mrk.arn(READER), client_supplier=supplier)
        sydney_resource = aws.session.resource("dynamodb", region_name=READER, endpoint_url=aws.endpoint_url)
        sydney = EncryptedTable(sydney_resource.Table(TABLE), config(replica_keyring))
        items = sorted(sydney.scan()["Items"], key=lambda item: item["order_id"])
        for item in items:
            print(
                f"  {READER} replica key: {item['order_id']} {item['customer']} card={item['card']} "
                f"city={item['address']['city']}"
            )

        # Reader 2: discovery. It trusts the key ARN written in each item (limited here to our account)
        # and calls KMS in its own region, where the MRK's replica decrypts what the primary wrapped.
        discovery = KmsDiscoveryKeyring(
            READER,
            discovery_filter=DiscoveryFilter("aws", [aws.account_id]),
            client_supplier=supplier,
        )
        sydney_client = EncryptedClient(aws.client("dynamodb", READER), {TABLE: config(discovery)})
        got = sydney_client.get_item(TableName=TABLE, Key={"order_id": {"S": "o-1"}})["Item"]
        print(f"  {READER} discovery:   o-1 card={got['card']['S']}")
        assert got["card"] == {"S": "4111 1111 1111 1111"}

        # Where did the KMS calls go? Both the library's accounting and the server's log agree.
        stats = kmsenvelope.stats()
        kms_regions = sorted({r.region for r in aws.requests(service="kms")})
        print(f"KMS calls while reading: {dict(stats.by_operation)} by region {dict(stats.by_region)}")
        print(
            f"  KMS requests received, by region: {kms_regions}; "
            f"us-east-1 outage faults still unused: {aws.pending_faults()}"
        )
        assert set(stats.by_region) == {READER}
        assert aws.requests(service="kms", region=WRITER) == ()
        assert aws.pending_faults() == 100


if __name__ == "__main__":
    main()
    print("OK")
