"""Interop with the AWS Encryption SDK for Python (4.x) against the same local KMS, both ways.

The ESDK's KMS master key providers get a botocore session whose config file points at the local
endpoint; kmsenvelope gets a ClientSupplier for the same endpoint.
"""

from __future__ import annotations

from typing import Any

import aws_encryption_sdk
import pytest
from aws_encryption_sdk import CommitmentPolicy as EsdkCommitmentPolicy
from aws_encryption_sdk.key_providers.kms import (
    DiscoveryFilter as EsdkDiscoveryFilter,
)
from aws_encryption_sdk.key_providers.kms import (
    MRKAwareDiscoveryAwsKmsMasterKeyProvider,
    MRKAwareStrictAwsKmsMasterKeyProvider,
    StrictAwsKmsMasterKeyProvider,
)

from kmsenvelope import DiscoveryFilter, Envelope, KmsDiscoveryKeyring, KmsKeyring, KmsRsaKeyring
from kmsenvelope.testing import ACCOUNT_ID, LocalAws

CONTEXT = {"purpose": "interop", "tenant": "acme"}
PLAINTEXT = b"interop payload " * 300


@pytest.fixture(scope="module")
def esdk() -> Any:
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=EsdkCommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )


def test_esdk_strict_provider_to_kmsenvelope(local_aws: LocalAws, esdk: Any) -> None:
    key = local_aws.create_key("us-east-1")
    provider = StrictAwsKmsMasterKeyProvider(key_ids=[key], botocore_session=local_aws.botocore_session())
    ciphertext, _ = esdk.encrypt(source=PLAINTEXT, key_provider=provider, encryption_context=CONTEXT)
    # The ESDK really used the local KMS.
    assert [r.key_id for r in local_aws.requests("GenerateDataKey")] == [key]

    supplier = local_aws.client_supplier()
    assert Envelope(KmsKeyring(key, client_supplier=supplier)).decrypt(ciphertext, CONTEXT) == PLAINTEXT
    discovery = KmsDiscoveryKeyring(
        "us-east-1", discovery_filter=DiscoveryFilter("aws", [ACCOUNT_ID]), client_supplier=supplier
    )
    assert Envelope(discovery).decrypt(ciphertext, CONTEXT) == PLAINTEXT


def test_esdk_mrk_provider_to_kmsenvelope_in_replica_region(local_aws: LocalAws, esdk: Any) -> None:
    mrk = local_aws.create_mrk("us-east-1", ["ap-southeast-2"])
    provider = MRKAwareStrictAwsKmsMasterKeyProvider(
        key_ids=[mrk.primary], botocore_session=local_aws.botocore_session()
    )
    ciphertext, _ = esdk.encrypt(source=PLAINTEXT, key_provider=provider, encryption_context=CONTEXT)
    local_aws.reset()

    supplier = local_aws.client_supplier()
    replica = mrk.arn("ap-southeast-2")
    assert Envelope(KmsKeyring(replica, client_supplier=supplier)).decrypt(ciphertext, CONTEXT) == PLAINTEXT
    assert (
        Envelope(KmsDiscoveryKeyring("ap-southeast-2", client_supplier=supplier)).decrypt(ciphertext, CONTEXT)
        == PLAINTEXT
    )
    assert [(r.region, r.key_id) for r in local_aws.requests("Decrypt")] == [("ap-southeast-2", replica)] * 2


def test_kmsenvelope_to_esdk_strict_provider(local_aws: LocalAws, esdk: Any) -> None:
    first, second = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")
    keyring = KmsKeyring(first, additional_key_ids=[second], client_supplier=local_aws.client_supplier())
    ciphertext = Envelope(keyring).encrypt(PLAINTEXT, CONTEXT)

    for key in (first, second):
        provider = StrictAwsKmsMasterKeyProvider(key_ids=[key], botocore_session=local_aws.botocore_session())
        plaintext, header = esdk.decrypt(source=ciphertext, key_provider=provider)
        assert plaintext == PLAINTEXT
        assert dict(header.encryption_context) == CONTEXT


def test_kmsenvelope_to_esdk_mrk_aware_discovery(local_aws: LocalAws, esdk: Any) -> None:
    mrk = local_aws.create_mrk("us-east-1", ["ap-southeast-2"])
    ciphertext = Envelope(KmsKeyring(mrk.primary, client_supplier=local_aws.client_supplier())).encrypt(
        PLAINTEXT, CONTEXT
    )
    local_aws.reset()
    provider = MRKAwareDiscoveryAwsKmsMasterKeyProvider(
        discovery_region="ap-southeast-2",
        discovery_filter=EsdkDiscoveryFilter(account_ids=[ACCOUNT_ID], partition="aws"),
        botocore_session=local_aws.botocore_session("ap-southeast-2"),
    )
    plaintext, _ = esdk.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == PLAINTEXT
    (call,) = local_aws.requests("Decrypt")
    assert (call.region, call.key_id) == ("ap-southeast-2", mrk.arn("ap-southeast-2"))
    assert call.params["EncryptionContext"] == CONTEXT


def test_kms_rsa_keyring_matches_the_mpl_both_ways(local_aws: LocalAws, esdk: Any) -> None:
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsRsaKeyringInput

    key = local_aws.create_rsa_key("us-west-2")
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    mpl_keyring = mpl.create_aws_kms_rsa_keyring(
        input=CreateAwsKmsRsaKeyringInput(
            kms_key_id=key.arn,
            encryption_algorithm="RSAES_OAEP_SHA_256",
            public_key=key.public_key_pem,
            kms_client=local_aws.client("kms", "us-west-2"),
        )
    )
    ours = KmsRsaKeyring(key.arn, public_key=key.public_key_pem, client_supplier=local_aws.client_supplier())
    # The MPL keyring refuses signing suites, so both sides use the committing non-signing suite.
    suite = aws_encryption_sdk.Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY

    theirs_ct, _ = esdk.encrypt(
        source=PLAINTEXT, keyring=mpl_keyring, encryption_context=CONTEXT, algorithm=suite
    )
    assert Envelope(ours).decrypt(theirs_ct, CONTEXT) == PLAINTEXT

    our_ct = Envelope(ours).encrypt(PLAINTEXT, CONTEXT)
    plaintext, _ = esdk.decrypt(source=our_ct, keyring=mpl_keyring)
    assert plaintext == PLAINTEXT
