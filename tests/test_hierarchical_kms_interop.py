"""Interop with the MPL (``aws-cryptographic-material-providers`` 1.11, used by the AWS Encryption SDK 4.x):
its ``KeyStore`` and hierarchical keyring against the same local DynamoDB table and KMS key as ours.

Both directions: branch keys created or versioned by either key store are read by the other (same key
bytes, versions and custom context), and messages from the ESDK's hierarchical keyring decrypt with
kmsenvelope and vice versa. The MPL gets plain boto3 clients pointed at the local endpoint.
"""

from __future__ import annotations

from typing import Any

import aws_encryption_sdk
import pytest
from aws_cryptographic_material_providers.keystore import KeyStore as MplKeyStore
from aws_cryptographic_material_providers.keystore.config import KeyStoreConfig
from aws_cryptographic_material_providers.keystore.errors import ComAmazonawsKms
from aws_cryptographic_material_providers.keystore.models import (
    CreateKeyInput,
    CreateKeyStoreInput,
    GetActiveBranchKeyInput,
    GetBeaconKeyInput,
    GetBranchKeyVersionInput,
    KMSConfigurationKmsKeyArn,
    VersionKeyInput,
)
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsHierarchicalKeyringInput
from aws_encryption_sdk import CommitmentPolicy as EsdkCommitmentPolicy

from kmsenvelope import Envelope, HierarchicalKeyring
from kmsenvelope.aws.branch_key_store import KeyStore
from kmsenvelope.testing import LocalAws

from ._branch_keys import edk_branch_keys, new_store, new_table_name

CONTEXT = {"purpose": "hierarchical interop", "tenant": "acme"}
PLAINTEXT = b"hierarchical interop payload " * 100


@pytest.fixture(scope="module")
def esdk() -> Any:
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=EsdkCommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )


def mpl_store(local_aws: LocalAws, table: str, kms_arn: str, logical_name: str | None = None) -> Any:
    return MplKeyStore(
        KeyStoreConfig(
            ddb_table_name=table,
            kms_configuration=KMSConfigurationKmsKeyArn(kms_arn),
            logical_key_store_name=logical_name or table,
            ddb_client=local_aws.client("dynamodb", "us-east-1"),
            kms_client=local_aws.client("kms", "us-east-1"),
        )
    )


def mpl_keyring(store: Any, branch_key_id: str) -> Any:
    providers = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    return providers.create_aws_kms_hierarchical_keyring(
        CreateAwsKmsHierarchicalKeyringInput(key_store=store, branch_key_id=branch_key_id, ttl_seconds=600)
    )


def mpl_active(store: Any, branch_key_id: str) -> Any:
    return store.get_active_branch_key(
        GetActiveBranchKeyInput(branch_key_identifier=branch_key_id)
    ).branch_key_materials


def mpl_version(store: Any, branch_key_id: str, version: str) -> Any:
    return store.get_branch_key_version(
        GetBranchKeyVersionInput(branch_key_identifier=branch_key_id, branch_key_version=version)
    ).branch_key_materials


def mpl_beacon(store: Any, branch_key_id: str) -> Any:
    return store.get_beacon_key(GetBeaconKeyInput(branch_key_identifier=branch_key_id)).beacon_key_materials


def _text_context(context: Any) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in dict(context).items()
    }


def test_keys_created_by_the_mpl_key_store_are_read_by_ours(local_aws: LocalAws) -> None:
    table, kms_arn = new_table_name(), local_aws.create_key("us-east-1")
    theirs = mpl_store(local_aws, table, kms_arn, logical_name="shared-logical")
    theirs.create_key_store(CreateKeyStoreInput())
    branch_key_id = theirs.create_key(
        CreateKeyInput(branch_key_identifier="tenant-acme", encryption_context={"tenant": "acme"})
    ).branch_key_identifier
    first = mpl_active(theirs, branch_key_id)
    theirs.version_key(VersionKeyInput(branch_key_identifier=branch_key_id))
    second = mpl_active(theirs, branch_key_id)
    assert second.branch_key_version != first.branch_key_version

    ours = new_store(local_aws, table_name=table, kms_key_arn=kms_arn, logical_name="shared-logical")
    assert ours.create_table().endswith(f":table/{table}")  # accepts the MPL's table as is
    active = ours.get_active_branch_key(branch_key_id)
    assert (active.branch_key_version, active.branch_key) == (second.branch_key_version, second.branch_key)
    assert dict(active.encryption_context) == _text_context(second.encryption_context) == {"tenant": "acme"}
    old = ours.get_branch_key_version(branch_key_id, first.branch_key_version)
    assert old.branch_key == first.branch_key
    beacon = ours.get_beacon_key(branch_key_id)
    assert beacon.beacon_key == mpl_beacon(theirs, branch_key_id).beacon_key

    # And our rotation of the MPL's key is read back by the MPL.
    third = ours.version_key(branch_key_id)
    theirs_now = mpl_active(theirs, branch_key_id)
    assert theirs_now.branch_key_version == third
    assert theirs_now.branch_key == ours.get_branch_key_version(branch_key_id, third).branch_key
    assert _text_context(theirs_now.encryption_context) == {"tenant": "acme"}


def test_keys_created_by_our_key_store_are_read_by_the_mpl(local_aws: LocalAws) -> None:
    ours = new_store(local_aws, logical_name="ours-logical")
    branch_key_id = ours.create_key("tenant-globex", {"tenant": "globex", "tier": "gold"})
    first = ours.get_active_branch_key(branch_key_id)
    second_version = ours.version_key(branch_key_id)

    theirs = mpl_store(local_aws, ours.table_name, ours.kms_key_arn, logical_name="ours-logical")
    active = mpl_active(theirs, branch_key_id)
    assert active.branch_key_version == second_version
    assert active.branch_key == ours.get_active_branch_key(branch_key_id).branch_key
    assert _text_context(active.encryption_context) == {"tenant": "globex", "tier": "gold"}
    assert mpl_version(theirs, branch_key_id, first.branch_key_version).branch_key == first.branch_key
    assert mpl_beacon(theirs, branch_key_id).beacon_key == ours.get_beacon_key(branch_key_id).beacon_key

    # The MPL rotates our key; we read its new version.
    theirs.version_key(VersionKeyInput(branch_key_identifier=branch_key_id))
    rotated = mpl_active(theirs, branch_key_id)
    assert ours.get_active_branch_key(branch_key_id).branch_key == rotated.branch_key
    # The MPL with another logical name is refused by KMS, as ours is (the name is in the context).
    local_aws.reset()
    with pytest.raises(ComAmazonawsKms):
        mpl_active(mpl_store(local_aws, ours.table_name, ours.kms_key_arn, "other-logical"), branch_key_id)
    (decrypt,) = local_aws.requests("Decrypt")
    assert decrypt.params["EncryptionContext"]["tablename"] == "other-logical"


def test_esdk_hierarchical_messages_decrypt_with_kmsenvelope(local_aws: LocalAws, esdk: Any) -> None:
    table, kms_arn = new_table_name(), local_aws.create_key("us-east-1")
    theirs = mpl_store(local_aws, table, kms_arn)
    theirs.create_key_store(CreateKeyStoreInput())
    branch_key_id = theirs.create_key(CreateKeyInput()).branch_key_identifier
    version = mpl_active(theirs, branch_key_id).branch_key_version

    ciphertext, _ = esdk.encrypt(
        source=PLAINTEXT, keyring=mpl_keyring(theirs, branch_key_id), encryption_context=CONTEXT
    )
    ours = KeyStore(
        table,
        kms_arn,
        ddb_client=local_aws.client("dynamodb", "us-east-1"),
        client_supplier=local_aws.client_supplier(),
    )
    envelope = Envelope(HierarchicalKeyring(ours, branch_key_id=branch_key_id))
    assert edk_branch_keys(envelope, ciphertext) == [(branch_key_id, version)]
    result = envelope.decrypt_with_header(ciphertext, CONTEXT)
    assert result.plaintext == PLAINTEXT
    assert result.header.suite.id == 0x0578  # the ESDK's default: committing, ECDSA-signed

    # After a rotation by the MPL, the ESDK's new messages carry the new version and still decrypt.
    theirs.version_key(VersionKeyInput(branch_key_identifier=branch_key_id))
    new_version = mpl_active(theirs, branch_key_id).branch_key_version
    rotated, _ = esdk.encrypt(
        source=PLAINTEXT, keyring=mpl_keyring(theirs, branch_key_id), encryption_context=CONTEXT
    )
    assert edk_branch_keys(envelope, rotated) == [(branch_key_id, new_version)]
    assert envelope.decrypt(rotated, CONTEXT) == PLAINTEXT
    assert envelope.decrypt(ciphertext, CONTEXT) == PLAINTEXT


def test_kmsenvelope_hierarchical_messages_decrypt_with_the_esdk(local_aws: LocalAws, esdk: Any) -> None:
    ours = new_store(local_aws)
    branch_key_id = ours.create_key()
    envelope = Envelope(HierarchicalKeyring(ours, branch_key_id=branch_key_id))
    before = envelope.encrypt(PLAINTEXT, CONTEXT)
    new_version = ours.version_key(branch_key_id)
    after = Envelope(HierarchicalKeyring(ours, branch_key_id=branch_key_id)).encrypt(PLAINTEXT, CONTEXT)
    assert edk_branch_keys(envelope, after) == [(branch_key_id, new_version)]

    keyring = mpl_keyring(mpl_store(local_aws, ours.table_name, ours.kms_key_arn), branch_key_id)
    for message in (before, after):
        plaintext, header = esdk.decrypt(source=message, keyring=keyring)
        assert plaintext == PLAINTEXT
        assert dict(header.encryption_context) == CONTEXT
    # A tampered message is refused by the ESDK too (so the success above is meaningful).
    tampered = bytearray(after)
    tampered[-40] ^= 1
    with pytest.raises(Exception):  # noqa: B017 -- the ESDK raises its own error types
        esdk.decrypt(source=bytes(tampered), keyring=keyring)
