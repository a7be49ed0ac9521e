"""Client-side ProjectionExpression semantics (kmsenvelope.dynamodb.projection), with the local moto
DynamoDB reading an unencrypted table as the oracle, and how a projected request is widened."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kmsenvelope.dynamodb.projection import plan_projection, project
from kmsenvelope.errors import MalformedInputError
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import create_table, unique

ITEM: dict[str, Any] = {
    "pk": {"S": "a"},
    "sk": {"S": "b"},
    "m": {"M": {"x": {"S": "1"}, "y": {"M": {"z": {"N": "2"}, "w": {"S": "q"}}}, "e": {"M": {}}}},
    "l": {
        "L": [
            {"S": "l0"},
            {"M": {"a": {"S": "A"}, "b": {"S": "B"}}},
            {"S": "l2"},
            {"L": [{"N": "5"}, {"N": "6"}]},
        ]
    },
    "s": {"SS": ["a", "b"]},
    "n": {"N": "1.50"},
    "bin": {"B": b"\x00\x01"},
    "nul": {"NULL": True},
}

# Projections the moto server answers as DynamoDB does.
ORACLE_CASES: list[tuple[str, dict[str, str] | None]] = [
    ("pk", None),
    ("m", None),
    ("m.x", None),
    ("m.y.z, m.x", None),
    ("m.y.z, m.y.w", None),
    ("m.e", None),
    ("l[1].a", None),
    ("l[0]", None),
    ("l[3]", None),
    ("#m.#x", {"#m": "m", "#x": "x"}),
    ("#m.y, #p", {"#m": "m", "#p": "pk"}),
    ("m.nope, pk", None),
    ("nope", None),
    ("l[9]", None),
    ("m[0]", None),
    ("l.x", None),
    ("s.x", None),
    ("n, s, bin, nul", None),
]


@pytest.fixture(scope="module")
def oracle(kmsenvelope_local_aws_server: LocalAws) -> Any:
    """Reads ITEM back from an unencrypted table on the local server with a given projection."""
    aws = kmsenvelope_local_aws_server
    name = unique("projection-oracle")
    client = create_table(aws, name)
    client.put_item(TableName=name, Item=ITEM)

    def read(expression: str, names: dict[str, str] | None) -> dict[str, Any]:
        extra = {"ExpressionAttributeNames": names} if names else {}
        got = client.get_item(
            TableName=name, Key={"pk": ITEM["pk"], "sk": ITEM["sk"]}, ProjectionExpression=expression, **extra
        )
        queried = client.query(
            TableName=name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": ITEM["pk"]},
            ProjectionExpression=expression,
            **extra,
        )
        assert queried["Items"] == [got["Item"]]
        return dict(got["Item"])

    return read


@pytest.mark.parametrize(("expression", "names"), ORACLE_CASES)
def test_projection_matches_dynamodb(oracle: Any, expression: str, names: dict[str, str] | None) -> None:
    assert _sets_sorted(project(ITEM, expression, names)) == _sets_sorted(oracle(expression, names))


def _sets_sorted(value: Any) -> Any:
    """Set members in a fixed order (the server returns them in any order)."""
    if isinstance(value, dict):
        return {k: sorted(v) if k in ("SS", "NS", "BS") else _sets_sorted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sets_sorted(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("expression", "names", "expected"),
    [
        # moto keeps only one element per list; DynamoDB returns every projected element, in index order.
        ("l[2], l[0]", None, {"l": {"L": [{"S": "l0"}, {"S": "l2"}]}}),
        ("l[1].a, l[1].b", None, {"l": {"L": [{"M": {"a": {"S": "A"}, "b": {"S": "B"}}}]}}),
        # moto answers {} for nested indexes and rejects a placeholder before an index.
        ("l[3][1]", None, {"l": {"L": [{"L": [{"N": "6"}]}]}}),
        ("#l[0], l[ 2 ]", {"#l": "l"}, {"l": {"L": [{"S": "l0"}, {"S": "l2"}]}}),
        ("l[9], l[3][0]", None, {"l": {"L": [{"L": [{"N": "5"}]}]}}),
        ("n.x, l[1].c, nul[0]", None, {}),  # moto fails with an internal error
    ],
)
def test_list_projection_semantics(expression: str, names: dict[str, str] | None, expected: Any) -> None:
    assert project(ITEM, expression, names) == expected


@pytest.mark.parametrize(
    ("expression", "names", "reason"),
    [
        ("m, m.x", None, "overlap"),  # moto accepts this one; DynamoDB does not
        ("m.x, #m.x", {"#m": "m"}, "overlap"),
        ("m.y, m.y.z", None, "overlap"),
        ("m.x, m[0]", None, "conflict"),
        ("size", None, "reserved"),
        ("a, and", None, "reserved"),
        ("", None, "empty"),
        ("a,", None, "end"),
        ("a b", None, "expected ','"),
        ("#nope", {}, "not defined"),
        ("a = b", None, "expected ','"),
    ],
)
def test_invalid_projections_are_refused(expression: str, names: Any, reason: str) -> None:
    with pytest.raises(MalformedInputError, match=reason):
        project(ITEM, expression, names)


def test_widened_request() -> None:
    request = {
        "TableName": "t",
        "ProjectionExpression": "#d.#inner, m.x, #d.other, pk",
        "FilterExpression": "#f = :v",
        "ExpressionAttributeNames": {"#d": "data", "#inner": "in", "#f": "flag", "#unused": "u"},
        "ExpressionAttributeValues": {":v": {"S": "v"}},
    }
    original = copy.deepcopy(request)
    out, projection = plan_projection(request, ["aws_dbe_head", "pk", "status", "flag", "x-y", "data"])
    assert request == original  # nothing of the caller's is changed
    assert projection is not None and projection.paths[0] == ("data", "in")
    parts = out["ProjectionExpression"].split(", ")
    names = out["ExpressionAttributeNames"]
    # The caller's tops as written, then every added name through a placeholder (reserved, special).
    assert parts[:3] == ["#d", "m", "pk"]
    assert [names.get(p, p) for p in parts] == ["data", "m", "pk", "aws_dbe_head", "status", "flag", "x-y"]
    assert parts[3].startswith("#aws_dbe_p") and parts[5] == "#f"  # a used placeholder is reused
    # #inner is now unused and would be rejected; #unused was already unused: left for DynamoDB to judge.
    assert "#inner" not in names and names["#unused"] == "u"
    assert out["ExpressionAttributeValues"] is request["ExpressionAttributeValues"]


def test_fresh_placeholders_do_not_collide() -> None:
    request = {"ProjectionExpression": "#aws_dbe_p1", "ExpressionAttributeNames": {"#aws_dbe_p1": "a"}}
    out, _ = plan_projection(request, ["b"])
    assert out["ProjectionExpression"] == "#aws_dbe_p1, #aws_dbe_p2"
    assert out["ExpressionAttributeNames"] == {"#aws_dbe_p1": "a", "#aws_dbe_p2": "b"}


def test_unneeded_names_removed_entirely() -> None:
    out, _ = plan_projection({"ProjectionExpression": "a.#b", "ExpressionAttributeNames": {"#b": "b"}}, [])
    assert out == {"ProjectionExpression": "a"}


def test_no_projection_means_no_change() -> None:
    request = {"TableName": "t", "Select": "COUNT"}
    out, projection = plan_projection(request, ["aws_dbe_head"])
    assert out == request and out is not request and projection is None


@pytest.mark.parametrize("select", ["ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES", "COUNT"])
def test_select_other_than_specific_attributes_is_refused(select: str) -> None:
    with pytest.raises(MalformedInputError, match="SPECIFIC_ATTRIBUTES"):
        plan_projection({"ProjectionExpression": "a", "Select": select}, [])
    out, _ = plan_projection({"ProjectionExpression": "a", "Select": "SPECIFIC_ATTRIBUTES"}, ["b"])
    assert out["Select"] == "SPECIFIC_ATTRIBUTES"
