"""Async materials managers: the default CMM's and the caching CMM's rules around an async keyring.

The checks before and after the keyring call are the sync :mod:`kmsenvelope.materials.cmm` functions;
only the keyring call is awaited. Sync keyrings and materials managers (raw AES, raw RSA, a multi-keyring
of local keyrings, ``CachingMaterials`` over them, ...) are called inline: they do no I/O.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable

from ..errors import ConfigurationError
from ..materials.cache import DEFAULT_CACHE_BYTES, LocalMaterialsCache
from ..materials.caching import (
    CacheSettings,
    decrypt_cache_id,
    encrypt_cache_id,
    has_identity_kdf,
    sha512_digest,
)
from ..materials.cmm import (
    DEFAULT_LEGACY_SUITE,
    DEFAULT_SUITE,
    finish_decryption,
    finish_encryption,
    start_decryption,
    start_encryption,
)
from ..materials.materials import (
    DecryptionMaterials,
    DecryptionRequest,
    EncryptionMaterials,
    EncryptionRequest,
)
from ..materials.protocols import Keyring, MaterialsManager
from .protocols import AsyncKeyring, AsyncMaterialsManager
from .singleflight import SingleFlight

__all__ = ["AsyncCachingMaterials", "AsyncDefaultMaterials", "as_async_materials_manager"]

AnySource = AsyncKeyring | AsyncMaterialsManager | Keyring | MaterialsManager


def _is_async(method: object) -> bool:
    return inspect.iscoroutinefunction(method)


class AsyncDefaultMaterials:
    """The default materials manager over one keyring, async or sync (sync ones are called inline)."""

    def __init__(self, keyring: AsyncKeyring | Keyring) -> None:
        on_encrypt = getattr(keyring, "on_encrypt", None)
        on_decrypt = getattr(keyring, "on_decrypt", None)
        if not callable(on_encrypt) or not callable(on_decrypt):
            raise ConfigurationError("AsyncDefaultMaterials needs a keyring (on_encrypt / on_decrypt)")
        self._keyring = keyring
        self._async = _is_async(on_encrypt)

    @property
    def keyring(self) -> AsyncKeyring | Keyring:
        """The keyring this manager asks for data keys."""
        return self._keyring

    async def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        """Pick the suite, add the signing key of signed suites, and ask the keyring for the data key."""
        suite = request.suite
        if suite is None:
            suite = (
                DEFAULT_SUITE
                if request.commitment_policy.encrypt_requires_commitment
                else DEFAULT_LEGACY_SUITE
            )
        materials = start_encryption(
            request.encryption_context, request.commitment_policy, suite, request.required_context_keys
        )
        result = self._keyring.on_encrypt(materials)
        if self._async:
            result = await result  # type: ignore[misc]
        return finish_encryption(materials, result)  # type: ignore[arg-type]

    async def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        """Merge the reproduced context, load the verification key, and ask the keyring for the data key."""
        materials = start_decryption(
            request.suite, request.encryption_context, request.commitment_policy, request.reproduced_context
        )
        result = self._keyring.on_decrypt(materials, request.encrypted_data_keys)
        if self._async:
            result = await result  # type: ignore[misc]
        return finish_decryption(result)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"AsyncDefaultMaterials({self._keyring!r})"


class _InlineMaterials:
    """A sync materials manager (no I/O) presented with the async interface."""

    def __init__(self, source: MaterialsManager) -> None:
        self._source = source

    async def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        return self._source.get_encryption_materials(request)

    async def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        return self._source.decrypt_materials(request)

    def __repr__(self) -> str:
        return repr(self._source)


def as_async_materials_manager(source: AnySource) -> AsyncMaterialsManager:
    """An async materials manager for ``source``: passed through if it is one, else wrapped."""
    get = getattr(source, "get_encryption_materials", None)
    if callable(get) and callable(getattr(source, "decrypt_materials", None)):
        if _is_async(get):
            return source  # type: ignore[return-value]
        return _InlineMaterials(source)  # type: ignore[arg-type]
    if callable(getattr(source, "on_encrypt", None)) and callable(getattr(source, "on_decrypt", None)):
        return AsyncDefaultMaterials(source)  # type: ignore[arg-type]
    raise ConfigurationError("source must be a keyring or a materials manager (sync or async)")


class AsyncCachingMaterials:
    """:class:`~kmsenvelope.CachingMaterials` for asyncio, with single flight.

    Same cache identifiers, limits and bypass rules as the sync caching CMM. In addition, concurrent
    requests that miss on the same entry share one call to the source: 500 concurrent decrypts of a
    message on a cold cache make one KMS ``Decrypt``; if it fails, all 500 fail with that error and
    nothing is cached.
    """

    def __init__(
        self,
        source: AnySource,
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
        self._source = as_async_materials_manager(source)
        settings = CacheSettings.checked(max_age, max_messages, max_bytes, partition)
        self._max_age, self._max_messages, self._max_bytes = settings.max_age, max_messages, max_bytes
        self._partition, self._partition_hash = settings.partition, settings.partition_hash
        self._cache = settings.cache(cache, capacity, capacity_bytes, clock)
        self._encrypt_flights: SingleFlight[EncryptionMaterials] = SingleFlight()
        self._decrypt_flights: SingleFlight[DecryptionMaterials] = SingleFlight()

    @property
    def cache(self) -> LocalMaterialsCache[EncryptionMaterials | DecryptionMaterials]:
        """The materials cache (shared with other managers of the same partition, if given)."""
        return self._cache

    @property
    def partition(self) -> str:
        """The cache partition name."""
        return self._partition

    async def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        """Cached materials while within the limits, else fresh ones from the source (then cached)."""
        size = request.max_plaintext_length
        if size is None or size > self._max_bytes or has_identity_kdf(request.suite):
            return await self._source.get_encryption_materials(request)
        key = encrypt_cache_id(self._partition_hash, request.suite, request.encryption_context)
        if request.required_context_keys:
            names = sorted(k.encode("utf-8") for k in request.required_context_keys)
            key = sha512_digest(key + b"\x00".join(names))
        inner = EncryptionRequest(
            encryption_context=request.encryption_context,
            commitment_policy=request.commitment_policy,
            suite=request.suite,
            max_plaintext_length=self._max_bytes,
            required_context_keys=request.required_context_keys,
        )

        async def fetch() -> EncryptionMaterials:
            materials = await self._source.get_encryption_materials(inner)
            if not has_identity_kdf(materials.suite):
                # Usage starts at zero: every caller, the fetching one included, counts itself below.
                self._cache.put(key, materials, self._max_age, 0, 0)
            return materials

        while True:
            cached = self._cache.use(key, 1, size, self._max_messages, self._max_bytes)
            if isinstance(cached, EncryptionMaterials):
                return cached
            fetched = await self._encrypt_flights.run(key, fetch)
            if has_identity_kdf(fetched.suite):
                # Never shared (the spec bypasses caching for these suites): each caller gets its own.
                return await self._source.get_encryption_materials(inner)
            # The fresh entry is in the cache now; loop to count this use against its limits. If other
            # callers used it up first, the next turn fetches again.

    async def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        """Cached materials for the same suite, EDKs and contexts, else fresh ones.

        Fresh materials are cached only once ``request.authenticate`` has accepted them (never without
        it). Concurrent misses share one call to the source, but each caller authenticates its own
        header: a forged header fails alone, and cannot fail or poison its neighbours.
        """
        if has_identity_kdf(request.suite):
            return await self._source.decrypt_materials(request)
        key = decrypt_cache_id(self._partition_hash, request)
        cached = self._cache.get(key)
        if isinstance(cached, DecryptionMaterials):
            return cached
        shared = request.unauthenticated()

        async def fetch() -> DecryptionMaterials:
            return await self._source.decrypt_materials(shared)

        materials = await self._decrypt_flights.run(key, fetch)
        authenticate = request.authenticate
        if authenticate is not None:
            authenticate(materials)
            self._cache.put(key, materials, self._max_age)
        return materials

    def __repr__(self) -> str:
        return (
            f"AsyncCachingMaterials(max_age={self._max_age}, max_messages={self._max_messages}, "
            f"max_bytes={self._max_bytes}, partition={self._partition!r}, cache={self._cache!r})"
        )
