"""Items of the legacy DynamoDB Encryption Client (the real ``dynamodb-encryption-sdk``), written to the
local DynamoDB through plain boto3, for the legacy-config and plaintext-policy tests."""

from __future__ import annotations

import os
from typing import Any

import pytest

from kmsenvelope.dynamodb import Action, LegacyConfig, LegacyPolicy, TableConfig
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import config

sdk = pytest.importorskip("dynamodb_encryption_sdk", reason="the legacy library is in the test extra")

from dynamodb_encryption_sdk.delegated_keys.jce import JceNameLocalDelegatedKey  # noqa: E402
from dynamodb_encryption_sdk.encrypted import CryptoConfig  # noqa: E402
from dynamodb_encryption_sdk.encrypted.item import decrypt_dynamodb_item, encrypt_dynamodb_item  # noqa: E402
from dynamodb_encryption_sdk.identifiers import CryptoAction, EncryptionKeyType, KeyEncodingType  # noqa: E402
from dynamodb_encryption_sdk.material_providers.aws_kms import AwsKmsCryptographicMaterialsProvider  # noqa: E402
from dynamodb_encryption_sdk.material_providers.static import StaticCryptographicMaterialsProvider  # noqa: E402
from dynamodb_encryption_sdk.material_providers.wrapped import WrappedCryptographicMaterialsProvider  # noqa: E402
from dynamodb_encryption_sdk.materials.raw import RawDecryptionMaterials, RawEncryptionMaterials  # noqa: E402
from dynamodb_encryption_sdk.structures import AttributeActions, EncryptionContext  # noqa: E402

DESC, SIG = "*amzn-ddb-map-desc*", "*amzn-ddb-map-sig*"
CUSTOM_DESC, CUSTOM_SIG = "x-material", "x-signature"

# What the legacy items' attributes were: email/ssn/card encrypted by the legacy default, dept and
# version signed, counter neither (pk and sk default to SIGN_ONLY, as the legacy client did).
LEGACY_ACTIONS = {"dept": Action.SIGN_ONLY, "version": Action.SIGN_ONLY, "counter": Action.DO_NOTHING}
LEGACY_SDK_ACTIONS = AttributeActions(
    default_action=CryptoAction.ENCRYPT_AND_SIGN,
    attribute_actions={
        "pk": CryptoAction.SIGN_ONLY,
        "sk": CryptoAction.SIGN_ONLY,
        "dept": CryptoAction.SIGN_ONLY,
        "version": CryptoAction.SIGN_ONLY,
        "counter": CryptoAction.DO_NOTHING,
    },
)


def _key(algorithm: str) -> Any:
    return JceNameLocalDelegatedKey(
        key=os.urandom(32),
        algorithm=algorithm,
        key_type=EncryptionKeyType.SYMMETRIC,
        key_encoding=KeyEncodingType.RAW,
    )


def static_provider() -> Any:
    aes, mac = _key("AES"), _key("HmacSHA256")
    return StaticCryptographicMaterialsProvider(
        encryption_materials=RawEncryptionMaterials(signing_key=mac, encryption_key=aes),
        decryption_materials=RawDecryptionMaterials(verification_key=mac, decryption_key=aes),
    )


def wrapped_provider() -> Any:
    wrapping, mac = _key("AES"), _key("HmacSHA512")
    return WrappedCryptographicMaterialsProvider(
        signing_key=mac, wrapping_key=wrapping, unwrapping_key=wrapping
    )


def kms_provider(aws: LocalAws) -> Any:
    key = aws.create_key("us-east-1")
    return AwsKmsCryptographicMaterialsProvider(
        key, regional_clients={"us-east-1": aws.client("kms", "us-east-1")}
    )


PROVIDERS = ("static", "wrapped", "kms", "wrapped-custom-names")


def provider(kind: str, aws: LocalAws) -> Any:
    if kind == "static":
        return static_provider()
    if kind == "kms":
        return kms_provider(aws)
    return wrapped_provider()


def names(kind: str) -> tuple[str, str]:
    return (CUSTOM_DESC, CUSTOM_SIG) if kind.endswith("custom-names") else (DESC, SIG)


def legacy_config(
    materials: Any, policy: LegacyPolicy, kind: str = "static", actions: Any = None
) -> LegacyConfig:
    desc, sig = names(kind)
    return LegacyConfig(
        materials,
        LEGACY_ACTIONS if actions is None else actions,
        policy,
        material_description_attribute=desc,
        signature_attribute=sig,
    )


def table_config(table: str, legacy: LegacyConfig | None = None, **overrides: Any) -> TableConfig:
    """The shared test config; its logical name is the physical one, which legacy items were signed with."""
    return config(table, legacy=legacy, **overrides)


def crypto_config(materials: Any, table: str, item: dict[str, Any]) -> Any:
    """The crypto config the legacy EncryptedClient builds for ``item`` of ``table``."""
    return CryptoConfig(
        materials_provider=materials,
        encryption_context=EncryptionContext(
            table_name=table, partition_key_name="pk", sort_key_name="sk", attributes=item
        ),
        attribute_actions=LEGACY_SDK_ACTIONS,
    )


def legacy_encrypt(materials: Any, table: str, item: dict[str, Any], kind: str = "static") -> dict[str, Any]:
    """``item`` as the legacy library stores it (renamed as the Java client's custom names would be)."""
    stored = encrypt_dynamodb_item(dict(item), crypto_config(materials, table, item))
    desc, sig = names(kind)
    stored[desc] = stored.pop(DESC)
    stored[sig] = stored.pop(SIG)
    return dict(stored)


def legacy_decrypt(materials: Any, table: str, stored: dict[str, Any]) -> dict[str, Any]:
    """The legacy library's own reading of a default-named legacy item."""
    copy = dict(stored)
    return dict(decrypt_dynamodb_item(copy, crypto_config(materials, table, copy)))


def put_legacy(
    raw: Any, materials: Any, table: str, item: dict[str, Any], kind: str = "static"
) -> dict[str, Any]:
    """Store a legacy item through plain boto3; returns what was stored."""
    stored = legacy_encrypt(materials, table, item, kind)
    raw.put_item(TableName=table, Item=stored)
    return stored
