"""kmsenvelope.aio with the hierarchical keyring and the DynamoDB branch key store (local AWS, no mocks).

Interop with the sync keyring and the ESDK (MPL hierarchical keyring), and single flight: a cold cache
hit by 500 concurrent decrypts makes exactly one DynamoDB GetItem and one KMS Decrypt, and a failing
fetch fails every waiter with the same error.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kmsenvelope import Envelope, HierarchicalKeyring
from kmsenvelope.aio import AsyncEnvelope, AsyncHierarchicalKeyring, AsyncKeyStore
from kmsenvelope.aws.branch_key_store import KeyStore
from kmsenvelope.errors import ConfigurationError, KeyStoreError, NoUsableKeyError
from kmsenvelope.testing import LocalAws

from ._branch_keys import new_store
from .test_hierarchical_kms_interop import esdk, mpl_keyring, mpl_store  # noqa: F401 - esdk is a fixture

CONTEXT = {"purpose": "aio hierarchical", "tenant": "acme"}
PLAINTEXT = b"hierarchical async payload " * 40


def _async_store(local_aws: LocalAws, store: KeyStore, supplier: Any) -> AsyncKeyStore:
    return AsyncKeyStore(store.table_name, store.kms_key_arn, client_supplier=supplier)


def test_async_and_sync_and_esdk_hierarchical_messages_interoperate(local_aws: LocalAws, esdk: Any) -> None:  # noqa: F811
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    sync = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id))
    from_sync = sync.encrypt(PLAINTEXT, CONTEXT)
    mpl = mpl_keyring(mpl_store(local_aws, store.table_name, store.kms_key_arn), branch_key_id)
    from_esdk, _ = esdk.encrypt(source=PLAINTEXT, keyring=mpl, encryption_context=CONTEXT)

    async def run() -> tuple[bytes, list[bytes]]:
        async with local_aws.async_client_supplier() as supplier:
            keyring = AsyncHierarchicalKeyring(
                _async_store(local_aws, store, supplier), branch_key_id=branch_key_id, ttl_seconds=60
            )
            envelope = AsyncEnvelope(keyring)
            ours = await envelope.encrypt(PLAINTEXT, CONTEXT)
            return ours, [await envelope.decrypt(m, CONTEXT) for m in (from_sync, from_esdk, ours)]

    from_async, plaintexts = asyncio.run(run())
    assert plaintexts == [PLAINTEXT] * 3
    assert sync.decrypt(from_async, CONTEXT) == PLAINTEXT
    plaintext, header = esdk.decrypt(source=from_async, keyring=mpl)
    assert plaintext == PLAINTEXT
    assert dict(header.encryption_context) == CONTEXT


def test_a_rotated_branch_key_reads_old_and_new_versions(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    old = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id)).encrypt(PLAINTEXT, CONTEXT)
    store.version_key(branch_key_id)
    new = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id)).encrypt(PLAINTEXT, CONTEXT)

    async def run() -> list[bytes]:
        async with local_aws.async_client_supplier() as supplier:
            keyring = AsyncHierarchicalKeyring(
                _async_store(local_aws, store, supplier), branch_key_id=branch_key_id
            )
            envelope = AsyncEnvelope(keyring)
            result = [await envelope.decrypt(m, CONTEXT) for m in (old, new)]
            assert keyring.cache_size == 2
            return result

    assert asyncio.run(run()) == [PLAINTEXT, PLAINTEXT]


def test_single_flight_500_cold_decrypts_make_one_get_item_and_one_decrypt(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    sync = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id))
    messages = [sync.encrypt(b"record %d" % i, CONTEXT) for i in range(500)]
    local_aws.reset()

    async def run() -> list[bytes]:
        async with local_aws.async_client_supplier() as supplier:
            keyring = AsyncHierarchicalKeyring(
                _async_store(local_aws, store, supplier), branch_key_id=branch_key_id
            )
            envelope = AsyncEnvelope(keyring)
            return await asyncio.gather(*(envelope.decrypt(m, CONTEXT) for m in messages))

    assert asyncio.run(run()) == [b"record %d" % i for i in range(500)]
    assert len(local_aws.requests("Decrypt")) == 1
    assert [r.operation for r in local_aws.requests(service="dynamodb")] == ["GetItem"]


def test_single_flight_failure_fails_every_waiter_once(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    message = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id)).encrypt(PLAINTEXT, CONTEXT)
    local_aws.reset()
    local_aws.inject_fault("Decrypt", "AccessDeniedException", count=1)

    async def run() -> tuple[list[Any], bytes]:
        async with local_aws.async_client_supplier() as supplier:
            keyring = AsyncHierarchicalKeyring(
                _async_store(local_aws, store, supplier), branch_key_id=branch_key_id
            )
            envelope = AsyncEnvelope(keyring)
            failed = await asyncio.gather(
                *(envelope.decrypt(message, CONTEXT) for _ in range(500)), return_exceptions=True
            )
            assert keyring.cache_size == 0
            return failed, await envelope.decrypt(message, CONTEXT)

    failed, recovered = asyncio.run(run())
    assert all(isinstance(e, NoUsableKeyError) for e in failed)
    reasons = {e.failures[0].reason for e in failed}
    assert len(reasons) == 1
    assert "AWS KMS Decrypt failed" in reasons.pop()
    assert recovered == PLAINTEXT
    # One failed Decrypt shared by the 500, then one that succeeded (failures are not cached).
    assert [r.fault for r in local_aws.requests("Decrypt")] == ["AccessDeniedException", None]


def test_async_key_store_reports_errors_like_the_sync_one(local_aws: LocalAws) -> None:
    store = new_store(local_aws)

    async def run() -> Exception:
        async with local_aws.async_client_supplier() as supplier:
            with pytest.raises(KeyStoreError) as info:
                await _async_store(local_aws, store, supplier).get_active_branch_key("no-such-key")
            return info.value

    error = asyncio.run(run())
    with pytest.raises(KeyStoreError) as sync_error:
        store.get_active_branch_key("no-such-key")
    assert str(error) == str(sync_error.value)
    with pytest.raises(ConfigurationError):
        AsyncKeyStore(store.table_name, "alias/not-a-key", client_supplier=local_aws.async_client_supplier())
    with pytest.raises(ConfigurationError):
        AsyncHierarchicalKeyring(store, branch_key_id="x")  # a sync store is refused


def test_single_flight_for_the_active_branch_key_on_encrypt(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    local_aws.reset()

    async def run() -> list[bytes]:
        async with local_aws.async_client_supplier() as supplier:
            keyring = AsyncHierarchicalKeyring(
                _async_store(local_aws, store, supplier), branch_key_id=branch_key_id
            )
            envelope = AsyncEnvelope(keyring)
            return await asyncio.gather(*(envelope.encrypt(b"w%d" % i, CONTEXT) for i in range(300)))

    messages = asyncio.run(run())
    assert len(local_aws.requests("Decrypt")) == 1
    assert [r.operation for r in local_aws.requests(service="dynamodb")] == ["GetItem"]
    sync = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id))
    assert [sync.decrypt(m, CONTEXT) for m in messages] == [b"w%d" % i for i in range(300)]
