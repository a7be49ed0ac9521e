"""Caching managers keep only what has authenticated, and their caches are bounded in bytes (issue 12).

A header's EDKs, context and suite are attacker-chosen until its key commitment and header tag (or a
record's commitment and recipient tag) verify with the materials. Every message here derived from a
valid one (an extra EDK of another provider, or a flipped header tag) still costs one unwrap, but must
leave nothing in the cache.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import io
import os
import threading
import tracemalloc
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from kmsenvelope import CachingMaterials, Envelope, KmsKeyring, RawAesKeyring, errors
from kmsenvelope.aio import AsyncCachingMaterials, AsyncEnvelope
from kmsenvelope.aio._bridge import LOOP, bridge_source
from kmsenvelope.aws import accounting
from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.dynamodb import Action, ItemEncryptor, TableConfig
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.materials.cache import LocalMaterialsCache, estimate_size
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from kmsenvelope.message.header import serialize_header_body
from kmsenvelope.rewrapping import rewrap
from kmsenvelope.structured import parse_header as parse_record_header
from kmsenvelope.structured.header import COMMITMENT_LENGTH, serialize_partial_header

CONTEXT = {"tenant": "acme", "table": "orders"}


class CountingKeyring:
    """A real raw AES keyring that counts its unwraps."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner or RawAesKeyring("test", "counting", os.urandom(32))
        self.decrypts = 0
        self._lock = threading.Lock()

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        return self.inner.on_encrypt(materials)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        with self._lock:
            self.decrypts += 1
        return self.inner.on_decrypt(materials, edks)


class AsyncCountingKeyring:
    """The same, async, yielding to the loop so that concurrent misses share one flight."""

    def __init__(self) -> None:
        self.inner = RawAesKeyring("test", "counting", os.urandom(32))
        self.decrypts = 0

    async def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        await asyncio.sleep(0)
        return self.inner.on_encrypt(materials)

    async def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        self.decrypts += 1
        await asyncio.sleep(0.01)
        return self.inner.on_decrypt(materials, edks)


def _with_junk_edk(envelope: Envelope, ciphertext: bytes, n: int) -> bytes:
    """``ciphertext`` with one more EDK of a provider no keyring here knows: the header tag no longer
    verifies, and every ``n`` gives a different cache identifier."""
    header = envelope.parse_header(ciphertext)
    junk = EncryptedDataKey("junk-provider", b"info-%d" % n, os.urandom(32))
    body = serialize_header_body(
        header.suite,
        header.message_id,
        header.encryption_context,
        (*header.encrypted_data_keys, junk),
        header.frame_length,
        header.commitment,
    )
    return body + header.header_iv + header.header_tag + ciphertext[header.size :]


def _with_flipped_tag(envelope: Envelope, ciphertext: bytes) -> bytes:
    header = envelope.parse_header(ciphertext)
    tag_at = header.size - 1
    return ciphertext[:tag_at] + bytes([ciphertext[tag_at] ^ 1]) + ciphertext[tag_at + 1 :]


# -- ESDK messages, sync ---------------------------------------------------------------------------


def test_1000_forged_headers_leave_the_decrypt_cache_empty() -> None:
    keyring = CountingKeyring()
    caching = CachingMaterials(keyring, max_age=300)
    envelope = Envelope(caching)
    valid = Envelope(keyring).encrypt(b"secret", CONTEXT)
    for n in range(1000):
        with pytest.raises(errors.AuthenticationError):
            envelope.decrypt(_with_junk_edk(envelope, valid, n), CONTEXT)
    # Each forged variant still costs one unwrap (bounded by DecryptLimits.max_encrypted_data_keys and
    # discovery filters, see docs/hardening.md), but keeps nothing.
    assert keyring.decrypts == 1000
    assert len(caching.cache) == 0
    assert caching.cache.held_bytes == 0


def test_a_flipped_header_tag_is_not_cached_then_the_valid_message_is() -> None:
    keyring = CountingKeyring()
    caching = CachingMaterials(keyring, max_age=300)
    envelope = Envelope(caching)
    valid = Envelope(keyring).encrypt(b"secret", CONTEXT)
    forged = _with_flipped_tag(envelope, valid)
    for _ in range(3):
        with pytest.raises(errors.AuthenticationError):
            envelope.decrypt(forged, CONTEXT)
    assert len(caching.cache) == 0
    assert keyring.decrypts == 3
    assert envelope.decrypt(valid, CONTEXT) == b"secret"
    assert len(caching.cache) == 1 and keyring.decrypts == 4
    assert envelope.decrypt(valid, CONTEXT) == b"secret"
    assert keyring.decrypts == 4  # a hit
    # A hit is still checked: the forged header now finds the authenticated entry, and fails.
    with pytest.raises(errors.AuthenticationError):
        envelope.decrypt(forged, CONTEXT)
    assert keyring.decrypts == 4 and len(caching.cache) == 1


def test_streaming_and_rewrap_take_the_authenticated_path() -> None:
    keyring = CountingKeyring()
    caching = CachingMaterials(keyring, max_age=300)
    envelope = Envelope(caching, frame_length=1024)
    valid = Envelope(keyring, frame_length=1024).encrypt(os.urandom(5000), CONTEXT)
    new = RawAesKeyring("test", "new", os.urandom(32))
    for n in range(50):
        forged = _with_junk_edk(envelope, valid, n)
        with pytest.raises(errors.AuthenticationError):
            envelope.decrypt_stream(io.BytesIO(forged), io.BytesIO(), CONTEXT)
        with pytest.raises(errors.AuthenticationError):
            rewrap(forged, caching, new, context=CONTEXT, allow_header_nonce_reuse=True)
    assert len(caching.cache) == 0 and keyring.decrypts == 100
    out = io.BytesIO()
    envelope.decrypt_stream(io.BytesIO(valid), out, CONTEXT)
    rewrapped = rewrap(valid, caching, new, context=CONTEXT, allow_header_nonce_reuse=True)
    assert keyring.decrypts == 101 and len(caching.cache) == 1
    assert Envelope(new).decrypt(rewrapped, CONTEXT) == out.getvalue()


def test_a_users_own_request_without_a_check_is_never_cached() -> None:
    keyring = CountingKeyring()
    caching = CachingMaterials(keyring, max_age=300)
    envelope = Envelope(caching)
    valid = Envelope(keyring).encrypt(b"secret", CONTEXT)
    header = envelope.parse_header(valid)
    request = envelope.decryption_request(header, {})
    assert request.authenticate is None
    caching.decrypt_materials(request)
    caching.decrypt_materials(request)
    assert keyring.decrypts == 2 and len(caching.cache) == 0


def test_kms_calls_for_forged_then_valid_messages(local_aws: Any) -> None:
    arn = local_aws.create_key("us-east-1")
    kms = KmsKeyring(arn, client_supplier=local_aws.client_supplier())
    caching = CachingMaterials(kms, max_age=300)
    envelope = Envelope(caching)
    valid = Envelope(kms).encrypt(b"secret", CONTEXT)
    accounting.reset()
    for n in range(20):
        with pytest.raises(errors.AuthenticationError):
            envelope.decrypt(_with_junk_edk(envelope, valid, n), CONTEXT)
    assert accounting.stats().calls == 20
    assert len(caching.cache) == 0
    for _ in range(5):
        assert envelope.decrypt(valid, CONTEXT) == b"secret"
    assert accounting.stats().calls == 21  # one Decrypt, then hits
    assert len(caching.cache) == 1


# -- ESDK messages, async --------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    async def read(self, n: int = -1) -> bytes:
        await asyncio.sleep(0)
        n = len(self._data) - self._pos if n < 0 else n
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out


class _Writer:
    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> int:
        self.data += bytes(data)
        return len(data)


def test_async_1000_forged_headers_leave_the_cache_empty() -> None:
    keyring = CountingKeyring()
    caching = AsyncCachingMaterials(keyring, max_age=300)
    envelope = AsyncEnvelope(caching, frame_length=1024)
    sync = Envelope(keyring, frame_length=1024)
    valid = sync.encrypt(os.urandom(3000), CONTEXT)

    async def run() -> None:
        for n in range(1000):
            forged = _with_junk_edk(sync, valid, n)
            with pytest.raises(errors.AuthenticationError):
                if n % 2:
                    await envelope.decrypt(forged, CONTEXT)
                else:
                    await envelope.decrypt_stream(_Reader(forged), _Writer(), CONTEXT)
        assert len(caching.cache) == 0 and keyring.decrypts == 1000
        out = _Writer()
        await envelope.decrypt_stream(_Reader(valid), out, CONTEXT)
        assert await envelope.decrypt(valid, CONTEXT) == out.data
        assert keyring.decrypts == 1001 and len(caching.cache) == 1

    asyncio.run(run())


def test_async_a_forged_header_in_the_same_flight_fails_alone() -> None:
    keyring = AsyncCountingKeyring()
    caching = AsyncCachingMaterials(keyring, max_age=300)
    envelope = AsyncEnvelope(caching)

    async def run() -> None:
        valid = await envelope.encrypt(b"secret", CONTEXT)
        caching.cache.clear()
        forged = _with_flipped_tag(Envelope(RawAesKeyring("x", "y", bytes(32))), valid)
        alone = await asyncio.gather(
            *(envelope.decrypt(forged, CONTEXT) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(result, errors.AuthenticationError) for result in alone)
        assert keyring.decrypts == 1 and len(caching.cache) == 0
        results = await asyncio.gather(
            envelope.decrypt(forged, CONTEXT),
            envelope.decrypt(valid, CONTEXT),
            envelope.decrypt(forged, CONTEXT),
            envelope.decrypt(valid, CONTEXT),
            return_exceptions=True,
        )
        assert isinstance(results[0], errors.AuthenticationError)
        assert isinstance(results[2], errors.AuthenticationError)
        assert results[1] == results[3] == b"secret"
        assert keyring.decrypts == 2  # one shared unwrap per flight
        assert len(caching.cache) == 1

    asyncio.run(run())


def test_async_forged_alone_in_a_flight_caches_nothing() -> None:
    keyring = AsyncCountingKeyring()
    caching = AsyncCachingMaterials(keyring, max_age=300)
    envelope = AsyncEnvelope(caching)

    async def run() -> None:
        valid = await envelope.encrypt(b"secret", CONTEXT)
        caching.cache.clear()
        forged = _with_flipped_tag(Envelope(RawAesKeyring("x", "y", bytes(32))), valid)
        for _ in range(5):
            with pytest.raises(errors.AuthenticationError):
                await envelope.decrypt(forged, CONTEXT)
        assert len(caching.cache) == 0 and keyring.decrypts == 5

    asyncio.run(run())


# -- DB-ESDK records -------------------------------------------------------------------------------

STORE = StaticBranchKeyStore("bk", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
ACTIONS = {"pk": Action.SIGN_ONLY, "card": Action.ENCRYPT_AND_SIGN}


def _item_with_junk_edk(item: dict[str, Any], n: int) -> dict[str, Any]:
    raw = item["aws_dbe_head"]["B"]
    header = parse_record_header(raw)
    junk = EncryptedDataKey("junk-provider", b"info-%d" % n, os.urandom(32))
    partial = serialize_partial_header(
        header.version,
        header.suite,
        header.message_id,
        header.legend,
        header.stored_context,
        (*header.encrypted_data_keys, junk),
    )
    return {**item, "aws_dbe_head": {"B": partial + raw[-COMMITMENT_LENGTH:]}}


def _item_with_flipped_commitment(item: dict[str, Any]) -> dict[str, Any]:
    raw = item["aws_dbe_head"]["B"]
    return {**item, "aws_dbe_head": {"B": raw[:-1] + bytes([raw[-1] ^ 1])}}


def test_forged_items_leave_the_cache_empty_and_a_valid_item_is_cached() -> None:
    keyring = CountingKeyring(HierarchicalKeyring(STORE, branch_key_id="bk"))
    caching = CachingMaterials(keyring, max_age=300)
    encryptor = ItemEncryptor(TableConfig("t", "pk", actions=ACTIONS, keyring=caching))
    item = encryptor.encrypt_item({"pk": {"S": "c#1"}, "card": {"S": "4111"}})
    caching.cache.clear()
    new_store = StaticBranchKeyStore("bk2", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
    new = HierarchicalKeyring(new_store, branch_key_id="bk2")
    for n in range(300):
        forged = _item_with_junk_edk(item, n) if n % 3 else _item_with_flipped_commitment(item)
        with pytest.raises(errors.AuthenticationError):
            if n % 2:
                encryptor.decrypt_item(forged)
            else:
                encryptor.rewrap_item(forged, new)
    assert keyring.decrypts == 300
    assert len(caching.cache) == 0
    assert encryptor.decrypt_item(item)["card"] == {"S": "4111"}
    assert encryptor.decrypt_item(item)["card"] == {"S": "4111"}
    assert keyring.decrypts == 301 and len(caching.cache) == 1


def test_async_forged_items_leave_the_cache_empty() -> None:
    """Items decrypted in worker threads over AsyncCachingMaterials, as the async DynamoDB client does."""
    keyring = CountingKeyring(HierarchicalKeyring(STORE, branch_key_id="bk"))
    caching = AsyncCachingMaterials(keyring, max_age=300)
    config = TableConfig("t", "pk", actions=ACTIONS, keyring=CountingKeyring(keyring.inner))
    item = ItemEncryptor(config).encrypt_item({"pk": {"S": "c#1"}, "card": {"S": "4111"}})
    encryptor = ItemEncryptor(dataclasses.replace(config, keyring=bridge_source(caching)))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        LOOP.set(loop)

        def in_worker(candidate: dict[str, Any]) -> Any:
            return loop.run_in_executor(
                None, contextvars.copy_context().run, encryptor.decrypt_item, candidate
            )

        for n in range(100):
            forged = _item_with_junk_edk(item, n) if n % 2 else _item_with_flipped_commitment(item)
            with pytest.raises(errors.AuthenticationError):
                await in_worker(forged)
        assert keyring.decrypts == 100 and len(caching.cache) == 0
        for _ in range(3):
            assert (await in_worker(item))["card"] == {"S": "4111"}
        assert keyring.decrypts == 101 and len(caching.cache) == 1

    asyncio.run(run())


# -- byte bounds -----------------------------------------------------------------------------------


def _big_context(n: int) -> dict[str, str]:
    return {"tenant": f"t{n}", "blob": "x" * 60_000}


def test_decrypt_entries_with_large_contexts_evict_by_bytes() -> None:
    keyring = CountingKeyring()
    cap = 1024 * 1024
    caching = CachingMaterials(keyring, max_age=300, capacity=1000, capacity_bytes=cap)
    envelope = Envelope(caching)
    writer = Envelope(keyring)
    messages = [writer.encrypt(b"m", _big_context(n)) for n in range(60)]
    for message in messages:
        envelope.decrypt(message)
    assert caching.cache.held_bytes <= cap
    assert 10 <= len(caching.cache) <= cap // 60_000
    # The estimate covers at least the context's characters.
    header = envelope.parse_header(messages[-1])
    assert estimate_size(DecryptionMaterials(header.suite, header.encryption_context)) > 60_000


def test_encrypt_entries_evict_by_bytes_too() -> None:
    cap = 512 * 1024
    caching = CachingMaterials(CountingKeyring(), max_age=300, capacity_bytes=cap)
    envelope = Envelope(caching)
    for n in range(40):
        envelope.encrypt(b"m", _big_context(n))
    assert caching.cache.held_bytes <= cap
    assert 0 < len(caching.cache) <= cap // 60_000


def test_held_memory_follows_the_byte_bound() -> None:
    cap = 2 * 1024 * 1024
    cache: LocalMaterialsCache[DecryptionMaterials] = LocalMaterialsCache(1000, capacity_bytes=cap)
    suite = Envelope(RawAesKeyring("a", "b", bytes(32))).suite
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(500):
            context = {"k": str(n) + "v" * 64_000}
            cache.put(b"%d" % n, DecryptionMaterials(suite, context, os.urandom(32)), 300)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.held_bytes <= cap
    assert held < 2 * cap  # 500 entries unbounded would be ~32 MiB
    assert held <= cache.held_bytes + 256 * 1024  # the estimate is not below what is really held
    assert len(cache) < 40


def test_an_outsized_value_is_not_cached_and_does_not_empty_the_cache() -> None:
    cache: LocalMaterialsCache[DecryptionMaterials] = LocalMaterialsCache(10, capacity_bytes=200_000)
    suite = Envelope(RawAesKeyring("a", "b", bytes(32))).suite
    assert cache.put(b"small", DecryptionMaterials(suite, {"a": "b"}, bytes(32)), 300)
    assert not cache.put(b"big", DecryptionMaterials(suite, {"a": "x" * 60_000}, bytes(32)), 300)
    assert len(cache) == 1 and cache.get(b"small") is not None
    cache.remove(b"small")
    assert cache.held_bytes == 0


def test_capacity_bytes_is_checked() -> None:
    with pytest.raises(errors.ConfigurationError):
        LocalMaterialsCache(10, capacity_bytes=0)
    with pytest.raises(errors.ConfigurationError):
        CachingMaterials(CountingKeyring(), max_age=1, capacity_bytes=-1)
    assert "capacity_bytes=" in repr(LocalMaterialsCache(3, capacity_bytes=5000))
