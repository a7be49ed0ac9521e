"""The expression parser and evaluator behind beacon rewriting and false-positive filtering.

The evaluator must agree with the DynamoDB server, so each filter below runs both on the local moto
DynamoDB (plain table, plaintext items) and through :func:`evaluate`, and the two answers must match.
"""

from __future__ import annotations

from typing import Any

import pytest

from kmsenvelope.dynamodb.evaluate import evaluate, item_path
from kmsenvelope.dynamodb.expressions import parse_condition, update_attributes
from kmsenvelope.errors import MalformedInputError
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import create_table, unique

# Items for the server cross-check; moto 5 answers 500 on ordering across types and does not implement
# begins_with on binaries or size() on every type, so those are checked locally below.
ITEMS: list[dict[str, Any]] = [
    {
        "pk": {"S": "a"},
        "sk": {"S": "1"},
        "name": {"S": "apple"},
        "n": {"N": "10"},
        "tags": {"SS": ["x", "y"]},
    },
    {"pk": {"S": "b"}, "sk": {"S": "1"}, "name": {"S": "Banana"}, "n": {"N": "9.5"}, "tags": {"SS": ["y"]}},
    {
        "pk": {"S": "c"},
        "sk": {"S": "1"},
        "name": {"S": "cherry"},
        "n": {"N": "-3"},
        "m": {"M": {"k": {"N": "1"}}},
    },
    {
        "pk": {"S": "d"},
        "sk": {"S": "1"},
        "s10": {"S": "10"},
        "l": {"L": [{"S": "p"}, {"N": "2"}]},
    },
    {
        "pk": {"S": "e"},
        "sk": {"S": "1"},
        "name": {"S": "\u00e9clair"},
        "flag": {"BOOL": True},
        "z": {"NULL": True},
    },
]

VALUES: dict[str, Any] = {
    ":ten": {"N": "10"},
    ":tens": {"S": "10"},
    ":nine": {"N": "9"},
    ":a": {"S": "a"},
    ":c": {"S": "c"},
    ":ap": {"S": "ap"},
    ":y": {"S": "y"},
    ":p": {"S": "p"},
    ":two": {"N": "2"},
    ":one": {"N": "1"},
    ":b1": {"B": b"\x01"},
    ":ts": {"S": "S"},
    ":tn": {"S": "N"},
    ":true": {"BOOL": True},
}

FILTERS = [
    "n = :ten",
    "n <> :ten",
    "n > :nine",
    "n >= :nine AND n < :ten",
    "n BETWEEN :nine AND :ten",
    "#name > :a",
    "#name < :c",
    "begins_with(#name, :ap)",
    "contains(tags, :y)",
    "contains(#name, :a)",
    "contains(l, :p) OR contains(l, :two)",
    "attribute_exists(m.k) AND m.k = :one",
    "l[1] = :two",
    "attribute_not_exists(#name)",
    "attribute_type(s10, :ts)",
    "attribute_type(n, :tn) AND NOT (n < :ten)",
    "pk IN (:a, :c) OR flag = :true",
    "NOT pk IN (:a, :c)",
    "(pk = :a OR pk = :c) AND (n > :nine OR n < :nine)",
]
NAMES = {"#name": "name"}


@pytest.fixture(scope="module")
def server_table(kmsenvelope_local_aws_server: LocalAws) -> tuple[Any, str]:
    name = unique("expr")
    raw = create_table(kmsenvelope_local_aws_server, name)
    for item in ITEMS:
        raw.put_item(TableName=name, Item=item)
    return raw, name


def _resolver(item: dict[str, Any]) -> Any:
    return lambda elements: item_path(item, elements)


@pytest.mark.parametrize("text", FILTERS)
def test_evaluator_agrees_with_dynamodb(server_table: tuple[Any, str], text: str) -> None:
    raw, name = server_table
    expression = parse_condition(text)
    used_values = {k: v for k, v in VALUES.items() if k in text}
    params: dict[str, Any] = {"TableName": name, "FilterExpression": text}
    if used_values:
        params["ExpressionAttributeValues"] = used_values
    if "#name" in text:
        params["ExpressionAttributeNames"] = NAMES
    server = sorted(item["pk"]["S"] for item in raw.scan(**params)["Items"])
    local = sorted(
        item["pk"]["S"] for item in ITEMS if evaluate(expression, _resolver(item), NAMES, used_values)
    )
    assert local == server
    # The serialized form parses to the same thing and DynamoDB accepts it.
    again = expression.text()
    assert parse_condition(again).text() == again
    assert sorted(i["pk"]["S"] for i in raw.scan(**{**params, "FilterExpression": again})["Items"]) == server


def test_semantics_moto_does_not_implement() -> None:
    """Binary prefixes, size() and mixed-type ordering, per the DynamoDB documentation."""
    item: dict[str, Any] = {
        "b": {"B": b"\x01\x02"},
        "s": {"S": "summer"},
        "n": {"S": "10"},
        "l": {"L": [{"N": "1"}]},
    }

    def check(text: str, values: dict[str, Any]) -> bool:
        return evaluate(parse_condition(text), lambda e: item_path(item, e), None, values)

    assert check("begins_with(b, :p)", {":p": {"B": b"\x01"}})
    assert not check("begins_with(b, :p)", {":p": {"S": "\x01"}})
    assert check("size(s) > :two", {":two": {"N": "2"}})
    assert check("size(l) = :one AND size(b) = :two", {":one": {"N": "1"}, ":two": {"N": "2"}})
    assert not check("n > :nine", {":nine": {"N": "9"}})  # a string is not ordered against a number
    assert check("n <> :ten", {":ten": {"N": "10"}})
    assert check("missing <> :ten", {":ten": {"N": "10"}})
    assert not check("missing = :ten OR missing < :ten", {":ten": {"N": "10"}})


def test_rewritten_tokens_serialize() -> None:
    expression = parse_condition("attribute_exists(#a) AND begins_with(x.y[3], :v) AND size(z)>:n")
    assert expression.text() == "attribute_exists(#a) AND begins_with(x.y[3], :v) AND size(z) > :n"
    expression.tokens[2].text = "#b"
    assert expression.text().startswith("attribute_exists(#b)")


@pytest.mark.parametrize(
    "bad", ["a =", "a = :v AND", "(a = :v", "a = :v)", "a == :v", "a = :v b", "contains(a)", ""]
)
def test_malformed_expressions(bad: str) -> None:
    with pytest.raises(MalformedInputError):
        parse_condition(bad)
        if bad == "contains(a)":
            evaluate(parse_condition(bad), lambda e: None, None, None)


def test_update_attributes() -> None:
    text = "SET a = if_not_exists(b, :z) + :one, #c = list_append(d, :l) REMOVE e.f[2] ADD g :n DELETE h :s"
    assert update_attributes(text, {"#c": "c"}) == ["a", "b", "c", "d", "e", "g", "h"]
    with pytest.raises(MalformedInputError):
        update_attributes("SET #missing = :v", {})
