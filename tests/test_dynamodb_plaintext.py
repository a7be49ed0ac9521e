"""Plaintext items (stored through plain boto3) on tables with a plaintext policy, read through every
wrapper and read operation, and plaintext writes under FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from kmsenvelope.dynamodb import (
    EncryptedClient,
    EncryptedResource,
    EncryptedTable,
    ItemEncryptor,
    ItemFormat,
    PlaintextPolicy,
    StandardBeacon,
)
from kmsenvelope.dynamodb.legacy import FormatRefusedError
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import config, create_table, person, unique

FORCE = PlaintextPolicy.FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ
ALLOW = PlaintextPolicy.FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ
FORBID = PlaintextPolicy.FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ
PEOPLE = ("ana", "ben", "cy")


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "profile"}}


@pytest.fixture
def plaintext_table(local_aws: LocalAws) -> Any:
    name = unique("plain")
    raw = create_table(local_aws, name)
    for pk in PEOPLE:
        raw.put_item(TableName=name, Item=person(pk))
    return local_aws, name, raw


@pytest.mark.parametrize("policy", [FORCE, ALLOW], ids=lambda p: p.name)
def test_every_client_read_passes_plaintext_items_through(
    plaintext_table: Any, policy: PlaintextPolicy
) -> None:
    _aws, name, raw = plaintext_table
    client = EncryptedClient(raw, {name: config("people", plaintext_policy=policy)})
    assert client.get_item(TableName=name, Key=_key("ana"))["Item"] == person("ana")
    got = client.get_item(TableName=name, Key=_key("ana"), ProjectionExpression="email")
    assert got["Item"] == {"email": person("ana")["email"]}
    query = client.query(
        TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "ben"}}
    )
    assert query["Items"] == [person("ben")]
    assert sorted(i["pk"]["S"] for i in client.scan(TableName=name)["Items"]) == sorted(PEOPLE)
    pages = client.get_paginator("scan").paginate(TableName=name, PaginationConfig={"PageSize": 1})
    assert sorted(i["pk"]["S"] for i in pages.build_full_result()["Items"]) == sorted(PEOPLE)
    batch = client.batch_get_item(RequestItems={name: {"Keys": [_key("ana"), _key("cy")]}})
    assert sorted(i["pk"]["S"] for i in batch["Responses"][name]) == ["ana", "cy"]
    transact = client.transact_get_items(TransactItems=[{"Get": {"TableName": name, "Key": _key("cy")}}])
    assert transact["Responses"][0]["Item"] == person("cy")
    old = client.put_item(TableName=name, Item=person("ana", dept={"S": "ops"}), ReturnValues="ALL_OLD")
    assert old["Attributes"] == person("ana")
    updated = client.update_item(
        TableName=name,
        Key=_key("ben"),
        UpdateExpression="SET #c = :n",
        ExpressionAttributeNames={"#c": "counter"},
        ExpressionAttributeValues={":n": {"N": "5"}},
        ReturnValues="ALL_NEW",
    )
    assert updated["Attributes"] == person("ben", counter={"N": "5"})
    assert client.delete_item(TableName=name, Key=_key("cy"), ReturnValues="ALL_OLD")["Attributes"] == person(
        "cy"
    )

    stored = raw.get_item(TableName=name, Key=_key("ana"))["Item"]
    if policy is FORCE:
        assert stored == person("ana", dept={"S": "ops"})  # written as plaintext
    else:
        assert {"aws_dbe_head", "aws_dbe_foot"} <= set(stored) and stored["email"] != person("ana")["email"]
    assert client.get_item(TableName=name, Key=_key("ana"))["Item"] == person("ana", dept={"S": "ops"})


def test_one_scan_over_plaintext_and_new_items(plaintext_table: Any) -> None:
    _aws, name, raw = plaintext_table
    cfg = config("people", plaintext_policy=ALLOW)
    client = EncryptedClient(raw, {name: cfg})
    client.put_item(TableName=name, Item=person("new-1"))
    client.transact_write_items(TransactItems=[{"Put": {"TableName": name, "Item": person("new-2")}}])
    items = client.scan(TableName=name)["Items"]
    assert sorted(i["pk"]["S"] for i in items) == sorted([*PEOPLE, "new-1", "new-2"])
    assert all(i == person(i["pk"]["S"]) for i in items)
    encryptor = ItemEncryptor(cfg)
    formats = {
        i["pk"]["S"]: encryptor.decrypt_item_with_format(i)[1] for i in raw.scan(TableName=name)["Items"]
    }
    assert formats == {
        **dict.fromkeys(PEOPLE, ItemFormat.PLAINTEXT),
        "new-1": ItemFormat.NEW,
        "new-2": ItemFormat.NEW,
    }


@pytest.mark.parametrize("policy", [FORBID, None], ids=["explicit", "default"])
def test_forbidden_plaintext_reads_name_the_key_and_the_policy(plaintext_table: Any, policy: Any) -> None:
    aws, name, raw = plaintext_table
    cfg = config("people", plaintext_policy=policy)
    client = EncryptedClient(raw, {name: cfg})
    calls = [
        lambda: client.get_item(TableName=name, Key=_key("ana")),
        lambda: client.scan(TableName=name),
        lambda: client.query(
            TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "ana"}}
        ),
        lambda: client.batch_get_item(RequestItems={name: {"Keys": [_key("ana")]}}),
        lambda: client.transact_get_items(TransactItems=[{"Get": {"TableName": name, "Key": _key("ana")}}]),
        lambda: (
            client.get_paginator("query")
            .paginate(
                TableName=name,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "ana"}},
            )
            .build_full_result()
        ),
    ]
    for call in calls:
        with pytest.raises(FormatRefusedError) as info:
            call()
        assert FORBID.name in str(info.value) and "pk='ana'" in str(info.value)
    boto = aws.session.resource("dynamodb", region_name="us-east-1", endpoint_url=aws.endpoint_url)
    with pytest.raises(FormatRefusedError, match="plaintext"):
        EncryptedTable(boto.Table(name), cfg).scan()


def test_table_and_resource_with_plaintext_items(plaintext_table: Any) -> None:
    aws, name, _raw = plaintext_table
    boto = aws.session.resource("dynamodb", region_name="us-east-1", endpoint_url=aws.endpoint_url)
    cfg = config("people", plaintext_policy=FORCE)
    table = EncryptedTable(boto.Table(name), cfg)
    assert table.query(KeyConditionExpression=Key("pk").eq("ana"))["Items"][0]["email"] == "ana@example.com"
    table.put_item(Item={"pk": "dee", "sk": "profile", "email": "dee@example.com"})
    with table.batch_writer() as writer:
        writer.put_item(Item={"pk": "eve", "sk": "profile", "email": "eve@example.com"})
    raw_table = boto.Table(name)
    assert raw_table.get_item(Key={"pk": "eve", "sk": "profile"})["Item"]["email"] == "eve@example.com"
    resource = EncryptedResource(boto, {name: cfg})
    resource.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {"pk": "fay", "sk": "profile"}}}]})
    assert raw_table.get_item(Key={"pk": "fay", "sk": "profile"})["Item"] == {"pk": "fay", "sk": "profile"}
    batch = resource.batch_get_item(
        RequestItems={name: {"Keys": [{"pk": p, "sk": "profile"} for p in ("dee", "ben")]}}
    )
    assert sorted(i["email"] for i in batch["Responses"][name]) == ["ben@example.com", "dee@example.com"]


def test_plaintext_items_carry_no_beacons(plaintext_table: Any) -> None:
    """A beacon query cannot find plaintext items (they have no beacon attribute) until re-encrypted."""
    _aws, name, raw = plaintext_table
    cfg = config("people", plaintext_policy=ALLOW, beacons=[StandardBeacon("email", 8)])
    client = EncryptedClient(raw, {name: cfg})
    client.put_item(TableName=name, Item=person("new"))
    found = client.scan(
        TableName=name,
        FilterExpression="email = :e",
        ExpressionAttributeValues={":e": {"S": "ana@example.com"}},
    )
    assert found["Items"] == []  # the plaintext "ana" is not found by its beacon
    found = client.scan(
        TableName=name,
        FilterExpression="email = :e",
        ExpressionAttributeValues={":e": {"S": "new@example.com"}},
    )
    assert [i["pk"]["S"] for i in found["Items"]] == ["new"]
    # Re-encrypting the plaintext item (a get and a put) makes it findable.
    client.put_item(TableName=name, Item=client.get_item(TableName=name, Key=_key("ana"))["Item"])
    found = client.scan(
        TableName=name,
        FilterExpression="email = :e",
        ExpressionAttributeValues={":e": {"S": "ana@example.com"}},
    )
    assert [i["pk"]["S"] for i in found["Items"]] == ["ana"]


def test_the_migration_plan_of_docs_migration_md(plaintext_table: Any) -> None:
    """Steps 1-4 of docs/migration.md on a table of plaintext items, with the documented loop."""
    _aws, name, raw = plaintext_table
    step1 = EncryptedClient(raw, {name: config("people", plaintext_policy=FORCE)})
    step1.put_item(TableName=name, Item=person("s1"))
    assert raw.get_item(TableName=name, Key=_key("s1"))["Item"] == person("s1")
    client = EncryptedClient(raw, {name: config("people", plaintext_policy=ALLOW)})
    encryptor = client.operations(name).encryptor
    for page in raw.get_paginator("scan").paginate(TableName=name):
        for stored in page["Items"]:
            plain, found = encryptor.decrypt_item_with_format(stored)
            if found is not ItemFormat.PLAINTEXT:
                continue
            with contextlib.suppress(raw.exceptions.ConditionalCheckFailedException):
                client.put_item(
                    TableName=name,
                    Item=plain,
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(aws_dbe_head)",
                )
    formats = [encryptor.decrypt_item_with_format(i)[1] for i in raw.scan(TableName=name)["Items"]]
    assert formats == [ItemFormat.NEW] * 4
    final = EncryptedClient(raw, {name: config("people")})
    assert sorted(i["pk"]["S"] for i in final.scan(TableName=name)["Items"]) == sorted([*PEOPLE, "s1"])
