"""ProjectionExpression on encrypted tables, against the local moto DynamoDB: every read operation
fetches what decryption needs and returns exactly the projected plaintext."""

from __future__ import annotations

from typing import Any

import pytest

from kmsenvelope.dynamodb import Action, EncryptedClient, EncryptedResource, EncryptedTable, StandardBeacon
from kmsenvelope.dynamodb.projection import project
from kmsenvelope.errors import MalformedInputError
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import ACTIONS, config, create_table, dynamodb_requests, person, unique

# Reserved words ("data", "status") and a name that needs a placeholder ("x-tags").
EXTRA = {"data": Action.ENCRYPT_AND_SIGN, "status": Action.SIGN_ONLY, "x-tags": Action.ENCRYPT_AND_SIGN}
BEACONS = [StandardBeacon("email", 2)]  # four beacon values: collisions are certain


def _item(pk: str, **extra: Any) -> dict[str, Any]:
    return person(
        pk,
        data={"M": {"zip": {"S": f"z-{pk}"}, "lines": {"L": [{"S": "l0"}, {"S": "l1"}, {"S": "l2"}]}}},
        status={"S": "active"},
        **{"x-tags": {"L": [{"S": "t0"}, {"M": {"k": {"S": pk}}}]}},
        **extra,
    )


PEOPLE = [_item(f"p{i:02d}", note={"S": "even" if i % 2 == 0 else "odd"}) for i in range(16)]


@pytest.fixture
def env(local_aws: LocalAws) -> tuple[LocalAws, str, Any, EncryptedClient]:
    name = unique("projection")
    raw = create_table(local_aws, name, indexes=[("by-email", "aws_dbe_b_email", None)])
    table_config = config("projection", actions={**ACTIONS, **EXTRA}, beacons=BEACONS)
    client = EncryptedClient(raw, {name: table_config})
    client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": item}} for item in PEOPLE]})
    local_aws.reset()
    return local_aws, name, raw, client


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


GET_CASES: list[tuple[str, dict[str, str] | None, list[str]]] = [
    ("dept, version", None, ["dept", "version"]),  # signed plaintext
    ("email, ssn", None, ["email", "ssn"]),  # encrypted
    ("card.#n, #d.#z", {"#n": "number", "#d": "data", "#z": "zip"}, ["card", "data"]),  # into encrypted maps
    ("#d.lines[2], #d.lines[0], #t[1].k", {"#d": "data", "#t": "x-tags"}, ["data", "x-tags"]),  # lists
    ("#s, pk", {"#s": "status"}, ["status", "pk"]),  # reserved word
    ("note", None, ["note"]),  # unsigned, alone
    ("#c, nothing, card.nothing", {"#c": "counter"}, ["counter"]),  # missing paths are omitted
]


@pytest.mark.parametrize(("expression", "names", "tops"), GET_CASES)
def test_get_item_returns_exactly_the_projection(
    env: Any, expression: str, names: dict[str, str] | None, tops: list[str]
) -> None:
    aws, name, raw, client = env
    target = PEOPLE[4]
    extra = {"ExpressionAttributeNames": names} if names else {}
    request = {"TableName": name, "Key": _key(target), "ProjectionExpression": expression, **extra}
    got = client.get_item(**request)["Item"]
    assert got == project(target, expression, names) and sorted(got) == sorted(tops)
    assert request["ProjectionExpression"] == expression and request.get("ExpressionAttributeNames") == names
    # What was sent: a projection a plain client can use, showing only ciphertext of encrypted data.
    sent = aws.requests("GetItem", service="dynamodb")[0].params
    stored = raw.get_item(**sent)["Item"]
    assert {"aws_dbe_head", "aws_dbe_foot", "email", "ssn", "card", "data", "x-tags", "status"} <= set(stored)
    assert "aws_dbe_b_email" not in stored
    for secret in ("email", "ssn", "card", "data", "x-tags"):
        assert set(stored[secret]) == {"B"}
    assert target["pk"]["S"].encode() not in stored["email"]["B"]


def test_item_without_the_projected_attributes(env: Any) -> None:
    _aws, name, _raw, client = env
    got = client.get_item(TableName=name, Key=_key(PEOPLE[1]), ProjectionExpression="nothing.at[0]")
    assert got["Item"] == {}
    missing = client.get_item(
        TableName=name, Key={"pk": {"S": "none"}, "sk": {"S": "x"}}, ProjectionExpression="pk"
    )
    assert "Item" not in missing


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"ProjectionExpression": "card, card.number"}, "overlap"),
        ({"ProjectionExpression": "email", "Select": "COUNT"}, "SPECIFIC_ATTRIBUTES"),
        ({"ProjectionExpression": "email", "Select": "ALL_PROJECTED_ATTRIBUTES"}, "SPECIFIC_ATTRIBUTES"),
        ({"ProjectionExpression": "size"}, "ExpressionAttributeNames"),
        ({"ProjectionExpression": "#missing"}, "not defined"),
        ({"ProjectionExpression": ""}, "empty"),
    ],
)
def test_projections_that_cannot_be_honoured_send_nothing(
    env: Any, params: dict[str, Any], error: str
) -> None:
    aws, name, _raw, client = env
    key = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p00"}}}
    with pytest.raises(MalformedInputError, match=error):
        client.get_item(TableName=name, Key=_key(PEOPLE[0]), **params)
    with pytest.raises(MalformedInputError, match=error):
        client.query(TableName=name, **key, **params)
    with pytest.raises(MalformedInputError, match=error):
        client.scan(TableName=name, **params)
    with pytest.raises(MalformedInputError, match=error):
        client.get_paginator("scan").paginate(TableName=name, **params)
    assert dynamodb_requests(aws) == []


def test_bare_reserved_word_is_refused_by_dynamodb_as_without_encryption(env: Any) -> None:
    _aws, name, raw, client = env
    with pytest.raises(raw.exceptions.ClientError, match="reserved keyword"):
        client.get_item(TableName=name, Key=_key(PEOPLE[0]), ProjectionExpression="status")


def test_query_and_scan_by_beacon_with_projection(env: Any) -> None:
    aws, name, raw, client = env
    target = PEOPLE[5]
    beacon = raw.get_item(TableName=name, Key=_key(target))["Item"]["aws_dbe_b_email"]
    colliding = raw.scan(
        TableName=name, FilterExpression="aws_dbe_b_email = :b", ExpressionAttributeValues={":b": beacon}
    )["Items"]
    assert len(colliding) > 1  # the server alone would return false positives
    # The filter reads an unsigned attribute the projection leaves out: it must still be fetched.
    params = {
        "FilterExpression": "#n = :odd",
        "ProjectionExpression": "#d.#z, email",
        "ExpressionAttributeNames": {"#n": "note", "#d": "data", "#z": "zip"},
        "ExpressionAttributeValues": {":e": target["email"], ":odd": {"S": "odd"}},
    }
    expected = [{"data": {"M": {"zip": target["data"]["M"]["zip"]}}, "email": target["email"]}]
    queried = client.query(
        TableName=name, IndexName="by-email", KeyConditionExpression="email = :e", **params
    )
    assert queried["Items"] == expected and queried["Count"] == 1
    scan_params = {**params, "FilterExpression": "email = :e AND #n = :odd"}
    scanned = client.scan(TableName=name, **scan_params)
    assert scanned["Items"] == expected and scanned["Count"] == 1
    sent = aws.requests("Query", service="dynamodb")[0].params
    assert "note" in sent["ExpressionAttributeNames"].values()
    assert target["email"]["S"] not in str(sent)
    # No match among the odd ones: an even item is projected to nothing, not returned.
    even = {**params, "ExpressionAttributeValues": {":e": PEOPLE[4]["email"], ":odd": {"S": "odd"}}}
    assert (
        client.query(TableName=name, IndexName="by-email", KeyConditionExpression="email = :e", **even)[
            "Items"
        ]
        == []
    )


def test_paginator_with_projection(env: Any) -> None:
    _aws, name, _raw, client = env
    pages = list(
        client.get_paginator("scan").paginate(
            TableName=name,
            ProjectionExpression="pk, ssn, #t[0]",
            ExpressionAttributeNames={"#t": "x-tags"},
            PaginationConfig={"PageSize": 5},
        )
    )
    assert len(pages) >= 4
    items = [item for page in pages for item in page["Items"]]
    assert sorted(items, key=lambda i: i["pk"]["S"]) == [
        {"pk": p["pk"], "ssn": p["ssn"], "x-tags": {"L": [{"S": "t0"}]}} for p in PEOPLE
    ]
    result = (
        client.get_paginator("query")
        .paginate(
            TableName=name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "p03"}},
            ProjectionExpression="card.cvv",
        )
        .build_full_result()
    )
    assert result["Items"] == [{"card": {"M": {"cvv": {"N": "123"}}}}]


def test_batch_get_and_transact_get_with_projections(env: Any) -> None:
    aws, name, raw, client = env
    plain = unique("plain")
    create_table(aws, plain)
    raw.put_item(TableName=plain, Item={"pk": {"S": "x"}, "sk": {"S": "y"}, "v": {"M": {"w": {"S": "1"}}}})
    request = {
        name: {
            "Keys": [_key(p) for p in PEOPLE[:3]],
            "ProjectionExpression": "email, #d.lines[1]",
            "ExpressionAttributeNames": {"#d": "data"},
        },
        plain: {"Keys": [{"pk": {"S": "x"}, "sk": {"S": "y"}}], "ProjectionExpression": "v.w"},
    }
    got = client.batch_get_item(RequestItems=request)["Responses"]
    assert sorted(got[name], key=lambda i: i["email"]["S"]) == [
        {"email": p["email"], "data": {"M": {"lines": {"L": [{"S": "l1"}]}}}} for p in PEOPLE[:3]
    ]
    assert got[plain] == [{"v": {"M": {"w": {"S": "1"}}}}]
    sent = aws.requests("BatchGetItem", service="dynamodb")[0].params["RequestItems"]
    assert sent[plain] == request[plain]  # unconfigured tables pass through
    assert "aws_dbe_head" in sent[name]["ExpressionAttributeNames"].values()
    transact = client.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": name, "Key": _key(PEOPLE[7]), "ProjectionExpression": "ssn"}},
            {"Get": {"TableName": name, "Key": _key(PEOPLE[8])}},
            {
                "Get": {
                    "TableName": name,
                    "Key": _key(PEOPLE[9]),
                    "ProjectionExpression": "#t[1].k, sk",
                    "ExpressionAttributeNames": {"#t": "x-tags"},
                }
            },
            {
                "Get": {
                    "TableName": plain,
                    "Key": {"pk": {"S": "x"}, "sk": {"S": "y"}},
                    "ProjectionExpression": "sk",
                }
            },
        ]
    )["Responses"]
    assert [r["Item"] for r in transact[:3]] == [
        {"ssn": PEOPLE[7]["ssn"]},
        PEOPLE[8],
        {"x-tags": {"L": [{"M": {"k": {"S": "p09"}}}]}, "sk": PEOPLE[9]["sk"]},
    ]
    # moto ignores ProjectionExpression in TransactGetItems (DynamoDB applies it): the unconfigured
    # table's Get is only checked to be sent as the caller wrote it.
    gets = aws.requests("TransactGetItems", service="dynamodb")[0].params["TransactItems"]
    assert gets[3]["Get"]["ProjectionExpression"] == "sk" and "ExpressionAttributeNames" not in gets[3]["Get"]
    assert "aws_dbe_foot" in gets[2]["Get"]["ExpressionAttributeNames"].values()


def test_unprocessed_keys_come_back_with_the_callers_projection() -> None:
    class Server:
        def batch_get_item(self, **params: Any) -> dict[str, Any]:
            return {"Responses": {}, "UnprocessedKeys": params["RequestItems"]}

    client = EncryptedClient(Server(), {"t": config("t", beacons=BEACONS)})
    mine = {
        "Keys": [_key(PEOPLE[0])],
        "ProjectionExpression": "a.#b",
        "ExpressionAttributeNames": {"#b": "b"},
    }
    response = client.batch_get_item(RequestItems={"t": mine})
    assert response["UnprocessedKeys"] == {"t": mine}


def test_resource_table_and_batch_with_projections(env: Any) -> None:
    aws, name, _raw, _client = env
    resource = aws.session.resource("dynamodb", region_name="us-east-1", endpoint_url=aws.endpoint_url)
    table_config = config("projection", actions={**ACTIONS, **EXTRA}, beacons=BEACONS)
    table = EncryptedTable(resource.Table(name), table_config)
    key = {"pk": "p02", "sk": "profile"}
    assert table.get_item(Key=key, ProjectionExpression="card.#n", ExpressionAttributeNames={"#n": "number"})[
        "Item"
    ] == {"card": {"number": "4111-p02"}}
    from boto3.dynamodb.conditions import Key

    queried = table.query(
        IndexName="by-email",
        KeyConditionExpression=Key("email").eq("p02@example.com"),
        ProjectionExpression="ssn",
    )
    assert queried["Items"] == [{"ssn": "ssn-of-p02"}]
    encrypted = EncryptedResource(resource, {name: table_config})
    got = encrypted.batch_get_item(
        RequestItems={
            name: {
                "Keys": [key],
                "ProjectionExpression": "#d.#z",
                "ExpressionAttributeNames": {"#d": "data", "#z": "zip"},
            }
        }
    )
    assert got["Responses"][name] == [{"data": {"zip": "z-p02"}}]


def test_unused_caller_placeholders_are_still_for_dynamodb_to_reject(env: Any) -> None:
    aws, name, raw, client = env
    beacon_query = {
        "TableName": name,
        "IndexName": "by-email",
        "KeyConditionExpression": "#e = :e",
        "ProjectionExpression": "pk",
        "ExpressionAttributeValues": {":e": PEOPLE[0]["email"]},
    }
    # "#spare" is unused by the caller: DynamoDB's error, as without encryption ("#e" and ":e",
    # left unused by the beacon rewrite, are dropped and do not cause it).
    with pytest.raises(raw.exceptions.ClientError, match=r"unused.*#spare"):
        client.query(**beacon_query, ExpressionAttributeNames={"#e": "email", "#spare": "x"})
    sent = aws.requests("Query", service="dynamodb")[0].params
    assert "#e" not in sent["ExpressionAttributeNames"] and ":e" not in sent["ExpressionAttributeValues"]
    ok = client.query(**{**beacon_query, "ExpressionAttributeNames": {"#e": "email"}})
    assert ok["Items"] == [{"pk": PEOPLE[0]["pk"]}]
