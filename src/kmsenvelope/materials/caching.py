"""The caching materials manager (ESDK ``framework/caching-cmm.md``): reuse data keys to cut KMS calls.

One KMS ``GenerateDataKey`` then serves many messages, and one ``Decrypt`` many reads, within the
limits set here. Cache identifiers follow the spec's Appendix A. One addition: when the caller
supplies a reproduced (required) encryption context on decrypt, its hash is appended to the decrypt
identifier, because the materials returned depend on it; without it two callers requiring different
values could share an entry.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import ConfigurationError
from ..suites import Suite
from ..values import serialize_context
from .cache import DEFAULT_CACHE_BYTES, LocalMaterialsCache
from .cmm import as_materials_manager
from .materials import (
    AnySuite,
    DecryptionMaterials,
    DecryptionRequest,
    EncryptedDataKey,
    EncryptionMaterials,
    EncryptionRequest,
)
from .protocols import Keyring, MaterialsManager

__all__ = [
    "CacheSettings",
    "CachingMaterials",
    "decrypt_cache_id",
    "encrypt_cache_id",
    "has_identity_kdf",
    "sha512_digest",
]

_U64_MAX = 2**64 - 1
_ZERO_512 = bytes(64)


def sha512_digest(data: bytes) -> bytes:
    """SHA-512 of ``data`` (the cache identifiers of Appendix A)."""
    return hashlib.sha512(data).digest()


def _serialize_edk(edk: EncryptedDataKey) -> bytes:
    pid = edk.provider_id.encode("utf-8")
    return b"".join(
        (
            len(pid).to_bytes(2, "big"),
            pid,
            len(edk.provider_info).to_bytes(2, "big"),
            edk.provider_info,
            len(edk.ciphertext).to_bytes(2, "big"),
            edk.ciphertext,
        )
    )


@dataclass(frozen=True)
class CacheSettings:
    """A caching manager's checked limits and partition (shared by the sync and async managers)."""

    max_age: float
    partition: str
    partition_hash: bytes

    @staticmethod
    def checked(max_age: float, max_messages: int, max_bytes: int, partition: str | None) -> CacheSettings:
        """Refuse limits out of the spec's ranges with ``ConfigurationError``; pick a random partition."""
        if not isinstance(max_age, (int, float)) or isinstance(max_age, bool) or not max_age > 0:
            raise ConfigurationError("max_age must be a number of seconds greater than zero")
        if not isinstance(max_messages, int) or not 1 <= max_messages <= _U64_MAX:
            raise ConfigurationError("max_messages must be an int between 1 and 2**64 - 1")
        if not isinstance(max_bytes, int) or not 0 <= max_bytes <= 2**63 - 1:
            raise ConfigurationError("max_bytes must be an int between 0 and 2**63 - 1")
        if partition is not None and (not isinstance(partition, str) or not partition):
            raise ConfigurationError("partition must be a non-empty string")
        name = partition or str(uuid.uuid4())
        return CacheSettings(float(max_age), name, sha512_digest(name.encode("utf-8")))

    @staticmethod
    def cache(
        cache: LocalMaterialsCache[EncryptionMaterials | DecryptionMaterials] | None,
        capacity: int,
        capacity_bytes: int,
        clock: Callable[[], float],
    ) -> LocalMaterialsCache[EncryptionMaterials | DecryptionMaterials]:
        """The cache a manager was given, or a new one with these bounds."""
        if cache is not None:
            return cache
        return LocalMaterialsCache(capacity, capacity_bytes=capacity_bytes, clock=clock)


def encrypt_cache_id(partition_hash: bytes, suite: AnySuite | None, context: Mapping[str, str]) -> bytes:
    """Appendix A: encryption materials, with or without an algorithm suite."""
    context_hash = sha512_digest(serialize_context(context))
    if suite is None:
        return sha512_digest(partition_hash + b"\x00" + context_hash)
    return sha512_digest(partition_hash + b"\x01" + suite.id_bytes + context_hash)


def decrypt_cache_id(partition_hash: bytes, request: DecryptionRequest) -> bytes:
    """Appendix A: decryption materials (plus the reproduced context, when there is one)."""
    edk_hashes = sorted(sha512_digest(_serialize_edk(edk)) for edk in request.encrypted_data_keys)
    parts = [partition_hash, request.suite.id_bytes, *edk_hashes, _ZERO_512]
    parts.append(sha512_digest(serialize_context(request.encryption_context)))
    if request.reproduced_context:
        parts.append(sha512_digest(serialize_context(request.reproduced_context)))
    return sha512_digest(b"".join(parts))


def has_identity_kdf(suite: AnySuite | None) -> bool:
    """Suites without a KDF use the data key directly: the spec forbids caching their materials."""
    return isinstance(suite, Suite) and suite.info.kdf_hash is None


class CachingMaterials:
    """Caches materials from a keyring or materials manager, within an age and usage limits.

    * ``max_age``: seconds an entry lives (required, > 0).
    * ``max_messages``: messages one cached data key may encrypt; message ``max_messages + 1`` gets
      fresh materials.
    * ``max_bytes``: plaintext bytes one cached data key may encrypt.
    * ``capacity``: entries kept (least recently used evicted first).
    * ``capacity_bytes``: estimated bytes the entries hold at most (64 MiB by default), evicted the same way.
    * ``partition``: entries are shared only between caching managers with the same partition and cache.

    Streaming encryption (unknown plaintext length) and identity-KDF suites bypass the cache, as the
    spec requires. Thread-safe; failures are never cached. Decrypt materials are cached only after they
    have authenticated the message header they were fetched for (``DecryptionRequest.authenticate``),
    so a forged or tampered header costs one call to the source and leaves nothing behind.
    """

    def __init__(
        self,
        source: Keyring | MaterialsManager,
        *,
        max_age: float,
        max_messages: int = 2**32,
        max_bytes: int = 2**63 - 1,
        capacity: int = 1000,
        capacity_bytes: int = DEFAULT_CACHE_BYTES,
        partition: str | None = None,
        cache: LocalMaterialsCache[EncryptionMaterials | DecryptionMaterials] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = as_materials_manager(source)
        settings = CacheSettings.checked(max_age, max_messages, max_bytes, partition)
        self._max_age, self._max_messages, self._max_bytes = settings.max_age, max_messages, max_bytes
        self._partition, self._partition_hash = settings.partition, settings.partition_hash
        self._cache = settings.cache(cache, capacity, capacity_bytes, clock)

    @property
    def cache(self) -> LocalMaterialsCache[EncryptionMaterials | DecryptionMaterials]:
        return self._cache

    @property
    def partition(self) -> str:
        return self._partition

    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        """Cached materials while within the limits, else fresh ones from the source (then cached)."""
        size = request.max_plaintext_length
        if size is None or size > self._max_bytes or has_identity_kdf(request.suite):
            return self._source.get_encryption_materials(request)
        key = encrypt_cache_id(self._partition_hash, request.suite, request.encryption_context)
        if request.required_context_keys:
            # Materials depend on which keys are kept out of the header.
            names = sorted(k.encode("utf-8") for k in request.required_context_keys)
            key = sha512_digest(key + b"\x00".join(names))
        cached = self._cache.use(key, 1, size, self._max_messages, self._max_bytes)
        if isinstance(cached, EncryptionMaterials):
            return cached
        inner = EncryptionRequest(
            encryption_context=request.encryption_context,
            commitment_policy=request.commitment_policy,
            suite=request.suite,
            max_plaintext_length=self._max_bytes,
            required_context_keys=request.required_context_keys,
        )
        materials = self._source.get_encryption_materials(inner)
        if not has_identity_kdf(materials.suite):
            self._cache.put(key, materials, self._max_age, 1, size)
        return materials

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        """Cached materials for the same suite, EDKs and contexts, else fresh ones (then cached once
        ``request.authenticate`` has accepted them)."""
        if has_identity_kdf(request.suite):
            return self._source.decrypt_materials(request)
        key = decrypt_cache_id(self._partition_hash, request)
        cached = self._cache.get(key)
        if isinstance(cached, DecryptionMaterials):
            return cached
        materials = self._source.decrypt_materials(request)
        authenticate = request.authenticate
        if authenticate is not None:
            # Everything the cache id covers came from an unauthenticated header: keep the entry only
            # once these materials have opened it (without a check, never).
            authenticate(materials)
            self._cache.put(key, materials, self._max_age)
        return materials

    def __repr__(self) -> str:
        return (
            f"CachingMaterials(max_age={self._max_age}, max_messages={self._max_messages}, "
            f"max_bytes={self._max_bytes}, partition={self._partition!r}, cache={self._cache!r})"
        )
