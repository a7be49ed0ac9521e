"""Virtual fields (virtual.md): the transforms on the reference implementation's test values, beacons
over a virtual field on the local DynamoDB, and the configurations the specification refuses."""

from __future__ import annotations

from typing import Any

import pytest

from kmsenvelope.dynamodb import (
    AsSet,
    CompoundBeacon,
    EncryptedClient,
    GetPrefix,
    GetSegment,
    GetSegments,
    GetSubstring,
    GetSuffix,
    Insert,
    Lower,
    StandardBeacon,
    Upper,
    VirtualField,
    VirtualPart,
)
from kmsenvelope.dynamodb.policy import RequestRefusedError
from kmsenvelope.dynamodb.virtual import Transform
from kmsenvelope.errors import ConfigurationError, MalformedInputError
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import ACTIONS, config, create_table, dynamodb_requests, person, unique
from .test_dynamodb_beacons import independent_beacon

MIXED = "aBcDñÑeF"
DOTTED = "1.23.456.7890"

# (transform, input, expected) from Virtual.dfy's tests in aws-database-encryption-sdk-dynamodb.
REFERENCE: list[tuple[Transform, str, str]] = [
    (Upper(), "", ""),
    (Upper(), MIXED, "ABCDñÑEF"),  # ASCII only
    (Lower(), MIXED, "abcdñÑef"),
    (Insert("_foo"), "", "_foo"),
    (Insert("_foo"), MIXED, MIXED + "_foo"),
    *[(GetPrefix(n), s, "") for n in (0, 3, -3) for s in ("",)],
    (GetPrefix(0), "a", ""),
    (GetPrefix(3), "a", "a"),
    (GetPrefix(-3), "a", ""),
    (GetPrefix(3), "abc", "abc"),
    (GetPrefix(-3), "abc", ""),
    (GetPrefix(3), MIXED, "aBc"),
    (GetPrefix(-3), MIXED, "aBcDñ"),
    (GetSuffix(0), "abc", ""),
    (GetSuffix(3), "a", "a"),
    (GetSuffix(-3), "a", ""),
    (GetSuffix(3), MIXED, "ÑeF"),
    (GetSuffix(-3), MIXED, "DñÑeF"),
    (GetSubstring(2, 4), "abcdef", "cd"),
    (GetSubstring(4, 2), "abcdef", ""),
    (GetSubstring(2, -2), "abcdef", "cd"),
    (GetSubstring(-4, 4), "abcdef", "cd"),
    (GetSubstring(-4, -2), "abcdef", "cd"),
    *[
        (GetSegment(".", i), DOTTED, want)
        for i, want in [
            (0, "1"),
            (1, "23"),
            (2, "456"),
            (3, "7890"),
            (4, ""),
            (5, ""),
            (-1, "7890"),
            (-2, "456"),
            (-3, "23"),
            (-4, "1"),
            (-5, ""),
            (-6, ""),
        ]
    ],
    (GetSegments(".", 0, 0), DOTTED, ""),
    (GetSegments(".", 1, 2), DOTTED, "23"),
    (GetSegments(".", 1, 3), DOTTED, "23.456"),
    (GetSegments(".", -3, 2), DOTTED, "23"),
    (GetSegments(".", 0, -1), DOTTED, "1.23.456"),
]


@pytest.mark.parametrize(("transform", "text", "expected"), REFERENCE)
def test_transforms_match_the_reference_implementation(
    transform: Transform, text: str, expected: str
) -> None:
    assert transform.apply(text) == expected


def test_positions_clamp_like_the_reference_code() -> None:
    # GetPos(p, n) is min(p, n-1) or max(n+p, 0): a high bound past the end stops at the last item,
    # so these differ from Python slicing (virtual.md's "just after the last item" is not what runs).
    assert GetSubstring(2, 99).apply("abcdef") == "cde"
    assert GetSubstring(-99, 2).apply("abcdef") == "ab"
    assert GetSegments(".", 1, 99).apply(DOTTED) == "23.456"
    assert GetSubstring(0, 3).apply("") == ""
    assert GetSegment(".", 0).apply("") == ""


def test_virtual_field_value_matches_the_reference_test() -> None:
    field = VirtualField(
        "myField", [VirtualPart("foo"), VirtualPart("bar", [Lower()]), VirtualPart("baz[2].florn")]
    )
    item = {
        "foo": {"N": "1.23"},
        "bar": {"N": "BarString"},  # numbers are taken as written
        "baz": {"L": [{"N": "1.23"}, {"N": "BarString"}, {"M": {"florn": {"S": "FlornString"}}}]},
    }
    assert field.evaluate(item) == "1.23barstringFlornString"
    assert field.evaluate({k: v for k, v in item.items() if k != "bar"}) is None
    assert VirtualField("b", ["flag", "nothing"]).evaluate(
        {"flag": {"BOOL": True}, "nothing": {"NULL": True}}
    ) == ("truenull")
    with pytest.raises(MalformedInputError):
        VirtualField("m", ["baz"]).evaluate(item)


NAME_ACTIONS = {**ACTIONS, "first": "ENCRYPT_AND_SIGN", "last": "ENCRYPT_AND_SIGN"}
NAME_TAG = VirtualField(
    "NameTag", [VirtualPart("first", [GetPrefix(1), Lower()]), VirtualPart("last", [Lower()])]
)
FIRSTS = ["John", "Jane", "Joe", "Ann", "Amy", "Bob", "Ben", "Cy"]
LASTS = ["Smith", "Jones"]
PEOPLE = [
    person(
        f"v{i:02d}",
        first={"S": FIRSTS[i % 8]},
        last={"S": LASTS[i // 8]},
        dept={"S": "eng" if i % 2 else "ops"},
    )
    for i in range(16)
]


def _tag(item: dict[str, Any]) -> str:
    return str(item["first"]["S"][0].lower() + item["last"]["S"].lower())


@pytest.fixture
def env(local_aws: LocalAws) -> tuple[LocalAws, str, Any, EncryptedClient]:
    name = unique("virtual")
    raw = create_table(local_aws, name, indexes=[("by-tag", "aws_dbe_b_NameTag", None)])
    beacons = [
        NAME_TAG,
        StandardBeacon("NameTag", 2),  # location defaults to the name: the virtual field
        CompoundBeacon("dept_tag", "|", encrypted_parts=[("NameTag", "N-")], signed_parts=[("dept", "D-")]),
    ]
    client = EncryptedClient(raw, {name: config("virtual", actions=NAME_ACTIONS, beacons=beacons)})
    for item in PEOPLE:
        client.put_item(TableName=name, Item=item)
    local_aws.reset()
    return local_aws, name, raw, client


def test_beacon_over_a_virtual_field_is_the_hash_of_its_string(env: Any) -> None:
    _aws, name, raw, client = env
    stored = raw.get_item(TableName=name, Key={"pk": {"S": "v09"}, "sk": {"S": "profile"}})["Item"]
    assert _tag(PEOPLE[9]) == "jjones"
    assert stored["aws_dbe_b_NameTag"] == {"S": independent_beacon("NameTag", b"jjones", 2)}
    hashed = independent_beacon("NameTag", b"jjones", 2)
    assert stored["aws_dbe_b_dept_tag"] == {"S": f"D-eng|N-{hashed}"}
    assert "NameTag" not in stored and "jjones" not in str(stored)
    # Virtual fields are never stored and never returned.
    assert (
        client.get_item(TableName=name, Key={"pk": {"S": "v09"}, "sk": {"S": "profile"}})["Item"] == PEOPLE[9]
    )


def test_query_by_virtual_field_returns_exactly_the_matches(env: Any) -> None:
    aws, name, raw, client = env
    server_total = 0
    for target in PEOPLE[:8]:
        tag = _tag(target)
        expected = sorted(p["pk"]["S"] for p in PEOPLE if _tag(p) == tag)
        result = client.query(
            TableName=name,
            IndexName="by-tag",
            KeyConditionExpression="NameTag = :t",
            ExpressionAttributeValues={":t": {"S": tag}},
        )
        assert sorted(i["pk"]["S"] for i in result["Items"]) == expected and result["Count"] == len(expected)
        beacon = {"S": independent_beacon("NameTag", tag.encode(), 2)}
        server_total += raw.query(
            TableName=name,
            IndexName="by-tag",
            KeyConditionExpression="aws_dbe_b_NameTag = :b",
            ExpressionAttributeValues={":b": beacon},
        )["Count"]
    assert server_total > 8  # the 2-bit beacon collided and the client dropped the extras
    sent = [r.params for r in aws.requests("Query", service="dynamodb")]
    assert all("jsmith" not in str(params) for params in sent)
    by_dept = client.scan(
        TableName=name,
        FilterExpression="dept_tag = :v",
        ExpressionAttributeValues={":v": {"S": "D-ops|N-asmith"}},
    )
    assert [i["pk"]["S"] for i in by_dept["Items"]] == ["v04"]


def test_item_missing_a_part_gets_no_virtual_beacon(env: Any) -> None:
    _aws, name, raw, client = env
    lonely = person("v99")  # no first/last
    client.put_item(TableName=name, Item=lonely)
    stored = raw.get_item(TableName=name, Key={"pk": {"S": "v99"}, "sk": {"S": "profile"}})["Item"]
    assert "aws_dbe_b_NameTag" not in stored and "aws_dbe_b_dept_tag" not in stored


def test_the_encrypted_sources_of_a_virtual_field_have_no_beacon_of_their_own(env: Any) -> None:
    aws, name, _raw, client = env
    with pytest.raises(RequestRefusedError):
        client.scan(
            TableName=name, FilterExpression="first = :v", ExpressionAttributeValues={":v": {"S": "x"}}
        )
    assert dynamodb_requests(aws) == []


BAD: dict[str, Any] = {
    "virtual field named like an attribute": lambda: [
        VirtualField("dept", ["first"]),
        StandardBeacon("first", 8),
    ],
    "virtual field named like an unsigned attribute": lambda: [
        VirtualField("note", ["first"]),
        StandardBeacon("first", 8),
    ],
    "virtual field over an unsigned attribute": lambda: [
        VirtualField("vf", ["first", "counter"]),
        StandardBeacon("vf", 8),
    ],
    "virtual field over an unknown attribute": lambda: [
        VirtualField("vf", ["first", "nope"]),
        StandardBeacon("vf", 8),
    ],
    "two virtual fields on the same locations": lambda: [
        VirtualField("a", ["first", "last"]),
        VirtualField("b", ["last", VirtualPart("first", [Upper()])]),
        StandardBeacon("a", 8),
    ],
    "two virtual fields with one name": lambda: [
        VirtualField("a", ["first"]),
        VirtualField("a", ["last"]),
        StandardBeacon("a", 8),
    ],
    "beacon over a signed-only virtual field": lambda: [
        VirtualField("sv", ["dept", "version"]),
        StandardBeacon("sv", 8),
    ],
    "beacon on the single location of a virtual field": lambda: [
        VirtualField("vf", [VirtualPart("first", [Lower()])]),
        StandardBeacon("first", 8),
    ],
    "nested location in a virtual field": lambda: [
        VirtualField("vf", ["first", "last"]),
        StandardBeacon("b", 8, location="vf.x"),
    ],
    "set beacon over a virtual field": lambda: [
        VirtualField("vf", ["first", "last"]),
        StandardBeacon("vf", 8, style=AsSet()),
    ],
}


# Why each configuration is refused: several of them break more than one rule, so the message shows
# that the rule named in the case is the one enforced.
REASON = {
    "virtual field named like an attribute": "virtual field 'dept' has the name of a configured attribute",
    "virtual field named like an unsigned attribute": "virtual field 'note' has the name of a configured",
    "virtual field over an unsigned attribute": "'counter' is not signed",
    "virtual field over an unknown attribute": "'nope' is not signed",
    "two virtual fields on the same locations": "same locations as 'a'",
    "two virtual fields with one name": "two virtual fields are named 'a'",
    "beacon over a signed-only virtual field": "which has no encrypted part",
    "beacon on the single location of a virtual field": "on the single location of virtual field 'vf'",
    "nested location in a virtual field": "a virtual field has no nested values",
    "set beacon over a virtual field": "set beacon 'vf' cannot be over a virtual field",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_virtual_field_configurations(case: str) -> None:
    assert set(REASON) == set(BAD)
    with pytest.raises(ConfigurationError, match=REASON[case]):
        config("bad", actions=NAME_ACTIONS, beacons=BAD[case]())


@pytest.mark.parametrize(
    "make",
    [
        lambda: GetSegment("ab", 0),
        lambda: GetSegments("", 0, 1),
        lambda: GetPrefix("3"),  # type: ignore[arg-type]
        lambda: GetSubstring(True, 2),
        lambda: Insert(3),  # type: ignore[arg-type]
        lambda: VirtualPart("first", ["lower"]),  # type: ignore[list-item]
        lambda: VirtualPart("a..b"),
        lambda: GetSegment("😀", 0),  # two UTF-16 code units: the reference cannot split on it
        lambda: GetSegments("\ud800", 0, 1),
        lambda: VirtualField("vf", ["first", 3]),  # type: ignore[list-item]
        lambda: VirtualField("empty", []),
        lambda: VirtualField("", ["first"]),
    ],
)
def test_invalid_virtual_parts_and_transforms(make: Any) -> None:
    with pytest.raises(ConfigurationError):
        make()


def test_unicode_virtual_field_round_trip(env: Any) -> None:
    aws, name, raw, client = env
    item = person("u01", first={"S": "Ñandú"}, last={"S": "😀Smith"}, dept={"S": "eng"})
    client.put_item(TableName=name, Item=item)
    stored = raw.get_item(TableName=name, Key={"pk": {"S": "u01"}, "sk": {"S": "profile"}})["Item"]
    tag = "Ñ😀smith"  # Lower() leaves non-ASCII letters alone
    assert stored["aws_dbe_b_NameTag"] == {"S": independent_beacon("NameTag", tag.encode(), 2)}
    found = client.query(
        TableName=name,
        IndexName="by-tag",
        KeyConditionExpression="NameTag = :t",
        ExpressionAttributeValues={":t": {"S": tag}},
    )
    assert [i["pk"]["S"] for i in found["Items"]] == ["u01"]
    aws.reset()
    with pytest.raises(MalformedInputError):  # GetPrefix(1) cuts the emoji in half
        client.put_item(TableName=name, Item=person("u02", first={"S": "😀"}, last={"S": "x"}))
    assert dynamodb_requests(aws) == []


def test_beacon_over_an_attribute_name_with_a_dash(local_aws: LocalAws) -> None:
    name = unique("dash")
    raw = create_table(local_aws, name)
    actions = {**ACTIONS, "e-mail": "ENCRYPT_AND_SIGN"}
    client = EncryptedClient(
        raw, {name: config("dash", actions=actions, beacons=[StandardBeacon("e-mail", 16)])}
    )
    for i in range(3):
        client.put_item(TableName=name, Item={**person(f"d{i}"), "e-mail": {"S": f"d{i}@example.com"}})
    stored = raw.get_item(TableName=name, Key={"pk": {"S": "d1"}, "sk": {"S": "profile"}})["Item"]
    assert stored["aws_dbe_b_e-mail"] == {"S": independent_beacon("e-mail", b"d1@example.com", 16)}
    found = client.scan(
        TableName=name,
        FilterExpression="#e = :v",
        ExpressionAttributeNames={"#e": "e-mail"},
        ExpressionAttributeValues={":v": {"S": "d1@example.com"}},
    )
    assert [i["pk"]["S"] for i in found["Items"]] == ["d1"]
