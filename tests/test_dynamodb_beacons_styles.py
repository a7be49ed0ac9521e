"""Beacon styles (beacons.md#beacon-style-initialization): PartOnly, Shared, AsSet and SharedSet on the
local DynamoDB, with their stored values checked against the spec and their invalid configurations."""

from __future__ import annotations

from typing import Any

import pytest

from kmsenvelope.dynamodb import (
    AsSet,
    CompoundBeacon,
    EncryptedClient,
    PartOnly,
    RequestRefusedError,
    Shared,
    SharedSet,
    StandardBeacon,
)
from kmsenvelope.errors import ConfigurationError, KmsEnvelopeError
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import ACTIONS, config, create_table, dynamodb_requests, person, unique
from .test_dynamodb_beacons import independent_beacon

STYLE_ACTIONS = {
    **ACTIONS,
    "backup_email": "ENCRYPT_AND_SIGN",
    "tags": "ENCRYPT_AND_SIGN",
    "old_tags": "ENCRYPT_AND_SIGN",
}
TAGS = [f"t{i}" for i in range(10)]
BEACONS = [
    StandardBeacon("email", 3),
    StandardBeacon("backup_email", 3, style=Shared("email")),
    StandardBeacon("ssn", 3, style=PartOnly()),
    CompoundBeacon("dept_ssn", "|", encrypted_parts=[("ssn", "S-")], signed_parts=[("dept", "D-")]),
    StandardBeacon("tags", 3, style=AsSet()),
    StandardBeacon("old_tags", 3, style=SharedSet("tags")),
]


def _person(i: int) -> dict[str, Any]:
    tags = sorted({TAGS[i % 10], TAGS[(i * 3) % 10], TAGS[(i + 5) % 10]})
    return person(
        f"s{i:02d}",
        dept={"S": "eng" if i % 2 else "ops"},
        backup_email={"S": f"s{(i + 1) % 16:02d}@example.com"},
        tags={"SS": tags},
        old_tags={"SS": [TAGS[(i + 1) % 10]]},
    )


PEOPLE = [_person(i) for i in range(16)]


def _pks(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["pk"]["S"] for item in items)


@pytest.fixture
def env(local_aws: LocalAws) -> tuple[LocalAws, str, Any, EncryptedClient]:
    name = unique("styles")
    raw = create_table(local_aws, name, indexes=[("by-dept-ssn", "dept", "aws_dbe_b_dept_ssn")])
    client = EncryptedClient(raw, {name: config("styles", actions=STYLE_ACTIONS, beacons=BEACONS)})
    client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": item}} for item in PEOPLE]})
    local_aws.reset()
    return local_aws, name, raw, client


def _stored(raw: Any, name: str, i: int) -> dict[str, Any]:
    key = {"pk": PEOPLE[i]["pk"], "sk": PEOPLE[i]["sk"]}
    return raw.get_item(TableName=name, Key=key)["Item"]  # type: ignore[no-any-return]


def test_stored_values_follow_each_style(env: Any) -> None:
    _aws, name, raw, client = env
    stored = _stored(raw, name, 4)
    # PartOnly: no beacon of its own, only inside the compound beacon.
    assert "aws_dbe_b_ssn" not in stored
    assert stored["aws_dbe_b_dept_ssn"] == {"S": "D-ops|S-" + independent_beacon("ssn", b"ssn-of-s04", 3)}
    # Shared: computed with the key of "email", so equal values give equal beacons.
    assert stored["aws_dbe_b_backup_email"] == {"S": independent_beacon("email", b"s05@example.com", 3)}
    assert stored["aws_dbe_b_backup_email"] == _stored(raw, name, 5)["aws_dbe_b_email"]
    # AsSet: a string set of the members' beacons, without duplicates.
    expected = {independent_beacon("tags", t.encode(), 3) for t in PEOPLE[4]["tags"]["SS"]}
    assert set(stored["aws_dbe_b_tags"]["SS"]) == expected
    assert len(stored["aws_dbe_b_tags"]["SS"]) == len(expected)
    # SharedSet: a set, keyed like "tags".
    assert stored["aws_dbe_b_old_tags"] == {"SS": [independent_beacon("tags", b"t5", 3)]}
    assert (
        client.get_item(TableName=name, Key={"pk": PEOPLE[4]["pk"], "sk": PEOPLE[4]["sk"]})["Item"]
        == PEOPLE[4]
    )


def test_shared_beacon_query(env: Any) -> None:
    _aws, name, _raw, client = env
    for i in range(0, 16, 3):
        value = {"S": f"s{i:02d}@example.com"}
        found = client.scan(
            TableName=name, FilterExpression="backup_email = :e", ExpressionAttributeValues={":e": value}
        )
        assert _pks(found["Items"]) == [f"s{(i - 1) % 16:02d}"]


def test_part_only_beacon_is_searched_through_its_compound(env: Any) -> None:
    aws, name, _raw, client = env
    for i in (1, 6, 11):
        dept = PEOPLE[i]["dept"]
        found = client.query(
            TableName=name,
            IndexName="by-dept-ssn",
            KeyConditionExpression="dept = :d AND dept_ssn = :v",
            ExpressionAttributeValues={":d": dept, ":v": {"S": f"D-{dept['S']}|S-ssn-of-s{i:02d}"}},
        )
        assert _pks(found["Items"]) == [f"s{i:02d}"]
    aws.reset()
    with pytest.raises(RequestRefusedError, match="PartOnly"):
        client.scan(TableName=name, FilterExpression="ssn = :v", ExpressionAttributeValues={":v": {"S": "x"}})
    with pytest.raises(RequestRefusedError, match="PartOnly"):
        client.query(
            TableName=name,
            IndexName="by-dept-ssn",
            KeyConditionExpression="dept = :d",
            FilterExpression="ssn IN (:v, :w)",
            ExpressionAttributeValues={":d": {"S": "eng"}, ":v": {"S": "x"}, ":w": {"S": "y"}},
        )
    # Its attribute is never written, so attribute_exists() would silently find nothing.
    for function in ("attribute_exists", "attribute_not_exists"):
        with pytest.raises(RequestRefusedError, match="PartOnly"):
            client.scan(TableName=name, FilterExpression=f"{function}(ssn)")
    assert dynamodb_requests(aws) == []
    found = client.scan(TableName=name, FilterExpression="attribute_exists(dept_ssn)")
    assert _pks(found["Items"]) == _pks(PEOPLE)


def test_set_beacons_answer_contains_exactly(env: Any) -> None:
    aws, name, raw, client = env
    server_total = true_total = 0
    for tag in TAGS:
        found = client.scan(
            TableName=name,
            FilterExpression="contains(tags, :t)",
            ExpressionAttributeValues={":t": {"S": tag}},
        )
        expected = [p for p in PEOPLE if tag in p["tags"]["SS"]]
        assert _pks(found["Items"]) == _pks(expected) and found["Count"] == len(expected)
        beacon = {"S": independent_beacon("tags", tag.encode(), 3)}
        sent = aws.requests("Scan", service="dynamodb")[-1].params
        assert beacon in sent["ExpressionAttributeValues"].values() and f"'{tag}'" not in str(sent)
        server = raw.scan(
            TableName=name,
            FilterExpression="contains(aws_dbe_b_tags, :b)",
            ExpressionAttributeValues={":b": beacon},
        )
        server_total += server["Count"]
        true_total += len(expected)
    assert server_total > true_total  # 3-bit beacons collided; the client dropped the extras
    shared = client.scan(
        TableName=name,
        FilterExpression="contains(old_tags, :t)",
        ExpressionAttributeValues={":t": {"S": "t7"}},
    )
    assert _pks(shared["Items"]) == _pks([p for p in PEOPLE if p["old_tags"]["SS"] == ["t7"]])
    whole = client.scan(
        TableName=name, FilterExpression="tags = :s", ExpressionAttributeValues={":s": PEOPLE[2]["tags"]}
    )
    assert _pks(whole["Items"]) == _pks(
        [p for p in PEOPLE if set(p["tags"]["SS"]) == set(PEOPLE[2]["tags"]["SS"])]
    )


def test_set_beacon_refusals(env: Any) -> None:
    aws, name, _raw, client = env
    with pytest.raises(KmsEnvelopeError, match="AsSet"):
        client.put_item(TableName=name, Item=person("bad", tags={"S": "t1"}))
    for expression in ("tags <> :v", "begins_with(tags, :v)", "contains(email, :v)"):
        with pytest.raises(RequestRefusedError, match="cannot be used with standard beacon"):
            client.scan(
                TableName=name, FilterExpression=expression, ExpressionAttributeValues={":v": {"S": "t1"}}
            )
    # A set beacon compares with members (S, N, B) or sets; GetBeaconValue fails on anything else.
    for value in ({"BOOL": True}, {"NULL": True}, {"L": [{"S": "t1"}]}, {"M": {"t1": {"S": "x"}}}):
        for expression in ("tags = :v", "contains(old_tags, :v)"):
            with pytest.raises(RequestRefusedError, match="can only be compared with S, N, B, SS, NS or BS"):
                client.scan(
                    TableName=name, FilterExpression=expression, ExpressionAttributeValues={":v": value}
                )
    assert dynamodb_requests(aws) == []


def test_shared_beacons_use_the_other_key_only() -> None:
    info = config("styles", actions=STYLE_ACTIONS, beacons=BEACONS)._search
    # Shared and SharedSet beacons have no key of their own: only the beacons they share with do.
    assert sorted(info.hmac_keys()) == ["email", "ssn", "tags"]


BAD: dict[str, Any] = {
    "PartOnly not used by a compound beacon": lambda: [StandardBeacon("email", 8, style=PartOnly())],
    "shared with an undefined beacon": lambda: [StandardBeacon("email", 8, style=Shared("nope"))],
    "shared with itself": lambda: [StandardBeacon("email", 8, style=Shared("email"))],
    "share chain": lambda: [
        StandardBeacon("email", 8),
        StandardBeacon("backup_email", 8, style=Shared("email")),
        StandardBeacon("ssn", 8, style=Shared("backup_email")),
    ],
    "shared with a different length": lambda: [
        StandardBeacon("email", 8),
        StandardBeacon("backup_email", 9, style=Shared("email")),
    ],
    "shared with a compound beacon": lambda: [
        StandardBeacon("email", 8),
        StandardBeacon("backup_email", 8, style=Shared("c")),
        CompoundBeacon("c", "|", encrypted_parts=[("email", "E-")]),
    ],
    "SharedSet with an undefined beacon": lambda: [StandardBeacon("tags", 8, style=SharedSet("nope"))],
    "set beacon as a compound part": lambda: [
        StandardBeacon("tags", 8, style=AsSet()),
        CompoundBeacon("c", "|", encrypted_parts=[("tags", "T-")]),
    ],
    "SharedSet beacon as a compound part": lambda: [
        StandardBeacon("tags", 8),
        StandardBeacon("old_tags", 8, style=SharedSet("tags")),
        CompoundBeacon("c", "|", encrypted_parts=[("old_tags", "T-")]),
    ],
}


REASON = {
    "PartOnly not used by a compound beacon": "PartOnly beacon 'email' is not used by any compound beacon",
    "shared with an undefined beacon": "shared with 'nope', which is not a standard beacon",
    "shared with itself": "beacon 'email' is shared with itself",
    "share chain": "shared with 'backup_email', which is itself shared: no share chains",
    "shared with a different length": "lengths must be equal",
    "shared with a compound beacon": "shared with 'c', which is a compound beacon",
    "SharedSet with an undefined beacon": "shared with 'nope', which is not a standard beacon",
    "set beacon as a compound part": "'tags' is a set beacon and cannot be part of a compound beacon",
    "SharedSet beacon as a compound part": "'old_tags' is a set beacon and cannot be part of a compound",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_style_configurations(case: str) -> None:
    assert set(REASON) == set(BAD)
    with pytest.raises(ConfigurationError, match=REASON[case]):
        config("bad", actions=STYLE_ACTIONS, beacons=BAD[case]())


@pytest.mark.parametrize("style", ["AsSet", Shared(""), SharedSet(3), object()])  # type: ignore[arg-type]
def test_style_must_be_a_style_object(style: Any) -> None:
    with pytest.raises(ConfigurationError):
        StandardBeacon("email", 8, style=style)


def test_valid_shared_and_part_only_configuration_is_accepted() -> None:
    beacons = [
        StandardBeacon("email", 8, style=PartOnly()),
        StandardBeacon("backup_email", 8, style=Shared("email")),  # sharing a PartOnly beacon's key is fine
        CompoundBeacon("c", "|", encrypted_parts=[("email", "E-")]),
    ]
    assert config("ok", actions=STYLE_ACTIONS, beacons=beacons)._search is not None
