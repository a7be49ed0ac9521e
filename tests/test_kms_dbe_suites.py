"""KMS keyrings with DB-ESDK suites: wrapping goes through keyrings/wrapping.py (intermediate keys)."""

from __future__ import annotations

import pytest

from kmsenvelope import KmsDiscoveryKeyring, KmsKeyring, KmsRsaKeyring
from kmsenvelope.errors import PolicyError
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptionMaterials
from kmsenvelope.suites import DbeSuite
from kmsenvelope.testing import LocalAws

SUITE = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384
CONTEXT = {"aws-crypto-table": "orders"}


def test_kms_keyrings_produce_per_edk_signing_keys(local_aws: LocalAws) -> None:
    mrk = local_aws.create_mrk("us-east-1", ["eu-west-1"])
    other = local_aws.create_key("us-east-1")
    supplier = local_aws.client_supplier()
    materials = KmsKeyring(mrk.primary, additional_key_ids=[other], client_supplier=supplier).on_encrypt(
        EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT)
    )
    assert len(materials.encrypted_data_keys) == len(materials.symmetric_signing_keys) == 2
    # GenerateDataKey made the 32-byte intermediate key; the data key itself never went to KMS.
    assert local_aws.requests("GenerateDataKey")[0].params["NumberOfBytes"] == SUITE.key_length

    for keyring, index in (
        (KmsKeyring(mrk.arn("eu-west-1"), client_supplier=supplier), 0),
        (KmsDiscoveryKeyring("eu-west-1", client_supplier=supplier), 0),
        (KmsKeyring(other, client_supplier=supplier), 1),
    ):
        result = keyring.on_decrypt(
            DecryptionMaterials(suite=SUITE, encryption_context=CONTEXT), materials.encrypted_data_keys
        )
        assert result.plaintext_data_key == materials.plaintext_data_key
        assert result.symmetric_signing_key == materials.symmetric_signing_keys[index]


def test_kms_rsa_keyring_with_dbe_suite(local_aws: LocalAws) -> None:
    key = local_aws.create_rsa_key("us-west-2")
    writer = KmsRsaKeyring(key.arn, public_key=key.public_key_pem)
    materials = writer.on_encrypt(EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT))
    reader = KmsRsaKeyring(key.arn, client_supplier=local_aws.client_supplier())
    result = reader.on_decrypt(
        DecryptionMaterials(suite=SUITE, encryption_context=CONTEXT), materials.encrypted_data_keys
    )
    assert result.plaintext_data_key == materials.plaintext_data_key
    assert result.symmetric_signing_key == materials.symmetric_signing_keys[0]
    # The ECDSA-signing DB-ESDK suite is refused, as by the MPL.
    with pytest.raises(PolicyError):
        writer.on_encrypt(
            EncryptionMaterials(
                suite=DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384,
                encryption_context=CONTEXT,
            )
        )
