"""KmsRsaKeyring: offline encryption with the public key, decryption through the local KMS."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kmsenvelope import KmsRsaKeyring
from kmsenvelope.aws import ClientSupplier
from kmsenvelope.errors import ConfigurationError, NoUsableKeyError, PolicyError
from kmsenvelope.keyrings.kms_rsa import encryption_context_digest
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from kmsenvelope.suites import Suite
from kmsenvelope.testing import ACCOUNT_ID, LocalAws, RsaKey

SUITE = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
CONTEXT = {"b": "2", "a": "1", "é": "ü"}


@pytest.fixture(scope="module")
def rsa_key(kmsenvelope_local_aws_server: LocalAws) -> RsaKey:
    return kmsenvelope_local_aws_server.create_rsa_key("us-west-2")


def moto_private_key(arn: str) -> rsa.RSAPrivateKey:
    """The private half, read from moto's backend: an independent oracle for the EDK byte layout."""
    from moto.kms.models import kms_backends

    key = kms_backends[ACCOUNT_ID][arn.split(":")[3]].keys[arn.rpartition("/")[2]]
    private: rsa.RSAPrivateKey = key.private_key.private_key
    return private


def test_digest_is_sha384_of_header_style_context_serialization() -> None:
    expected = (
        struct.pack(">H", 3)
        + struct.pack(">H", 1)
        + b"a"
        + struct.pack(">H", 1)
        + b"1"
        + struct.pack(">H", 1)
        + b"b"
        + struct.pack(">H", 1)
        + b"2"
        + struct.pack(">H", 2)
        + "é".encode()
        + struct.pack(">H", 2)
        + "ü".encode()
    )
    assert encryption_context_digest(CONTEXT) == hashlib.sha384(expected).digest()
    # Empty context: no bytes at all, not a zero count.
    assert encryption_context_digest({}) == hashlib.sha384(b"").digest()


def test_encrypt_offline_without_credentials(
    local_aws: LocalAws, rsa_key: RsaKey, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import boto3.session

    assert boto3.session.Session().get_credentials() is None  # the environment really has none

    supplier = ClientSupplier()
    keyring = KmsRsaKeyring(rsa_key.arn, public_key=rsa_key.public_key_pem, client_supplier=supplier)
    materials = keyring.on_encrypt(EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT))
    assert supplier.regions == ()  # no client was even built
    assert local_aws.requests() == ()
    (edk,) = materials.encrypted_data_keys
    assert (edk.provider_id, edk.provider_info) == ("aws-kms-rsa", rsa_key.arn.encode())

    # Byte layout per aws-kms-rsa-keyring.md: RSA-OAEP-SHA256(SHA-384(context) || data key).
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    inner = moto_private_key(rsa_key.arn).decrypt(edk.ciphertext, oaep)
    assert inner == encryption_context_digest(CONTEXT) + materials.plaintext_data_key

    # Default supplier too: constructing and encrypting must not need AWS.
    KmsRsaKeyring(rsa_key.arn, public_key=rsa_key.public_key_pem).on_encrypt(
        EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT)
    )


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"])
def test_decrypt_through_kms(local_aws: LocalAws, rsa_key: RsaKey, algorithm: str) -> None:
    writer = KmsRsaKeyring(rsa_key.arn, public_key=rsa_key.public_key_pem, padding=algorithm)
    materials = writer.on_encrypt(EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT))
    reader = KmsRsaKeyring(
        rsa_key.arn, padding=algorithm, grant_tokens=["rsa-gt"], client_supplier=local_aws.client_supplier()
    )
    result = reader.on_decrypt(
        DecryptionMaterials(suite=SUITE, encryption_context=CONTEXT), materials.encrypted_data_keys
    )
    assert result.plaintext_data_key == materials.plaintext_data_key
    (call,) = local_aws.requests("Decrypt")
    assert call.region == "us-west-2"
    assert call.params["KeyId"] == rsa_key.arn
    assert call.params["EncryptionAlgorithm"] == algorithm
    assert call.params["GrantTokens"] == ["rsa-gt"]
    assert "EncryptionContext" not in call.params  # asymmetric keys take none; the digest binds it


def test_changed_context_is_detected_by_the_digest(local_aws: LocalAws, rsa_key: RsaKey) -> None:
    materials = KmsRsaKeyring(rsa_key.arn, public_key=rsa_key.public_key_pem).on_encrypt(
        EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT)
    )
    reader = KmsRsaKeyring(rsa_key.arn, client_supplier=local_aws.client_supplier())
    with pytest.raises(NoUsableKeyError, match="encryption context digest does not match"):
        reader.on_decrypt(
            DecryptionMaterials(suite=SUITE, encryption_context={"a": "1"}), materials.encrypted_data_keys
        )


def test_other_keys_edks_are_not_sent(local_aws: LocalAws, rsa_key: RsaKey) -> None:
    other = "arn:aws:kms:us-west-2:123456789012:key/00000000-0000-0000-0000-000000000000"
    edk = EncryptedDataKey("aws-kms-rsa", other.encode(), b"\x00" * 256)
    reader = KmsRsaKeyring(rsa_key.arn, client_supplier=local_aws.client_supplier())
    with pytest.raises(NoUsableKeyError) as info:
        reader.on_decrypt(DecryptionMaterials(suite=SUITE, encryption_context=CONTEXT), (edk,))
    assert info.value.failures[0].provider_info == other
    assert local_aws.requests() == ()


def test_signing_suites_are_refused(rsa_key: RsaKey) -> None:
    keyring = KmsRsaKeyring(rsa_key.arn, public_key=rsa_key.public_key_pem, client_supplier=ClientSupplier())
    signing = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
    with pytest.raises(PolicyError):
        keyring.on_encrypt(EncryptionMaterials(suite=signing, encryption_context={}))
    with pytest.raises(PolicyError):
        keyring.on_decrypt(DecryptionMaterials(suite=signing, encryption_context={}), ())


def test_encrypt_needs_public_key(rsa_key: RsaKey) -> None:
    with pytest.raises(ConfigurationError, match="public key"):
        KmsRsaKeyring(rsa_key.arn).on_encrypt(EncryptionMaterials(suite=SUITE, encryption_context={}))


def test_bad_construction(rsa_key: RsaKey) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    small_pem = small.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for kwargs in (
        {"key_id": "alias/my-rsa-key"},
        {"key_id": "arn:aws:kms:us-west-2:123456789012:alias/my-rsa-key"},
        {"key_id": ""},
        {"key_id": "arn:aws:kms:us-west-2::key/x"},
        {"key_id": rsa_key.arn, "padding": "RSAES_PKCS1_V1_5"},
        {"key_id": rsa_key.arn, "public_key": small_pem},
        {
            "key_id": rsa_key.arn,
            "public_key": b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
        },
    ):
        with pytest.raises(ConfigurationError):
            KmsRsaKeyring(**kwargs)  # type: ignore[arg-type]


def test_der_public_key_is_accepted(local_aws: LocalAws, rsa_key: RsaKey) -> None:
    der = local_aws.client("kms", "us-west-2").get_public_key(KeyId=rsa_key.arn)["PublicKey"]
    materials = KmsRsaKeyring(rsa_key.arn, public_key=der).on_encrypt(
        EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT)
    )
    reader = KmsRsaKeyring(rsa_key.arn, client_supplier=local_aws.client_supplier())
    result = reader.on_decrypt(
        DecryptionMaterials(suite=SUITE, encryption_context=CONTEXT), materials.encrypted_data_keys
    )
    assert result.plaintext_data_key == materials.plaintext_data_key
