"""CachingMaterials: spec cache identifiers, exact limits, TTL, concurrency, and real KMS call counts."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from kmsenvelope import CachingMaterials, Envelope, KmsKeyring, RawAesKeyring, Suite, errors
from kmsenvelope.aws import accounting
from kmsenvelope.materials.caching import decrypt_cache_id, encrypt_cache_id
from kmsenvelope.materials.materials import (
    DecryptionMaterials,
    DecryptionRequest,
    EncryptedDataKey,
    EncryptionMaterials,
)
from kmsenvelope.suites import CommitmentPolicy


class CountingKeyring:
    """A real raw AES keyring that counts how often it is asked for keys."""

    def __init__(self, key: bytes | None = None) -> None:
        self.inner = RawAesKeyring("test", "counting", key or os.urandom(32))
        self.encrypts = 0
        self.decrypts = 0
        self.fail_next = 0
        self._lock = threading.Lock()

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        with self._lock:
            self.encrypts += 1
            if self.fail_next:
                self.fail_next -= 1
                raise errors.NoUsableKeyError("injected failure")
        return self.inner.on_encrypt(materials)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        with self._lock:
            self.decrypts += 1
        return self.inner.on_decrypt(materials, edks)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _data_key_edks(envelope: Envelope, ciphertext: bytes) -> tuple[EncryptedDataKey, ...]:
    return envelope.parse_header(ciphertext).encrypted_data_keys


def test_max_messages_is_exact() -> None:
    keyring = CountingKeyring()
    envelope = Envelope(CachingMaterials(keyring, max_age=300, max_messages=100))
    edks = {_data_key_edks(envelope, envelope.encrypt(b"x", {"a": "b"})) for _ in range(100)}
    assert keyring.encrypts == 1 and len(edks) == 1
    fresh = _data_key_edks(envelope, envelope.encrypt(b"x", {"a": "b"}))
    assert keyring.encrypts == 2
    assert fresh not in edks


def test_max_bytes_is_exact() -> None:
    keyring = CountingKeyring()
    envelope = Envelope(CachingMaterials(keyring, max_age=300, max_bytes=1000))
    for _ in range(10):
        envelope.encrypt(b"y" * 100)
    assert keyring.encrypts == 1
    envelope.encrypt(b"y")
    assert keyring.encrypts == 2
    envelope.encrypt(b"z" * 2000)  # larger than max_bytes: fresh materials, not cached
    envelope.encrypt(b"z")
    assert keyring.encrypts == 3


def test_ttl_with_injected_clock() -> None:
    clock = Clock()
    keyring = CountingKeyring()
    envelope = Envelope(CachingMaterials(keyring, max_age=60, clock=clock))
    ciphertext = envelope.encrypt(b"payload")
    envelope.encrypt(b"payload")
    assert envelope.decrypt(ciphertext) == b"payload"
    assert envelope.decrypt(ciphertext) == b"payload"
    assert (keyring.encrypts, keyring.decrypts) == (1, 1)
    clock.now += 59.9
    envelope.encrypt(b"payload")
    envelope.decrypt(ciphertext)
    assert (keyring.encrypts, keyring.decrypts) == (1, 1)
    clock.now += 0.2
    envelope.encrypt(b"payload")
    envelope.decrypt(ciphertext)
    assert (keyring.encrypts, keyring.decrypts) == (2, 2)


def test_contexts_and_suites_get_separate_entries() -> None:
    keyring = CountingKeyring()
    caching = CachingMaterials(keyring, max_age=300)
    Envelope(caching).encrypt(b"a", {"tenant": "1"})
    Envelope(caching).encrypt(b"a", {"tenant": "2"})
    Envelope(caching, suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384).encrypt(
        b"a", {"tenant": "1"}
    )
    assert keyring.encrypts == 3


def test_identity_kdf_and_streaming_bypass_the_cache() -> None:
    import io

    keyring = CountingKeyring()
    legacy = Envelope(
        CachingMaterials(keyring, max_age=300),
        suite=Suite.AES_256_GCM_IV12_TAG16_NO_KDF,
        commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
    )
    legacy.encrypt(b"a")
    legacy.encrypt(b"a")
    assert keyring.encrypts == 2
    streaming = Envelope(CachingMaterials(keyring, max_age=300))
    streaming.encrypt_stream(io.BytesIO(b"a"), io.BytesIO())
    streaming.encrypt_stream(io.BytesIO(b"a"), io.BytesIO())
    assert keyring.encrypts == 4


def test_failures_are_not_cached() -> None:
    keyring = CountingKeyring()
    envelope = Envelope(CachingMaterials(keyring, max_age=300))
    keyring.fail_next = 1
    with pytest.raises(errors.NoUsableKeyError):
        envelope.encrypt(b"a")
    ciphertext = envelope.encrypt(b"a")
    assert keyring.encrypts == 2
    wrong = Envelope(CachingMaterials(CountingKeyring(), max_age=300))
    for _ in range(2):
        with pytest.raises(errors.NoUsableKeyError):
            wrong.decrypt(ciphertext)
    assert len(wrong.materials_manager.cache) == 0  # type: ignore[attr-defined]


def test_reproduced_context_is_part_of_the_decrypt_entry() -> None:
    """A cached entry for one required value must not authenticate a different one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from kmsenvelope import RawRsaKeyring
    from kmsenvelope.materials.cmm import RequiredContextMaterials

    # RSA wrapping does not bind the context, so only the header tag can refuse the wrong value:
    # a cache hit that reused materials built for "acme" would make the "evil" decrypt succeed.
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    keyring = RawRsaKeyring("test", "rsa", private_key=pem)
    writer = Envelope(RequiredContextMaterials(keyring, ["tenant"]))
    ciphertext = writer.encrypt(b"secret", {"tenant": "acme", "kind": "x"})
    reader = Envelope(CachingMaterials(keyring, max_age=300))
    assert reader.decrypt(ciphertext, {"tenant": "acme"}) == b"secret"
    with pytest.raises(errors.AuthenticationError):
        reader.decrypt(ciphertext, {"tenant": "evil"})


def test_partition_sharing() -> None:
    keyring = CountingKeyring()
    first = CachingMaterials(keyring, max_age=300, partition="p")
    shared = CachingMaterials(keyring, max_age=300, partition="p", cache=first.cache)
    separate = CachingMaterials(keyring, max_age=300, cache=first.cache)
    Envelope(first).encrypt(b"a")
    Envelope(shared).encrypt(b"a")
    assert keyring.encrypts == 1
    Envelope(separate).encrypt(b"a")
    assert keyring.encrypts == 2


def test_cache_identifiers_follow_the_spec() -> None:
    partition = hashlib.sha512(b"p").digest()
    context = {"a": "b"}
    serialized = b"\x00\x01\x00\x01a\x00\x01b"
    expected = hashlib.sha512(partition + b"\x01\x04\x78" + hashlib.sha512(serialized).digest()).digest()
    assert encrypt_cache_id(partition, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, context) == expected
    assert (
        encrypt_cache_id(partition, None, context)
        == hashlib.sha512(partition + b"\x00" + hashlib.sha512(serialized).digest()).digest()
    )
    edks = (EncryptedDataKey("p2", b"i", b"c"), EncryptedDataKey("p1", b"", b"cc"))
    request = DecryptionRequest(
        Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
        edks,
        context,
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
    )
    edk_hashes = sorted(
        [
            hashlib.sha512(b"\x00\x02p2\x00\x01i\x00\x01c").digest(),
            hashlib.sha512(b"\x00\x02p1\x00\x00\x00\x02cc").digest(),
        ]
    )
    assert edk_hashes[0] != edk_hashes[1]
    assert (
        decrypt_cache_id(partition, request)
        == hashlib.sha512(
            partition + b"\x04\x78" + b"".join(edk_hashes) + bytes(64) + hashlib.sha512(serialized).digest()
        ).digest()
    )


def test_capacity_evicts_least_recently_used() -> None:
    keyring = CountingKeyring()
    envelope = Envelope(CachingMaterials(keyring, max_age=300, capacity=2))
    for tenant in ("1", "2", "3", "1"):
        envelope.encrypt(b"a", {"t": tenant})
    assert keyring.encrypts == 4
    assert len(envelope.materials_manager.cache) == 2  # type: ignore[attr-defined]


def test_two_threads_share_one_cache_with_exact_limits() -> None:
    keyring = CountingKeyring()
    envelope = Envelope(CachingMaterials(keyring, max_age=300, max_messages=1000))
    failures: list[BaseException] = []
    edks: list[tuple[EncryptedDataKey, ...]] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            local = []
            for i in range(5000):
                plaintext = i.to_bytes(4, "big")
                ciphertext = envelope.encrypt(plaintext, {"n": "1"})
                assert envelope.decrypt(ciphertext, {"n": "1"}) == plaintext
                local.append(_data_key_edks(envelope, ciphertext))
            with lock:
                edks.extend(local)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    counts: dict[Any, int] = {}
    for edk in edks:
        counts[edk] = counts.get(edk, 0) + 1
    assert max(counts.values()) <= 1000
    # Concurrent misses may each fetch, but every cached key is used at most max_messages times.
    assert len(counts) >= 10


def test_construction_errors() -> None:
    keyring = CountingKeyring()
    for kwargs in (
        {"max_age": 0},
        {"max_age": -1},
        {"max_age": 1, "max_messages": 0},
        {"max_age": 1, "max_bytes": -1},
        {"max_age": 1, "capacity": 0},
        {"max_age": 1, "partition": ""},
    ):
        with pytest.raises(errors.ConfigurationError):
            CachingMaterials(keyring, **kwargs)  # type: ignore[arg-type]


def _kms_round_trips(local_aws: Any, source: Any, n: int) -> int:
    envelope = Envelope(source)
    accounting.reset()
    for i in range(n):
        ciphertext = envelope.encrypt(b"item %d" % i, {"table": "orders"})
        assert envelope.decrypt(ciphertext, {"table": "orders"}) == b"item %d" % i
    return accounting.stats().calls


def test_kms_calls_with_and_without_caching(local_aws: Any) -> None:
    arn = local_aws.create_key("us-east-1")
    keyring = KmsKeyring(arn, client_supplier=local_aws.client_supplier())
    assert _kms_round_trips(local_aws, keyring, 200) == 400
    assert _kms_round_trips(local_aws, CachingMaterials(keyring, max_age=300), 10_000) <= 4


@pytest.mark.slow
def test_kms_keyring_alone_makes_20000_calls_for_10000_round_trips(local_aws: Any) -> None:
    arn = local_aws.create_key("us-east-1")
    keyring = KmsKeyring(arn, client_supplier=local_aws.client_supplier())
    assert _kms_round_trips(local_aws, keyring, 10_000) == 20_000
