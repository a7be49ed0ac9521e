"""ItemEncryptor.rewrap_item: items from the DB-ESDK vectors (Java writers) move to a new key; every
encrypted attribute stays byte-identical and only the new key decrypts them afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest

from kmsenvelope import MultiKeyring, RawAesKeyring
from kmsenvelope.dynamodb import Action, ItemEncryptor, TableConfig
from kmsenvelope.errors import KmsEnvelopeError, PolicyError
from kmsenvelope.suites import DbeSuite

from ._dbesdk import ddb_item, manifest_tests, notation_item, semantic_item, vector_config, vector_keyring

POSITIVE = [(test_id, test) for test_id, test in manifest_tests() if test["type"] == "positive-decrypt"]
NEW = RawAesKeyring("rewrap", "new", bytes(range(32)))
HEAD, FOOT = "aws_dbe_head", "aws_dbe_foot"
UNSIGNED = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384


def test_there_are_vectors() -> None:
    assert len(POSITIVE) == 30


@pytest.mark.parametrize(("test_id", "test"), POSITIVE, ids=[test_id for test_id, _ in POSITIVE])
def test_vector_item_rewraps_to_the_new_key_only(test_id: str, test: dict[str, Any]) -> None:
    old = ItemEncryptor(vector_config(test["config"], vector_keyring()))
    new = ItemEncryptor(vector_config(test["config"], NEW))
    item = ddb_item(test["encrypted"])
    signed = item[HEAD]["B"][1] == 1  # the header's flavor byte: 1 = ECDSA-signed suite
    if signed:
        with pytest.raises(PolicyError, match="resign=True"):
            old.rewrap_item(item, NEW)
    rewrapped = old.rewrap_item(item, NEW, resign=signed)

    assert {k: v for k, v in rewrapped.items() if k not in (HEAD, FOOT)} == {
        k: v for k, v in item.items() if k not in (HEAD, FOOT)
    }
    assert rewrapped[HEAD] != item[HEAD] and rewrapped[FOOT] != item[FOOT]
    expected = semantic_item(notation_item(test["plaintext"]))
    assert semantic_item(new.decrypt_item(rewrapped)) == expected
    with pytest.raises(KmsEnvelopeError):
        old.decrypt_item(rewrapped)
    # Tampering with the rewrapped item is still caught (one bit in the new header and footer).
    for name in (HEAD, FOOT):
        flipped = bytearray(rewrapped[name]["B"])
        flipped[len(flipped) // 2] ^= 1
        with pytest.raises(KmsEnvelopeError):
            new.decrypt_item({**rewrapped, name: {"B": bytes(flipped)}})


def _config(keyring: Any, suite: DbeSuite = UNSIGNED) -> TableConfig:
    return TableConfig(
        "rewrap-table",
        "pk",
        actions={
            "pk": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
            "secret": Action.ENCRYPT_AND_SIGN,
            "tag": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
        },
        keyring=keyring,
        suite=suite,
    )


ITEM = {"pk": {"S": "p1"}, "secret": {"S": "the secret"}, "tag": {"S": "blue"}}


def test_keep_old_keeps_the_opened_key() -> None:
    old_keyring = RawAesKeyring("rewrap", "old", bytes(range(32, 64)))
    old = ItemEncryptor(_config(old_keyring))
    encrypted = old.encrypt_item(ITEM)
    rewrapped = old.rewrap_item(encrypted, NEW, keep_old=True)
    assert old.decrypt_item(rewrapped) == ITEM
    assert ItemEncryptor(_config(NEW)).decrypt_item(rewrapped) == ITEM
    assert rewrapped["secret"] == encrypted["secret"]


def test_keep_old_refuses_to_drop_other_recipients_and_resign_conflicts() -> None:
    first = RawAesKeyring("rewrap", "old", bytes(range(32, 64)))
    second = RawAesKeyring("rewrap", "other", bytes(range(64, 96)))
    encrypted = ItemEncryptor(_config(MultiKeyring(first, [second]))).encrypt_item(ITEM)
    old = ItemEncryptor(_config(first))
    with pytest.raises(PolicyError, match="keep_old"):
        old.rewrap_item(encrypted, NEW, keep_old=True)
    signing = ItemEncryptor(
        _config(first, DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384)
    )
    with pytest.raises(PolicyError, match="keep_old"):
        signing.rewrap_item(signing.encrypt_item(ITEM), NEW, keep_old=True, resign=True)


def test_multi_keyring_target_and_a_tampered_item_is_refused() -> None:
    old_keyring = RawAesKeyring("rewrap", "old", bytes(range(32, 64)))
    other = RawAesKeyring("rewrap", "other", bytes(range(64, 96)))
    old = ItemEncryptor(_config(old_keyring))
    encrypted = old.encrypt_item(ITEM)
    rewrapped = old.rewrap_item(encrypted, MultiKeyring(NEW, [other]))
    for keyring in (NEW, other):
        assert ItemEncryptor(_config(keyring)).decrypt_item(rewrapped) == ITEM
    for name in ("secret", "tag", HEAD, FOOT):
        value = encrypted[name]
        tampered = dict(encrypted)
        if "B" in value:
            flipped = bytearray(value["B"])
            flipped[-1] ^= 1
            tampered[name] = {"B": bytes(flipped)}
        else:
            tampered[name] = {"S": value["S"] + "!"}
        with pytest.raises(KmsEnvelopeError):
            old.rewrap_item(tampered, NEW)
