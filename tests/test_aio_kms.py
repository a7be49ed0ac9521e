"""kmsenvelope.aio with AWS KMS: aiobotocore against the local AWS over HTTP (no mocks).

Interop async <-> sync <-> aws-encryption-sdk for the KMS and discovery keyrings (an MRK replica read
while the primary's region is down included), overlap of concurrent requests under injected latency,
and single flight in the async caching materials manager.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aws_encryption_sdk
import pytest
from aws_encryption_sdk import CommitmentPolicy as EsdkCommitmentPolicy
from aws_encryption_sdk.key_providers.kms import DiscoveryFilter as EsdkDiscoveryFilter
from aws_encryption_sdk.key_providers.kms import (
    MRKAwareDiscoveryAwsKmsMasterKeyProvider,
    StrictAwsKmsMasterKeyProvider,
)

from kmsenvelope import DiscoveryFilter, Envelope, KmsDiscoveryKeyring, KmsKeyring
from kmsenvelope.aio import (
    AsyncCachingMaterials,
    AsyncEnvelope,
    AsyncKmsDiscoveryKeyring,
    AsyncKmsKeyring,
)
from kmsenvelope.aws import accounting
from kmsenvelope.errors import NoUsableKeyError, PolicyError
from kmsenvelope.testing import ACCOUNT_ID, LocalAws

CONTEXT = {"purpose": "aio kms"}
PLAINTEXT = b"async payload " * 50


@pytest.fixture(scope="module")
def esdk() -> Any:
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=EsdkCommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )


def test_async_messages_decrypt_with_the_sync_api_and_the_esdk(local_aws: LocalAws, esdk: Any) -> None:
    first, second = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")

    async def encrypt() -> bytes:
        async with local_aws.async_client_supplier() as supplier:
            keyring = AsyncKmsKeyring(first, additional_key_ids=[second], client_supplier=supplier)
            return await AsyncEnvelope(keyring).encrypt(PLAINTEXT, CONTEXT)

    ciphertext = asyncio.run(encrypt())
    sync = Envelope(KmsKeyring(second, client_supplier=local_aws.client_supplier()))
    assert sync.decrypt(ciphertext, CONTEXT) == PLAINTEXT
    for key in (first, second):
        provider = StrictAwsKmsMasterKeyProvider(key_ids=[key], botocore_session=local_aws.botocore_session())
        plaintext, header = esdk.decrypt(source=ciphertext, key_provider=provider)
        assert plaintext == PLAINTEXT
        assert dict(header.encryption_context) == CONTEXT


def test_sync_and_esdk_messages_decrypt_with_the_async_api(local_aws: LocalAws, esdk: Any) -> None:
    key = local_aws.create_key("eu-west-1")
    ours = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier())).encrypt(PLAINTEXT, CONTEXT)
    provider = StrictAwsKmsMasterKeyProvider(key_ids=[key], botocore_session=local_aws.botocore_session())
    theirs, _ = esdk.encrypt(source=PLAINTEXT, key_provider=provider, encryption_context=CONTEXT)
    local_aws.reset()

    async def decrypt() -> list[bytes]:
        async with local_aws.async_client_supplier() as supplier:
            envelope = AsyncEnvelope(AsyncKmsKeyring(key, client_supplier=supplier))
            return [await envelope.decrypt(message, CONTEXT) for message in (ours, theirs)]

    assert asyncio.run(decrypt()) == [PLAINTEXT, PLAINTEXT]
    assert [(r.region, r.key_id) for r in local_aws.requests("Decrypt")] == [("eu-west-1", key)] * 2


def test_mrk_replica_decrypts_while_the_primary_region_is_down(local_aws: LocalAws, esdk: Any) -> None:
    mrk = local_aws.create_mrk("us-east-1", ["eu-west-1"])
    replica = mrk.arn("eu-west-1")

    async def run() -> tuple[bytes, bytes, bytes]:
        async with local_aws.async_client_supplier() as supplier:
            ciphertext = await AsyncEnvelope(AsyncKmsKeyring(mrk.primary, client_supplier=supplier)).encrypt(
                PLAINTEXT, CONTEXT
            )
            local_aws.reset()
            # us-east-1 answers nothing but errors from now on.
            local_aws.inject_fault("Decrypt", "KMSInternalException", count=100, region="us-east-1")
            by_replica = await AsyncEnvelope(AsyncKmsKeyring(replica, client_supplier=supplier)).decrypt(
                ciphertext, CONTEXT
            )
            by_discovery = await AsyncEnvelope(
                AsyncKmsDiscoveryKeyring("eu-west-1", client_supplier=supplier)
            ).decrypt(ciphertext, CONTEXT)
            return ciphertext, by_replica, by_discovery

    ciphertext, by_replica, by_discovery = asyncio.run(run())
    assert by_replica == by_discovery == PLAINTEXT
    assert [(r.region, r.key_id) for r in local_aws.requests("Decrypt")] == [("eu-west-1", replica)] * 2
    # And the primary's message reads with the sync API and the ESDK in the replica's region too.
    assert (
        Envelope(KmsKeyring(replica, client_supplier=local_aws.client_supplier())).decrypt(
            ciphertext, CONTEXT
        )
        == PLAINTEXT
    )
    local_aws.reset()
    provider = MRKAwareDiscoveryAwsKmsMasterKeyProvider(
        discovery_region="eu-west-1",
        discovery_filter=EsdkDiscoveryFilter(account_ids=[ACCOUNT_ID], partition="aws"),
        botocore_session=local_aws.botocore_session("eu-west-1"),
    )
    assert esdk.decrypt(source=ciphertext, key_provider=provider)[0] == PLAINTEXT


def test_discovery_keyring_rules_match_the_sync_twin(local_aws: LocalAws) -> None:
    here, elsewhere = local_aws.create_key("eu-west-1"), local_aws.create_key("us-west-2")
    sync_supplier = local_aws.client_supplier()
    local_message = Envelope(KmsKeyring(here, client_supplier=sync_supplier)).encrypt(PLAINTEXT, CONTEXT)
    remote_message = Envelope(KmsKeyring(elsewhere, client_supplier=sync_supplier)).encrypt(
        PLAINTEXT, CONTEXT
    )
    other_account = DiscoveryFilter("aws", ["111122223333"])

    async def run() -> list[Any]:
        async with local_aws.async_client_supplier() as supplier:
            open_ring = AsyncEnvelope(AsyncKmsDiscoveryKeyring("eu-west-1", client_supplier=supplier))
            filtered = AsyncEnvelope(
                AsyncKmsDiscoveryKeyring(
                    "eu-west-1", discovery_filter=other_account, client_supplier=supplier
                )
            )
            results: list[Any] = [await open_ring.decrypt(local_message, CONTEXT)]
            for envelope, message in ((open_ring, remote_message), (filtered, local_message)):
                try:
                    await envelope.decrypt(message, CONTEXT)
                except NoUsableKeyError as exc:
                    results.append(exc)
            with pytest.raises(PolicyError):
                await open_ring.encrypt(b"x", CONTEXT)
            return results

    plaintext, single_region_error, filtered_error = asyncio.run(run())
    assert plaintext == PLAINTEXT
    sync_ring = Envelope(KmsDiscoveryKeyring("eu-west-1", client_supplier=sync_supplier))
    with pytest.raises(NoUsableKeyError) as sync_error:
        sync_ring.decrypt(remote_message, CONTEXT)
    # Same failure, same reasons as the sync keyring.
    assert [f.reason for f in single_region_error.failures] == [f.reason for f in sync_error.value.failures]
    assert "single-Region key in us-west-2" in single_region_error.failures[0].reason
    assert "filtered out" in filtered_error.failures[0].reason


def test_concurrent_decrypts_overlap_under_kms_latency(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    sync = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    messages = [sync.encrypt(b"message %d" % i, CONTEXT) for i in range(200)]
    local_aws.reset()
    latency = 0.05
    local_aws.inject_latency("Decrypt", latency, count=200)

    async def run() -> tuple[list[bytes], float]:
        async with local_aws.async_client_supplier() as supplier:
            envelope = AsyncEnvelope(AsyncKmsKeyring(key, client_supplier=supplier))
            started = time.perf_counter()
            plaintexts = await asyncio.gather(*(envelope.decrypt(m, CONTEXT) for m in messages))
            return plaintexts, time.perf_counter() - started

    plaintexts, elapsed = asyncio.run(run())
    assert plaintexts == [b"message %d" % i for i in range(200)]
    assert len(local_aws.requests("Decrypt")) == 200
    assert local_aws.pending_faults() == 0  # every request was delayed
    overlap = local_aws.max_concurrent_delays()
    print(
        f"\n200 decrypts under {latency * 1000:.0f} ms latency: {elapsed:.2f} s "
        f"(serial: >= {200 * latency:.0f} s); up to {overlap} KMS requests in flight at once"
    )
    # Structural, not a timing: serial calls would never have two requests delayed at the same moment.
    # (The bound leaves room for a loaded 2-core machine, where the client issues requests slowly.)
    assert overlap >= 10


def test_async_caching_single_flight_for_decrypt_and_its_failure(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    sync = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    message = sync.encrypt(PLAINTEXT, CONTEXT)
    local_aws.reset()

    async def run() -> tuple[list[Any], list[bytes]]:
        async with local_aws.async_client_supplier() as supplier:
            cmm = AsyncCachingMaterials(AsyncKmsKeyring(key, client_supplier=supplier), max_age=60)
            envelope = AsyncEnvelope(cmm)
            local_aws.inject_fault("Decrypt", "AccessDeniedException", count=1)
            failed = await asyncio.gather(
                *(envelope.decrypt(message, CONTEXT) for _ in range(500)), return_exceptions=True
            )
            assert len(cmm.cache) == 0  # the failure was not cached
            succeeded = await asyncio.gather(*(envelope.decrypt(message, CONTEXT) for _ in range(500)))
            return failed, succeeded

    failed, succeeded = asyncio.run(run())
    assert all(isinstance(e, NoUsableKeyError) for e in failed)
    assert len({id(e) for e in failed}) == 1  # every waiter got the one failure
    assert "access denied" in failed[0].failures[0].reason
    assert succeeded == [PLAINTEXT] * 500
    # One Decrypt for the 500 that failed together, one for the 500 that succeeded together.
    assert [r.fault for r in local_aws.requests("Decrypt")] == ["AccessDeniedException", None]


def test_async_caching_single_flight_for_encrypt_respects_limits(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")

    async def run(max_messages: int) -> list[bytes]:
        async with local_aws.async_client_supplier() as supplier:
            cmm = AsyncCachingMaterials(
                AsyncKmsKeyring(key, client_supplier=supplier), max_age=60, max_messages=max_messages
            )
            envelope = AsyncEnvelope(cmm)
            return await asyncio.gather(*(envelope.encrypt(b"m%d" % i, CONTEXT) for i in range(100)))

    messages = asyncio.run(run(1000))
    assert len(local_aws.requests("GenerateDataKey")) == 1
    sync = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    assert [sync.decrypt(m, CONTEXT) for m in messages] == [b"m%d" % i for i in range(100)]
    local_aws.reset()
    asyncio.run(run(10))
    # Each data key encrypts at most 10 messages: at least 10 fresh ones for 100 messages.
    assert len(local_aws.requests("GenerateDataKey")) >= 10


def test_async_kms_calls_are_counted_by_the_accounting(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    accounting.reset()

    async def run() -> None:
        async with local_aws.async_client_supplier() as supplier:
            envelope = AsyncEnvelope(AsyncKmsKeyring(key, client_supplier=supplier))
            await envelope.decrypt(await envelope.encrypt(b"x", CONTEXT), CONTEXT)

    asyncio.run(run())
    stats = accounting.stats()
    assert stats.count("GenerateDataKey", "eu-west-1", "ok") == 1
    assert stats.count("Decrypt", "eu-west-1", "ok") == 1
