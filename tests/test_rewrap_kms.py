"""Rewrap with KMS and hierarchical keyrings on the local AWS: the ESDK reads the result with the new
key only, and the KMS calls are counted (one unwrap plus one wrap per message; none once a
hierarchical keyring has cached its branch keys).
"""

from __future__ import annotations

import io

import pytest
from aws_encryption_sdk import CommitmentPolicy as EsdkCommitmentPolicy
from aws_encryption_sdk import EncryptionSDKClient
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider

import kmsenvelope
from kmsenvelope import CommitmentPolicy, Envelope, HierarchicalKeyring, KmsKeyring, Suite
from kmsenvelope.errors import NoUsableKeyError
from kmsenvelope.testing import LocalAws

from ._branch_keys import new_store

CONTEXT = {"tenant": "acme", "purpose": "rewrap-kms"}
PLAINTEXT = b"rewrap with KMS " * 700
ALLOW = CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT


@pytest.mark.parametrize(
    "suite",
    [
        Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
        Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
        Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256,
        Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
    ],
    ids=lambda s: s.name,
)
def test_kms_rewrap_to_a_key_in_another_region(local_aws: LocalAws, suite: Suite) -> None:
    supplier = local_aws.client_supplier()
    old_key = local_aws.create_key("us-east-1")
    new_key = local_aws.create_key("eu-west-1")
    old, new = KmsKeyring(old_key, client_supplier=supplier), KmsKeyring(new_key, client_supplier=supplier)
    policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if suite.committing
        else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    message = Envelope(old, suite=suite, commitment_policy=policy).encrypt(PLAINTEXT, CONTEXT)
    local_aws.reset()

    rewrapped = kmsenvelope.rewrap(message, old, new, commitment_policy=ALLOW, resign=suite.signing)
    calls = [(r.operation, r.key_id) for r in local_aws.requests()]
    assert sorted(calls) == sorted([("Decrypt", old_key), ("Encrypt", new_key)])

    esdk = EncryptionSDKClient(commitment_policy=EsdkCommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    session = local_aws.botocore_session()
    plaintext, _ = esdk.decrypt(
        source=rewrapped,
        key_provider=StrictAwsKmsMasterKeyProvider(key_ids=[new_key], botocore_session=session),
    )
    assert plaintext == PLAINTEXT
    with pytest.raises(AWSEncryptionSDKClientError):
        esdk.decrypt(
            source=rewrapped,
            key_provider=StrictAwsKmsMasterKeyProvider(key_ids=[old_key], botocore_session=session),
        )
    with pytest.raises(NoUsableKeyError):
        Envelope(old, commitment_policy=ALLOW).decrypt(rewrapped)


def test_kms_stream_rewrap_counts_one_unwrap_and_one_wrap_per_message(local_aws: LocalAws) -> None:
    supplier = local_aws.client_supplier()
    old_key, new_key = local_aws.create_key("us-east-1"), local_aws.create_key("us-east-1")
    old, new = KmsKeyring(old_key, client_supplier=supplier), KmsKeyring(new_key, client_supplier=supplier)
    messages = [Envelope(old).encrypt(PLAINTEXT + bytes([i]), CONTEXT) for i in range(3)]
    for i, message in enumerate(messages):
        local_aws.reset()
        out = io.BytesIO()
        kmsenvelope.rewrap_stream(io.BytesIO(message), out, old, new)
        calls = sorted((r.operation, r.key_id) for r in local_aws.requests())
        assert calls == [("Decrypt", old_key), ("Encrypt", new_key)]
        assert Envelope(new).decrypt(out.getvalue(), CONTEXT) == PLAINTEXT + bytes([i])


def test_hierarchical_rewrap_makes_no_calls_once_branch_keys_are_cached(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    old_branch, new_branch = store.create_key(), store.create_key()
    old = HierarchicalKeyring(store, branch_key_id=old_branch, ttl_seconds=600)
    new = HierarchicalKeyring(store, branch_key_id=new_branch, ttl_seconds=600)
    messages = [Envelope(old).encrypt(PLAINTEXT + bytes([i]), CONTEXT) for i in range(5)]
    kmsenvelope.rewrap(messages[0], old, new)  # fills both keyrings' caches
    local_aws.reset()
    rewrapped = [kmsenvelope.rewrap(message, old, new) for message in messages]
    assert local_aws.requests(service=None) == ()
    reader = HierarchicalKeyring(store, branch_key_id=new_branch, ttl_seconds=600)
    for i, message in enumerate(rewrapped):
        assert Envelope(reader).decrypt(message, CONTEXT) == PLAINTEXT + bytes([i])
    with pytest.raises(NoUsableKeyError):
        Envelope(HierarchicalKeyring(store, branch_key_id=old_branch, ttl_seconds=600)).decrypt(rewrapped[0])
