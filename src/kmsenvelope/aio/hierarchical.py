""":class:`AsyncHierarchicalKeyring`: the hierarchical keyring's rules with an async key store.

EDK format, branch key cache and fetch rules are
:class:`~kmsenvelope.keyrings.hierarchical_rules.HierarchicalRules`, shared with the sync keyring.
Fetches are single flight: any number of concurrent operations that miss the cache on the same branch
key version make one key store call (one DynamoDB ``GetItem`` and one KMS ``Decrypt``) and share its
outcome, a failure included.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ..aws.key_store import BranchKeyMaterials
from ..errors import ConfigurationError
from ..keyrings.hierarchical_rules import BranchKeyIdSupplier, BranchKeyRequest, HierarchicalRules
from ..materials.materials import AnySuite, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from ._drive import run_async
from .singleflight import SingleFlight

__all__ = ["AsyncBranchKeyStore", "AsyncHierarchicalKeyring"]


@runtime_checkable
class AsyncBranchKeyStore(Protocol):
    """The read side of a branch key store, as coroutines (:class:`~kmsenvelope.aio.AsyncKeyStore`)."""

    async def get_active_branch_key(self, branch_key_id: str) -> BranchKeyMaterials:
        """The ACTIVE version of ``branch_key_id``."""
        ...

    async def get_branch_key_version(self, branch_key_id: str, version: str) -> BranchKeyMaterials:
        """A specific version of ``branch_key_id``."""
        ...


class AsyncHierarchicalKeyring:
    """:class:`~kmsenvelope.HierarchicalKeyring` for asyncio, over an :class:`AsyncKeyStore`.

    Same arguments, EDKs and cache semantics as the sync keyring; cache misses are single flight.
    """

    def __init__(
        self,
        key_store: AsyncBranchKeyStore | Any,
        *,
        branch_key_id: str | None = None,
        branch_key_id_supplier: BranchKeyIdSupplier | None = None,
        ttl_seconds: float = 600,
        cache_capacity: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(key_store, AsyncBranchKeyStore) or not all(
            inspect.iscoroutinefunction(getattr(key_store, name))
            for name in ("get_active_branch_key", "get_branch_key_version")
        ):
            raise ConfigurationError("key_store must be an async branch key store (e.g. AsyncKeyStore)")
        self._store = key_store
        self._rules = HierarchicalRules(
            branch_key_id, branch_key_id_supplier, ttl_seconds, cache_capacity, clock
        )
        self._flights: SingleFlight[BranchKeyMaterials] = SingleFlight()

    @property
    def key_store(self) -> AsyncBranchKeyStore:
        """The async branch key store this keyring reads."""
        return self._store

    @property
    def branch_key_id(self) -> str | None:
        """The fixed branch key id, or ``None`` when a supplier picks it per message."""
        return self._rules.branch_key_id

    @property
    def cache_size(self) -> int:
        """How many branch key versions are cached right now."""
        return len(self._rules.cache)

    def clear_cache(self) -> None:
        """Forget every cached branch key."""
        self._rules.cache.clear()

    async def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Add an EDK wrapped under the active branch key version, generating the data key if needed."""
        return await run_async(self._rules.encrypt_steps(materials), self._fetch)

    async def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        """Recover the data key from the first EDK of this keyring's branch key that unwraps."""
        return await run_async(self._rules.decrypt_steps(materials, edks), self._fetch)

    async def fresh_record_key(
        self, suite: AnySuite, context: Mapping[str, str]
    ) -> tuple[bytes, EncryptedDataKey, bytes]:
        """A new DB-ESDK record data key, its EDK and that EDK's symmetric signing key."""
        return await run_async(self._rules.fresh_record_key_steps(suite, context), self._fetch)

    async def open_record_key(
        self, suite: AnySuite, context: Mapping[str, str], edks: Sequence[EncryptedDataKey]
    ) -> tuple[bytes, bytes]:
        """(data key, symmetric signing key) of a DB-ESDK record."""
        return await run_async(self._rules.open_record_key_steps(suite, context, edks), self._fetch)

    async def _fetch(self, request: BranchKeyRequest) -> BranchKeyMaterials:
        store = self._store

        async def fetch() -> BranchKeyMaterials:
            if request.version is None:
                return await store.get_active_branch_key(request.branch_key_id)
            return await store.get_branch_key_version(request.branch_key_id, request.version)

        return await self._flights.run((request.branch_key_id, request.version), fetch)

    def __repr__(self) -> str:
        source = (
            f"branch_key_id={self.branch_key_id!r}" if self.branch_key_id else "branch_key_id_supplier=..."
        )
        return f"AsyncHierarchicalKeyring({self._store!r}, {source})"
