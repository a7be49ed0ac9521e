"""EncryptedClient against the local moto DynamoDB over HTTP: every wrapped operation stores ciphertext
for ENCRYPT_AND_SIGN attributes and hands plaintext back."""

from __future__ import annotations

from typing import Any

import pytest

from kmsenvelope import KmsKeyring
from kmsenvelope.dynamodb import EncryptedClient
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import SECRETS, config, create_table, dynamodb_requests, person, unique


@pytest.fixture
def env(local_aws: LocalAws) -> tuple[LocalAws, str, Any, EncryptedClient]:
    name = unique("people")
    raw = create_table(local_aws, name)
    return local_aws, name, raw, EncryptedClient(raw, {name: config("people")})


def _key(pk: str, sk: str = "profile") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _assert_ciphertext_at_rest(raw: Any, table: str, plain: dict[str, Any]) -> None:
    stored = raw.get_item(TableName=table, Key=_key(plain["pk"]["S"], plain["sk"]["S"]))["Item"]
    for name in SECRETS:
        assert set(stored[name]) == {"B"}, name
        assert plain[name] != stored[name]
        assert plain["pk"]["S"].encode() not in stored[name]["B"]
    for name in ("pk", "sk", "dept", "version", "counter"):
        assert stored[name] == plain[name]
    assert {"aws_dbe_head", "aws_dbe_foot"} <= set(stored)


def test_put_get_round_trip_and_ciphertext_at_rest(env: Any) -> None:
    _aws, name, raw, client = env
    item = person("alice")
    client.put_item(TableName=name, Item=item)
    _assert_ciphertext_at_rest(raw, name, item)
    assert client.get_item(TableName=name, Key=_key("alice"))["Item"] == item
    assert "Item" not in client.get_item(TableName=name, Key=_key("nobody"))


def test_conditional_writes_on_signed_and_unsigned_attributes(env: Any) -> None:
    _aws, name, raw, client = env
    errors = raw.exceptions.ConditionalCheckFailedException
    client.put_item(TableName=name, Item=person("bob"), ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(errors):
        client.put_item(TableName=name, Item=person("bob"), ConditionExpression="attribute_not_exists(pk)")
    newer = person("bob", version={"N": "2"}, email={"S": "bob@new.example"})
    client.put_item(
        TableName=name,
        Item=newer,
        ConditionExpression="#v = :old AND #c = :zero",
        ExpressionAttributeNames={"#v": "version", "#c": "counter"},
        ExpressionAttributeValues={":old": {"N": "1"}, ":zero": {"N": "0"}},
    )
    with pytest.raises(errors):
        client.put_item(
            TableName=name,
            Item=person("bob", version={"N": "3"}),
            ConditionExpression="version = :old",
            ExpressionAttributeValues={":old": {"N": "1"}},
        )
    # Existence of an encrypted attribute does not need its value: allowed.
    client.delete_item(TableName=name, Key=_key("bob"), ConditionExpression="attribute_exists(email)")
    assert "Item" not in client.get_item(TableName=name, Key=_key("bob"))


def test_return_values_are_decrypted(env: Any) -> None:
    _aws, name, _raw, client = env
    first = person("carol")
    client.put_item(TableName=name, Item=first)
    second = person("carol", email={"S": "carol@two.example"})
    old = client.put_item(TableName=name, Item=second, ReturnValues="ALL_OLD")["Attributes"]
    assert old == first
    updated = client.update_item(
        TableName=name,
        Key=_key("carol"),
        UpdateExpression="SET #c = #c + :one, note = :n",
        ExpressionAttributeNames={"#c": "counter"},
        ExpressionAttributeValues={":one": {"N": "1"}, ":n": {"S": "hello"}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert updated == {**second, "counter": {"N": "1"}, "note": {"S": "hello"}}
    partial = client.update_item(
        TableName=name,
        Key=_key("carol"),
        UpdateExpression="SET #c = #c + :one",
        ExpressionAttributeNames={"#c": "counter"},
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]
    assert partial == {"counter": {"N": "2"}}
    # Unsigned changes leave the item decryptable.
    assert client.get_item(TableName=name, Key=_key("carol"))["Item"]["counter"] == {"N": "2"}
    deleted = client.delete_item(TableName=name, Key=_key("carol"), ReturnValues="ALL_OLD")["Attributes"]
    assert deleted == {**second, "counter": {"N": "2"}, "note": {"S": "hello"}}


def test_query_scan_and_paginators(env: Any) -> None:
    aws, name, _raw, client = env
    items = [person("dave", sk=f"order-{i:02d}", note={"S": "n"}) for i in range(12)]
    for item in items:
        client.put_item(TableName=name, Item=item)
    client.put_item(TableName=name, Item=person("erin"))
    result = client.query(
        TableName=name,
        KeyConditionExpression="pk = :p AND begins_with(sk, :o)",
        FilterExpression="dept = :d",
        ExpressionAttributeValues={":p": {"S": "dave"}, ":o": {"S": "order-"}, ":d": {"S": "eng"}},
    )
    assert result["Items"] == items and result["Count"] == 12
    scanned = client.scan(TableName=name)["Items"]
    assert sorted(i["pk"]["S"] + i["sk"]["S"] for i in scanned) == sorted(
        i["pk"]["S"] + i["sk"]["S"] for i in [*items, person("erin")]
    )
    aws.reset()
    pages = list(
        client.get_paginator("query").paginate(
            TableName=name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "dave"}},
            PaginationConfig={"PageSize": 5},
        )
    )
    assert len(pages) >= 3 and dynamodb_requests(aws) == ["Query"] * len(pages)
    assert [item for page in pages for item in page["Items"]] == items
    full = client.get_paginator("scan").paginate(TableName=name, PaginationConfig={"PageSize": 4})
    assert full.build_full_result()["Count"] == 13
    emails = list(client.get_paginator("scan").paginate(TableName=name).search("Items[].email.S"))
    assert sorted(emails) == sorted(f"{i['pk']['S']}@example.com" for i in [*items, person("erin")])


def test_batch_write_and_batch_get(env: Any) -> None:
    aws, name, raw, client = env
    other = unique("plain")
    create_table(aws, other)
    people = [person(f"batch{i}") for i in range(5)]
    plain = {"pk": {"S": "x"}, "sk": {"S": "y"}, "email": {"S": "not-encrypted@example.com"}}
    response = client.batch_write_item(
        RequestItems={
            name: [{"PutRequest": {"Item": item}} for item in people],
            other: [{"PutRequest": {"Item": plain}}],
        }
    )
    assert not response.get("UnprocessedItems")
    for item in people:
        _assert_ciphertext_at_rest(raw, name, item)
    # The unconfigured table passes through untouched.
    assert raw.get_item(TableName=other, Key=_key("x", "y"))["Item"] == plain
    got = client.batch_get_item(
        RequestItems={
            name: {"Keys": [_key(f"batch{i}") for i in range(5)]},
            other: {"Keys": [_key("x", "y")]},
        }
    )
    assert sorted(got["Responses"][name], key=lambda i: i["pk"]["S"]) == people
    assert got["Responses"][other] == [plain]
    client.batch_write_item(RequestItems={name: [{"DeleteRequest": {"Key": _key("batch0")}}]})
    assert "Item" not in raw.get_item(TableName=name, Key=_key("batch0"))


def test_transactions(env: Any) -> None:
    _aws, name, raw, client = env
    client.put_item(TableName=name, Item=person("frank"))
    client.put_item(TableName=name, Item=person("ivy"))
    gina = person("gina")
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": gina, "ConditionExpression": "attribute_not_exists(pk)"}},
            {
                "Update": {
                    "TableName": name,
                    "Key": _key("frank"),
                    "UpdateExpression": "SET note = :n",
                    "ExpressionAttributeValues": {":n": {"S": "tx"}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": name,
                    "Key": _key("ivy"),
                    "ConditionExpression": "dept = :d",
                    "ExpressionAttributeValues": {":d": {"S": "eng"}},
                }
            },
        ]
    )
    _assert_ciphertext_at_rest(raw, name, gina)
    got = client.transact_get_items(
        TransactItems=[{"Get": {"TableName": name, "Key": _key(pk)}} for pk in ("gina", "frank")]
    )
    assert got["Responses"][0]["Item"] == gina
    assert got["Responses"][1]["Item"] == {**person("frank"), "note": {"S": "tx"}}


def test_kms_keyring_and_delegation(local_aws: LocalAws) -> None:
    name = unique("kms")
    raw = create_table(local_aws, name)
    keyring = KmsKeyring(local_aws.create_key(), client_supplier=local_aws.client_supplier())
    client = EncryptedClient(raw, {name: config("kms-people", keyring=keyring)})
    client.put_item(TableName=name, Item=person("hank"))
    assert client.get_item(TableName=name, Key=_key("hank"))["Item"] == person("hank")
    # Everything else is the wrapped client's own.
    assert client.describe_table(TableName=name)["Table"]["TableName"] == name
    assert client.meta.region_name == "us-east-1"
    assert name in client.list_tables()["TableNames"]
    assert "EncryptedClient" in repr(client) and "keyring" not in repr(client)
