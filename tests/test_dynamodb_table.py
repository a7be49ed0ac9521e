"""EncryptedTable and EncryptedResource: boto3 resource values (Decimal, sets, Binary, conditions)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import Binary

from kmsenvelope.dynamodb import EncryptedResource, EncryptedTable, RequestRefusedError, StandardBeacon
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import SECRETS, config, create_table, dynamodb_requests, unique


def _person(pk: str, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": pk,
        "sk": "profile",
        "email": f"{pk}@example.com",
        "ssn": Binary(b"\x00ssn-" + pk.encode()),
        "card": {"number": f"4111-{pk}", "tags": {"gold", "vip"}, "limit": Decimal("1000.50")},
        "dept": "eng",
        "version": Decimal(1),
        "counter": Decimal(0),
    }
    item.update(extra)
    return item


@pytest.fixture
def env(local_aws: LocalAws) -> tuple[LocalAws, str, Any, Any]:
    name = unique("table")
    raw = create_table(local_aws, name, indexes=[("by-email", "aws_dbe_b_email", None)])
    resource = local_aws.session.resource(
        "dynamodb", region_name="us-east-1", endpoint_url=local_aws.endpoint_url
    )
    return local_aws, name, raw, resource


def _encrypted(resource: Any, name: str) -> EncryptedTable:
    return EncryptedTable(resource.Table(name), config("table", beacons=[StandardBeacon("email", 3)]))


def _assert_stored_encrypted(raw: Any, name: str, pk: str) -> None:
    stored = raw.get_item(TableName=name, Key={"pk": {"S": pk}, "sk": {"S": "profile"}})["Item"]
    for attribute in SECRETS:
        assert set(stored[attribute]) == {"B"}
        assert pk.encode() + b"@" not in stored[attribute]["B"]
    assert stored["dept"] == {"S": "eng"}


def test_table_operations_with_python_values(env: Any) -> None:
    _aws, name, raw, resource = env
    table = _encrypted(resource, name)
    alice = _person("alice")
    table.put_item(Item=alice, ConditionExpression=Attr("pk").not_exists())
    _assert_stored_encrypted(raw, name, "alice")
    assert table.get_item(Key={"pk": "alice", "sk": "profile"})["Item"] == alice
    with pytest.raises(raw.exceptions.ConditionalCheckFailedException):
        table.put_item(Item=alice, ConditionExpression=Attr("pk").not_exists())
    table.update_item(
        Key={"pk": "alice", "sk": "profile"},
        UpdateExpression="SET #c = #c + :one",
        ExpressionAttributeNames={"#c": "counter"},
        ExpressionAttributeValues={":one": Decimal(1)},
        ConditionExpression=Attr("version").eq(1) & Attr("dept").eq("eng"),
    )
    for i in range(5):
        table.put_item(Item=_person(f"bob{i}", dept="ops"))
    found = table.query(IndexName="by-email", KeyConditionExpression=Key("email").eq("bob3@example.com"))
    assert found["Items"] == [_person("bob3", dept="ops")] and found["Count"] == 1
    ops = table.scan(FilterExpression=Attr("dept").eq("ops") & Attr("email").is_in(["bob1@example.com", "x"]))
    assert ops["Items"] == [_person("bob1", dept="ops")]
    by_key = table.query(KeyConditionExpression=Key("pk").eq("alice") & Key("sk").begins_with("pro"))
    assert by_key["Items"] == [{**alice, "counter": Decimal(1)}]
    old = table.delete_item(Key={"pk": "alice", "sk": "profile"}, ReturnValues="ALL_OLD")["Attributes"]
    assert old == {**alice, "counter": Decimal(1)}
    assert "Item" not in table.get_item(Key={"pk": "alice", "sk": "profile"})
    assert table.name == name and table.table_status == "ACTIVE"  # delegated attribute


def test_table_refusals_send_nothing(env: Any) -> None:
    aws, name, _raw, resource = env
    table = _encrypted(resource, name)
    aws.reset()
    with pytest.raises(RequestRefusedError):
        table.update_item(
            Key={"pk": "a", "sk": "profile"},
            UpdateExpression="SET dept = :d",
            ExpressionAttributeValues={":d": "x"},
        )
    with pytest.raises(RequestRefusedError):
        table.put_item(Item=_person("a"), ConditionExpression=Attr("ssn").exists() & Attr("email").eq("x"))
    with pytest.raises(RequestRefusedError):
        table.scan(FilterExpression=Attr("ssn").eq(b"x"))
    with pytest.raises(RequestRefusedError):
        table.query(KeyConditionExpression=Key("pk").eq("a"), QueryFilter={})
    assert dynamodb_requests(aws) == []


def test_batch_writer_encrypts(env: Any) -> None:
    aws, name, raw, resource = env
    table = _encrypted(resource, name)
    people = [_person(f"w{i:02d}") for i in range(30)]
    with table.batch_writer() as writer:
        for item in people:
            writer.put_item(Item=item)
        writer.delete_item(Key={"pk": "w00", "sk": "profile"})
    assert "BatchWriteItem" in dynamodb_requests(aws)
    for item in people[1:4]:
        _assert_stored_encrypted(raw, name, item["pk"])
    scanned = table.scan()["Items"]
    assert sorted(scanned, key=lambda i: i["pk"]) == people[1:]


def test_resource_batches_and_tables(env: Any) -> None:
    aws, name, raw, resource = env
    plain = unique("plain")
    create_table(aws, plain)
    encrypted = EncryptedResource(resource, {name: config("table", beacons=[StandardBeacon("email", 3)])})
    people = [_person(f"r{i}") for i in range(4)]
    response = encrypted.batch_write_item(
        RequestItems={
            name: [{"PutRequest": {"Item": item}} for item in people],
            plain: [{"PutRequest": {"Item": {"pk": "x", "sk": "y", "email": "plain@example.com"}}}],
        }
    )
    assert not response.get("UnprocessedItems")
    for item in people:
        _assert_stored_encrypted(raw, name, item["pk"])
    assert raw.get_item(TableName=plain, Key={"pk": {"S": "x"}, "sk": {"S": "y"}})["Item"]["email"] == {
        "S": "plain@example.com"
    }
    got = encrypted.batch_get_item(
        RequestItems={
            name: {"Keys": [{"pk": item["pk"], "sk": "profile"} for item in people]},
            plain: {"Keys": [{"pk": "x", "sk": "y"}]},
        }
    )
    assert sorted(got["Responses"][name], key=lambda i: i["pk"]) == people
    assert got["Responses"][plain] == [{"pk": "x", "sk": "y", "email": "plain@example.com"}]
    table = encrypted.Table(name)
    assert isinstance(table, EncryptedTable)
    assert table.query(IndexName="by-email", KeyConditionExpression=Key("email").eq("r2@example.com"))[
        "Items"
    ] == [people[2]]
    assert not isinstance(encrypted.Table(plain), EncryptedTable)
    assert encrypted.meta.service_name == "dynamodb"
    aws.reset()
    with pytest.raises(RequestRefusedError):
        encrypted.batch_get_item(
            RequestItems={name: {"Keys": [{"pk": "r1", "sk": "profile"}], "AttributesToGet": ["pk"]}}
        )
    with pytest.raises(RequestRefusedError):
        encrypted.batch_write_item(
            RequestItems={name: [{"PutRequest": {"Item": {**people[0], "aws_dbe_b_x": "1"}}}]}
        )
    assert dynamodb_requests(aws) == []
