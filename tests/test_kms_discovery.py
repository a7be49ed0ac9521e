"""KmsDiscoveryKeyring (MRK-aware discovery) against the local KMS."""

from __future__ import annotations

import pytest

from kmsenvelope import DiscoveryFilter, KmsDiscoveryKeyring, KmsKeyring
from kmsenvelope.errors import ConfigurationError, NoUsableKeyError, PolicyError
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from kmsenvelope.suites import Suite
from kmsenvelope.testing import ACCOUNT_ID, LocalAws

SUITE = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
CONTEXT = {"app": "discovery-test"}


def encrypt_with(local_aws: LocalAws, key: str) -> EncryptionMaterials:
    keyring = KmsKeyring(key, client_supplier=local_aws.client_supplier())
    return keyring.on_encrypt(EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT))


def decrypt(keyring: KmsDiscoveryKeyring, edks: tuple[EncryptedDataKey, ...]) -> bytes:
    result = keyring.on_decrypt(DecryptionMaterials(suite=SUITE, encryption_context=CONTEXT), edks)
    assert result.plaintext_data_key is not None
    return result.plaintext_data_key


def test_mrk_from_another_region_is_decrypted_with_the_local_replica(local_aws: LocalAws) -> None:
    mrk = local_aws.create_mrk("us-east-1", ["ap-southeast-2"])
    materials = encrypt_with(local_aws, mrk.primary)
    local_aws.reset()
    keyring = KmsDiscoveryKeyring(
        "ap-southeast-2",
        discovery_filter=DiscoveryFilter("aws", [ACCOUNT_ID]),
        grant_tokens=["gt-a", "gt-b"],
        client_supplier=local_aws.client_supplier(),
    )
    assert decrypt(keyring, materials.encrypted_data_keys) == materials.plaintext_data_key
    (call,) = local_aws.requests()
    assert call.operation == "Decrypt" and call.region == "ap-southeast-2"
    assert call.params["KeyId"] == mrk.arn("ap-southeast-2")  # region rewritten, rest unchanged
    assert call.params["GrantTokens"] == ["gt-a", "gt-b"]
    assert call.params["EncryptionContext"] == CONTEXT


def test_single_region_key_from_another_region_is_skipped_without_a_call(local_aws: LocalAws) -> None:
    key = local_aws.create_key("us-east-1")
    materials = encrypt_with(local_aws, key)
    local_aws.reset()
    with pytest.raises(NoUsableKeyError) as info:
        decrypt(
            KmsDiscoveryKeyring("ap-southeast-2", client_supplier=local_aws.client_supplier()),
            materials.encrypted_data_keys,
        )
    assert local_aws.requests() == ()
    (failure,) = info.value.failures
    assert failure.provider_info == key and "single-Region key in us-east-1" in failure.reason
    # Same region: the key ARN from the EDK is used as is.
    assert (
        decrypt(
            KmsDiscoveryKeyring("us-east-1", client_supplier=local_aws.client_supplier()),
            materials.encrypted_data_keys,
        )
        == materials.plaintext_data_key
    )
    assert local_aws.requests("Decrypt")[0].params["KeyId"] == key


@pytest.mark.parametrize(
    ("discovery_filter", "reason"),
    [
        (DiscoveryFilter("aws", ["111122223333"]), "account 123456789012 is not in the discovery filter"),
        (DiscoveryFilter("aws-cn", [ACCOUNT_ID]), "partition 'aws' is not the discovery filter's 'aws-cn'"),
    ],
)
def test_discovery_filter_rejects_other_accounts_and_partitions(
    local_aws: LocalAws, discovery_filter: DiscoveryFilter, reason: str
) -> None:
    key = local_aws.create_key("us-east-1")
    materials = encrypt_with(local_aws, key)
    local_aws.reset()
    keyring = KmsDiscoveryKeyring(
        "us-east-1", discovery_filter=discovery_filter, client_supplier=local_aws.client_supplier()
    )
    with pytest.raises(NoUsableKeyError) as info:
        decrypt(keyring, materials.encrypted_data_keys)
    assert local_aws.requests() == ()
    assert info.value.failures[0].reason == f"filtered out: {reason}"


def test_tries_edks_in_order_until_one_decrypts(local_aws: LocalAws) -> None:
    disabled, good = local_aws.create_key("us-east-1"), local_aws.create_key("us-east-1")
    keyring = KmsKeyring(disabled, additional_key_ids=[good], client_supplier=local_aws.client_supplier())
    materials = keyring.on_encrypt(EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT))
    local_aws.disable_key(disabled)
    local_aws.reset()
    discovery = KmsDiscoveryKeyring("us-east-1", client_supplier=local_aws.client_supplier())
    assert decrypt(discovery, materials.encrypted_data_keys) == materials.plaintext_data_key
    assert [r.params["KeyId"] for r in local_aws.requests("Decrypt")] == [disabled, good]


def test_all_failures_are_reported(local_aws: LocalAws) -> None:
    key = local_aws.create_key("us-east-1")
    materials = encrypt_with(local_aws, key)
    local_aws.disable_key(key)
    foreign = EncryptedDataKey("raw-aes", b"ns/key", b"\x00" * 60)
    with pytest.raises(NoUsableKeyError) as info:
        decrypt(
            KmsDiscoveryKeyring("us-east-1", client_supplier=local_aws.client_supplier()),
            (foreign, *materials.encrypted_data_keys),
        )
    assert [(f.provider_id, f.provider_info) for f in info.value.failures] == [
        ("raw-aes", "ns/key"),
        ("aws-kms", key),
    ]
    assert "disabled" in info.value.failures[1].reason


def test_client_for_the_wrong_region_is_refused(local_aws: LocalAws) -> None:
    mrk = local_aws.create_mrk("us-east-1", ["eu-west-1"])
    materials = encrypt_with(local_aws, mrk.primary)
    supplier = local_aws.client_supplier()
    keyring = KmsDiscoveryKeyring("eu-west-1", client_supplier=lambda region: supplier("us-east-1"))
    local_aws.reset()
    with pytest.raises(NoUsableKeyError, match="client for us-east-1, not eu-west-1"):
        decrypt(keyring, materials.encrypted_data_keys)
    assert local_aws.requests() == ()


def test_decrypt_only(local_aws: LocalAws) -> None:
    keyring = KmsDiscoveryKeyring("us-east-1", client_supplier=local_aws.client_supplier())
    with pytest.raises(PolicyError):
        keyring.on_encrypt(EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT))
    done = DecryptionMaterials(suite=SUITE, encryption_context=CONTEXT).with_data_key(bytes(32))
    with pytest.raises(PolicyError):
        keyring.on_decrypt(done, ())


def test_bad_construction() -> None:
    with pytest.raises(ConfigurationError):
        KmsDiscoveryKeyring("")
    with pytest.raises(ConfigurationError):
        KmsDiscoveryKeyring("us-east-1", discovery_filter=("aws", ["1"]))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        KmsDiscoveryKeyring("us-east-1", discovery_filter=DiscoveryFilter("aws", []))
