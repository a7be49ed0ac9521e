"""Hostile items on tables that accept legacy or plaintext items: each case has one decided answer, and
none returns unauthenticated data as if it were verified (``kmsenvelope.dynamodb.formats``)."""

from __future__ import annotations

from typing import Any

import pytest

from kmsenvelope.dynamodb import ItemEncryptor, ItemFormat, LegacyPolicy, PlaintextPolicy
from kmsenvelope.dynamodb.legacy import FormatRefusedError, LegacyItemError
from kmsenvelope.errors import AuthenticationError, KmsEnvelopeError, MalformedInputError

from ._dynamodb_env import config, person
from ._legacy_env import (
    CUSTOM_DESC,
    CUSTOM_SIG,
    DESC,
    SIG,
    legacy_config,
    legacy_decrypt,
    legacy_encrypt,
    static_provider,
)

TABLE = "hostile"
MATERIALS = static_provider()
ALLOW = LegacyPolicy.FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT
READ_PLAINTEXT = PlaintextPolicy.FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ


def _encryptors() -> dict[str, ItemEncryptor]:
    return {
        "legacy-allow": ItemEncryptor(config(TABLE, legacy=legacy_config(MATERIALS, ALLOW))),
        "legacy-forbid": ItemEncryptor(
            config(
                TABLE,
                legacy=legacy_config(MATERIALS, LegacyPolicy.FORBID_LEGACY_ENCRYPT_FORBID_LEGACY_DECRYPT),
            )
        ),
        "plaintext-read": ItemEncryptor(config(TABLE, plaintext_policy=READ_PLAINTEXT)),
        "default": ItemEncryptor(config(TABLE)),
    }


ENCRYPTORS = _encryptors()
NEW = ENCRYPTORS["default"].encrypt_item(person("n"))
LEGACY = legacy_encrypt(MATERIALS, TABLE, person("l"))


def _refused(encryptor: ItemEncryptor, item: dict[str, Any], error: type[Exception]) -> Exception:
    with pytest.raises(error) as info:
        encryptor.decrypt_item_with_format(item)
    assert "4111" not in str(info.value) and "@example.com" not in str(info.value)
    return info.value


def test_the_untouched_items() -> None:
    assert ENCRYPTORS["legacy-allow"].decrypt_item_with_format(LEGACY) == (person("l"), ItemFormat.LEGACY)
    assert ENCRYPTORS["legacy-allow"].decrypt_item_with_format(NEW) == (person("n"), ItemFormat.NEW)
    assert ENCRYPTORS["plaintext-read"].decrypt_item_with_format(person("p")) == (
        person("p"),
        ItemFormat.PLAINTEXT,
    )
    assert ENCRYPTORS["plaintext-read"].decrypt_item_with_format(NEW) == (person("n"), ItemFormat.NEW)
    assert legacy_decrypt(MATERIALS, TABLE, LEGACY) == person("l")


@pytest.mark.parametrize("kind", ["legacy-allow", "legacy-forbid"])
def test_new_item_with_the_legacy_attributes_added_is_refused(kind: str) -> None:
    """Decided: refused on any table with a legacy config, before any key is used (no writer produces
    both formats' attributes)."""
    forged = {**NEW, DESC: LEGACY[DESC], SIG: LEGACY[SIG]}
    error = _refused(ENCRYPTORS[kind], forged, FormatRefusedError)
    assert "both the legacy attributes" in str(error)


@pytest.mark.parametrize("kind", ["plaintext-read", "default"])
def test_new_item_with_legacy_attributes_on_other_tables_fails_authentication(kind: str) -> None:
    """Without a legacy config the attributes are just extra signed attributes: the new format's
    signature does not cover them, so decryption fails."""
    forged = {**NEW, DESC: LEGACY[DESC], SIG: LEGACY[SIG]}
    with pytest.raises(KmsEnvelopeError):
        ENCRYPTORS[kind].decrypt_item(forged)


@pytest.mark.parametrize("removed", [SIG, DESC])
def test_legacy_item_missing_its_signature_or_description(removed: str) -> None:
    """Decided: never "plaintext". With a legacy config it is refused as an incomplete legacy item;
    on a table that reads plaintext it is refused because it carries a legacy attribute; by default,
    plaintext is refused anyway."""
    stripped = {k: v for k, v in LEGACY.items() if k != removed}
    assert "no " + repr(removed) in str(_refused(ENCRYPTORS["legacy-allow"], stripped, FormatRefusedError))
    _refused(ENCRYPTORS["legacy-forbid"], stripped, FormatRefusedError)
    assert "legacy attribute" in str(_refused(ENCRYPTORS["plaintext-read"], stripped, FormatRefusedError))
    assert "FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ (the default)" in str(
        _refused(ENCRYPTORS["default"], stripped, FormatRefusedError)
    )
    both_gone = {k: v for k, v in LEGACY.items() if k not in (DESC, SIG)}
    # With both removed nothing marks it as legacy: a table that reads plaintext passes it through, but as
    # PLAINTEXT (unauthenticated, the policy's opt-in), never as a verified item.
    assert ENCRYPTORS["plaintext-read"].decrypt_item_with_format(both_gone)[1] is ItemFormat.PLAINTEXT
    _refused(ENCRYPTORS["legacy-allow"], both_gone, FormatRefusedError)


@pytest.mark.parametrize("kept", ["aws_dbe_head", "aws_dbe_foot"])
@pytest.mark.parametrize("kind", ["plaintext-read", "legacy-allow", "default"])
def test_item_with_only_one_of_header_and_footer_is_not_plaintext(kind: str, kept: str) -> None:
    """Decided (as the reference implementation): not plaintext, so the new-format decryption fails on the
    missing attribute and nothing is passed through."""
    half = {k: v for k, v in NEW.items() if k in (kept,) or not k.startswith("aws_dbe_")}
    _refused(ENCRYPTORS[kind], half, MalformedInputError)
    plain_with_one = {**person("p"), kept: NEW[kept]}
    _refused(ENCRYPTORS[kind], plain_with_one, KmsEnvelopeError)


def test_new_item_with_header_and_footer_removed_is_never_reported_verified() -> None:
    stripped = {k: v for k, v in NEW.items() if k not in ("aws_dbe_head", "aws_dbe_foot")}
    assert ENCRYPTORS["plaintext-read"].decrypt_item_with_format(stripped)[1] is ItemFormat.PLAINTEXT
    for kind in ("legacy-allow", "default"):
        _refused(ENCRYPTORS[kind], stripped, FormatRefusedError)


def _legacy_library_refuses(item: dict[str, Any]) -> None:
    with pytest.raises(Exception):  # noqa: B017 - whatever the legacy library raises, it must raise
        legacy_decrypt(MATERIALS, TABLE, item)


@pytest.mark.parametrize(
    "change",
    [
        {"dept": {"S": "ops"}},  # a SIGN_ONLY value
        {"nickname": {"S": "added"}},  # an attribute the actions do not name: ENCRYPT_AND_SIGN by default
        {"pk": {"S": "other"}},  # moved under another key
        {"version": {"N": "2"}},
    ],
)
def test_tampered_legacy_items_fail_as_in_the_legacy_library(change: dict[str, Any]) -> None:
    tampered = {**LEGACY, **change}
    _legacy_library_refuses(tampered)
    error = _refused(ENCRYPTORS["legacy-allow"], tampered, LegacyItemError)
    assert isinstance(error, AuthenticationError) and error.__cause__ is not None


def test_tampered_ciphertext_and_signature() -> None:
    cipher = bytearray(LEGACY["email"]["B"])
    cipher[-1] ^= 1
    signature = bytearray(LEGACY[SIG]["B"])
    signature[0] ^= 1
    for tampered in ({**LEGACY, "email": {"B": bytes(cipher)}}, {**LEGACY, SIG: {"B": bytes(signature)}}):
        _legacy_library_refuses(tampered)
        _refused(ENCRYPTORS["legacy-allow"], tampered, LegacyItemError)
    other_table = legacy_encrypt(MATERIALS, "another-table", person("l"))
    _refused(ENCRYPTORS["legacy-allow"], other_table, LegacyItemError)


def test_do_nothing_attributes_change_freely_as_in_the_legacy_library() -> None:
    """``counter`` is DO_NOTHING in the legacy actions: the caller declared it unauthenticated."""
    changed = {**LEGACY, "counter": {"N": "99"}}
    assert legacy_decrypt(MATERIALS, TABLE, changed)["counter"] == {"N": "99"}
    assert ENCRYPTORS["legacy-allow"].decrypt_item(changed) == person("l", counter={"N": "99"})


def test_custom_names_and_default_names_together_are_refused() -> None:
    custom = ItemEncryptor(config(TABLE, legacy=legacy_config(MATERIALS, ALLOW, "wrapped-custom-names")))
    item = legacy_encrypt(MATERIALS, TABLE, person("c"), "wrapped-custom-names")
    assert custom.decrypt_item(item) == person("c")
    _refused(custom, {**item, SIG: item[CUSTOM_SIG]}, FormatRefusedError)
    # Under custom names a default-named item is not detected as legacy: it reads as plaintext, refused.
    assert custom.decrypt_item_with_format(item)[1] is ItemFormat.LEGACY
    _refused(custom, LEGACY, FormatRefusedError)
    assert CUSTOM_DESC in item


def test_writers_refuse_items_that_would_read_back_as_another_format() -> None:
    for kind in ("legacy-allow", "legacy-forbid"):
        with pytest.raises(MalformedInputError, match="legacy format"):
            ENCRYPTORS[kind].encrypt_item({**person("w"), SIG: {"B": b"x"}})
    forcing = ItemEncryptor(
        config(TABLE, plaintext_policy=PlaintextPolicy.FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ)
    )
    for extra in ({"aws_dbe_head": {"B": b"x"}}, {DESC: {"B": b"x"}}):
        with pytest.raises(MalformedInputError):
            forcing.encrypt_item({**person("w"), **extra})
    with pytest.raises(MalformedInputError, match="'sk' key"):
        forcing.encrypt_item({"pk": {"S": "no-sort-key"}})
