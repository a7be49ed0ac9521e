"""Async twins of the KMS failure-path tests (``test_kms_faults.py``): aiobotocore against the local AWS.

Timeouts (retried, then failing fast with the reason), throttling storms with concurrent readers (no
failure cached), AccessDenied fall-through, disabled keys, and regional outages with multi-Region keys.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from botocore.config import Config

import kmsenvelope
from kmsenvelope import Envelope, KmsKeyring
from kmsenvelope.aio import AsyncCachingMaterials, AsyncClientSupplier, AsyncEnvelope, AsyncKmsKeyring
from kmsenvelope.aio.keyrings import AsyncKmsDiscoveryKeyring
from kmsenvelope.aws import accounting
from kmsenvelope.errors import NoUsableKeyError
from kmsenvelope.testing import TIMEOUT, LocalAws

CONTEXT = {"purpose": "aio-kms-faults"}
FAST = Config(connect_timeout=1, read_timeout=0.5, retries={"max_attempts": 1})


def _decrypt_requests(local_aws: LocalAws) -> list[tuple[str, str | None, str | None]]:
    return [(r.region, r.key_id, r.fault) for r in local_aws.requests("Decrypt")]


def _run(
    local_aws: LocalAws, body: Callable[[AsyncClientSupplier], Awaitable[Any]], config: Any = FAST
) -> Any:
    async def main() -> Any:
        async with local_aws.async_client_supplier(config) as supplier:
            return await body(supplier)

    return asyncio.run(main())


def _no_usable_key(
    local_aws: LocalAws, body: Callable[[AsyncClientSupplier], Awaitable[Any]]
) -> NoUsableKeyError:
    with pytest.raises(NoUsableKeyError) as info:
        _run(local_aws, body)
    assert type(info.value) is NoUsableKeyError
    return info.value


# -- timeouts ----------------------------------------------------------------------------------------


def test_a_stalled_decrypt_is_retried_and_succeeds(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    message = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier())).encrypt(
        b"payload", CONTEXT
    )
    local_aws.reset()
    local_aws.inject_fault("Decrypt", TIMEOUT, stall_seconds=20)

    async def body(supplier: AsyncClientSupplier) -> bytes:
        return await AsyncEnvelope(AsyncKmsKeyring(key, client_supplier=supplier)).decrypt(message, CONTEXT)

    started = time.monotonic()
    assert _run(local_aws, body) == b"payload"
    assert time.monotonic() - started < 8  # did not wait for the stalled answer
    assert _decrypt_requests(local_aws) == [("eu-west-1", key, TIMEOUT), ("eu-west-1", key, None)]


def test_stalls_on_every_attempt_fail_fast_with_the_reason(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    message = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier())).encrypt(
        b"payload", CONTEXT
    )
    local_aws.inject_fault("Decrypt", TIMEOUT, count=2, stall_seconds=20)

    async def body(supplier: AsyncClientSupplier) -> bytes:
        return await AsyncEnvelope(AsyncKmsKeyring(key, client_supplier=supplier)).decrypt(message, CONTEXT)

    started = time.monotonic()
    error = _no_usable_key(local_aws, body)
    assert time.monotonic() - started < 8
    (failure,) = error.failures
    assert failure.provider_info == key
    assert "did not answer before the read timeout (ReadTimeoutError)" in failure.reason


def test_a_timeout_on_the_first_edk_falls_through_to_the_second(local_aws: LocalAws) -> None:
    key1, key2 = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")

    async def body(supplier: AsyncClientSupplier) -> bytes:
        envelope = AsyncEnvelope(AsyncKmsKeyring(key1, additional_key_ids=[key2], client_supplier=supplier))
        message = await envelope.encrypt(b"payload", CONTEXT)
        local_aws.reset()
        local_aws.inject_fault("Decrypt", TIMEOUT, count=2, region="us-east-1", stall_seconds=10)
        return await envelope.decrypt(message, CONTEXT)

    assert _run(local_aws, body) == b"payload"
    assert _decrypt_requests(local_aws) == [
        ("us-east-1", key1, TIMEOUT),
        ("us-east-1", key1, TIMEOUT),
        ("eu-west-1", key2, None),
    ]


# -- throttling storms -------------------------------------------------------------------------------


def test_throttling_storm_with_concurrent_readers(local_aws: LocalAws) -> None:
    """20 concurrent decrypts (no caching) into a storm of 12 throttles: each outcome is the plaintext or
    NoUsableKeyError naming the throttling, and the accounting matches what the server received."""
    key = local_aws.create_key("eu-west-1")
    sync = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    sealed = [(sync.encrypt(p, c), p, c) for p, c in ((os.urandom(50), {"n": str(i)}) for i in range(20))]
    local_aws.reset()
    accounting.reset()
    local_aws.inject_fault("Decrypt", "ThrottlingException", count=12)

    async def body(supplier: AsyncClientSupplier) -> list[str]:
        envelope = AsyncEnvelope(AsyncKmsKeyring(key, client_supplier=supplier))

        async def one(ciphertext: bytes, plaintext: bytes, context: dict[str, str]) -> str:
            try:
                result = await envelope.decrypt(ciphertext, context)
            except NoUsableKeyError as exc:
                ok = "throttled by AWS KMS; gave up after 3 attempts (ThrottlingException)" in str(exc)
                return "throttled" if ok else f"wrong reason: {exc}"
            return "ok" if result == plaintext else "wrong plaintext"

        return await asyncio.gather(*(one(*item) for item in sealed))

    outcomes = _run(local_aws, body, config=None)  # default client: standard retries, 3 attempts
    assert len(outcomes) == 20 and set(outcomes) <= {"ok", "throttled"}, outcomes
    assert outcomes.count("ok") >= 20 - 12 // 3
    assert local_aws.pending_faults() == 0
    server = local_aws.requests("Decrypt")
    assert sum(r.fault == "ThrottlingException" for r in server) == 12
    assert len(server) == 20 + 12 - outcomes.count("throttled")
    calls = [c for c in kmsenvelope.stats().recent if c.operation == "Decrypt"]
    assert len(calls) == 20
    assert sum(c.attempts for c in calls) == len(server)


def test_throttling_storm_on_generate_data_key_is_not_cached(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    local_aws.reset()
    local_aws.inject_fault("GenerateDataKey", "ThrottlingException", count=3)

    async def body(supplier: AsyncClientSupplier) -> list[bytes]:
        caching = AsyncCachingMaterials(AsyncKmsKeyring(key, client_supplier=supplier), max_age=300)
        envelope = AsyncEnvelope(caching)
        with pytest.raises(NoUsableKeyError) as info:
            await envelope.encrypt(b"first", CONTEXT)
        assert "GenerateDataKey failed" in str(info.value) and "ThrottlingException" in str(info.value)
        assert len(caching.cache) == 0
        messages = await asyncio.gather(*(envelope.encrypt(b"write %d" % i, CONTEXT) for i in range(5)))
        return [await envelope.decrypt(m, CONTEXT) for m in messages]

    assert _run(local_aws, body, config=None) == [b"write %d" % i for i in range(5)]
    assert [r.fault for r in local_aws.requests("GenerateDataKey")] == ["ThrottlingException"] * 3 + [None]


# -- AccessDenied and disabled keys ------------------------------------------------------------------


def test_access_denied_on_the_first_edk_falls_through_to_the_second(local_aws: LocalAws) -> None:
    key1, key2 = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")

    async def body(supplier: AsyncClientSupplier) -> bytes:
        envelope = AsyncEnvelope(AsyncKmsKeyring(key1, additional_key_ids=[key2], client_supplier=supplier))
        message = await envelope.encrypt(b"payload", CONTEXT)
        local_aws.reset()
        local_aws.inject_fault("Decrypt", "AccessDeniedException", region="us-east-1")
        return await envelope.decrypt(message, CONTEXT)

    assert _run(local_aws, body) == b"payload"
    assert _decrypt_requests(local_aws) == [
        ("us-east-1", key1, "AccessDeniedException"),
        ("eu-west-1", key2, None),
    ]


def test_access_denied_on_every_edk_lists_each(local_aws: LocalAws) -> None:
    key1, key2 = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")

    async def body(supplier: AsyncClientSupplier) -> bytes:
        envelope = AsyncEnvelope(AsyncKmsKeyring(key1, additional_key_ids=[key2], client_supplier=supplier))
        message = await envelope.encrypt(b"payload", CONTEXT)
        local_aws.inject_fault("Decrypt", "AccessDeniedException", count=2)
        return await envelope.decrypt(message, CONTEXT)

    error = _no_usable_key(local_aws, body)
    assert [(f.provider_info, f.reason) for f in error.failures] == [
        (key1, f"with {key1}: access denied by AWS KMS (AccessDeniedException)"),
        (key2, f"with {key2}: access denied by AWS KMS (AccessDeniedException)"),
    ]


def test_access_denied_on_one_wrapping_key_fails_the_whole_encrypt(local_aws: LocalAws) -> None:
    key1, key2 = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")
    local_aws.reset()
    local_aws.inject_fault("Encrypt", "AccessDeniedException", region="eu-west-1")

    async def body(supplier: AsyncClientSupplier) -> bytes:
        keyring = AsyncKmsKeyring(key1, additional_key_ids=[key2], client_supplier=supplier)
        return await AsyncEnvelope(keyring).encrypt(b"payload", CONTEXT)

    error = _no_usable_key(local_aws, body)
    assert "AWS KMS Encrypt failed" in str(error) and key2 in str(error)
    assert [r.operation for r in local_aws.requests()] == ["GenerateDataKey", "Encrypt"]


@pytest.mark.parametrize(
    ("action", "code"), [("disable", "DisabledException"), ("delete", "KMSInvalidStateException")]
)
def test_unusable_keys_fail_with_the_sync_reason(local_aws: LocalAws, action: str, code: str) -> None:
    key = local_aws.create_key("eu-west-1")
    sync = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    message = sync.encrypt(b"payload", CONTEXT)
    local_aws.disable_key(key) if action == "disable" else local_aws.schedule_key_deletion(key)

    async def body(supplier: AsyncClientSupplier) -> bytes:
        return await AsyncEnvelope(AsyncKmsKeyring(key, client_supplier=supplier)).decrypt(message, CONTEXT)

    error = _no_usable_key(local_aws, body)
    with pytest.raises(NoUsableKeyError) as sync_error:
        sync.decrypt(message, CONTEXT)
    assert [f.reason for f in error.failures] == [f.reason for f in sync_error.value.failures]
    assert code in error.failures[0].reason


# -- regional outage with multi-Region keys -----------------------------------------------------------


@pytest.mark.parametrize("outage", ["KMSInternalException", TIMEOUT])
def test_regional_outage_falls_back_to_the_replica(local_aws: LocalAws, outage: str) -> None:
    mrk = local_aws.create_mrk("us-west-2", ["eu-west-1"])
    west, eu = mrk.arn("us-west-2"), mrk.arn("eu-west-1")

    async def body(supplier: AsyncClientSupplier) -> list[bytes]:
        message = await AsyncEnvelope(AsyncKmsKeyring(west, client_supplier=supplier)).encrypt(
            b"global", CONTEXT
        )
        local_aws.reset()
        local_aws.inject_fault("Decrypt", outage, count=50, region="us-west-2", stall_seconds=20)
        reader = AsyncEnvelope(AsyncKmsKeyring(west, additional_key_ids=[eu], client_supplier=supplier))
        first = await reader.decrypt(message, CONTEXT)
        requests = _decrypt_requests(local_aws)
        # Both attempts in the failed region, then the replica, addressed by its own ARN, in its region.
        assert requests == [("us-west-2", west, outage)] * 2 + [("eu-west-1", eu, None)]
        local_aws.reset()
        discovery = AsyncEnvelope(AsyncKmsDiscoveryKeyring("eu-west-1", client_supplier=supplier))
        return [first, await discovery.decrypt(message, CONTEXT)]

    started = time.monotonic()
    assert _run(local_aws, body) == [b"global", b"global"]
    assert time.monotonic() - started < 12
    assert _decrypt_requests(local_aws) == [("eu-west-1", eu, None)]
