"""ItemEncryptor: round trips, context binding and tampering at the item level."""

from __future__ import annotations

import base64
import decimal
import os
import sys
import uuid
from typing import Any

import pytest

from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.dynamodb import SIGNING_SUITE, Action, ItemEncryptor, TableConfig
from kmsenvelope.errors import (
    AuthenticationError,
    KmsEnvelopeError,
    MalformedInputError,
    PolicyError,
)
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.materials.cmm import DefaultMaterials
from kmsenvelope.structured import parse_header

STORE = StaticBranchKeyStore("bk", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
KEYRING = HierarchicalKeyring(STORE, branch_key_id="bk")

ACTIONS = {
    "pk": Action.SIGN_ONLY,
    "sk": Action.SIGN_ONLY,
    "card": Action.ENCRYPT_AND_SIGN,
    "ssn": Action.ENCRYPT_AND_SIGN,
    "profile": Action.ENCRYPT_AND_SIGN,
    "status": Action.SIGN_ONLY,
    "score": Action.SIGN_ONLY,
    "cache": Action.DO_NOTHING,
}


def _config(**overrides: Any) -> TableConfig:
    args: dict[str, Any] = {
        "sort_key": "sk",
        "actions": ACTIONS,
        "keyring": KEYRING,
        "allowed_unsigned": ["cache"],
        "allowed_unsigned_prefix": "tmp_",
    }
    args.update(overrides)
    return TableConfig("customers", "pk", **args)


ENCRYPTOR = ItemEncryptor(_config())


def _item(pk: str = "c#1", card: str = "4111-1111-1111-1111") -> dict[str, Any]:
    return {
        "pk": {"S": pk},
        "sk": {"N": "1"},
        "card": {"S": card},
        "ssn": {"B": b"\x01\x02\x03"},
        "profile": {"M": {"name": {"S": "Ada"}, "tags": {"SS": ["b", "a"]}, "n": {"NS": ["1", "2.50"]}}},
        "status": {"BOOL": True},
        "score": {"L": [{"N": "10"}, {"NULL": True}]},
        "cache": {"S": "whatever"},
        "tmp_trace": {"S": "trace-id"},
    }


def test_round_trip_and_shape() -> None:
    item = _item()
    stored = ENCRYPTOR.encrypt_item(item)
    assert set(stored) == set(item) | {"aws_dbe_head", "aws_dbe_foot"}
    for name in ("card", "ssn", "profile"):
        assert set(stored[name]) == {"B"}
    for name in ("pk", "sk", "status", "score", "cache", "tmp_trace"):
        assert stored[name] == item[name]
    assert b"4111" not in stored["card"]["B"]
    header = parse_header(stored["aws_dbe_head"]["B"])
    assert header.version == 1
    assert header.stored_context == {}  # table, key names and key values are bound, not stored
    decrypted = ENCRYPTOR.decrypt_item(stored)
    assert decrypted["card"] == item["card"]
    assert decrypted["ssn"] == item["ssn"]
    assert decrypted["profile"]["M"]["name"] == {"S": "Ada"}
    assert sorted(decrypted["profile"]["M"]["tags"]["SS"]) == ["a", "b"]
    assert sorted(decrypted["profile"]["M"]["n"]["NS"]) == ["1", "2.5"]  # normalized like DynamoDB
    assert set(decrypted) == set(item)


def test_parsed_header_and_context() -> None:
    stored, written = ENCRYPTOR.encrypt_item_with_header(_item())
    decrypted, header = ENCRYPTOR.decrypt_item_with_header(stored)
    assert decrypted == ENCRYPTOR.decrypt_item(stored)
    assert header.actions == written.actions
    assert header.actions == {k: v for k, v in ACTIONS.items() if v is not Action.DO_NOTHING}
    context = dict(header.encryption_context)
    assert context["aws-crypto-table-name"] == "customers"
    assert context["aws-crypto-partition-name"] == "pk"
    assert context["aws-crypto-sort-name"] == "sk"
    assert context["aws-crypto-attr.pk"] == base64.b64encode(b"\x00\x01c#1").decode()
    assert context["aws-crypto-attr.sk"] == base64.b64encode(b"\x00\x021").decode()
    assert header.suite is ENCRYPTOR.config.effective_suite


def test_default_suite_is_hmac_only_and_signing_is_one_argument_away() -> None:
    stored = ENCRYPTOR.encrypt_item(_item())
    assert parse_header(stored["aws_dbe_head"]["B"]).suite.signing is False
    assert len(stored["aws_dbe_foot"]["B"]) == 48
    signing = ItemEncryptor(_config(suite=SIGNING_SUITE))
    signed = signing.encrypt_item(_item())
    assert parse_header(signed["aws_dbe_head"]["B"]).suite is SIGNING_SUITE
    assert len(signed["aws_dbe_foot"]["B"]) == 48 + 103
    assert signing.decrypt_item(signed)["card"] == {"S": "4111-1111-1111-1111"}
    # Decrypt follows the item's header, whatever suite the reader would write with.
    assert ENCRYPTOR.decrypt_item(signed)["card"] == {"S": "4111-1111-1111-1111"}


def test_swapping_encrypted_attributes_between_items_is_refused() -> None:
    one = ENCRYPTOR.encrypt_item(_item("c#1", "1111"))
    two = ENCRYPTOR.encrypt_item(_item("c#2", "2222"))
    with pytest.raises(AuthenticationError):
        ENCRYPTOR.decrypt_item({**one, "card": two["card"]})
    # Even with the same key, each item's message id gives different field keys.
    three = ENCRYPTOR.encrypt_item(_item("c#1", "3333"))
    with pytest.raises(AuthenticationError):
        ENCRYPTOR.decrypt_item({**one, "card": three["card"]})
    # Swapping two encrypted attributes within one item fails too (the path is the AAD).
    with pytest.raises(AuthenticationError):
        ENCRYPTOR.decrypt_item({**one, "card": one["ssn"], "ssn": one["card"]})


def test_editing_a_sign_only_value_is_refused() -> None:
    stored = ENCRYPTOR.encrypt_item(_item())
    for name, value in (("status", {"BOOL": False}), ("score", {"L": [{"N": "11"}, {"NULL": True}]})):
        with pytest.raises(AuthenticationError):
            ENCRYPTOR.decrypt_item({**stored, name: value})
    # A key's type change with the same bytes is caught as well: the type id is bound to the record.
    with pytest.raises(KmsEnvelopeError):
        ENCRYPTOR.decrypt_item({**stored, "sk": {"S": "1"}})


def test_copy_under_another_partition_key_is_refused() -> None:
    stored = ENCRYPTOR.encrypt_item(_item("c#1"))
    with pytest.raises(KmsEnvelopeError):
        ENCRYPTOR.decrypt_item({**stored, "pk": {"S": "c#2"}})
    with pytest.raises(KmsEnvelopeError):
        ENCRYPTOR.decrypt_item({**stored, "sk": {"N": "2"}})
    # Same keys, another logical table: refused too.
    other_table = ItemEncryptor(TableConfig("other", "pk", **{**_table_args()}))
    with pytest.raises(KmsEnvelopeError):
        other_table.decrypt_item(stored)


def _table_args() -> dict[str, Any]:
    return {
        "sort_key": "sk",
        "actions": ACTIONS,
        "keyring": KEYRING,
        "allowed_unsigned": ["cache"],
        "allowed_unsigned_prefix": "tmp_",
    }


def test_adding_or_removing_signed_attributes_is_refused() -> None:
    stored = ENCRYPTOR.encrypt_item(_item())
    with pytest.raises(MalformedInputError):
        ENCRYPTOR.decrypt_item({**stored, "injected": {"S": "x"}})
    with pytest.raises(MalformedInputError):
        ENCRYPTOR.decrypt_item({k: v for k, v in stored.items() if k != "status"})
    # Renaming a signed attribute keeps the count but changes the canonical path.
    renamed = {k: v for k, v in stored.items() if k != "status"}
    renamed["statuz"] = stored["status"]
    with pytest.raises(AuthenticationError):
        ENCRYPTOR.decrypt_item(renamed)
    # Unsigned attributes may come and go.
    loose = {**stored, "cache": {"N": "5"}, "tmp_new": {"S": "y"}}
    decrypted = ENCRYPTOR.decrypt_item(loose)
    assert decrypted["cache"] == {"N": "5"} and decrypted["tmp_new"] == {"S": "y"}


def test_header_or_footer_missing_or_replaced() -> None:
    stored = ENCRYPTOR.encrypt_item(_item())
    other = ENCRYPTOR.encrypt_item(_item())
    for name in ("aws_dbe_head", "aws_dbe_foot"):
        with pytest.raises(MalformedInputError):
            ENCRYPTOR.decrypt_item({k: v for k, v in stored.items() if k != name})
        with pytest.raises(MalformedInputError):
            ENCRYPTOR.decrypt_item({**stored, name: {"S": "x"}})
        with pytest.raises(KmsEnvelopeError):
            ENCRYPTOR.decrypt_item({**stored, name: other[name]})
    with pytest.raises(MalformedInputError):
        ENCRYPTOR.decrypt_item({**stored, "aws_dbe_head": {"B": b""}})
    with pytest.raises(MalformedInputError):
        ENCRYPTOR.decrypt_item({**stored, "aws_dbe_head": {"B": b"\x03" + stored["aws_dbe_head"]["B"][1:]}})


def test_item_checks_on_encrypt() -> None:
    with pytest.raises(MalformedInputError):
        ENCRYPTOR.encrypt_item({k: v for k, v in _item().items() if k != "sk"})
    with pytest.raises(PolicyError):
        ENCRYPTOR.encrypt_item({**_item(), "unknown": {"S": "x"}})
    with pytest.raises(MalformedInputError):
        ENCRYPTOR.encrypt_item({**_item(), "aws_dbe_head": {"B": b"x"}})
    with pytest.raises(MalformedInputError):
        ENCRYPTOR.encrypt_item({**_item(), **{f"tmp_{i}": {"S": "x"} for i in range(100)}})
    with pytest.raises(MalformedInputError):
        ENCRYPTOR.encrypt_item({**_item(), "card": {"S": 5}})
    with pytest.raises(MalformedInputError):
        ENCRYPTOR.encrypt_item([("pk", {"S": "x"})])  # type: ignore[arg-type]
    # Attributes in the SDK's reserved namespace (e.g. beacons) pass through unsigned.
    stored = ENCRYPTOR.encrypt_item({**_item(), "aws_dbe_b_x": {"S": "beacon"}})
    assert stored["aws_dbe_b_x"] == {"S": "beacon"}
    assert ENCRYPTOR.decrypt_item(stored)["aws_dbe_b_x"] == {"S": "beacon"}


def test_version_2_configuration() -> None:
    actions = {
        "pk": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
        "tenant": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
        "flag": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
        "secret": Action.ENCRYPT_AND_SIGN,
    }
    seen: list[dict[str, str]] = []

    def supplier(context: Any) -> str:
        seen.append(dict(context))
        return "bk"

    keyring = HierarchicalKeyring(STORE, branch_key_id_supplier=supplier)
    encryptor = ItemEncryptor(TableConfig("t", "pk", actions=actions, keyring=keyring))
    item: dict[str, dict[str, Any]] = {
        "pk": {"S": "p"},
        "tenant": {"S": "acme"},
        "flag": {"BOOL": False},
        "secret": {"N": "7"},
    }
    stored = encryptor.encrypt_item(item)
    assert parse_header(stored["aws_dbe_head"]["B"]).version == 2
    # The keyring (e.g. a branch key supplier) sees the context attributes in plain text.
    assert seen[-1]["aws-crypto-attr.tenant"] == "acme"
    assert seen[-1]["aws-crypto-attr.flag"] == "false"
    assert seen[-1]["aws-crypto-legend"] == "LSS"
    assert "aws-crypto-attr.pk" in seen[-1] and seen[-1]["aws-crypto-attr.pk"] == "p"
    assert encryptor.decrypt_item(stored) == item
    # The context attributes are in the keyring's context: changing one already fails the unwrap.
    with pytest.raises(KmsEnvelopeError):
        encryptor.decrypt_item({**stored, "tenant": {"S": "globex"}})
    with pytest.raises(MalformedInputError):
        encryptor.encrypt_item({k: v for k, v in item.items() if k != "flag"})


def test_python_items() -> None:
    item = {
        "pk": "c#1",
        "sk": decimal.Decimal("1"),
        "card": "4111",
        "ssn": b"\x00\x01",
        "profile": {"name": "Ada", "ids": {decimal.Decimal(1), decimal.Decimal(2)}},
        "status": True,
        "score": [decimal.Decimal("1.5"), None],
    }
    stored = ENCRYPTOR.encrypt_python_item(item)
    from boto3.dynamodb.types import Binary

    assert isinstance(stored["card"], Binary)
    assert isinstance(stored["aws_dbe_head"], Binary)
    decrypted = ENCRYPTOR.decrypt_python_item(stored)
    assert decrypted["card"] == "4111"
    assert decrypted["ssn"] == Binary(b"\x00\x01")
    assert decrypted["profile"] == {"name": "Ada", "ids": {decimal.Decimal(1), decimal.Decimal(2)}}
    assert decrypted["score"] == [decimal.Decimal("1.5"), None]
    with pytest.raises(MalformedInputError):
        ENCRYPTOR.encrypt_python_item({**item, "card": 1.5})


def test_custom_materials_manager_and_reprs() -> None:
    encryptor = ItemEncryptor(_config(keyring=DefaultMaterials(KEYRING)))
    assert encryptor.decrypt_item(encryptor.encrypt_item(_item()))["card"] == _item()["card"]
    assert "customers" in repr(encryptor)
    assert "4111" not in repr(encryptor.encrypt_item_with_header(_item())[1])


def test_importing_dynamodb_does_not_import_boto3() -> None:
    import subprocess

    code = (
        "import sys, kmsenvelope.dynamodb as d; d.ItemEncryptor; d.TableConfig; d.Action; "
        "print('boto3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
