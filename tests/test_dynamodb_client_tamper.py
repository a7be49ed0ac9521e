"""Tampering with stored items (through a plain boto3 client) is refused when read back through the
encrypted client: get_item, query and scan all fail with a KmsEnvelopeError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kmsenvelope.dynamodb import EncryptedClient
from kmsenvelope.errors import KmsEnvelopeError
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import config, create_table, person, unique


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "profile"}}


def _swap_encrypted(raw: Any, table: str) -> str:
    a = raw.get_item(TableName=table, Key=_key("alice"))["Item"]
    b = raw.get_item(TableName=table, Key=_key("bob"))["Item"]
    raw.put_item(TableName=table, Item={**a, "ssn": b["ssn"]})
    return "alice"


def _swap_whole_ciphertext_set(raw: Any, table: str) -> str:
    a = raw.get_item(TableName=table, Key=_key("alice"))["Item"]
    b = raw.get_item(TableName=table, Key=_key("bob"))["Item"]
    moved = {k: v for k, v in b.items() if k not in ("pk", "sk")}
    raw.put_item(TableName=table, Item={"pk": a["pk"], "sk": a["sk"], **moved})
    return "alice"


def _edit_sign_only(raw: Any, table: str) -> str:
    raw.update_item(
        TableName=table,
        Key=_key("alice"),
        UpdateExpression="SET dept = :d",
        ExpressionAttributeValues={":d": {"S": "finance"}},
    )
    return "alice"


def _copy_under_other_key(raw: Any, table: str) -> str:
    a = raw.get_item(TableName=table, Key=_key("alice"))["Item"]
    raw.put_item(TableName=table, Item={**a, "pk": {"S": "mallory"}})
    return "mallory"


def _add_stray_attribute(raw: Any, table: str) -> str:
    raw.update_item(
        TableName=table,
        Key=_key("alice"),
        UpdateExpression="SET stray = :s",
        ExpressionAttributeValues={":s": {"S": "x"}},
    )
    return "alice"


def _add_missing_signed_attribute(raw: Any, table: str) -> str:
    # bob was written without `version`; adding one afterwards is not covered by his signature.
    raw.update_item(
        TableName=table,
        Key=_key("bob"),
        UpdateExpression="SET version = :v",
        ExpressionAttributeValues={":v": {"N": "1"}},
    )
    return "bob"


def _flip_ciphertext_bit(raw: Any, table: str) -> str:
    a = raw.get_item(TableName=table, Key=_key("alice"))["Item"]
    blob = bytearray(a["email"]["B"])
    blob[-1] ^= 1
    raw.put_item(TableName=table, Item={**a, "email": {"B": bytes(blob)}})
    return "alice"


def _drop_signed_attribute(raw: Any, table: str) -> str:
    raw.update_item(TableName=table, Key=_key("alice"), UpdateExpression="REMOVE card")
    return "alice"


TAMPERING: dict[str, Callable[[Any, str], str]] = {
    "swap one encrypted attribute between items": _swap_encrypted,
    "move every attribute of one item onto another key": _swap_whole_ciphertext_set,
    "edit a SIGN_ONLY value": _edit_sign_only,
    "copy an item under another partition key": _copy_under_other_key,
    "add a stray attribute": _add_stray_attribute,
    "add a configured signed attribute": _add_missing_signed_attribute,
    "flip a ciphertext bit": _flip_ciphertext_bit,
    "remove an encrypted attribute": _drop_signed_attribute,
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_is_refused(local_aws: LocalAws, case: str) -> None:
    name = unique("tamper")
    raw = create_table(local_aws, name)
    client = EncryptedClient(raw, {name: config("tamper")})
    client.put_item(TableName=name, Item=person("alice"))
    bob = person("bob", ssn={"S": "bob-secret"})
    del bob["version"]
    client.put_item(TableName=name, Item=bob)
    # Untampered, both read back.
    assert client.get_item(TableName=name, Key=_key("bob"))["Item"] == bob

    victim = TAMPERING[case](raw, name)

    with pytest.raises(KmsEnvelopeError):
        client.get_item(TableName=name, Key=_key(victim))
    with pytest.raises(KmsEnvelopeError):
        client.query(
            TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": victim}}
        )
    with pytest.raises(KmsEnvelopeError):
        client.scan(TableName=name)


def test_unsigned_attributes_may_change(local_aws: LocalAws) -> None:
    """The control: DO_NOTHING attributes are outside the signature."""
    name = unique("tamper")
    raw = create_table(local_aws, name)
    client = EncryptedClient(raw, {name: config("tamper")})
    client.put_item(TableName=name, Item=person("alice"))
    raw.update_item(
        TableName=name,
        Key=_key("alice"),
        UpdateExpression="SET note = :n, #c = :c",
        ExpressionAttributeNames={"#c": "counter"},
        ExpressionAttributeValues={":n": {"S": "edited"}, ":c": {"N": "7"}},
    )
    item = client.get_item(TableName=name, Key=_key("alice"))["Item"]
    assert item == {**person("alice"), "note": {"S": "edited"}, "counter": {"N": "7"}}
