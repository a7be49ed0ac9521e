"""Throttling, access errors and timeouts injected at the local KMS endpoint, seen through KmsKeyring."""

from __future__ import annotations

import time

import pytest
from botocore.config import Config

import kmsenvelope
from kmsenvelope import KmsKeyring
from kmsenvelope.aws import accounting
from kmsenvelope.errors import NoUsableKeyError
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptionMaterials
from kmsenvelope.suites import Suite
from kmsenvelope.testing import TIMEOUT, LocalAws

SUITE = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
CONTEXT = {"k": "v"}


def encrypted(local_aws: LocalAws, key: str) -> EncryptionMaterials:
    return KmsKeyring(key, client_supplier=local_aws.client_supplier()).on_encrypt(
        EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT)
    )


def decrypt(keyring: KmsKeyring, materials: EncryptionMaterials) -> bytes | None:
    result = keyring.on_decrypt(
        DecryptionMaterials(suite=SUITE, encryption_context=CONTEXT), materials.encrypted_data_keys
    )
    return result.plaintext_data_key


def test_two_throttles_then_success(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    materials = encrypted(local_aws, key)
    local_aws.reset()
    accounting.reset()
    local_aws.inject_fault("Decrypt", "ThrottlingException", count=2, region="eu-west-1")

    assert decrypt(KmsKeyring(key, client_supplier=local_aws.client_supplier()), materials) == (
        materials.plaintext_data_key
    )
    assert [r.fault for r in local_aws.requests("Decrypt")] == [
        "ThrottlingException",
        "ThrottlingException",
        None,
    ]
    (call,) = kmsenvelope.stats().recent  # one logical call, retried by botocore
    assert (call.operation, call.outcome, call.attempts) == ("Decrypt", "ok", 3)


def test_persistent_throttling_fails_clearly_after_the_retry_budget(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    materials = encrypted(local_aws, key)
    local_aws.reset()
    local_aws.inject_fault("Decrypt", "ThrottlingException", count=10)

    with pytest.raises(NoUsableKeyError) as info:
        decrypt(KmsKeyring(key, client_supplier=local_aws.client_supplier()), materials)
    (failure,) = info.value.failures
    assert failure.provider_info == key
    assert "throttled by AWS KMS; gave up after 3 attempts (ThrottlingException)" in failure.reason
    assert len(local_aws.requests("Decrypt")) == 3  # standard retry mode: 1 try + 2 retries
    assert local_aws.pending_faults() == 7


def test_fault_limited_to_one_region(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    local_aws.inject_fault("GenerateDataKey", "AccessDeniedException", region="us-east-1")
    encrypted(local_aws, key)  # eu-west-1 unaffected
    assert local_aws.pending_faults() == 1


def test_access_denied_is_reported_per_edk(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    materials = encrypted(local_aws, key)
    local_aws.inject_fault("Decrypt", "AccessDeniedException")
    with pytest.raises(NoUsableKeyError) as info:
        decrypt(KmsKeyring(key, client_supplier=local_aws.client_supplier()), materials)
    assert info.value.failures[0].reason.endswith("access denied by AWS KMS (AccessDeniedException)")
    assert len(local_aws.requests("Decrypt")) == 1  # not retried


def test_throttled_generate_data_key_fails_encrypt_naming_the_key(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    local_aws.inject_fault("GenerateDataKey", "ThrottlingException", count=3)
    with pytest.raises(NoUsableKeyError, match="GenerateDataKey failed") as info:
        encrypted(local_aws, key)
    assert key in str(info.value) and "ThrottlingException" in str(info.value)


def test_timeout_past_the_read_timeout(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    materials = encrypted(local_aws, key)
    # botocore's max_attempts counts retries: 1 retry, so 2 attempts in all.
    supplier = local_aws.client_supplier(Config(read_timeout=0.3, retries={"max_attempts": 1}))
    keyring = KmsKeyring(key, client_supplier=supplier)

    local_aws.inject_fault("Decrypt", TIMEOUT, count=1, stall_seconds=3.0)
    assert decrypt(keyring, materials) == materials.plaintext_data_key  # the retry gets through

    local_aws.inject_fault("Decrypt", TIMEOUT, count=2, stall_seconds=3.0)
    started = time.monotonic()
    with pytest.raises(NoUsableKeyError) as info:
        decrypt(keyring, materials)
    assert time.monotonic() - started < 2.5  # gave up on the client side, did not wait for the server
    assert "did not answer before the read timeout (ReadTimeoutError)" in info.value.failures[0].reason
