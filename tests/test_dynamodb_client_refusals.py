"""What an encrypted table refuses, and that nothing reaches DynamoDB when it does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from kmsenvelope.dynamodb import EncryptedClient, RequestRefusedError
from kmsenvelope.errors import PolicyError
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import config, create_table, dynamodb_requests, person, unique

KEY = {"pk": {"S": "p"}, "sk": {"S": "profile"}}
V = {":v": {"S": "x"}}

Call = Callable[[EncryptedClient, str], Any]

REFUSED: dict[str, Call] = {
    "partiql select": lambda c, t: c.execute_statement(Statement=f'SELECT * FROM "{t}" WHERE pk = ?'),
    "partiql bare name": lambda c, t: c.execute_statement(Statement=f"DELETE FROM {t} WHERE pk = 'p'"),
    "partiql insert": lambda c, t: c.execute_statement(Statement=f"INSERT INTO \"{t}\" VALUE {{'pk': 'p'}}"),
    "partiql batch": lambda c, t: c.batch_execute_statement(
        Statements=[{"Statement": 'SELECT * FROM "unrelated"'}, {"Statement": f'SELECT * FROM "{t}"'}]
    ),
    "partiql transaction": lambda c, t: c.execute_transaction(
        TransactStatements=[{"Statement": f"UPDATE \"{t}\" SET note = 1 WHERE pk = 'p'"}]
    ),
    "Expected": lambda c, t: c.put_item(TableName=t, Item=person("p"), Expected={"pk": {"Exists": False}}),
    "AttributesToGet": lambda c, t: c.get_item(TableName=t, Key=KEY, AttributesToGet=["pk"]),
    "ScanFilter": lambda c, t: c.scan(
        TableName=t, ScanFilter={"dept": {"AttributeValueList": [{"S": "x"}], "ComparisonOperator": "EQ"}}
    ),
    "QueryFilter": lambda c, t: c.query(
        TableName=t,
        KeyConditionExpression="pk = :v",
        ExpressionAttributeValues=V,
        QueryFilter={"dept": {"AttributeValueList": [{"S": "x"}], "ComparisonOperator": "EQ"}},
    ),
    "KeyConditions": lambda c, t: c.query(
        TableName=t, KeyConditions={"pk": {"AttributeValueList": [{"S": "p"}], "ComparisonOperator": "EQ"}}
    ),
    "AttributeUpdates": lambda c, t: c.update_item(
        TableName=t, Key=KEY, AttributeUpdates={"note": {"Value": {"S": "x"}, "Action": "PUT"}}
    ),
    "ConditionalOperator": lambda c, t: c.delete_item(
        TableName=t, Key=KEY, ConditionalOperator="AND", Expected={"pk": {"Exists": True}}
    ),
    "batch AttributesToGet": lambda c, t: c.batch_get_item(
        RequestItems={t: {"Keys": [KEY], "AttributesToGet": ["pk"]}}
    ),
    "update signed attribute": lambda c, t: c.update_item(
        TableName=t, Key=KEY, UpdateExpression="SET version = :v", ExpressionAttributeValues=V
    ),
    "update encrypted attribute via name": lambda c, t: c.update_item(
        TableName=t,
        Key=KEY,
        UpdateExpression="SET note = :v REMOVE #e",
        ExpressionAttributeNames={"#e": "email"},
        ExpressionAttributeValues=V,
    ),
    "update reads a signed attribute": lambda c, t: c.update_item(
        TableName=t, Key=KEY, UpdateExpression="SET note = dept"
    ),
    "update unconfigured attribute": lambda c, t: c.update_item(
        TableName=t, Key=KEY, UpdateExpression="SET stray = :v", ExpressionAttributeValues=V
    ),
    "update without expression": lambda c, t: c.update_item(TableName=t, Key=KEY),
    "transaction update of signed attribute": lambda c, t: c.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": t, "Item": person("ok")}},
            {
                "Update": {
                    "TableName": t,
                    "Key": KEY,
                    "UpdateExpression": "SET dept = :v",
                    "ExpressionAttributeValues": V,
                }
            },
        ]
    ),
    "condition on encrypted attribute": lambda c, t: c.put_item(
        TableName=t, Item=person("p"), ConditionExpression="email = :v", ExpressionAttributeValues=V
    ),
    "condition on encrypted attribute via name": lambda c, t: c.delete_item(
        TableName=t,
        Key=KEY,
        ConditionExpression="attribute_exists(pk) AND begins_with(#s, :v)",
        ExpressionAttributeNames={"#s": "ssn"},
        ExpressionAttributeValues=V,
    ),
    "condition on nested encrypted attribute": lambda c, t: c.update_item(
        TableName=t,
        Key=KEY,
        UpdateExpression="SET note = :v",
        ConditionExpression="card.cvv = :v",
        ExpressionAttributeValues=V,
    ),
    "transaction condition check on encrypted attribute": lambda c, t: c.transact_write_items(
        TransactItems=[
            {
                "ConditionCheck": {
                    "TableName": t,
                    "Key": KEY,
                    "ConditionExpression": "size(ssn) > :v",
                    "ExpressionAttributeValues": V,
                }
            }
        ]
    ),
    "filter on unbeaconed encrypted attribute": lambda c, t: c.scan(
        TableName=t, FilterExpression="dept = :v OR ssn = :v", ExpressionAttributeValues=V
    ),
    "query paginator on unbeaconed encrypted attribute": lambda c, t: c.get_paginator("query").paginate(
        TableName=t,
        KeyConditionExpression="pk = :v",
        FilterExpression="contains(email, :v)",
        ExpressionAttributeValues=V,
    ),
    "reserved attribute in item": lambda c, t: c.put_item(
        TableName=t, Item=person("p", aws_dbe_b_x={"S": "x"})
    ),
    "batch with one bad item": lambda c, t: c.batch_write_item(
        RequestItems={
            t: [
                {"PutRequest": {"Item": person("a")}},
                {"PutRequest": {"Item": {**person("b"), "stray": {"S": "x"}}}},
            ]
        }
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_before_any_request(local_aws: LocalAws, case: str) -> None:
    name = unique("refuse")
    raw = create_table(local_aws, name)
    client = EncryptedClient(raw, {name: config("refuse")})
    local_aws.reset()
    with pytest.raises(PolicyError) as info:
        REFUSED[case](client, name)
    assert dynamodb_requests(local_aws) == []
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_a_dead_endpoint(local_aws: LocalAws, case: str) -> None:
    """The same refusals with a client whose endpoint accepts no connection at all."""
    dead = local_aws.session.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(connect_timeout=0.5, retries={"max_attempts": 1}),
    )
    client = EncryptedClient(dead, {"dead-table": config("refuse")})
    with pytest.raises(PolicyError) as info:
        REFUSED[case](client, "dead-table")
    # All but the item-level encryption refusal are the wrapper's own.
    assert isinstance(info.value, RequestRefusedError) or case == "batch with one bad item"


def test_dead_endpoint_really_is_dead(local_aws: LocalAws) -> None:
    dead = local_aws.session.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(connect_timeout=0.5, retries={"max_attempts": 1}),
    )
    client = EncryptedClient(dead, {"dead-table": config("refuse")})
    with pytest.raises(EndpointConnectionError):
        client.put_item(TableName="dead-table", Item=person("p"))


def test_unconfigured_tables_pass_through(local_aws: LocalAws) -> None:
    encrypted, plain = unique("enc"), unique("plain")
    raw = create_table(local_aws, encrypted)
    create_table(local_aws, plain)
    client = EncryptedClient(raw, {encrypted: config("enc")})
    item = {
        "pk": {"S": "p"},
        "sk": {"S": "s"},
        "email": {"S": "visible@example.com"},
        "aws_dbe_x": {"S": "ok"},
    }
    client.put_item(TableName=plain, Item=item, Expected={"pk": {"Exists": False}})
    assert raw.get_item(TableName=plain, Key={"pk": {"S": "p"}, "sk": {"S": "s"}})["Item"] == item
    rows = client.execute_statement(Statement=f'SELECT * FROM "{plain}"')["Items"]
    assert rows == [item]
    client.update_item(
        TableName=plain,
        Key={"pk": {"S": "p"}, "sk": {"S": "s"}},
        UpdateExpression="SET email = :e",
        ExpressionAttributeValues={":e": {"S": "changed"}},
    )
    assert (
        client.scan(
            TableName=plain, FilterExpression="email = :e", ExpressionAttributeValues={":e": {"S": "changed"}}
        )["Count"]
        == 1
    )
