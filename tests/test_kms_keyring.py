"""KmsKeyring against the Keyring protocol, over HTTP to the local (moto) KMS."""

from __future__ import annotations

import pytest

from kmsenvelope import Keyring, KmsKeyring
from kmsenvelope.aws import ClientSupplier, parse_arn
from kmsenvelope.errors import ConfigurationError, NoUsableKeyError
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from kmsenvelope.suites import Suite
from kmsenvelope.testing import LocalAws

SUITE = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
CONTEXT = {"tenant": "acme", "purpose": "test"}


def encrypt(
    keyring: KmsKeyring, suite: Suite = SUITE, context: dict[str, str] = CONTEXT
) -> EncryptionMaterials:
    return keyring.on_encrypt(EncryptionMaterials(suite=suite, encryption_context=context))


def decrypt(
    keyring: Keyring,
    edks: tuple[EncryptedDataKey, ...],
    context: dict[str, str] = CONTEXT,
    suite: Suite = SUITE,
) -> bytes:
    result = keyring.on_decrypt(DecryptionMaterials(suite=suite, encryption_context=context), edks)
    assert result.plaintext_data_key is not None
    return result.plaintext_data_key


def test_is_a_keyring(local_aws: LocalAws) -> None:
    assert isinstance(
        KmsKeyring(local_aws.create_key(), client_supplier=local_aws.client_supplier()), Keyring
    )


def test_generate_then_encrypt_under_additional_keys(local_aws: LocalAws) -> None:
    generator, extra = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")
    keyring = KmsKeyring(
        generator,
        additional_key_ids=[extra],
        grant_tokens=["token-1"],
        client_supplier=local_aws.client_supplier(),
    )
    materials = encrypt(keyring, Suite.AES_128_GCM_IV12_TAG16_HKDF_SHA256)

    assert [e.provider_id for e in materials.encrypted_data_keys] == ["aws-kms", "aws-kms"]
    assert [e.provider_info.decode() for e in materials.encrypted_data_keys] == [generator, extra]
    (gdk,) = local_aws.requests("GenerateDataKey")
    assert (gdk.region, gdk.params["KeyId"], gdk.params["NumberOfBytes"]) == ("us-east-1", generator, 16)
    assert gdk.params["EncryptionContext"] == CONTEXT
    assert gdk.params["GrantTokens"] == ["token-1"]
    (enc,) = local_aws.requests("Encrypt")
    assert (enc.region, enc.params["KeyId"], enc.params["EncryptionContext"]) == ("eu-west-1", extra, CONTEXT)
    assert enc.params["GrantTokens"] == ["token-1"]

    # Either key alone recovers the same data key.
    for key in (generator, extra):
        assert (
            decrypt(
                KmsKeyring(key, client_supplier=local_aws.client_supplier()),
                materials.encrypted_data_keys,
                suite=Suite.AES_128_GCM_IV12_TAG16_HKDF_SHA256,
            )
            == materials.plaintext_data_key
        )


def test_existing_data_key_is_encrypted_not_regenerated(local_aws: LocalAws) -> None:
    key = local_aws.create_key()
    start = EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT).with_data_key(bytes(range(32)))
    materials = KmsKeyring(key, client_supplier=local_aws.client_supplier()).on_encrypt(start)
    assert materials.plaintext_data_key == bytes(range(32))
    assert len(materials.encrypted_data_keys) == 1
    assert local_aws.requests("GenerateDataKey") == ()
    assert len(local_aws.requests("Encrypt")) == 1


def test_mrk_replica_decrypts_with_configured_key_in_its_region(local_aws: LocalAws) -> None:
    mrk = local_aws.create_mrk("us-east-1", ["ap-southeast-2"])
    supplier = local_aws.client_supplier()
    materials = encrypt(KmsKeyring(mrk.primary, client_supplier=supplier))
    local_aws.reset()

    replica = mrk.arn("ap-southeast-2")
    assert (
        decrypt(
            KmsKeyring(replica, grant_tokens=["g"], client_supplier=supplier), materials.encrypted_data_keys
        )
        == materials.plaintext_data_key
    )
    (call,) = local_aws.requests("Decrypt")
    # KeyId is the configured replica, not the primary ARN stored in the EDK.
    assert (call.region, call.params["KeyId"]) == ("ap-southeast-2", replica)
    assert call.params["EncryptionContext"] == CONTEXT
    assert call.params["GrantTokens"] == ["g"]


def test_non_matching_edks_are_not_sent_to_kms(local_aws: LocalAws) -> None:
    key, other = local_aws.create_key(), local_aws.create_key()
    materials = encrypt(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    foreign = EncryptedDataKey("raw-aes", b"ns/name", b"\x00" * 40)
    local_aws.reset()
    with pytest.raises(NoUsableKeyError) as info:
        decrypt(
            KmsKeyring(other, client_supplier=local_aws.client_supplier()),
            (foreign, *materials.encrypted_data_keys),
        )
    assert local_aws.requests("Decrypt") == ()
    failures = info.value.failures
    assert [f.provider_id for f in failures] == ["raw-aes", "aws-kms"]
    assert failures[1].provider_info == key
    assert "does not match" in failures[1].reason


def test_single_region_key_in_another_region_does_not_match(local_aws: LocalAws) -> None:
    key = local_aws.create_key("us-east-1")
    materials = encrypt(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    moved = key.replace("us-east-1", "us-west-2")
    with pytest.raises(NoUsableKeyError):
        decrypt(KmsKeyring(moved, client_supplier=local_aws.client_supplier()), materials.encrypted_data_keys)


def test_wrong_context_is_collected_as_failure(local_aws: LocalAws) -> None:
    key = local_aws.create_key()
    materials = encrypt(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    with pytest.raises(NoUsableKeyError) as info:
        decrypt(
            KmsKeyring(key, client_supplier=local_aws.client_supplier()),
            materials.encrypted_data_keys,
            context={"tenant": "other"},
        )
    assert "InvalidCiphertextException" in info.value.failures[0].reason


@pytest.mark.parametrize(
    ("action", "code"), [("disable", "DisabledException"), ("delete", "KMSInvalidStateException")]
)
def test_unusable_key_gives_clear_error_naming_the_key(local_aws: LocalAws, action: str, code: str) -> None:
    key = local_aws.create_key()
    supplier = local_aws.client_supplier()
    materials = encrypt(KmsKeyring(key, client_supplier=supplier))
    local_aws.disable_key(key) if action == "disable" else local_aws.schedule_key_deletion(key)

    with pytest.raises(NoUsableKeyError) as info:
        decrypt(KmsKeyring(key, client_supplier=supplier), materials.encrypted_data_keys)
    (failure,) = info.value.failures
    assert failure.provider_info == key and code in failure.reason
    assert key in str(info.value)

    with pytest.raises(NoUsableKeyError) as info:
        encrypt(KmsKeyring(key, client_supplier=supplier))
    assert key in str(info.value) and code in str(info.value)


def test_response_for_another_key_is_rejected(local_aws: LocalAws) -> None:
    # A supplier that hands out the wrong region's client: the replica there answers with its own ARN,
    # which is not the configured key, so the result must not be used.
    mrk = local_aws.create_mrk("us-east-1", ["eu-west-1"])
    good = local_aws.client_supplier()
    materials = encrypt(KmsKeyring(mrk.primary, client_supplier=good))
    with pytest.raises(NoUsableKeyError) as info:
        decrypt(
            KmsKeyring(mrk.primary, client_supplier=lambda region: good("eu-west-1")),
            materials.encrypted_data_keys,
        )
    assert "not the requested key" in info.value.failures[0].reason


def test_malformed_provider_info_fails_decrypt(local_aws: LocalAws) -> None:
    keyring = KmsKeyring(local_aws.create_key(), client_supplier=local_aws.client_supplier())
    for info in (b"not-an-arn", b"arn:aws:kms:us-east-1:1:alias/x", b"\xff\xfe"):
        with pytest.raises(NoUsableKeyError, match="not a valid AWS KMS key ARN"):
            decrypt(keyring, (EncryptedDataKey("aws-kms", info, b"x"),))
    assert local_aws.requests("Decrypt") == ()


def test_materials_with_data_key_are_returned_unchanged(local_aws: LocalAws) -> None:
    keyring = KmsKeyring(local_aws.create_key(), client_supplier=local_aws.client_supplier())
    done = DecryptionMaterials(suite=SUITE, encryption_context=CONTEXT).with_data_key(bytes(32))
    assert keyring.on_decrypt(done, ()) is done


def test_alias_encrypts_in_supplier_default_region_but_never_matches(local_aws: LocalAws) -> None:
    key = local_aws.create_key("us-east-1")
    local_aws.client("kms", "us-east-1").create_alias(AliasName="alias/kmsenvelope-test", TargetKeyId=key)
    supplier = local_aws.client_supplier()  # session region us-east-1
    keyring = KmsKeyring("alias/kmsenvelope-test", client_supplier=supplier)
    materials = encrypt(keyring)
    assert materials.encrypted_data_keys[0].provider_info.decode() == key  # KMS answers with the key ARN
    assert local_aws.requests("GenerateDataKey")[0].region == "us-east-1"
    with pytest.raises(NoUsableKeyError):
        decrypt(keyring, materials.encrypted_data_keys)
    assert decrypt(KmsKeyring(key, client_supplier=supplier), materials.encrypted_data_keys)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key_id": ""},
        {"key_id": "arn:aws:kms:us-east-1:1:key/"},
        {"key_id": "arn:aws:kms:us-east-1:1:key/k", "additional_key_ids": [""]},
        {"key_id": "arn:aws:kms:us-east-1:1:key/k", "additional_key_ids": ["arn:aws:kms::1:key/k"]},
        {"key_id": "arn:aws:kms:us-east-1:1:key/k", "additional_key_ids": "arn:aws:kms:us-east-1:1:key/x"},
        {"key_id": "arn:aws:kms:us-east-1:1:key/k", "grant_tokens": [""]},
        {"key_id": "not:an/identifier"},
    ],
)
def test_bad_construction(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        KmsKeyring(client_supplier=ClientSupplier(), **kwargs)  # type: ignore[arg-type]


def test_alias_without_default_region_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="no region"):
        KmsKeyring("alias/x", client_supplier=lambda region: None)


def test_provider_info_is_key_arn_even_for_key_id_input(local_aws: LocalAws) -> None:
    key = local_aws.create_key("us-east-1")
    materials = encrypt(KmsKeyring(parse_arn(key).resource_id, client_supplier=local_aws.client_supplier()))
    assert materials.encrypted_data_keys[0].provider_info.decode() == key
