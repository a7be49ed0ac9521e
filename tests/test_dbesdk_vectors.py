"""The DB-ESDK's own decrypt vectors (Java 3.2 / 3.3 / 4.3 writers), driven from the manifests.

Items are decrypted offline through ``HierarchicalKeyring(StaticBranchKeyStore(static-branch-key-1))``
with the manifests' table defaults. Items we write under the same configurations must decrypt back,
and must be accepted or refused under the other configurations of the same manifest by the same rule
the vectors follow: a reader accepts an item iff its signature scope names exactly the attributes
the writer signed.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import pytest

from kmsenvelope.dynamodb import ItemEncryptor, TableConfig
from kmsenvelope.errors import KmsEnvelopeError, MalformedInputError

from ._dbesdk import (
    MANIFESTS,
    ddb_item,
    load_json,
    manifest_tests,
    notation_item,
    semantic_item,
    vector_config,
    vector_keyring,
)
from .conftest import expect_cases, vectors_dir

ROUND_TRIP_CONFIGS = 3  # data.json RoundTripTest.Configs
TESTS = manifest_tests()
POSITIVE = [(test_id, test) for test_id, test in TESTS if test["type"] == "positive-decrypt"]
NEGATIVE = [(test_id, test) for test_id, test in TESTS if test["type"] == "negative-decrypt"]


@functools.cache
def _keyring() -> Any:
    return vector_keyring()


def _encryptor(config: dict[str, Any]) -> ItemEncryptor:
    return ItemEncryptor(vector_config(config, _keyring()))


def test_assertions_are_live() -> None:
    """.ci/run also runs this file under ``python -O``: its asserts must still check (pytest rewrites
    them in test modules), or every test below would pass blind."""
    try:
        assert sys.flags.optimize < 0  # always false
    except AssertionError:
        return
    pytest.fail("assert statements are not executed in this test module")


def test_vectors_present() -> None:
    root = vectors_dir("dbesdk")
    for name in MANIFESTS:
        assert (root / name).is_file(), f"missing manifest {name}"
    assert len(TESTS) == 33
    assert len(NEGATIVE) == 3
    for name in MANIFESTS:
        manifest = load_json(root / name)["manifest"]
        assert manifest == {"type": "aws-dbesdk-decrypt", "version": "1"}


@pytest.mark.parametrize(("test_id", "test"), POSITIVE, ids=[test_id for test_id, _ in POSITIVE])
def test_positive_vector_decrypts(test_id: str, test: dict[str, Any]) -> None:
    decrypted = _encryptor(test["config"]).decrypt_item(ddb_item(test["encrypted"]))
    assert semantic_item(decrypted) == semantic_item(notation_item(test["plaintext"])), test["description"]


@pytest.mark.parametrize(("test_id", "test"), NEGATIVE, ids=[test_id for test_id, _ in NEGATIVE])
def test_negative_vector_is_refused(test_id: str, test: dict[str, Any]) -> None:
    with pytest.raises(KmsEnvelopeError):
        _encryptor(test["config"]).decrypt_item(ddb_item(test["encrypted"]))


@pytest.mark.parametrize(("test_id", "test"), POSITIVE, ids=[test_id for test_id, _ in POSITIVE])
def test_vector_item_tampered_is_refused(test_id: str, test: dict[str, Any]) -> None:
    """Flipping one bit of the stored header, footer or any signed attribute breaks decryption."""
    encryptor = _encryptor(test["config"])
    item = ddb_item(test["encrypted"])
    scope = [name for name in item if not encryptor.config.allowed_unsigned_name(name)]
    for name in ("aws_dbe_head", "aws_dbe_foot", *scope):
        value = item[name]
        ((tag, inner),) = value.items()
        if tag != "B":
            continue
        for position in (0, len(inner) // 2, len(inner) - 1):
            tampered = dict(item)
            flipped = bytearray(inner)
            flipped[position] ^= 0x01
            tampered[name] = {"B": bytes(flipped)}
            with pytest.raises(KmsEnvelopeError):
                encryptor.decrypt_item(tampered)


def _scope(config: TableConfig, item: dict[str, Any]) -> frozenset[str]:
    return frozenset(name for name in item if not config.allowed_unsigned_name(name))


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_our_items_follow_the_vector_rules(manifest: str) -> None:
    """Encrypt every positive plaintext under its config; decrypt under every config of the manifest."""
    tests = [test for test_id, test in POSITIVE if test_id.startswith(manifest.removesuffix(".json") + ":")]
    configs = [
        test["config"] for test_id, test in TESTS if test_id.startswith(manifest.removesuffix(".json"))
    ]
    assert tests and configs
    accepted = refused = 0
    for test in tests:
        writer = _encryptor(test["config"])
        plaintext = notation_item(test["plaintext"])
        stored = writer.encrypt_item(plaintext)
        written_scope = _scope(writer.config, plaintext)
        for config in configs:
            reader = _encryptor(config)
            if _scope(reader.config, plaintext) == written_scope:
                assert semantic_item(reader.decrypt_item(stored)) == semantic_item(plaintext)
                accepted += 1
            else:
                with pytest.raises(MalformedInputError):
                    reader.decrypt_item(stored)
                refused += 1
    assert accepted and refused


def _round_trip_configs() -> list[tuple[str, dict[str, Any]]]:
    configs = load_json(vectors_dir("dbesdk") / "data.json")["RoundTripTest"]["Configs"]
    return list(expect_cases(sorted(configs.items()), ROUND_TRIP_CONFIGS, "RoundTripTest configs"))


@pytest.mark.parametrize(
    ("name", "config"), _round_trip_configs(), ids=[name for name, _ in _round_trip_configs()]
)
def test_data_json_round_trip(name: str, config: dict[str, Any]) -> None:
    """The manifests' RoundTripTest records (sets, odd numbers, nested values) survive our round trip."""
    data = load_json(vectors_dir("dbesdk") / "data.json")
    records = data["RoundTripTest"]["Records"]
    assert records
    encryptor = _encryptor(config)
    for record in records:
        item = notation_item(record)
        # Attributes the config does not mention are not allowed unless unsigned.
        item = {k: v for k, v in item.items() if k in config["attributeActionsOnEncrypt"]}
        stored = encryptor.encrypt_item(item)
        assert "aws_dbe_head" in stored and "aws_dbe_foot" in stored
        assert semantic_item(encryptor.decrypt_item(stored)) == semantic_item(item)


def test_records_json_round_trip_under_configs_json() -> None:
    root = vectors_dir("dbesdk")
    configs = load_json(root / "configs.json")["tableEncryptionConfigs"]
    records = load_json(root / "records.json")["Records"]
    used = 0
    for config in configs.values():
        if "attributeActionsOnEncrypt" not in config:
            continue
        plain = {k: v for k, v in config.items() if k != "search"}  # beacons are not supported yet
        encryptor = _encryptor(plain)
        for record in records:
            item = notation_item(record)
            stored = encryptor.encrypt_item(item)
            for name, action in plain["attributeActionsOnEncrypt"].items():
                if action == "ENCRYPT_AND_SIGN" and name in item:
                    assert set(stored[name]) == {"B"}
                elif name in item:
                    assert stored[name] == item[name]
            assert semantic_item(encryptor.decrypt_item(stored)) == semantic_item(item)
            used += 1
    assert used == 15
