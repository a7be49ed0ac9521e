"""Beacon partitions (search-config.md 1.2.0 #beacon-partitions, ddb-get-number-of-queries.md,
ddb-support.md#filter-expressions-for-query) on the local DynamoDB: stored values per partition
against an independent HKDF/HMAC computation, one query per partition, scans, and validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest

from kmsenvelope.dynamodb import (
    BeaconVersion,
    CompoundBeacon,
    EncryptedClient,
    RequestRefusedError,
    Shared,
    StandardBeacon,
    TableConfig,
    get_number_of_queries,
    partition_queries,
)
from kmsenvelope.dynamodb.search import plan_read
from kmsenvelope.errors import ConfigurationError
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import config, create_table, person, unique
from .test_dynamodb_beacons import independent_beacon

MAXIMUM = 5
EMAIL = "same@example.com"
SSN = "same-ssn"


class ByVersion:
    """Puts item i (its ``version`` attribute) in partition i % the number of partitions."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def get_partition_number(self, item: Mapping[str, Any], number_of_partitions: int, table: str) -> int:
        self.calls.append((number_of_partitions, table))
        return int(item["version"]["N"]) % number_of_partitions


def _version(selector: Any = None, **overrides: Any) -> BeaconVersion:
    args: dict[str, Any] = {
        "compound_beacons": [
            CompoundBeacon("dept_ssn", "|", encrypted_parts=[("ssn", "S-")], signed_parts=[("dept", "D-")])
        ],
        "maximum_number_of_partitions": MAXIMUM,
        "partition_selector": selector,
    }
    args.update(overrides)
    # 32 bits: beacons of two partitions colliding would return an item from two queries.
    standard = [StandardBeacon("email", 32), StandardBeacon("ssn", 32, number_of_partitions=2)]
    return BeaconVersion(standard, **args)


PEOPLE = [
    person(
        f"p{i:02d}",
        email={"S": EMAIL},
        ssn={"S": SSN},
        dept={"S": "eng" if i % 2 else "ops"},
        version={"N": str(i)},
    )
    for i in range(20)
]
INDEXES = [("by-email", "aws_dbe_b_email", None), ("by-dept-ssn", "dept", "aws_dbe_b_dept_ssn")]


def _suffix(partition: int) -> bytes:
    """beacons.md#partition-beacon-encoding: one byte, none for partition 0."""
    return b"" if partition == 0 else bytes([partition])


CONFIGS: dict[str, TableConfig] = {}


def _pks(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["pk"]["S"] for item in items)


@pytest.fixture
def env(local_aws: LocalAws) -> tuple[str, Any, EncryptedClient, ByVersion]:
    name = unique("partitions")
    raw = create_table(local_aws, name, indexes=INDEXES)
    selector = ByVersion()
    CONFIGS[name] = config("partitions", beacons=[_version(selector)])
    client = EncryptedClient(raw, {name: CONFIGS[name]})
    client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": item}} for item in PEOPLE]})
    return name, raw, client, selector


def test_stored_beacons_follow_the_partition_rule(env: Any) -> None:
    name, raw, _client, selector = env
    assert selector.calls == [(MAXIMUM, "partitions")] * len(PEOPLE)
    stored = {item["pk"]["S"]: item for item in raw.scan(TableName=name)["Items"]}
    for i, item in enumerate(PEOPLE):
        beacons = stored[item["pk"]["S"]]
        partition = i % MAXIMUM
        email = independent_beacon("email", EMAIL.encode() + _suffix(partition), 32)
        assert beacons["aws_dbe_b_email"] == {"S": email}
        ssn = independent_beacon("ssn", SSN.encode() + _suffix(partition % 2), 32)
        assert beacons["aws_dbe_b_dept_ssn"] == {"S": f"D-{item['dept']['S']}|S-{ssn}"}
    values = {stored[p["pk"]["S"]]["aws_dbe_b_email"]["S"] for p in PEOPLE}
    assert len(values) == MAXIMUM  # one value per partition, though every email is the same


def test_partition_zero_is_the_unpartitioned_beacon(local_aws: LocalAws, env: Any) -> None:
    name, raw, _client, _selector = env
    plain_name = unique("unpartitioned")
    plain_raw = create_table(local_aws, plain_name)
    plain = BeaconVersion([StandardBeacon("email", 32), StandardBeacon("ssn", 32)])
    EncryptedClient(plain_raw, {plain_name: config("partitions", beacons=[plain])}).put_item(
        TableName=plain_name, Item=PEOPLE[0]
    )
    key = {"pk": PEOPLE[0]["pk"], "sk": PEOPLE[0]["sk"]}
    unpartitioned = plain_raw.get_item(TableName=plain_name, Key=key)["Item"]["aws_dbe_b_email"]
    assert raw.get_item(TableName=name, Key=key)["Item"]["aws_dbe_b_email"] == unpartitioned
    assert unpartitioned == {"S": independent_beacon("email", EMAIL.encode(), 32)}


EMAIL_QUERY = {
    "IndexName": "by-email",
    "KeyConditionExpression": "email = :e",
    "values": {":e": {"S": EMAIL}},
}
DEPT_QUERY = {
    "IndexName": "by-dept-ssn",
    "KeyConditionExpression": "dept = :d AND dept_ssn = :v",
    "values": {":d": {"S": "eng"}, ":v": {"S": f"D-eng|S-{SSN}"}},
}


def _query(name: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    request = {k: v for k, v in spec.items() if k != "values"}
    return {"TableName": name, **request, "ExpressionAttributeValues": dict(spec["values"]), **extra}


def test_one_query_per_partition_finds_every_item_once(env: Any) -> None:
    name, _raw, client, _selector = env
    query = _query(name, EMAIL_QUERY)
    found: list[str] = []
    for number, request in enumerate(partition_queries(CONFIGS[name], query)):
        items = client.query(**request)["Items"]
        assert _pks(items) == _pks([p for i, p in enumerate(PEOPLE) if i % MAXIMUM == number])
        found += _pks(items)
    assert sorted(found) == _pks(PEOPLE)
    assert ":aws_dbe_partition" not in query["ExpressionAttributeValues"]


def test_constrained_key_beacon_spreads_the_filter(env: Any) -> None:
    name, _raw, client, _selector = env
    query = _query(name, DEPT_QUERY, FilterExpression="email = :e")
    query["ExpressionAttributeValues"][":e"] = {"S": EMAIL}
    cfg = CONFIGS[name]
    assert get_number_of_queries(cfg, query) == 2  # ssn has 2 partitions
    found: list[str] = []
    for number, request in enumerate(partition_queries(cfg, query)):
        sent, _ = plan_read(cfg.actions, cfg._search, request)
        # Item partitions 0, 2, 4 (query 0) or 1, 3 (query 1): one email beacon each, OR-ed.
        assert sent["FilterExpression"].count(" OR ") == (2 if number == 0 else 1)
        assert ":aws_dbe_partition" not in sent["ExpressionAttributeValues"]
        found += _pks(client.query(**request)["Items"])
    assert sorted(found) == _pks([p for i, p in enumerate(PEOPLE) if i % 2])


def test_scan_filter_covers_every_partition(env: Any) -> None:
    name, _raw, client, _selector = env
    items = client.scan(
        TableName=name, FilterExpression="email = :e", ExpressionAttributeValues={":e": {"S": EMAIL}}
    )["Items"]
    assert _pks(items) == _pks(PEOPLE)
    with pytest.raises(RequestRefusedError, match="Scan"):
        client.scan(
            TableName=name,
            FilterExpression="email = :e",
            ExpressionAttributeValues={":e": {"S": EMAIL}, ":aws_dbe_partition": {"N": "0"}},
        )


@pytest.mark.parametrize(
    ("query", "partition", "match"),
    [
        (EMAIL_QUERY, None, "once per partition"),
        (EMAIL_QUERY, {"N": "5"}, "from 0 to 4"),
        (EMAIL_QUERY, {"S": "1"}, "integer"),
        (EMAIL_QUERY, {"N": "1.5"}, "integer"),
        (DEPT_QUERY, {"N": "2"}, "needs only 2"),  # below the maximum, not below the number of queries
    ],
)
def test_bad_query_partitions_are_refused(
    env: Any, query: dict[str, Any], partition: Any, match: str
) -> None:
    name, _raw, client, _selector = env
    request = _query(name, query)
    if partition is not None:
        request["ExpressionAttributeValues"][":aws_dbe_partition"] = partition
    with pytest.raises(RequestRefusedError, match=match):
        client.query(**request)


def test_random_selector_spreads_items_that_all_partitions_find(local_aws: LocalAws) -> None:
    name = unique("random")
    raw = create_table(local_aws, name, indexes=INDEXES)
    CONFIGS[name] = config("random", beacons=[_version()])
    client = EncryptedClient(raw, {name: CONFIGS[name]})
    client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": item}} for item in PEOPLE]})
    query: dict[str, Any] = {
        "TableName": name,
        "IndexName": "by-email",
        "KeyConditionExpression": "email = :e",
    }
    query["ExpressionAttributeValues"] = {":e": {"S": EMAIL}}
    found = [
        pk
        for request in partition_queries(CONFIGS[name], query)
        for pk in _pks(client.query(**request)["Items"])
    ]
    assert sorted(found) == _pks(PEOPLE)
    stored = {item["aws_dbe_b_email"]["S"] for item in raw.scan(TableName=name)["Items"]}
    assert 1 < len(stored) <= MAXIMUM  # 20 random draws all in one partition: about 1 in 5**19


def test_selector_out_of_range_is_refused(local_aws: LocalAws) -> None:
    class Bad:
        def get_partition_number(self, item: Mapping[str, Any], number: int, table: str) -> int:
            return number

    name = unique("badselector")
    client = EncryptedClient(create_table(local_aws, name), {name: config("bad", beacons=[_version(Bad())])})
    with pytest.raises(ConfigurationError, match="partition selector returned 5"):
        client.put_item(TableName=name, Item=PEOPLE[0])


def _queries(version: BeaconVersion, expression: str, value: str = "x") -> int:
    cfg = config("counts", beacons=[version])
    return get_number_of_queries(
        cfg, {"KeyConditionExpression": expression, "ExpressionAttributeValues": {":v": {"S": value}}}
    )


def test_number_of_queries_matches_the_reference_examples() -> None:
    # The reference's BeaconPartition tests: LCM of the beacons' partitions, at most the maximum.
    three_five = [
        StandardBeacon("email", 24, number_of_partitions=3),
        StandardBeacon("ssn", 24, number_of_partitions=5),
    ]
    both = "email = :v AND ssn = :v"
    assert _queries(BeaconVersion(three_five, maximum_number_of_partitions=16), both) == 15
    assert _queries(BeaconVersion(three_five, maximum_number_of_partitions=6), both) == 6
    five = [StandardBeacon("email", 24, number_of_partitions=5)]
    assert _queries(BeaconVersion(five, maximum_number_of_partitions=6), "email = :v") == 5
    many = [StandardBeacon("email", 24, number_of_partitions=25)]
    assert _queries(BeaconVersion(many, maximum_number_of_partitions=26), "email = :v") == 25
    inherit = BeaconVersion(
        [StandardBeacon("email", 24)], maximum_number_of_partitions=10, default_number_of_partitions=3
    )
    assert _queries(inherit, "email = :v") == 3
    assert (
        _queries(BeaconVersion([StandardBeacon("email", 24)], maximum_number_of_partitions=7), "email = :v")
        == 7
    )
    assert _queries(BeaconVersion([StandardBeacon("email", 24)]), "email = :v") == 1  # no partitions
    # Compound beacons count the standard beacons of the parts the query value has.
    compound = BeaconVersion(
        three_five,
        compound_beacons=[CompoundBeacon("both", ".", encrypted_parts=[("email", "E_"), ("ssn", "S_")])],
        maximum_number_of_partitions=16,
    )
    assert _queries(compound, "both = :v", "E_a.S_b") == 15
    assert _queries(compound, "both = :v", "E_a") == 3
    assert _queries(compound, "pk = :v") == 1  # no beacon in the key condition


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: BeaconVersion([StandardBeacon("email", 8)], default_number_of_partitions=3),
            "default_number",
        ),
        (
            lambda: BeaconVersion(
                [StandardBeacon("email", 8)], maximum_number_of_partitions=5, default_number_of_partitions=5
            ),
            "default_number",
        ),
        (
            lambda: BeaconVersion(
                [StandardBeacon("email", 8, number_of_partitions=5)], maximum_number_of_partitions=5
            ),
            "below",
        ),
        (lambda: BeaconVersion([StandardBeacon("email", 8, number_of_partitions=2)]), "below"),
        (lambda: BeaconVersion([StandardBeacon("email", 8)], maximum_number_of_partitions=255), "1 to 254"),
        (lambda: BeaconVersion([StandardBeacon("email", 8)], maximum_number_of_partitions=0), "1 to 254"),
        (lambda: BeaconVersion([StandardBeacon("email", 8)], maximum_number_of_partitions=True), "1 to 254"),
        (lambda: StandardBeacon("email", 8, number_of_partitions=0), "1 to 254"),
        (
            lambda: BeaconVersion(
                [StandardBeacon("email", 8)],
                maximum_number_of_partitions=2,
                partition_selector=cast(Any, object()),
            ),
            "get_partition_number",
        ),
    ],
)
def test_invalid_partition_configurations(make: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        make()


def test_shared_beacons_need_the_same_number_of_partitions() -> None:
    version = BeaconVersion(
        [StandardBeacon("email", 8, number_of_partitions=2), StandardBeacon("ssn", 8, style=Shared("email"))],
        maximum_number_of_partitions=4,
    )
    with pytest.raises(ConfigurationError, match="another number of partitions"):
        config("shared", beacons=[version])
    assert isinstance(config("shared", beacons=[_version()]), TableConfig)
